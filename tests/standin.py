"""Concurrency tests under the stand-in's jitter (``shared.standin_timing``, issue 11).

The ``standin`` fixture turns jitter on for one test (seed: ``COLLECTORS_STANDIN_JITTER`` if set,
else one derived from the test's id, so a run is repeatable) and traces the stand-in's operations,
so that the test can assert that the interleaving it relies on actually happened. A failing test
prints its seed (``conftest.pytest_runtest_makereport``). On a real MongoDB there is no trace: the
race still runs, its interleaving is the server's.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack

import pytest

from shared import standin_timing
from shared.standin_timing import Trace
from tests.storage import storage_kind

SEED_ATTR = "_standin_seed"


class StandIn:
    def __init__(self, seed: int, on: bool, trace: Trace) -> None:
        self.seed = seed
        self.on = on  # the services and the test's client use the stand-in (its trace tells)
        self.trace = trace

    def _no_race(self, collection: str, enter: tuple[str, ...], leave: tuple[str, ...], count: int) -> str:
        return (f"no interleaving on {collection} ({enter} -> {leave}): {count} overlap(s), the race did not "
                f"happen and this test proves nothing (jitter seed {self.seed}: "
                f"{standin_timing.JITTER_ENV}={self.seed})")

    def assert_overlap(self, collection: str, enter: tuple[str, ...], leave: tuple[str, ...],
                       at_least: int = 1, leave_collection: str | None = None) -> int:
        """Assert that a task read ``collection`` (``enter``) while another had read it and not yet
        written (``leave``, on ``leave_collection`` if given): the race under test happened. Returns
        how often (0 on a real MongoDB)."""
        if not self.on:
            return 0
        count = self.trace.overlaps(collection, enter, leave, leave_collection)
        assert count >= at_least, self._no_race(collection, enter, leave, count)
        return count

    async def race(self, attempt: Callable[[int], Awaitable[None]], collection: str, enter: tuple[str, ...],
                   leave: tuple[str, ...], rounds: int = 6) -> int:
        """Run ``attempt(round)`` (a race, checking its own outcome) until one round interleaved on
        ``collection`` as ``assert_overlap`` says, at most ``rounds`` times; return that round. The
        delays are random, so one round may run in sequence by chance; six in a row means the
        stand-in does not interleave at all. On a real MongoDB, one round."""
        for round_ in range(rounds if self.on else 1):
            self.trace.ops.clear()
            await attempt(round_)
            if not self.on or self.trace.overlaps(collection, enter, leave):
                return round_
        raise AssertionError(self._no_race(collection, enter, leave, 0) + f", in {rounds} rounds")


def seed_for(nodeid: str) -> int:
    value = os.environ.get(standin_timing.JITTER_ENV, "").strip()
    return int(value) if value else zlib.crc32(nodeid.encode())


@pytest.fixture
def standin(request: pytest.FixtureRequest) -> Iterator[StandIn]:
    seed = seed_for(request.node.nodeid)
    setattr(request.node, SEED_ATTR, seed)
    previous = standin_timing.current_jitter()
    standin_timing.set_jitter(seed)
    with ExitStack() as stack:
        trace = stack.enter_context(standin_timing.tracing())
        try:
            yield StandIn(seed, storage_kind() == "memory", trace)
        finally:
            standin_timing.set_jitter(previous)
