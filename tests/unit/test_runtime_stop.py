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


class QuietBroker(FakeBroker):
    async def stop(self) -> None:
        pass


async def test_a_background_loop_that_swallowed_its_cancellation_is_cancelled_again() -> None:
    """As a loop around ``asyncio.wait_for`` on Python 3.11 can (a cancellation landing as the
    awaited reply arrives is lost): the first cancellation is swallowed, the loop goes on; the stop
    cancels it again and ends."""
    rounds: list[str] = []

    async def loop() -> None:
        swallowed = False
        while True:
            try:
                await asyncio.sleep(0.01)
                rounds.append("round")
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed = True
                rounds.append("swallowed")

    rt = ServiceRuntime("looping", QuietBroker())  # type: ignore[arg-type]
    rt._tasks.append(asyncio.create_task(loop(), name="looping:loop"))
    await asyncio.sleep(0.05)
    stopping = asyncio.ensure_future(rt.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    assert stopping in done, "ServiceRuntime.stop did not end"
    stopping.result()
    # the interleaving claimed: rounds, the first cancellation swallowed, more rounds, then the end
    assert rounds.count("swallowed") == 1
    assert 0 < rounds.index("swallowed") < len(rounds) - 1


def test_the_default_deadlines_are_bounded() -> None:
    assert 0 < runtime.BROKER_STOP_TIMEOUT_S <= 30
    assert 0 < runtime.TASKS_STOP_TIMEOUT_S <= 30


