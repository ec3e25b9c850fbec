"""/api/v1/events: the tenant's NATS events as SSE, served by uvicorn on a free port with the fake
NATS API (no nats-server, no browser): subscriptions per connection, removed when the client goes;
a client that does not keep up is dropped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.web.app import WebServer, create_app
from services.web.auth import Verifier
from services.web.events import DROPPED, Stream
from shared.subjects import Api
from tests.unit.web import samples
from tests.unit.web.fakes import AUDIENCE, ISSUER, KEY, FakeBackend, bearer, settings, token

TENANT_SUBJECTS = {"collectors.evt.accounts.*.pharma-1", "collectors.evt.scraper.invoice_collected.pharma-1",
                   "collectors.evt.notifier.notification_sent.pharma-1", "collectors.evt.requests.status_changed"}


async def publish(backend: FakeBackend, subject: str, pattern: str, payload: dict[str, Any]) -> None:
    for handler in list(backend.subscriptions.get(pattern, [])):
        await handler(subject, json.dumps(payload).encode())


async def frames(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """(event, data) of each frame; comments as ("comment", text)."""
    event, data = "", ""
    async for line in lines:
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and event:
            yield event, data
            event, data = "", ""


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_the_tenants_events_arrive_and_subscriptions_end_with_the_client(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.replies[Api.ACCOUNTS_GET] = {**samples.account(), "status": "ok", "message": "Collecte réussie"}

    async def factory() -> FakeBackend:
        return backend

    app = create_app(settings(tmp_path, web_keepalive_s=0.2), factory,
                     verifier=Verifier(public_key=KEY.public_key(), issuer=ISSUER, audience=AUDIENCE))
    server = WebServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as http, \
                http.stream("GET", "/api/v1/events", headers=bearer(token("pharma-1"))) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            assert reply.headers["content-security-policy"].startswith("default-src 'self'")
            seen = frames(reply.aiter_lines())
            assert await anext(seen) == ("comment", "connected")
            assert set(backend.subscriptions) == TENANT_SUBJECTS

            await publish(backend, "collectors.evt.accounts.status_changed.pharma-1",
                          "collectors.evt.accounts.*.pharma-1",
                          {"tenant_id": "pharma-1", "account_id": "acc-1", "collector_id": "c", "status": "ok"})
            event, data = await anext(seen)
            assert event == "account" and json.loads(data)["message"] == "Collecte réussie"
            assert backend.calls[-1] == (Api.ACCOUNTS_GET, {"tenant_id": "pharma-1", "lang": "fr",
                                                           "account_id": "acc-1"})

            # Requests' events name no tenant: another pharmacy's request is not shown...
            changed = {"request_id": "req-9", "supplier": "S", "status": "available", "previous_status": "submitted",
                       "votes": 2, "collector_id": "sandbox-classic"}
            await publish(backend, "collectors.evt.requests.status_changed", "collectors.evt.requests.status_changed",
                          {**changed, "requesters": ["pharma-2"]})
            # ...this one's is, without the other requesters.
            await publish(backend, "collectors.evt.requests.status_changed", "collectors.evt.requests.status_changed",
                          {**changed, "requesters": ["pharma-2", "pharma-1"]})
            event, data = await anext(seen)
            assert event == "request" and json.loads(data)["id"] == "req-9"
            assert "requesters" not in json.loads(data) and "pharma-2" not in data

            await publish(backend, "collectors.evt.scraper.invoice_collected.pharma-1",
                          "collectors.evt.scraper.invoice_collected.pharma-1",
                          {"tenant_id": "pharma-1", "account_id": "acc-1", "collector_id": "c", "invoice_id": "inv-1",
                           "number": "F1", "issue_date": "2026-11-30", "amount": "10.00", "currency": "EUR",
                           "kind": "invoice", "sha256": "0" * 64, "size": 1})
            event, data = await anext(seen)
            assert event == "invoice"
            assert json.loads(data) == {"id": "inv-1", "account_id": "acc-1", "collector_id": "c", "number": "F1",
                                        "site": None, "issue_date": "2026-11-30", "amount": "10.00",
                                        "currency": "EUR", "kind": "invoice"}
            assert await anext(seen) == ("comment", "keepalive")
        await wait_for(lambda: not backend.subscriptions)
    finally:
        await server.stop()
    assert backend.closed


class Connected:
    async def is_disconnected(self) -> bool:
        return False


async def test_a_client_that_does_not_keep_up_is_dropped() -> None:
    backend = FakeBackend()
    stream = Stream(backend, "pharma-1", "fr", size=2)
    await stream.open()
    subject = "collectors.evt.notifier.notification_sent.pharma-1"
    for i in range(3):  # nobody reads: the third does not fit
        await publish(backend, subject, subject, {"tenant_id": "pharma-1", "notification_id": f"n{i}", "kind": "k",
                                                  "subject": "s", "body": "b"})
    assert stream.dropped.is_set()
    got = [chunk async for chunk in stream.frames(Connected(), keepalive_s=5)]  # type: ignore[arg-type]
    assert got == [b": connected\n\n", DROPPED]
    assert backend.subscriptions == {}


@pytest.mark.parametrize("payload", [b"not json", b"[1]", json.dumps({"tenant_id": "pharma-2"}).encode()])
async def test_unreadable_or_foreign_events_are_skipped(payload: bytes) -> None:
    backend = FakeBackend()
    stream = Stream(backend, "pharma-1", "fr", size=2)
    await stream.open()
    for pattern, handlers in list(backend.subscriptions.items()):
        for handler in handlers:
            await handler(pattern.replace("*", "status_changed"), payload)
    assert stream.queue.empty() and not stream.dropped.is_set()
    await stream.close()
