"""A pull fetch that times out says so the way FastStream's pull loop expects (nats-py's own error)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext

from shared import nats_compat


async def test_a_bare_asyncio_timeout_from_fetch_becomes_nats_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    subscription: Any = object.__new__(JetStreamContext.PullSubscription)

    async def deadline_ran_out(self: Any, batch: int, expires: Any, timeout: Any, heartbeat: Any) -> list[Any]:
        raise TimeoutError  # what nats-py's _fetch_n raises before its lingering request

    monkeypatch.setattr(JetStreamContext.PullSubscription, "_fetch_n", deadline_ran_out)
    fetch = JetStreamContext.PullSubscription.fetch
    # As nats-py ships it, whether or not a broker made earlier in this process installed the shim.
    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", getattr(fetch, "__wrapped__", fetch))
    subscription._sub = type("Sub", (), {"_closed": False})()
    subscription._pending_queue = asyncio.Queue()
    with pytest.raises(TimeoutError) as raw:
        await subscription.fetch(batch=2, timeout=0.5)
    assert not isinstance(raw.value, NatsTimeoutError)  # what FastStream 0.7 does not suppress

    nats_compat.install()
    nats_compat.install()  # once is enough
    with pytest.raises(NatsTimeoutError):
        await subscription.fetch(batch=2, timeout=0.5)
