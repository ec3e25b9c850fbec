"""Each alert rule (§8) end to end through NATS, with real email and webhook receivers and a clock the
test moves forward: transient failures after 24 h, reminders after 3 and 7 days, recoveries,
supplier-wide incidents told once per tenant, collector requests answered to every requester."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from services.notifier.app import build as build_notifier
from shared.broker import publish_event
from shared.errors import CollectionErrorCode
from shared.events import (
    AccountStatus,
    AccountStatusChanged,
    AffectedAccount,
    CollectorAnnounced,
    Event,
    IncidentDeclared,
    IncidentResolved,
)
from shared.settings import NotifierSettings
from shared.subjects import Api, Events
from tests.notifier_harness import Platform, fast_delivery, running_platform, smtp_inbox, webhook_receiver

S = AccountStatus
QUIET_S = 0.4  # several sweep periods: long enough for a wrong notice to show up


@pytest.fixture
async def platform(nats_url: str, mongodb_url: str | None, db_prefix: str) -> AsyncIterator[Platform]:
    async with smtp_inbox() as inbox, webhook_receiver() as hook, \
            running_platform(nats_url, mongodb_url, db_prefix, inbox=inbox, hook=hook) as p:
        yield p


class Account:
    """Publishes an account's status changes as the accounts service would."""

    def __init__(self, p: Platform, tenant: str, account: str = "acc1", login: str = "officine-42",
                 collector: str = "ocp-classic", name: str = "OCP") -> None:
        self.p, self.tenant, self.account, self.login = p, tenant, account, login
        self.collector, self.name = collector, name
        self.status: AccountStatus | None = S.OK
        self.version = 1

    async def go(self, status: AccountStatus, code: str | None = None) -> None:
        evt = AccountStatusChanged(
            tenant_id=self.tenant, account_id=self.account, collector_id=self.collector, collector_name=self.name,
            login=self.login, status=status, previous_status=self.status, credential_version=self.version,
            error_code=CollectionErrorCode(code) if code else None, occurred_at=self.p.clock())
        self.status = status
        await publish_event(self.p.broker, Events.ACCOUNT_STATUS_CHANGED.for_tenant(self.tenant), evt)
        await self.p.consumed("accounts", "notifier-status")


async def _prefs(p: Platform, tenant: str, email: str, **more: Any) -> None:
    assert p.hook
    await p.call(Api.NOTIFIER_PREFS_SET, {"tenant_id": tenant, "emails": [email], "webhook_url": p.hook.url,
                                          **more})


def _subjects(p: Platform, email: str) -> list[str]:
    assert p.inbox
    return [m.subject for m in p.inbox.to(email)]


async def _quiet(p: Platform, tenant: str, count: int) -> None:
    """Nothing more is told: the history stays at ``count`` through several sweeps, and then a
    control alert proves the notifier was alive to tell it."""
    await asyncio.sleep(QUIET_S)
    assert len(await p.history(tenant)) == count
    await p.alive()
    assert len(await p.history(tenant)) == count


# --- account rules --------------------------------------------------------------------------------


async def test_a_transient_failure_is_told_after_24_hours_then_reminded_then_its_recovery(platform: Platform) -> None:
    p = platform
    await _prefs(p, "ph1", "compta@ph1.fr")
    acc = Account(p, "ph1")
    await acc.go(S.COLLECTING)
    await acc.go(S.RETRYING, "supplier_unavailable")
    # the scheduler retries through collecting: still the same failure
    for hours in (1, 5, 12):
        p.clock.offset = timedelta(hours=hours)
        await acc.go(S.COLLECTING)
        await acc.go(S.RETRYING, "supplier_unavailable")
    p.clock.offset = timedelta(hours=23, minutes=50)
    await _quiet(p, "ph1", 0)

    p.clock.offset = timedelta(hours=24, minutes=1)
    await p.settled("ph1", 3)
    assert _subjects(p, "compta@ph1.fr") == ["Collecte interrompue – OCP, officine-42"]
    assert p.inbox
    assert "Depuis plus de 24 heures" in p.inbox.mails[0].text
    assert "Vous n'avez rien à faire" in p.inbox.mails[0].text

    p.clock.offset = timedelta(days=2)
    await _quiet(p, "ph1", 3)
    p.clock.offset = timedelta(days=3, minutes=1)
    await p.settled("ph1", 6)
    p.clock.offset = timedelta(days=7, minutes=1)
    await p.settled("ph1", 9)
    p.clock.offset = timedelta(days=15)
    await _quiet(p, "ph1", 9)
    assert _subjects(p, "compta@ph1.fr") == ["Collecte interrompue – OCP, officine-42",
                                              "Collecte toujours interrompue – OCP, officine-42",
                                              "Collecte toujours interrompue – OCP, officine-42"]
    assert "depuis 3 jours" in p.inbox.mails[1].text and "depuis 7 jours" in p.inbox.mails[2].text

    await acc.go(S.COLLECTING)
    await acc.go(S.OK)
    notes = await p.settled("ph1", 12)
    assert [n["kind"] for n in notes if n["channel"] == "email"] == [
        "recovered", "transient_failure_reminder", "transient_failure_reminder", "transient_failure"]
    assert _subjects(p, "compta@ph1.fr")[-1] == "Collecte rétablie – OCP, officine-42"
    assert p.hook and len(p.hook.delivered()) == 4


async def test_a_transient_failure_shorter_than_24_hours_is_never_told(platform: Platform) -> None:
    p = platform
    await _prefs(p, "ph1", "compta@ph1.fr")
    acc = Account(p, "ph1")
    await acc.go(S.RETRYING, "rate_limited")
    p.clock.offset = timedelta(hours=20)
    await acc.go(S.COLLECTING)
    await acc.go(S.OK)
    p.clock.offset = timedelta(days=10)
    await _quiet(p, "ph1", 0)
    assert p.inbox and p.inbox.mails == []


async def test_action_required_is_told_at_once_reminded_after_3_and_7_days_and_recovery_once(
        platform: Platform) -> None:
    p = platform
    await _prefs(p, "ph1", "compta@ph1.fr")
    acc = Account(p, "ph1")
    await acc.go(S.COLLECTING)
    await acc.go(S.ACTION_REQUIRED, "login_failed")
    await p.settled("ph1", 3)
    assert _subjects(p, "compta@ph1.fr") == ["Action requise – OCP, officine-42"]

    # the pharmacist clicks Retry without changing anything: same failure, no new alert
    await acc.go(S.COLLECTING)
    await acc.go(S.ACTION_REQUIRED, "login_failed")
    p.clock.offset = timedelta(days=3, minutes=1)
    await p.settled("ph1", 6)
    p.clock.offset = timedelta(days=7, minutes=1)
    await p.settled("ph1", 9)
    p.clock.offset = timedelta(days=30)
    await _quiet(p, "ph1", 9)
    reminders = _subjects(p, "compta@ph1.fr")[1:]
    assert reminders == ["Rappel : action requise – OCP, officine-42"] * 2
    assert p.inbox
    assert "Mettez à jour votre mot de passe dans Collecteurs → Modifier" in p.inbox.mails[2].text

    # new credentials: pending, then ok; one recovery notice
    acc.version = 2
    await acc.go(S.PENDING)
    await acc.go(S.COLLECTING)
    await acc.go(S.OK)
    await p.settled("ph1", 12)
    assert _subjects(p, "compta@ph1.fr")[-1] == "Collecte rétablie – OCP, officine-42"
    p.clock.offset = timedelta(days=60)
    await _quiet(p, "ph1", 12)


async def test_new_credentials_stop_the_reminders(platform: Platform) -> None:
    p = platform
    await _prefs(p, "ph1", "compta@ph1.fr")
    acc = Account(p, "ph1")
    await acc.go(S.ACTION_REQUIRED, "password_expired")
    await p.settled("ph1", 3)
    p.clock.offset = timedelta(days=1)
    acc.version = 2
    await acc.go(S.PENDING)  # updated; the first run has not happened yet
    p.clock.offset = timedelta(days=8)
    await _quiet(p, "ph1", 3)


async def test_two_notifier_replicas_sweeping_tell_each_alert_once(
        platform: Platform, nats_url: str, mongodb_url: str | None, db_prefix: str) -> None:
    p = platform
    assert p.inbox
    second = build_notifier(NotifierSettings(
        nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix, smtp_host="127.0.0.1",
        smtp_port=p.inbox.port, smtp_security="none", **fast_delivery(sweep_s=0.01, delivery_poll_s=0.01)),
        clock=p.clock)
    await second.start()
    try:
        await _prefs(p, "ph1", "compta@ph1.fr")
        for i in range(5):
            await Account(p, "ph1", account=f"acc{i}", login=f"officine-{i}").go(S.RETRYING, "supplier_unavailable")
        p.clock.offset = timedelta(hours=25)
        await p.settled("ph1", 15)
        await asyncio.sleep(QUIET_S)
        assert len(p.inbox.mails) == 5
        assert p.hook and len(p.hook.calls) == 5
        await p.alive()  # both replicas' sweeps had the time to tell an alert twice
        assert len(p.inbox.mails) == 5 and len(p.hook.calls) == 5
    finally:
        await second.stop()


# --- supplier-wide incidents ----------------------------------------------------------------------


def _incident(event: type[IncidentDeclared] | type[IncidentResolved], affected: list[tuple[str, str]],
              incident_id: str = "inc-1") -> Event:
    return event(incident_id=incident_id, collector_id="ocp-classic", error_code=CollectionErrorCode.INTERFACE_CHANGED,
                 affected=[AffectedAccount(tenant_id=t, account_id=a) for t, a in affected])


async def _publish_incident(p: Platform, evt: Event, durable: str, *, copies: int = 1) -> None:
    subject = (Events.INCIDENT_DECLARED if isinstance(evt, IncidentDeclared) else Events.INCIDENT_RESOLVED).base
    for copy in range(copies):  # stored again under another Nats-Msg-Id: a redelivery
        await p.js.publish(subject, evt.model_dump_json().encode(), headers={"Nats-Msg-Id": f"{evt.msg_id()}:{copy}"})
    await p.consumed("scheduler", durable)


async def test_an_incident_is_told_once_per_affected_tenant_and_so_is_its_end(platform: Platform) -> None:
    p = platform
    await _prefs(p, "ph1", "compta@ph1.fr")
    await _prefs(p, "ph2", "compta@ph2.fr", language="en")
    accounts = [Account(p, "ph1", "a1", "officine-1"), Account(p, "ph1", "a2", "officine-2"),
                Account(p, "ph2", "b1", "12345")]
    for acc in accounts:
        await acc.go(S.RETRYING, "interface_changed")
    affected = [(a.tenant, a.account) for a in accounts]
    await _publish_incident(p, _incident(IncidentDeclared, affected), "notifier-incident-declared", copies=3)
    for acc in accounts:
        await acc.go(S.MAINTENANCE, "interface_changed")
    await p.settled("ph1", 3)
    await p.settled("ph2", 3)
    [fr] = p.inbox.to("compta@ph1.fr") if p.inbox else []
    assert fr.subject == "Incident fournisseur – OCP"
    assert "« officine-1 »" in fr.text and "« officine-2 »" in fr.text
    [en] = p.inbox.to("compta@ph2.fr") if p.inbox else []
    assert en.subject == "Supplier incident – OCP" and "“12345”" in en.text

    # days of maintenance: no 24 h alert, no reminder per account
    p.clock.offset = timedelta(days=8)
    await _quiet(p, "ph1", 3)

    await _publish_incident(p, _incident(IncidentResolved, affected), "notifier-incident-resolved", copies=2)
    for acc in accounts:
        await acc.go(S.COLLECTING)
        await acc.go(S.OK)
    notes = await p.settled("ph1", 6)
    await p.settled("ph2", 6)
    assert [n["kind"] for n in notes if n["channel"] == "email"] == ["incident_resolved", "incident_declared"]
    assert _subjects(p, "compta@ph1.fr")[-1] == "Incident fournisseur terminé – OCP"
    await _quiet(p, "ph1", 6)  # and no per-account recovery on top


async def test_an_incident_over_before_it_was_heard_of_is_not_told(platform: Platform) -> None:
    p = platform
    await _prefs(p, "ph1", "compta@ph1.fr")
    affected = [("ph1", "a1")]
    await _publish_incident(p, _incident(IncidentResolved, affected, "inc-2"), "notifier-incident-resolved")
    await _publish_incident(p, _incident(IncidentDeclared, affected, "inc-2"), "notifier-incident-declared")
    await _quiet(p, "ph1", 0)


# --- collector requests ---------------------------------------------------------------------------


async def _create(p: Platform, tenant: str, supplier: str, portal_url: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"tenant_id": tenant, "supplier": supplier}
    if portal_url:
        payload["portal_url"] = portal_url
    return await p.call(Api.REQUESTS_CREATE, payload)


async def test_a_rejection_reaches_every_requester_with_its_reason(platform: Platform) -> None:
    p = platform
    await _prefs(p, "ph1", "compta@ph1.fr")
    await _prefs(p, "ph2", "compta@ph2.fr", language="en")
    req = await _create(p, "ph1", "Laboratoires Gilbert")
    await _create(p, "ph2", "laboratoires gilbert")
    await p.call(Api.REQUESTS_SET_STATUS, {"request_id": req["id"], "status": "rejected",
                                           "reason": "Le portail ne met pas les factures en ligne."})
    await p.consumed("requests", "notifier-requests")
    for tenant in ("ph1", "ph2"):
        [note] = [n for n in await p.settled(tenant, 3) if n["channel"] == "email"]
        assert note["kind"] == "request_rejected" and note["request_id"] == req["id"]
        assert "Le portail ne met pas les factures en ligne." in note["body"]
    [fr] = p.inbox.to("compta@ph1.fr") if p.inbox else []
    assert fr.subject == "Demande de collecteur refusée – Laboratoires Gilbert"
    [en] = p.inbox.to("compta@ph2.fr") if p.inbox else []
    assert en.subject == "Collector request declined – Laboratoires Gilbert"


async def test_an_announced_collector_is_told_once_to_every_requester_with_how_to_activate_it(
        platform: Platform) -> None:
    p = platform
    for tenant in ("ph1", "ph2", "ph3"):
        await _prefs(p, tenant, f"compta@{tenant}.fr")
    req = await _create(p, "ph1", "Labo Gilbert")
    await _create(p, "ph2", "LABO-GILBERT", "https://pro.labo-gilbert.fr/")
    await _create(p, "ph3", "OCP")  # another request: hears nothing
    await p.call(Api.REQUESTS_SET_STATUS, {"request_id": req["id"], "status": "in_progress"})
    announced = CollectorAnnounced(collector_id="labo-gilbert", name="Gilbert — espace pro",
                                   supplier="Laboratoires Gilbert", portal_url="https://pro.labo-gilbert.fr/login",
                                   login_kind="email", frequency_hours=24, max_sessions=2, version="1", worker_id="w1")
    await publish_event(p.broker, Events.COLLECTOR_ANNOUNCED.base, announced)
    # every worker announces it, and the status event is stored once more: still one notice each
    await publish_event(p.broker, Events.COLLECTOR_ANNOUNCED.base, announced.model_copy(update={"worker_id": "w2"}))
    await p.consumed("scraper", "requests-catalog")
    [changed] = [m for m in await p.messages("requests", Events.REQUEST_STATUS_CHANGED.base)
                 if m["status"] == "available"]
    assert changed["collector_name"] == "Gilbert — espace pro" and changed["login_kind"] == "email"
    await p.js.publish(Events.REQUEST_STATUS_CHANGED.base, json.dumps(changed).encode(),
                       headers={"Nats-Msg-Id": "again"})
    await p.consumed("requests", "notifier-requests")

    for tenant in ("ph1", "ph2"):
        notes = await p.settled(tenant, 3)
        assert {n["kind"] for n in notes} == {"request_available"}
        [mail] = p.inbox.to(f"compta@{tenant}.fr") if p.inbox else []
        assert mail.subject == "Collecteur disponible – Labo Gilbert"
        assert ("choisissez le portail « Laboratoires Gilbert » puis le collecteur « Gilbert — espace pro », "
                "saisissez votre adresse e-mail et votre mot de passe") in mail.text
    await _quiet(p, "ph3", 0)
