"""The accounts service's rules against a real nats-server (issue "Accounts and credentials")."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from pydantic import BaseModel

from services.accounts.app import build
from services.accounts.crypto import new_key_entry
from services.accounts.repository import AccountRepository
from shared.client import ApiClient
from shared.errors import RemoteApiError
from shared.events import CollectionFailed, CollectionStarted, CollectionSucceeded, CollectorAnnounced, utcnow
from shared.outbox import OutboxRelay
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings
from shared.subjects import STREAMS, Api, Events
from tests.integration.helpers import eventually
from tests.standin import StandIn

COLLECTORS = [
    CollectorAnnounced(collector_id="sandbox-classic", name="Sandbox", supplier="Sandbox", login_kind="identifier",
                       portal_url="http://127.0.0.1:8765/classic/", frequency_hours=24, max_sessions=4, version="1"),
    CollectorAnnounced(collector_id="labo-mail", name="Labo", supplier="Labo", login_kind="email",
                       portal_url="https://labo.example/", frequency_hours=24, max_sessions=4, version="1"),
]


async def publish(nc: Client, subject: str, evt: BaseModel) -> None:
    await nc.jetstream().publish(subject, evt.model_dump_json().encode(),
                                 headers={"Nats-Msg-Id": evt.msg_id()})  # type: ignore[attr-defined]


class Accounts:
    """One accounts service (restartable) and a client, for a test."""

    def __init__(self, nats_url: str, settings: AccountsSettings) -> None:
        self.nats_url = nats_url
        self.settings = settings
        self.rt: ServiceRuntime | None = None
        self.client: ApiClient
        self.nc: Client

    async def start(self) -> None:
        self.rt = build(self.settings)
        await self.rt.start()

    async def stop(self) -> None:
        if self.rt is not None:
            await self.rt.stop()
            self.rt = None

    async def call(self, subject: str, **payload: Any) -> dict[str, Any]:
        return await self.client.call(subject, payload)

    async def create(self, tenant: str, login: str, password: str = "demo", collector: str = "sandbox-classic",
                     **extra: Any) -> dict[str, Any]:
        return await self.call(Api.ACCOUNTS_CREATE, tenant_id=tenant, collector_id=collector, login=login,
                               password=password, **extra)

    async def refusal(self, subject: str, **payload: Any) -> RemoteApiError:
        with pytest.raises(RemoteApiError) as err:
            await self.client.call(subject, payload)
        return err.value

    async def stream_messages(self, subject_filter: str) -> list[dict[str, Any]]:
        js = self.nc.jetstream()
        sub = await js.pull_subscribe(subject_filter, stream="COLLECTORS_ACCOUNTS")
        out: list[dict[str, Any]] = []
        try:
            while True:
                msgs = await sub.fetch(100, timeout=0.5)
                out += [json.loads(m.data) for m in msgs]
        except (nats.errors.TimeoutError, TimeoutError):
            pass
        finally:
            await sub.unsubscribe()
        return out


@pytest.fixture
async def accounts(nats_url: str, mongodb_url: str | None, db_prefix: str, tmp_path: Path) -> AsyncIterator[Accounts]:
    keys = tmp_path / "keys"
    keys.write_text(new_key_entry("k1") + "\n")
    svc = Accounts(nats_url, AccountsSettings(nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix,
                                              credential_keys_file=keys))
    await svc.start()
    svc.client = await ApiClient.connect(nats_url)
    svc.nc = await nats.connect(nats_url)
    for evt in COLLECTORS:
        await publish(svc.nc, Events.COLLECTOR_ANNOUNCED.base, evt)

    async def catalog_ready() -> bool:
        reply = await svc.call(Api.ACCOUNTS_CATALOG, tenant_id="t")
        return len(reply["collectors"]) == 2

    await eventually(catalog_ready, what="the catalog projection")
    yield svc
    await svc.client.close()
    await svc.nc.close()
    await svc.stop()


async def test_logins_must_fit_the_collector(accounts: Accounts) -> None:
    err = await accounts.refusal(Api.ACCOUNTS_CREATE, tenant_id="p1", collector_id="labo-mail", login="compta",
                                 password="x")
    assert (err.remote_code, err.field) == ("validation_error", "login")
    assert "adresse e-mail" in err.message
    en = await accounts.refusal(Api.ACCOUNTS_CREATE, tenant_id="p1", collector_id="labo-mail", login="compta",
                                password="x", lang="en")
    assert "email address" in en.message
    ok = await accounts.create("p1", "compta@pharmacie.fr", collector="labo-mail")
    assert ok["login"] == "compta@pharmacie.fr"
    for password in ("", "   ", "x" * 300):
        err = await accounts.refusal(Api.ACCOUNTS_CREATE, tenant_id="p1", collector_id="sandbox-classic",
                                     login="other", password=password)
        assert err.field == "password"
    err = await accounts.refusal(Api.ACCOUNTS_CREATE, tenant_id="p1", collector_id="ghost", login="a", password="x")
    assert err.remote_code == "unknown_collector"


async def test_two_racing_creates_cannot_make_a_third_account(accounts: Accounts, standin: StandIn) -> None:
    # Nothing slows the creates down: the stand-in suspends on every operation (with jitter here), as
    # a driver does, so they interleave by themselves; a round counts once two creates read the used
    # slots before either inserted (only the unique index can then refuse the second).
    async def eight_creates_for_two_slots(round_: int) -> None:
        tenant = f"race-{round_}"
        results = await asyncio.gather(*(accounts.create(tenant, f"login-{i}") for i in range(8)),
                                       return_exceptions=True)
        created = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, RemoteApiError)]
        assert len(created) == 2 and {c["slot"] for c in created} == {1, 2}
        assert len(refused) == 6 and {r.remote_code for r in refused} == {"too_many_accounts"}
        assert "deux comptes" in refused[0].message
        listed = await accounts.call(Api.ACCOUNTS_LIST, tenant_id=tenant)
        assert len(listed["accounts"]) == 2

    await standin.race(eight_creates_for_two_slots, "accounts", enter=("find",), leave=("insert_one",))


async def test_the_same_login_twice_is_one_account(accounts: Accounts, standin: StandIn) -> None:
    # A round counts once two creates of the same login both found it free before either inserted
    # (the duplicate-login race): only the unique index on the login can refuse the second.
    async def five_creates_of_one_login(round_: int) -> None:
        tenant = f"dup-{round_}"
        results = await asyncio.gather(*(accounts.create(tenant, "Same-Login") for _ in range(4)),
                                       accounts.create(tenant, "same-login "), return_exceptions=True)
        created = [r for r in results if isinstance(r, dict)]
        assert len(created) == 1
        assert {r.remote_code for r in results if isinstance(r, RemoteApiError)} == {"duplicate_account"}
        # The slot left is still usable by another login.
        assert (await accounts.create(tenant, "another"))["slot"] == 2

    await standin.race(five_creates_of_one_login, "accounts", enter=("find_one",), leave=("insert_one",))


async def test_tenants_never_see_each_other(accounts: Accounts) -> None:
    mine = await accounts.create("tenant-a", "shared-login")
    ref = {"tenant_id": "tenant-b", "account_id": mine["id"]}
    for subject, extra in [(Api.ACCOUNTS_GET, {}), (Api.ACCOUNTS_RETRY, {}), (Api.ACCOUNTS_DELETE, {}),
                           (Api.ACCOUNTS_UPDATE_CREDENTIALS, {"password": "stolen"})]:
        err = await accounts.refusal(subject, **ref, **extra)
        assert err.remote_code == "not_found", subject
    assert (await accounts.call(Api.ACCOUNTS_LIST, tenant_id="tenant-b"))["accounts"] == []
    # The same login on another tenant is a different account, and A's is untouched.
    theirs = await accounts.create("tenant-b", "shared-login")
    assert theirs["id"] != mine["id"]
    still = await accounts.call(Api.ACCOUNTS_GET, tenant_id="tenant-a", account_id=mine["id"])
    assert still["status"] == "pending"
    revealed = await accounts.call(Api.ACCOUNTS_REVEAL_CREDENTIALS, tenant_id="tenant-a", account_id=mine["id"],
                                   credential_version=1)
    assert revealed["password"] == "demo"


async def _status(accounts: Accounts, tenant: str, account_id: str) -> dict[str, Any]:
    return await accounts.call(Api.ACCOUNTS_GET, tenant_id=tenant, account_id=account_id)


async def test_statuses_follow_results_and_are_never_stale(accounts: Accounts) -> None:
    acc = await accounts.create("p2", "officine")
    t0 = utcnow()
    common = {"tenant_id": "p2", "account_id": acc["id"], "collector_id": "sandbox-classic",
              "credential_version": 1}
    await publish(accounts.nc, Events.COLLECTION_FAILED.for_tenant("p2"), CollectionFailed(
        **common, job_id="j1", started_at=t0, error_code="login_failed"))
    failed = await eventually(lambda: _if(_status(accounts, "p2", acc["id"]), "action_required"))
    assert failed["error_code"] == "login_failed" and "Modifier" in failed["message"]

    updated = await accounts.call(Api.ACCOUNTS_UPDATE_CREDENTIALS, tenant_id="p2", account_id=acc["id"],
                                  password="new-secret")
    assert (updated["status"], updated["error_code"]) == ("pending", None)
    # A late success for the OLD credentials changes nothing.
    await publish(accounts.nc, Events.COLLECTION_SUCCEEDED.for_tenant("p2"), CollectionSucceeded(
        **common, job_id="j2", started_at=t0 + timedelta(seconds=1), total_invoices=5))
    # The result for the new credentials does; an older attempt's result after it does not.
    new = {**common, "credential_version": 2}
    await publish(accounts.nc, Events.COLLECTION_SUCCEEDED.for_tenant("p2"), CollectionSucceeded(
        **new, job_id="j3", started_at=t0 + timedelta(seconds=3), total_invoices=12))
    ok = await eventually(lambda: _if(_status(accounts, "p2", acc["id"]), "ok"))
    assert ok["invoice_count"] == 12 and ok["last_success_at"]
    await publish(accounts.nc, Events.COLLECTION_FAILED.for_tenant("p2"), CollectionFailed(
        **new, job_id="j4", started_at=t0 + timedelta(seconds=2), error_code="supplier_unavailable"))
    await publish(accounts.nc, Events.COLLECTION_STARTED.for_tenant("p2"), CollectionStarted(
        **new, job_id="j3", started_at=t0 + timedelta(seconds=3)))
    await asyncio.sleep(1.0)
    final = await _status(accounts, "p2", acc["id"])
    assert (final["status"], final["invoice_count"]) == ("ok", 12)
    # Positive control: both consumers were there to apply them, and apply what is newer.
    await publish(accounts.nc, Events.COLLECTION_FAILED.for_tenant("p2"), CollectionFailed(
        **new, job_id="j5", started_at=t0 + timedelta(seconds=4), error_code="supplier_unavailable"))
    await eventually(lambda: _if(_status(accounts, "p2", acc["id"]), "retrying"), what="a newer failure applied")
    await publish(accounts.nc, Events.COLLECTION_STARTED.for_tenant("p2"), CollectionStarted(
        **new, job_id="j6", started_at=t0 + timedelta(seconds=5)))
    await eventually(lambda: _if(_status(accounts, "p2", acc["id"]), "collecting"), what="a newer start applied")

    # The old password is gone: only the new version can be revealed.
    err = await accounts.refusal(Api.ACCOUNTS_REVEAL_CREDENTIALS, tenant_id="p2", account_id=acc["id"],
                                 credential_version=1)
    assert err.remote_code == "conflict"
    revealed = await accounts.call(Api.ACCOUNTS_REVEAL_CREDENTIALS, tenant_id="p2", account_id=acc["id"],
                                   credential_version=2)
    assert revealed["password"] == "new-secret"
    kinds = [m.get("credential_version") for m in await accounts.stream_messages(
        Events.ACCOUNT_CREDENTIALS_UPDATED.pattern)]
    assert kinds == [2]


async def _consumed(nc: Client, durable: str, published: int) -> bool:
    """The accounts service's ``durable`` consumer has acked every message up to stream seq ``published``."""
    info = await nc.jetstream().consumer_info(str(STREAMS["scraper"].name), durable)
    return bool(info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= published)


async def test_a_start_racing_its_own_result_never_leaves_the_account_collecting(accounts: Accounts,
                                                                                 standin: StandIn) -> None:
    # The start and the result of one run reach the service through two consumers at once (seen in the
    # chaos suite, seed 606: the result landed between the start's read and its write, and the account
    # stayed `collecting` after a successful run). Each round sends both for twelve accounts at once and
    # waits until both consumers acked them; the race needs a start to read an account the result had
    # read and not yet written, or the other way round.
    async def start_and_result_together(round_: int) -> None:
        created = [await accounts.create(f"sr-{round_}-{i}", "officine") for i in range(12)]
        started_at = utcnow()
        sends = []
        for i, acc in enumerate(created):
            common = {"tenant_id": f"sr-{round_}-{i}", "account_id": acc["id"], "collector_id": "sandbox-classic",
                      "credential_version": 1, "job_id": f"{acc['id']}:1", "started_at": started_at}
            sends.append(accounts.nc.jetstream().publish(
                Events.COLLECTION_SUCCEEDED.for_tenant(common["tenant_id"]),
                CollectionSucceeded(**common, total_invoices=7).model_dump_json().encode()))
            sends.append(accounts.nc.jetstream().publish(
                Events.COLLECTION_STARTED.for_tenant(common["tenant_id"]),
                CollectionStarted(**common).model_dump_json().encode()))
        acks = await asyncio.gather(*sends)  # results at even places, starts at odd ones
        for durable, last in (("accounts-succeeded", max(a.seq for a in acks[0::2])),
                              ("accounts-started", max(a.seq for a in acks[1::2]))):
            await eventually(functools.partial(_consumed, accounts.nc, durable, last), what=f"{durable} caught up")
        for i, acc in enumerate(created):
            view = await _status(accounts, f"sr-{round_}-{i}", acc["id"])
            assert (view["status"], view["invoice_count"]) == ("ok", 7), (round_, i, view)

    # Three rounds of twelve whatever happens (one bad interleaving in seven pairs, measured with the
    # write's guard removed), and at least one of them interleaved as the race needs.
    overlaps = 0
    for round_ in range(3):
        standin.trace.ops.clear()
        await start_and_result_together(round_)
        overlaps += standin.assert_overlap("accounts", ("find_one",), ("find_one_and_update",), at_least=0)
    assert overlaps or not standin.on, "the start and the result never interleaved"


async def _if(coro: Any, status: str) -> dict[str, Any] | None:
    doc: dict[str, Any] = await coro
    return doc if doc["status"] == status else None


async def test_retry_and_delete_emit_their_events_once(accounts: Accounts) -> None:
    acc = await accounts.create("p3", "officine")
    await accounts.call(Api.ACCOUNTS_RETRY, tenant_id="p3", account_id=acc["id"])
    deleted = await accounts.call(Api.ACCOUNTS_DELETE, tenant_id="p3", account_id=acc["id"])
    assert deleted["status"] == "deleted"
    err = await accounts.refusal(Api.ACCOUNTS_DELETE, tenant_id="p3", account_id=acc["id"])
    assert err.remote_code == "not_found"
    err = await accounts.refusal(Api.ACCOUNTS_RETRY, tenant_id="p3", account_id=acc["id"])
    assert err.remote_code == "not_found"
    assert len(await accounts.stream_messages(Events.ACCOUNT_RETRY_REQUESTED.pattern)) == 1
    assert len(await accounts.stream_messages(Events.ACCOUNT_DELETED.pattern)) == 1
    # A result arriving after deletion cannot revive it.
    await publish(accounts.nc, Events.COLLECTION_SUCCEEDED.for_tenant("p3"), CollectionSucceeded(
        tenant_id="p3", account_id=acc["id"], collector_id="sandbox-classic", credential_version=1,
        job_id="late", started_at=utcnow(), total_invoices=3))
    await asyncio.sleep(0.5)
    assert (await accounts.call(Api.ACCOUNTS_LIST, tenant_id="p3"))["accounts"] == []
    # Positive control: the results consumer was there to apply it, and applies one to a live account.
    other = await accounts.create("p3", "officine-2")
    await publish(accounts.nc, Events.COLLECTION_SUCCEEDED.for_tenant("p3"), CollectionSucceeded(
        tenant_id="p3", account_id=other["id"], collector_id="sandbox-classic", credential_version=1,
        job_id="control", started_at=utcnow(), total_invoices=3))
    await eventually(lambda: _if(_status(accounts, "p3", other["id"]), "ok"), what="the control's result applied")
    assert [a["id"] for a in (await accounts.call(Api.ACCOUNTS_LIST, tenant_id="p3"))["accounts"]] == [other["id"]]


async def test_rotation_reencrypts_everything_so_the_old_key_can_go(accounts: Accounts) -> None:
    ids = [(await accounts.create("p4", f"login-{i}", password=f"pw-{i}"))["id"] for i in range(2)]
    ids.append((await accounts.create("p5", "login-x", password="pw-x"))["id"])
    keys_file = accounts.settings.credential_keys_file
    assert keys_file is not None
    old = keys_file.read_text().strip()
    keys_file.write_text(new_key_entry("k2") + "\n" + old + "\n")
    first = await accounts.call(Api.ACCOUNTS_ROTATE_KEYS)
    assert (first["key_id"], first["rotated"], first["failed"], first["key_ids"]) == ("k2", 3, 0, ["k2", "k1"])

    keys_file.write_text(keys_file.read_text().replace(old, ""))  # retire k1
    again = await accounts.call(Api.ACCOUNTS_ROTATE_KEYS)
    assert (again["rotated"], again["already_current"], again["key_ids"]) == (0, 3, ["k2"])
    # Everything still decrypts without k1, after a restart too.
    await accounts.stop()
    await accounts.start()
    for tenant, account_id, password in [("p4", ids[0], "pw-0"), ("p4", ids[1], "pw-1"), ("p5", ids[2], "pw-x")]:
        revealed = await accounts.call(Api.ACCOUNTS_REVEAL_CREDENTIALS, tenant_id=tenant, account_id=account_id,
                                       credential_version=1)
        assert revealed["password"] == password


async def test_an_event_survives_a_crash_between_write_and_publish(accounts: Accounts,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async def nats_unreachable(self: OutboxRelay, entries: list[dict[str, Any]]) -> None:
        raise ConnectionError("injected: the process dies before publishing")

    with monkeypatch.context() as patch:
        patch.setattr(OutboxRelay, "_publish", nats_unreachable)
        acc = await accounts.create("p6", "officine")  # the write is done and acknowledged
        await accounts.stop()  # ... and the service dies before anything was published
    assert await accounts.stream_messages(Events.ACCOUNT_CREATED.for_tenant("p6")) == []

    await accounts.start()  # restart: the outbox sweep publishes what was left

    async def published() -> list[dict[str, Any]]:
        return await accounts.stream_messages(Events.ACCOUNT_CREATED.for_tenant("p6"))

    msgs = await eventually(published, timeout=15, what="the AccountCreated event after restart")
    assert [m["account_id"] for m in msgs] == [acc["id"]]


async def test_a_crash_after_publishing_does_not_duplicate_the_event(accounts: Accounts,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    real_flush = OutboxRelay.flush
    calls = 0

    async def dies_after_publish(self: OutboxRelay, doc_filter: dict[str, Any]) -> int:
        # Publish every pending entry but never pull them from the outbox, as if killed in between.
        nonlocal calls
        calls += 1
        async for doc in self.collection.find({**doc_filter, "outbox.0": {"$exists": True}}):
            await self._publish(doc["outbox"])
        return 0

    with monkeypatch.context() as patch:
        patch.setattr(OutboxRelay, "flush", dies_after_publish)
        acc = await accounts.create("p7", "officine")
        await accounts.stop()
    assert calls >= 1
    assert OutboxRelay.flush is real_flush
    await accounts.start()
    await asyncio.sleep(3)  # at least one sweep republishes the same entry
    msgs = await accounts.stream_messages(Events.ACCOUNT_CREATED.for_tenant("p7"))
    assert [m["account_id"] for m in msgs] == [acc["id"]]  # JetStream dropped the copy by its Nats-Msg-Id


async def test_a_login_taken_while_updating_is_a_duplicate_not_a_crash(accounts: Accounts,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first = await accounts.create("p8", "login-a")
    await accounts.create("p8", "login-b")

    async def missed_the_other(self: AccountRepository, tenant_id: str, collector_id: str, key: str) -> None:
        return None  # as if the other account had taken the login after the check

    monkeypatch.setattr(AccountRepository, "find_login", missed_the_other)
    err = await accounts.refusal(Api.ACCOUNTS_UPDATE_CREDENTIALS, tenant_id="p8", account_id=first["id"],
                                 login="LOGIN-B", password="new")
    assert (err.remote_code, err.field) == ("duplicate_account", "login")
    still = await accounts.call(Api.ACCOUNTS_GET, tenant_id="p8", account_id=first["id"])
    assert still["login"] == "login-a"
