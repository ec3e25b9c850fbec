"""A pharmacy's webhook cannot reach into our own network (SSRF): private, loopback and link-local
addresses are refused, whether written in the URL or behind a name, unless a setting allows them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from services.notifier.channels import PermanentDeliveryError, WebhookChannel
from shared import api
from shared.natsserver import free_port

NOTIFICATION: dict[str, Any] = {"_id": "n1", "kind": "action_required", "tenant_id": "t1", "language": "fr",
                                "created_at": datetime(2026, 1, 1, tzinfo=UTC), "subject": "s", "body": "b"}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[int, list[bytes]]]:
    received: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port, received
    await runner.cleanup()


def _prefs(url: str) -> api.Prefs:
    return api.Prefs(tenant_id="t1", webhook_url=url, webhook_secret="s" * 32)


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "10.1.2.3", "169.254.169.254", "192.168.0.10"])
async def test_private_addresses_in_the_url_are_refused_for_good(host: str) -> None:
    channel = WebhookChannel(timeout_s=2)
    try:
        with pytest.raises(PermanentDeliveryError, match="not a public address"):
            await channel.deliver(NOTIFICATION, _prefs(f"http://{host}:8080/hook"))
    finally:
        await channel.close()


async def test_a_name_resolving_to_our_network_is_refused(receiver: tuple[int, list[bytes]]) -> None:
    port, received = receiver
    channel = WebhookChannel(timeout_s=2)
    try:
        with pytest.raises(aiohttp.ClientError, match="not a public address"):
            await channel.deliver(NOTIFICATION, _prefs(f"http://localhost:{port}/hook"))
    finally:
        await channel.close()
    assert received == []


async def test_private_networks_can_be_allowed(receiver: tuple[int, list[bytes]]) -> None:
    port, received = receiver
    channel = WebhookChannel(timeout_s=2, allow_private_networks=True)
    try:
        await channel.deliver(NOTIFICATION, _prefs(f"http://127.0.0.1:{port}/hook"))
        await channel.deliver(NOTIFICATION, _prefs(f"http://localhost:{port}/hook"))
    finally:
        await channel.close()
    assert len(received) == 2
