"""The notifier and requests services for real: nats-server, JetStream, their API and their events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from shared.broker import publish_event
from shared.errors import CollectionErrorCode
from shared.events import AccountStatus, AccountStatusChanged, CollectorAnnounced
from shared.subjects import Api, Events
from tests.notifier_harness import Platform, running_platform
from tests.standin import StandIn


@pytest.fixture
async def platform(nats_url: str, mongodb_url: str | None, db_prefix: str) -> AsyncIterator[Platform]:
    async with running_platform(nats_url, mongodb_url, db_prefix) as p:
        yield p


# --- malformed payloads ---------------------------------------------------------------------------

SUBJECTS = [Api.NOTIFIER_PREFS_GET, Api.NOTIFIER_PREFS_SET, Api.NOTIFIER_HISTORY, Api.REQUESTS_CREATE,
            Api.REQUESTS_LIST, Api.REQUESTS_SET_STATUS]


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b"{}", b"\xff\xfe", b'{"tenant_id": "bad tenant!"}'])
async def test_malformed_payloads_get_an_error_reply(platform: Platform, data: bytes) -> None:
    for subject in SUBJECTS:
        reply = await platform.raw(subject, data)
        assert reply["error"]["code"] == "validation_error", (subject, reply)
        assert reply["error"]["message"]


async def test_listing_every_request_accepts_an_empty_payload_but_not_a_bad_filter(platform: Platform) -> None:
    assert (await platform.raw(Api.REQUESTS_LIST_ALL, b"{}")) == {"requests": []}
    reply = await platform.raw(Api.REQUESTS_LIST_ALL, b'{"status": "done"}')
    assert reply["error"]["code"] == "validation_error"
    assert reply["error"]["field"] == "status"


# --- notifier: preferences ------------------------------------------------------------------------


async def test_prefs_defaults_then_partial_updates(platform: Platform) -> None:
    assert await platform.call(Api.NOTIFIER_PREFS_GET, {"tenant_id": "ph1"}) == {
        "tenant_id": "ph1", "emails": [], "webhook_url": None, "language": "fr", "webhook_secret": None}

    prefs = await platform.call(Api.NOTIFIER_PREFS_SET, {
        "tenant_id": "ph1", "emails": [" compta@pharma.fr", "COMPTA@pharma.fr", "titulaire@pharma.fr"]})
    assert prefs == {"tenant_id": "ph1", "emails": ["compta@pharma.fr", "titulaire@pharma.fr"],
                     "webhook_url": None, "language": "fr", "webhook_secret": None}

    # fields left out are unchanged; the first webhook gets its signing secret
    prefs = await platform.call(Api.NOTIFIER_PREFS_SET, {
        "tenant_id": "ph1", "webhook_url": "https://hooks.pharma.fr/collectors", "language": "en"})
    assert prefs["emails"] == ["compta@pharma.fr", "titulaire@pharma.fr"]
    assert prefs["webhook_url"] == "https://hooks.pharma.fr/collectors"
    assert prefs["language"] == "en"
    secret = prefs["webhook_secret"]
    assert secret.startswith("whsec_")
    assert await platform.call(Api.NOTIFIER_PREFS_GET, {"tenant_id": "ph1"}) == prefs

    # another URL keeps the secret; rotating replaces it
    prefs = await platform.call(Api.NOTIFIER_PREFS_SET, {
        "tenant_id": "ph1", "webhook_url": "https://hooks.pharma.fr/v2"})
    assert prefs["webhook_secret"] == secret
    prefs = await platform.call(Api.NOTIFIER_PREFS_SET, {"tenant_id": "ph1", "rotate_webhook_secret": True})
    assert prefs["webhook_secret"].startswith("whsec_") and prefs["webhook_secret"] != secret

    # an empty list / an empty URL clear them (the secret goes with the webhook)
    prefs = await platform.call(Api.NOTIFIER_PREFS_SET, {"tenant_id": "ph1", "emails": [], "webhook_url": ""})
    assert prefs == {"tenant_id": "ph1", "emails": [], "webhook_url": None, "language": "en",
                     "webhook_secret": None}
    err = await platform.error(Api.NOTIFIER_PREFS_SET, {"tenant_id": "ph1", "rotate_webhook_secret": True})
    assert (err.remote_code, err.field) == ("validation_error", "rotate_webhook_secret")
    assert err.message == "Indiquez d'abord l'adresse du webhook : le secret sert à signer ses appels."

    # another tenant still has the defaults
    assert (await platform.call(Api.NOTIFIER_PREFS_GET, {"tenant_id": "ph2"}))["language"] == "fr"


async def test_prefs_validation_errors(platform: Platform) -> None:
    err = await platform.error(Api.NOTIFIER_PREFS_SET, {"tenant_id": "ph1", "emails": ["pas-une-adresse"]})
    assert (err.remote_code, err.field) == ("validation_error", "emails")
    assert err.message == "L'adresse e-mail « pas-une-adresse » n'est pas valide."

    err = await platform.error(Api.NOTIFIER_PREFS_SET, {
        "tenant_id": "ph1", "lang": "en", "emails": [f"p{i}@pharma.fr" for i in range(6)]})
    assert (err.remote_code, err.field) == ("validation_error", "emails")
    assert err.message == "You can give at most 5 email addresses."

    err = await platform.error(Api.NOTIFIER_PREFS_SET, {"tenant_id": "ph1", "webhook_url": "ftp://x.fr"})
    assert (err.remote_code, err.field) == ("validation_error", "webhook_url")
    assert "http://" in err.message and "https://" in err.message

    err = await platform.error(Api.NOTIFIER_PREFS_SET, {
        "tenant_id": "ph1", "webhook_url": "https://bob:s3cret@hooks.pharma.fr/"})
    assert (err.remote_code, err.field) == ("validation_error", "webhook_url")
    assert "s3cret" not in err.message

    err = await platform.error(Api.NOTIFIER_PREFS_SET, {"tenant_id": "ph1", "emails": "a@pharma.fr"})
    assert (err.remote_code, err.field) == ("validation_error", "emails")

    err = await platform.error(Api.NOTIFIER_PREFS_SET, {"tenant_id": "ph1", "language": "de"})
    assert (err.remote_code, err.field) == ("validation_error", "language")

    # nothing was stored by the refused updates
    assert await platform.call(Api.NOTIFIER_PREFS_GET, {"tenant_id": "ph1"}) == {
        "tenant_id": "ph1", "emails": [], "webhook_url": None, "language": "fr", "webhook_secret": None}


# --- notifier: rules and history ------------------------------------------------------------------


def _status(tenant: str, status: AccountStatus, previous: AccountStatus | None, *,
            code: str | None = None, account: str = "acc1") -> AccountStatusChanged:
    return AccountStatusChanged(tenant_id=tenant, account_id=account, collector_id="ocp-classic",
                                collector_name="OCP", login="officine-42", status=status,
                                previous_status=previous,
                                error_code=CollectionErrorCode(code) if code else None)


async def _history(platform: Platform, tenant: str) -> list[dict[str, Any]]:
    return await platform.history(tenant)


async def test_action_required_is_notified_once_even_when_the_event_comes_twice(platform: Platform) -> None:
    assert await _history(platform, "ph1") == []
    evt = _status("ph1", AccountStatus.ACTION_REQUIRED, AccountStatus.COLLECTING, code="login_failed")
    subject = Events.ACCOUNT_STATUS_CHANGED.for_tenant("ph1")
    await publish_event(platform.broker, subject, evt)
    await publish_event(platform.broker, subject, evt)  # a retried publish: JetStream drops it
    # the same event stored again (past the dedup window, or re-published by a restored outbox)
    await platform.js.publish(subject, evt.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": f"{evt.msg_id()}:again"})
    await platform.consumed("accounts", "notifier-status")

    [note] = await platform.settled("ph1", 1)
    assert note["kind"] == "action_required" and note["channel"] == "in_app"
    assert note["delivered"] is True and note["delivered_at"] and note["error"] is None
    assert note["status"] == "delivered" and note["attempts"] == 1
    assert note["account_id"] == "acc1" and note["collector_id"] == "ocp-classic"
    assert note["subject"] == "Action requise – OCP, officine-42"
    assert "« officine-42 »" in note["body"]
    assert "Mettez à jour votre mot de passe dans Collecteurs → Modifier" in note["body"]

    sent = await platform.messages("notifier", Events.NOTIFICATION_SENT.for_tenant("ph1"))
    assert len(sent) == 1
    assert sent[0]["notification_id"] == note["id"]
    assert sent[0]["kind"] == "action_required" and sent[0]["error_code"] == "login_failed"
    assert sent[0]["subject"] == note["subject"] and sent[0]["account_id"] == "acc1"

    # other tenants see nothing
    assert await _history(platform, "ph2") == []


async def test_notifications_follow_the_tenant_language_and_recovery_is_told(platform: Platform) -> None:
    await platform.call(Api.NOTIFIER_PREFS_SET, {"tenant_id": "ph1", "language": "en"})
    subject = Events.ACCOUNT_STATUS_CHANGED.for_tenant("ph1")
    steps = [
        _status("ph1", AccountStatus.ACTION_REQUIRED, AccountStatus.COLLECTING, code="password_expired"),
        # still action_required, another code: no second alert
        _status("ph1", AccountStatus.ACTION_REQUIRED, AccountStatus.ACTION_REQUIRED, code="login_failed"),
        # the user updates the password: pending, collecting, ok
        _status("ph1", AccountStatus.PENDING, AccountStatus.ACTION_REQUIRED),
        _status("ph1", AccountStatus.COLLECTING, AccountStatus.PENDING),
        _status("ph1", AccountStatus.OK, AccountStatus.COLLECTING),
        # a later ordinary run: nothing to tell
        _status("ph1", AccountStatus.COLLECTING, AccountStatus.OK),
        _status("ph1", AccountStatus.OK, AccountStatus.COLLECTING),
    ]
    for evt in steps:
        await publish_event(platform.broker, subject, evt)
    await platform.consumed("accounts", "notifier-status")

    notes = await platform.settled("ph1", 2)
    assert [n["kind"] for n in notes] == ["recovered", "action_required"]  # newest first
    assert notes[1]["subject"] == "Action required – OCP, officine-42"
    assert "your password expired" in notes[1]["body"]
    assert "Collectors → Edit" in notes[1]["body"]
    assert notes[0]["subject"] == "Collection restored – OCP, officine-42"
    assert all(n["delivered"] for n in notes)


async def test_no_recovery_notice_for_a_problem_never_told(platform: Platform) -> None:
    subject = Events.ACCOUNT_STATUS_CHANGED.for_tenant("ph3")
    for evt in [
        # a short transient failure: not told, so neither is its end
        _status("ph3", AccountStatus.RETRYING, AccountStatus.COLLECTING, code="supplier_unavailable",
                account="a1"),
        _status("ph3", AccountStatus.COLLECTING, AccountStatus.RETRYING, account="a1"),
        _status("ph3", AccountStatus.OK, AccountStatus.COLLECTING, account="a1"),
        # a first success after activation is no recovery
        _status("ph3", AccountStatus.OK, AccountStatus.PENDING, account="a3"),
    ]:
        await publish_event(platform.broker, subject, evt)
    await platform.consumed("accounts", "notifier-status")
    await asyncio.sleep(0.2)
    assert await _history(platform, "ph3") == []
    await platform.alive()  # the notifier could have told one: it tells a control alert
    assert await _history(platform, "ph3") == []


async def test_a_late_problem_event_does_not_reopen_a_recovered_account(platform: Platform) -> None:
    subject = Events.ACCOUNT_STATUS_CHANGED.for_tenant("ph4")
    alert = _status("ph4", AccountStatus.ACTION_REQUIRED, AccountStatus.COLLECTING, code="login_failed")
    ok = _status("ph4", AccountStatus.OK, AccountStatus.COLLECTING)
    ok.occurred_at = alert.occurred_at + timedelta(seconds=5)
    late = _status("ph4", AccountStatus.RETRYING, AccountStatus.COLLECTING, code="rate_limited")
    late.occurred_at = alert.occurred_at + timedelta(seconds=2)
    for evt in (alert, ok, late):  # the retrying event is redelivered after the recovery
        await publish_event(platform.broker, subject, evt)
    await platform.consumed("accounts", "notifier-status")
    notes = await platform.settled("ph4", 2)
    assert [n["kind"] for n in notes] == ["recovered", "action_required"]
    # the late problem opened nothing: a day later the sweep has nothing to tell
    platform.clock.advance(timedelta(days=2))
    await asyncio.sleep(0.3)
    assert len(await _history(platform, "ph4")) == 2
    await platform.alive()  # and it was sweeping at that clock: a control's 24 h alert is told
    assert len(await _history(platform, "ph4")) == 2


# --- requests -------------------------------------------------------------------------------------


async def _create(platform: Platform, tenant: str, supplier: str, portal_url: str | None = None,
                  **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"tenant_id": tenant, "supplier": supplier, **extra}
    if portal_url is not None:
        payload["portal_url"] = portal_url
    return await platform.call(Api.REQUESTS_CREATE, payload)


async def test_same_supplier_from_two_pharmacies_is_one_request(platform: Platform) -> None:
    first = await _create(platform, "ph1", "Alliance Healthcare", comment="Nous l'utilisons chaque jour")
    assert first["status"] == "submitted" and first["votes"] == 1 and first["requesters"] == ["ph1"]
    assert first["supplier"] == "Alliance Healthcare"

    second = await _create(platform, "ph2", "  alliance-HEALTHCARE ", "https://www.alliance-healthcare.fr/")
    assert second["id"] == first["id"]
    # a pharmacy learns how many asked, never which other pharmacies did
    assert second["votes"] == 2 and second["requesters"] == ["ph2"]
    assert second["portal_url"] == "https://www.alliance-healthcare.fr/"  # learnt from the second ask

    # the same pharmacy asking again counts once
    again = await _create(platform, "ph2", "Alliance Healthcare")
    assert again["id"] == first["id"] and again["votes"] == 2

    # the same portal under another name is the same request too
    by_portal = await _create(platform, "ph3", "AH France", "http://alliance-healthcare.fr/login")
    assert by_portal["id"] == first["id"] and by_portal["votes"] == 3

    listed = (await platform.call(Api.REQUESTS_LIST_ALL, {}))["requests"]
    assert [r["id"] for r in listed] == [first["id"]]

    created = await platform.messages("requests", Events.REQUEST_CREATED.base)
    assert len(created) == 1
    assert created[0]["request_id"] == first["id"] and created[0]["tenant_id"] == "ph1"
    assert created[0]["supplier_key"] == "alliancehealthcare"
    assert created[0]["comment"] == "Nous l'utilisons chaque jour"


async def test_pharmacies_asking_at_the_same_moment_share_one_request(platform: Platform, standin: StandIn) -> None:
    # A round counts once two creates both found no open request before either inserted one: the
    # unique index then refuses the second, which joins the first's request (under the stand-in's
    # jitter; nothing slows the creates down by hand).
    async def six_pharmacies_at_once(round_: int) -> None:
        supplier = f"Alliance Healthcare {round_}"
        replies = await asyncio.gather(*[
            _create(platform, f"ph{i}", supplier if i % 2 else supplier.upper()) for i in range(6)])
        assert len({r["id"] for r in replies}) == 1
        [request] = [r for r in (await platform.call(Api.REQUESTS_LIST_ALL, {}))["requests"]
                     if r["id"] == replies[0]["id"]]
        assert request["votes"] == 6 and sorted(request["requesters"]) == [f"ph{i}" for i in range(6)]
        created = await platform.messages("requests", Events.REQUEST_CREATED.base)
        assert [m["request_id"] for m in created].count(request["id"]) == 1
        assert len(created) == round_ + 1  # one request per round, never two

    await standin.race(six_pharmacies_at_once, "requests", enter=("find",), leave=("insert_one",))


async def test_create_validation(platform: Platform) -> None:
    err = await platform.error(Api.REQUESTS_CREATE, {"tenant_id": "ph1", "supplier": "  .. "})
    assert (err.remote_code, err.field) == ("validation_error", "supplier")
    assert err.message == "Indiquez le nom du fournisseur."
    err = await platform.error(Api.REQUESTS_CREATE, {"tenant_id": "ph1", "supplier": "OCP",
                                                     "portal_url": "ocp.fr", "lang": "en"})
    assert (err.remote_code, err.field) == ("validation_error", "portal_url")
    assert err.message.startswith("The portal address must start with http://")
    err = await platform.error(Api.REQUESTS_CREATE, {"tenant_id": "ph1", "supplier": ""})
    assert (err.remote_code, err.field) == ("validation_error", "supplier")
    assert (await platform.call(Api.REQUESTS_LIST_ALL, {}))["requests"] == []


async def test_list_sorting_and_filters(platform: Platform) -> None:
    ocp = await _create(platform, "ph1", "OCP")
    cerp = await _create(platform, "ph1", "CERP")
    phoenix = await _create(platform, "ph2", "Phoenix")
    await _create(platform, "ph2", "cerp")
    await _create(platform, "ph3", "CERP")
    await _create(platform, "ph3", "Phoenix")

    listed = (await platform.call(Api.REQUESTS_LIST_ALL, {}))["requests"]
    # votes first (CERP 3, then OCP... no: Phoenix 2), then the oldest first
    assert [(r["id"], r["votes"]) for r in listed] == [(cerp["id"], 3), (phoenix["id"], 2), (ocp["id"], 1)]

    mine = (await platform.call(Api.REQUESTS_LIST, {"tenant_id": "ph2"}))["requests"]
    assert [r["id"] for r in mine] == [cerp["id"], phoenix["id"]]
    # the votes of every pharmacy, the name of none but the caller
    assert [(r["votes"], r["requesters"]) for r in mine] == [(3, ["ph2"]), (2, ["ph2"])]
    assert (await platform.call(Api.REQUESTS_LIST_ALL, {}))["requests"][0]["requesters"] == ["ph1", "ph2", "ph3"]
    # a pharmacy's list needs the pharmacy: without one it is refused, not every pharmacy's
    for payload in ({}, {"status": "submitted"}, {"tenant_id": ""}, {"tenant_id": None}, {"tenant_id": "ph 2"},
                    {"tenant_id": "x" * 65}):
        err = await platform.error(Api.REQUESTS_LIST, payload)
        assert (err.remote_code, err.field) == ("validation_error", "tenant_id"), payload

    await platform.call(Api.REQUESTS_SET_STATUS, {"request_id": ocp["id"], "status": "in_progress"})
    in_progress = (await platform.call(Api.REQUESTS_LIST_ALL, {"status": "in_progress"}))["requests"]
    assert [r["id"] for r in in_progress] == [ocp["id"]]
    both = await platform.call(Api.REQUESTS_LIST, {"tenant_id": "ph2", "status": "in_progress"})
    assert both["requests"] == []


async def test_status_transitions(platform: Platform) -> None:
    req = await _create(platform, "ph1", "Laboratoires Gilbert")
    rid = req["id"]

    moved = await platform.call(Api.REQUESTS_SET_STATUS, {"request_id": rid, "status": "in_progress"})
    assert moved["status"] == "in_progress"

    err = await platform.error(Api.REQUESTS_SET_STATUS, {"request_id": rid, "status": "submitted"})
    assert (err.remote_code, err.field) == ("conflict", "status")
    assert err.message == "Une demande en cours ne peut pas passer à l'état « soumise »."

    err = await platform.error(Api.REQUESTS_SET_STATUS, {"request_id": rid, "status": "rejected"})
    assert (err.remote_code, err.field) == ("validation_error", "reason")
    err = await platform.error(Api.REQUESTS_SET_STATUS, {"request_id": rid, "status": "rejected", "reason": " "})
    assert (err.remote_code, err.field) == ("validation_error", "reason")
    err = await platform.error(Api.REQUESTS_SET_STATUS, {"request_id": rid, "status": "available"})
    assert (err.remote_code, err.field) == ("validation_error", "collector_id")

    done = await platform.call(Api.REQUESTS_SET_STATUS, {
        "request_id": rid, "status": "available", "collector_id": "gilbert-labo", "reason": "ignored"})
    assert done["status"] == "available" and done["collector_id"] == "gilbert-labo"
    assert done["reason"] is None

    for target, extra in [("rejected", {"reason": "x"}), ("in_progress", {}),
                          ("available", {"collector_id": "gilbert-labo"})]:
        err = await platform.error(Api.REQUESTS_SET_STATUS, {"request_id": rid, "status": target, **extra})
        assert err.remote_code == "conflict", target

    err = await platform.error(Api.REQUESTS_SET_STATUS, {"request_id": "nope", "status": "in_progress"})
    assert (err.remote_code, err.field) == ("not_found", "request_id")
    err = await platform.error(Api.REQUESTS_SET_STATUS, {"request_id": rid, "status": "done"})
    assert (err.remote_code, err.field) == ("validation_error", "status")

    other = await _create(platform, "ph2", "Gilbert")  # the first one is closed: a new request
    assert other["id"] != rid
    rejected = await platform.call(Api.REQUESTS_SET_STATUS, {
        "request_id": other["id"], "status": "rejected", "reason": "Portail sans factures en ligne"})
    assert rejected["status"] == "rejected" and rejected["reason"] == "Portail sans factures en ligne"
    assert rejected["collector_id"] is None

    changes = await platform.messages("requests", Events.REQUEST_STATUS_CHANGED.base)
    assert [(c["request_id"], c["previous_status"], c["status"]) for c in changes] == [
        (rid, "submitted", "in_progress"), (rid, "in_progress", "available"),
        (other["id"], "submitted", "rejected")]
    assert changes[1]["collector_id"] == "gilbert-labo" and changes[1]["requesters"] == ["ph1"]


def _announced(collector_id: str, supplier: str, portal_url: str, worker: str = "w1") -> CollectorAnnounced:
    return CollectorAnnounced(collector_id=collector_id, name=f"{supplier} (portail)", supplier=supplier,
                              portal_url=portal_url, login_kind="identifier", frequency_hours=24,
                              max_sessions=2, version="1.0", worker_id=worker)


async def test_announced_collector_fulfils_matching_requests(platform: Platform) -> None:
    by_name = await _create(platform, "ph1", "Répartition Pharmaceutique Sud")
    await _create(platform, "ph2", "repartition pharmaceutique sud")
    by_portal = await _create(platform, "ph3", "RPS", "https://www.rps-pharma.fr/client")
    unrelated = await _create(platform, "ph1", "OCP")

    subject = Events.COLLECTOR_ANNOUNCED.for_tenant("")
    await publish_event(platform.broker, subject,
                        _announced("rps-classic", "Répartition Pharmaceutique-Sud", "https://portail.rps.fr"))
    await publish_event(platform.broker, subject,
                        _announced("rps-pro", "Autre nom", "https://rps-pharma.fr/pro"))
    # every worker announces again: nothing changes
    await publish_event(platform.broker, subject,
                        _announced("rps-classic", "Répartition Pharmaceutique-Sud", "https://portail.rps.fr",
                                   worker="w2"))
    await platform.consumed("scraper", "requests-catalog")

    listed = {r["id"]: r for r in (await platform.call(Api.REQUESTS_LIST_ALL, {}))["requests"]}
    assert listed[by_name["id"]]["status"] == "available"
    assert listed[by_name["id"]]["collector_id"] == "rps-classic"
    assert listed[by_name["id"]]["votes"] == 2
    assert listed[by_portal["id"]]["status"] == "available"
    assert listed[by_portal["id"]]["collector_id"] == "rps-pro"
    assert listed[unrelated["id"]]["status"] == "submitted"

    changes = await platform.messages("requests", Events.REQUEST_STATUS_CHANGED.base)
    assert sorted((c["request_id"], c["status"], c["collector_id"]) for c in changes) == sorted([
        (by_name["id"], "available", "rps-classic"), (by_portal["id"], "available", "rps-pro")])
    fulfilled = next(c for c in changes if c["request_id"] == by_name["id"])
    assert fulfilled["requesters"] == ["ph1", "ph2"]
    # the event says how the catalog shows the collector, for the notice to the requesters
    assert fulfilled["collector_name"] == "Répartition Pharmaceutique-Sud (portail)"
    assert fulfilled["collector_supplier"] == "Répartition Pharmaceutique-Sud"
    assert fulfilled["login_kind"] == "identifier"

    # a request made after the fulfilment is a new one (the old one is closed)
    late = await _create(platform, "ph4", "RPS", "https://rps-pharma.fr")
    assert late["id"] not in (by_name["id"], by_portal["id"]) and late["status"] == "submitted"


async def test_an_operator_marking_a_request_available_names_a_known_collector(platform: Platform) -> None:
    await publish_event(platform.broker, Events.COLLECTOR_ANNOUNCED.base,
                        _announced("cerp-rouen", "CERP Rouen", "https://extranet.cerp-rouen.fr"))
    await platform.consumed("scraper", "requests-catalog")
    req = await _create(platform, "ph1", "Grossiste Normandie")  # another name: no automatic match
    await platform.call(Api.REQUESTS_SET_STATUS, {"request_id": req["id"], "status": "available",
                                                  "collector_id": "cerp-rouen"})
    unknown = await _create(platform, "ph2", "Labo Y")
    await platform.call(Api.REQUESTS_SET_STATUS, {"request_id": unknown["id"], "status": "available",
                                                  "collector_id": "labo-y"})
    changes = {c["request_id"]: c for c in await platform.messages("requests", Events.REQUEST_STATUS_CHANGED.base)}
    assert changes[req["id"]]["collector_name"] == "CERP Rouen (portail)"
    assert changes[req["id"]]["collector_supplier"] == "CERP Rouen"
    # not announced (yet): the notice falls back on the request's own words
    assert changes[unknown["id"]]["collector_name"] is None
    await platform.consumed("requests", "notifier-requests")
    [note] = await platform.settled("ph2", 1)
    assert note["kind"] == "request_available" and "« Labo Y »" in note["body"]
