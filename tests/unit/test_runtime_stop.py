"""ServiceRuntime.stop ends even when the broker's stop does not (shared/runtime.py _stop_broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from shared import runtime
from shared.runtime import ServiceRuntime


class FakeBroker:
    """What ServiceRuntime asks of a broker before its stop: a subscriber (its health replies)."""

    def subscriber(self, *args: object, **kwargs: object) -> Callable[[object], object]:
        return lambda handler: handler


class StubbornBroker(FakeBroker):
    """A broker whose stop never ends and swallows the first cancellation, as a close waiting on a
    connection that never confirms it can (an anyio task group, nats-py's drain)."""

    def __init__(self) -> None:
        self.stop_started = asyncio.Event()
        self.cancelled = 0

    async def stop(self) -> None:
        self.stop_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
        await asyncio.Event().wait()  # still not done


class FailingBroker(FakeBroker):
    async def stop(self) -> None:
        raise RuntimeError("subscriber would not stop")


async def test_a_broker_stop_that_absorbs_its_cancellation_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "BROKER_STOP_TIMEOUT_S", 0.2)
    broker = StubbornBroker()
    rt = ServiceRuntime("stubborn", broker)  # type: ignore[arg-type]
    stopping = asyncio.ensure_future(rt.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    assert stopping in done, "ServiceRuntime.stop did not end"
    stopping.result()
    assert broker.stop_started.is_set() and broker.cancelled == 1  # it was asked to stop, then given up on


async def test_a_broker_stop_s_error_still_reaches_the_caller() -> None:
    rt = ServiceRuntime("failing", FailingBroker())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="would not stop"):
        await rt.stop()


def test_the_default_deadline_is_bounded() -> None:
    assert 0 < runtime.BROKER_STOP_TIMEOUT_S <= 30


