"""The web service's HTTP API against a real platform: nats-server, accounts, scheduler and scraper
with the sandbox portal (Chromium: the scraper's pool starts one). A pharmacy activates an account
over HTTP, watches its `account` and `invoice` events arrive on /api/v1/events, and downloads a PDF
whose SHA-256 matches the file in the invoice bucket."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import nats
import pytest

from sandbox.data import documents_for
from sandbox.portal import SandboxPortal, start_portal
from services.accounts.app import build as build_accounts
from services.accounts.crypto import Keyring
from services.scheduler.app import build as build_scheduler
from services.scraper.app import build as build_scraper
from services.web.app import WebServer, create_app, nats_backend
from services.web.auth import SIGNING_KEY_FILE, ensure_signing_key
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings, WebSettings
from shared.subjects import INVOICE_BUCKET, Api
from tests.integration.helpers import eventually, services_running

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TENANT = "pharma-web"


@pytest.fixture
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal()
    yield p
    await p.close()


@pytest.fixture
async def web(nats_url: str, mongodb_url: str | None, db_prefix: str, keyring: Keyring, portal: SandboxPortal,
              tmp_path: Path) -> AsyncIterator[str]:
    common: dict[str, Any] = {"nats_url": nats_url, "mongodb_url": mongodb_url, "db_prefix": db_prefix}
    runtimes: list[ServiceRuntime] = [
        build_accounts(AccountsSettings(**common), keyring=keyring),
        build_scheduler(SchedulerSettings(**common)),
        build_scraper(ScraperSettings(**common, sandbox_url=portal.url, concurrency=2)),
    ]
    async with services_running(runtimes, nats_url) as client:
        async def catalog_ready() -> bool:
            reply = await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "x"})
            return any(c["id"] == "sandbox-classic" for c in reply["collectors"])

        await eventually(catalog_ready, what="the sandbox collector in the catalog")
        settings = WebSettings(nats_url=nats_url, data_dir=tmp_path, web_keepalive_s=1.0)
        server = WebServer(create_app(settings, nats_backend(settings)), "127.0.0.1", 0)
        await server.start()
        try:
            yield server.url
        finally:
            await server.stop()


def dev_token(data_dir: Path, tenant: str) -> str:
    """Signed with the development key the web service trusts, by PyJWT directly."""
    key, _ = ensure_signing_key(data_dir / SIGNING_KEY_FILE)
    now = datetime.now(UTC)
    return jwt.encode({"sub": "it", "role": "pharmacy", "tenant": tenant, "iss": "collectors-dev",
                       "aud": "collectors-web", "exp": now + timedelta(minutes=10)}, key, algorithm="EdDSA")


async def read_events(http: httpx.AsyncClient, headers: dict[str, str], into: list[tuple[str, Any]],
                      connected: asyncio.Event) -> None:
    async with http.stream("GET", "/api/v1/events", headers=headers) as reply:
        assert reply.status_code == 200
        event = ""
        async for line in reply.aiter_lines():
            if line == ": connected":
                connected.set()
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                into.append((event, json.loads(line[6:])))
                event = ""


async def test_activate_over_http_watch_events_download_a_pdf(web: str, nats_url: str, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {dev_token(tmp_path, TENANT)}"}
    events: list[tuple[str, Any]] = []
    connected = asyncio.Event()
    async with httpx.AsyncClient(base_url=web, timeout=30) as http:
        listening = asyncio.create_task(read_events(http, headers, events, connected))
        try:
            await asyncio.wait_for(connected.wait(), 10)
            created = await http.post("/api/v1/accounts", headers=headers, json={
                "collector_id": "sandbox-classic", "login": "officine-web", "password": "demo"})
            assert created.status_code == 201, created.text
            account = created.json()
            assert account["tenant_id"] == TENANT and "password" not in created.text
            expected = documents_for("officine-web", date.today())

            async def collected() -> bool:
                ok = any(e == "account" and d["id"] == account["id"] and d["status"] == "ok" for e, d in events)
                return ok and len([1 for e, _ in events if e == "invoice"]) >= len(expected)

            await eventually(collected, timeout=120, what="account ok and every invoice on /api/v1/events")
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening

        invoice_events = [d for e, d in events if e == "invoice"]
        assert {d["number"] for d in invoice_events} == {d.number for d in expected}
        assert {d["account_id"] for d in invoice_events} == {account["id"]}

        listing = await http.get("/api/v1/invoices", headers=headers, params={"account_id": account["id"]})
        first = listing.json()["invoices"][0]
        pdf = await http.get(f"/api/v1/invoices/{first['id']}/pdf", headers=headers)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"].startswith("attachment;")
        assert pdf.content.startswith(b"%PDF")

        # Another pharmacy's token reaches neither the account nor the file.
        other = {"Authorization": f"Bearer {dev_token(tmp_path, 'pharma-other')}"}
        assert (await http.get(f"/api/v1/accounts/{account['id']}", headers=other)).status_code == 404
        assert (await http.get(f"/api/v1/invoices/{first['id']}/pdf", headers=other)).status_code == 404

    # The same bytes as the file in the bucket, read there directly.
    nc = await nats.connect(nats_url)
    try:
        stored = await (await nc.jetstream().object_store(INVOICE_BUCKET)).get(first["object_key"])
    finally:
        await nc.close()
    assert stored.data is not None
    assert hashlib.sha256(pdf.content).hexdigest() == hashlib.sha256(stored.data).hexdigest() == first["sha256"]
