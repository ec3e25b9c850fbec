"""Helpers for integration tests that run services against a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from shared.client import ApiClient
from shared.runtime import ServiceRuntime

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0,
                     every: float = 0.1, what: str = "condition") -> T:
    """Poll until ``probe`` returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@asynccontextmanager
async def services_running(runtimes: Sequence[ServiceRuntime], nats_url: str) -> AsyncIterator[ApiClient]:
    """Start the services in order, give an API client, stop them in reverse order however it ends."""
    started: list[ServiceRuntime] = []
    client: ApiClient | None = None
    try:
        for rt in runtimes:
            await rt.start()
            started.append(rt)
        client = await ApiClient.connect(nats_url)
        yield client
    finally:
        if client is not None:
            await client.close()
        for rt in reversed(started):
            await rt.stop()


class LoopThread:
    """An event loop in a thread, for sync tests (hypothesis) that drive async services."""

    def __init__(self) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
