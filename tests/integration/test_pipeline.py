"""The happy path and the wrong password through accounts, scheduler and scraper, for real:
nats-server, JetStream, the sandbox portal and Debian's Chromium."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import nats
import pytest

from sandbox.data import documents_for
from sandbox.portal import SandboxPortal, start_portal
from services.accounts.app import build as build_accounts
from services.accounts.crypto import Keyring
from services.scheduler.app import build as build_scheduler
from services.scraper.app import build as build_scraper
from services.scraper.browsers import BrowserPool
from shared.client import ApiClient
from shared.errors import RemoteApiError
from shared.mongo import make_mongo_client
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings
from shared.subjects import INVOICE_BUCKET, Api, collect_job
from tests.integration.helpers import eventually, services_running

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal()
    yield p
    await p.close()


# Jobs start without a browser (production's default), or open their context first and read the
# portal through it (ScraperSettings.browserless_start off): both collect the same.
@pytest.fixture
def contexts_opened(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per browser context the scraper's pool opens."""
    opened: list[int] = []
    original = BrowserPool.context

    def counting(self: BrowserPool, **kwargs: Any) -> Any:
        opened.append(1)
        return original(self, **kwargs)

    monkeypatch.setattr(BrowserPool, "context", counting)
    return opened


@pytest.fixture(params=[True, False], ids=["browserless-start", "context-first"])
async def platform(request: pytest.FixtureRequest, nats_url: str, mongodb_url: str | None, db_prefix: str,
                   keyring: Keyring, portal: SandboxPortal, contexts_opened: list[int]) -> AsyncIterator[ApiClient]:
    common: dict[str, Any] = {"nats_url": nats_url, "mongodb_url": mongodb_url, "db_prefix": db_prefix}
    runtimes: list[ServiceRuntime] = [
        build_accounts(AccountsSettings(**common), keyring=keyring),
        build_scheduler(SchedulerSettings(**common)),
        build_scraper(ScraperSettings(**common, sandbox_url=portal.url, concurrency=2,
                                      browserless_start=request.param)),
    ]
    async with services_running(runtimes, nats_url) as client:

        async def catalog_ready() -> bool:
            reply = await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "x"})
            return any(c["id"] == "sandbox-classic" for c in reply["collectors"])

        await eventually(catalog_ready, what="the sandbox collector in the catalog")
        yield client


async def _account(client: ApiClient, tenant: str, account_id: str) -> dict[str, Any]:
    return await client.call(Api.ACCOUNTS_GET, {"tenant_id": tenant, "account_id": account_id})


async def _settled(client: ApiClient, tenant: str, account_id: str) -> dict[str, Any] | None:
    acc = await _account(client, tenant, account_id)
    return acc if acc["status"] in ("ok", "action_required", "retrying") else None


async def test_activation_collects_every_invoice(platform: ApiClient, contexts_opened: list[int],
                                                 request: pytest.FixtureRequest) -> None:
    created = await platform.call(Api.ACCOUNTS_CREATE, {
        "tenant_id": "pharma1", "collector_id": "sandbox-classic", "login": "officine-42", "password": "demo"})
    assert created["status"] == "pending" and created["slot"] == 1
    assert "password" not in json.dumps(created)

    acc = await eventually(lambda: _settled(platform, "pharma1", created["id"]), what="first collection")
    expected = documents_for("officine-42", date.today())
    assert acc["status"] == "ok" and acc["error_code"] is None
    assert acc["invoice_count"] == len(expected)
    assert acc["last_success_at"] and acc["last_attempt_at"]

    listing = await platform.call(Api.SCRAPER_INVOICES_LIST, {"tenant_id": "pharma1"})
    got = {(i["number"], i["kind"], i["amount"]) for i in listing["invoices"]}
    assert got == {(d.number, d.kind, str(d.amount)) for d in expected}
    assert {"invoice", "credit_note"} >= {i["kind"] for i in listing["invoices"]}

    # The PDF is in the object store under the key the ledger gives, and its hash matches.
    first = listing["invoices"][0]
    nc = await nats.connect(platform.nc.connected_url.geturl())  # type: ignore[union-attr]
    try:
        obj = await (await nc.jetstream().object_store(INVOICE_BUCKET)).get(first["object_key"])
    finally:
        await nc.close()
    assert obj.data is not None and obj.data.startswith(b"%PDF")
    assert hashlib.sha256(obj.data).hexdigest() == first["sha256"]

    # Other tenants see nothing of it.
    other = await platform.call(Api.SCRAPER_INVOICES_LIST, {"tenant_id": "pharma2"})
    assert other["invoices"] == []
    with pytest.raises(RemoteApiError) as err:
        await _account(platform, "pharma2", created["id"])
    assert err.value.remote_code == "not_found"
    # A portal read over HTTP never opened a browser context, unless jobs are told to open it first.
    browserless = request.node.callspec.params["platform"]
    assert (len(contexts_opened) == 0) if browserless else (len(contexts_opened) >= 1), contexts_opened


async def test_wrong_password_asks_the_pharmacist_to_act(platform: ApiClient) -> None:
    created = await platform.call(Api.ACCOUNTS_CREATE, {
        "tenant_id": "pharma1", "collector_id": "sandbox-classic", "login": "officine-7", "password": "nope"})
    acc = await eventually(lambda: _settled(platform, "pharma1", created["id"]), what="failed collection")
    assert acc["status"] == "action_required"
    assert acc["error_code"] == "login_failed"
    assert "mot de passe" in acc["message"] and "Modifier" in acc["message"]
    en = await platform.call(Api.ACCOUNTS_GET, {"tenant_id": "pharma1", "account_id": created["id"],
                                                "lang": "en"})
    assert "password" in en["message"]

    # Correct credentials: the collection runs at once and the account recovers.
    updated = await platform.call(Api.ACCOUNTS_UPDATE_CREDENTIALS, {
        "tenant_id": "pharma1", "account_id": created["id"], "password": "demo"})
    assert updated["status"] == "pending" and updated["error_code"] is None

    async def recovered() -> dict[str, Any] | None:
        a = await _account(platform, "pharma1", created["id"])
        return a if a["status"] == "ok" else None

    acc = await eventually(recovered, what="recovery after the credentials update")
    assert acc["invoice_count"] == len(documents_for("officine-7", date.today()))


async def test_api_refusals_are_structured(platform: ApiClient) -> None:
    base = {"tenant_id": "pharma3", "collector_id": "sandbox-classic", "password": "demo"}
    with pytest.raises(RemoteApiError) as err:
        await platform.call(Api.ACCOUNTS_CREATE, {**base, "collector_id": "nope", "login": "a"})
    assert err.value.remote_code == "unknown_collector" and err.value.field == "collector_id"

    await platform.call(Api.ACCOUNTS_CREATE, {**base, "login": "a"})
    with pytest.raises(RemoteApiError) as err:
        await platform.call(Api.ACCOUNTS_CREATE, {**base, "login": "A "})
    assert err.value.remote_code == "duplicate_account"
    await platform.call(Api.ACCOUNTS_CREATE, {**base, "login": "b"})
    with pytest.raises(RemoteApiError) as err:
        await platform.call(Api.ACCOUNTS_CREATE, {**base, "login": "c", "lang": "en"})
    assert err.value.remote_code == "too_many_accounts"
    assert "two accounts" in err.value.message

    for payload in (b"not json", b"[1,2]", b'{"tenant_id": "x"}', b'{"tenant_id": "a.b", "account_id": "x"}'):
        msg = await platform.nc.request(Api.ACCOUNTS_GET, payload, timeout=5)
        reply = json.loads(msg.data)
        assert reply["error"]["code"] == "validation_error", payload


async def test_delete_is_final_and_stale_jobs_are_dropped(platform: ApiClient) -> None:
    created = await platform.call(Api.ACCOUNTS_CREATE, {
        "tenant_id": "pharma4", "collector_id": "sandbox-classic", "login": "gone", "password": "demo"})
    await eventually(lambda: _settled(platform, "pharma4", created["id"]), what="first collection")
    deleted = await platform.call(Api.ACCOUNTS_DELETE, {"tenant_id": "pharma4", "account_id": created["id"]})
    assert deleted["status"] == "deleted"
    with pytest.raises(RemoteApiError) as err:
        await _account(platform, "pharma4", created["id"])
    assert err.value.remote_code == "not_found"
    listing = await platform.call(Api.ACCOUNTS_LIST, {"tenant_id": "pharma4"})
    assert listing["accounts"] == []
    # The credentials are gone: nothing can reveal them any more.
    with pytest.raises(RemoteApiError) as err:
        await platform.call(Api.ACCOUNTS_REVEAL_CREDENTIALS, {
            "tenant_id": "pharma4", "account_id": created["id"], "credential_version": 1})
    assert err.value.remote_code == "not_found"
    # The same login can be added again: a new account, not the old one revived.
    again = await platform.call(Api.ACCOUNTS_CREATE, {
        "tenant_id": "pharma4", "collector_id": "sandbox-classic", "login": "gone", "password": "demo"})
    assert again["id"] != created["id"] and again["slot"] == 1


async def test_poison_jobs_are_kept_aside_not_retried(platform: ApiClient, nats_url: str,
                                                      mongodb_url: str | None, db_prefix: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.publish(collect_job("sandbox-classic"), b"{not a job", headers={"Nats-Msg-Id": "poison-1"})

        async def consumer_idle() -> bool:
            info = await js.consumer_info("COLLECTORS_JOBS", "scraper-collect")
            return info.num_pending == 0 and info.num_ack_pending == 0 and info.num_redelivered == 0

        await eventually(consumer_idle, what="the poison job to be terminated")

        async def stream_empty() -> bool:
            # The work queue drops a terminated message just after the consumer counts it acked
            # (CI once read the stream in between: 1 message).
            return (await js.stream_info("COLLECTORS_JOBS")).state.messages == 0

        await eventually(stream_empty, timeout=5, what="the work queue to drop it: terminated, not left to retry")
        kept = await make_mongo_client(mongodb_url)[f"{db_prefix}_scraper"]["dead_letters"].find({}).to_list()
        assert [bytes(d["payload"]) for d in kept] == [b"{not a job"]  # kept byte for byte (shared.dead_letters)
    finally:
        await nc.close()
