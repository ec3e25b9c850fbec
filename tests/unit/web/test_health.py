"""GET /health says whether the web service's NATS client is connected (200, else 503: the readiness
probe), GET /live answers 200 whatever NATS's state (the liveness probe).

The backend is the production one (services.web.app.NatsBackend over shared.client.ApiClient); what
stands in for NATS is the nats-py connection under it: a stub with ``is_connected``, a real nats-py
``Client`` never connected, and a real nats-server stopped under a connected client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client

from services.web.app import NatsBackend, create_app, nats_backend
from services.web.auth import Verifier
from shared.client import ApiClient
from shared.natsserver import NatsServer, free_port
from tests.unit.web.fakes import AUDIENCE, ISSUER, KEY, FakeBackend, settings


class StubConnection:
    """What NatsBackend reads of a nats-py Client: ``is_connected``, flipped by the test."""

    def __init__(self, connected: bool) -> None:
        self.is_connected = connected

    async def drain(self) -> None:
        pass


class NeverConnected(Client):
    """A real nats-py Client, never connected (drain would assert that connect was called)."""

    async def drain(self) -> None:
        pass


@contextlib.asynccontextmanager
async def serve(backend: Any, tmp: Path, **kw: Any) -> AsyncIterator[httpx.AsyncClient]:
    async def factory() -> Any:
        return backend

    app = create_app(settings(tmp, **kw), factory,
                     verifier=Verifier(public_key=KEY.public_key(), issuer=ISSUER, audience=AUDIENCE))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://web.test") as client:
            yield client


def backend_on(nc: Any) -> NatsBackend:
    return NatsBackend(ApiClient(nc))


async def test_connected_is_200_ok(tmp_path: Path) -> None:
    async with serve(backend_on(StubConnection(True)), tmp_path) as http:
        reply = await http.get("/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "nats": True}


async def test_disconnected_is_503_unavailable_and_live_still_200(tmp_path: Path) -> None:
    async with serve(backend_on(StubConnection(False)), tmp_path) as http:
        health, live = await http.get("/health"), await http.get("/live")
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "nats": False}
    assert live.status_code == 200 and live.json() == {"status": "ok"}


async def test_a_nats_client_never_connected_is_unavailable(tmp_path: Path) -> None:
    async with serve(backend_on(NeverConnected()), tmp_path) as http:
        reply = await http.get("/health")
    assert reply.status_code == 503 and reply.json()["nats"] is False


async def test_read_at_each_request_not_at_startup(tmp_path: Path) -> None:
    nc = StubConnection(True)
    async with serve(backend_on(nc), tmp_path) as http:
        assert (await http.get("/health")).status_code == 200
        nc.is_connected = False  # lost: reconnecting
        assert (await http.get("/health")).status_code == 503
        assert (await http.get("/live")).status_code == 200
        nc.is_connected = True  # back
        assert (await http.get("/health")).json() == {"status": "ok", "nats": True}


async def test_a_backend_that_cannot_say_is_not_called_ready(tmp_path: Path) -> None:
    async with serve(FakeBackend(), tmp_path) as http:
        assert (await http.get("/health")).status_code == 503
        assert (await http.get("/live")).status_code == 200


async def test_the_openapi_document_describes_both_answers(tmp_path: Path) -> None:
    async def factory() -> Any:
        raise RuntimeError("not served")

    app = create_app(settings(tmp_path), factory,
                     verifier=Verifier(public_key=KEY.public_key(), issuer=ISSUER, audience=AUDIENCE))
    spec = app.openapi()
    responses = spec["paths"]["/health"]["get"]["responses"]
    health = {"$ref": "#/components/schemas/Health"}
    assert responses["200"]["content"]["application/json"]["schema"] == health
    assert responses["503"]["content"]["application/json"]["schema"] == health
    schema = spec["components"]["schemas"]["Health"]
    assert set(schema["required"]) == {"status", "nats"} and schema["properties"]["nats"]["type"] == "boolean"
    assert "200" in spec["paths"]["/live"]["get"]["responses"]


async def eventually_status(http: httpx.AsyncClient, status: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (code := (await http.get("/health")).status_code) != status:
        assert time.monotonic() < deadline, f"/health stayed {code}, expected {status}"
        await asyncio.sleep(0.05)


async def test_against_a_real_nats_server_stopped_then_back(tmp_path: Path) -> None:
    server = NatsServer(store_dir=tmp_path / "nats", port=free_port())
    server.start()
    try:
        config = settings(tmp_path, nats_url=server.url)
        connect = nats_backend(config)
        app = create_app(config, connect,
                         verifier=Verifier(public_key=KEY.public_key(), issuer=ISSUER, audience=AUDIENCE))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://web.test") as http:
                await eventually_status(http, 200)
                server.stop()
                await eventually_status(http, 503)  # the client is reconnecting
                assert (await http.get("/live")).status_code == 200
                server.start()
                await eventually_status(http, 200)  # reconnected by itself
    finally:
        server.stop()
