"""How the in-memory stand-in spends time like a network database (design §5, issue 11).

A driver waits on a socket for every operation, so two coroutines interleave inside a
read-modify-write as they do against a real server. The stand-in (``shared.memory_mongo``) calls
``before`` ahead of applying each operation (and of each batch of a cursor), which suspends at
least once, and ``after`` once it is done. In memory, that is all: one ``await asyncio.sleep(0)``.

**Jitter** (opt-in): with a seed, ``before`` and ``after`` also sleep a random small delay drawn
from ``random.Random(seed)``, so concurrency tests see many different interleavings, and the same
seed replays the same sequence of delays. Turned on for the whole process by
``COLLECTORS_STANDIN_JITTER=<seed>`` (read at import), or by ``set_jitter(seed)`` (the tests'
``standin`` fixture); a failing test prints the seed to run it again.

**Trace**: ``tracing()`` records, for every operation, which task applied it on which collection and
in which order, so a test can assert that the interleaving it claims actually happened
(``Trace.overlaps``) rather than hope so.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = [
    "BATCH_SIZE",
    "JITTER_ENV",
    "Jitter",
    "Op",
    "Trace",
    "after",
    "applied",
    "before",
    "current_jitter",
    "set_jitter",
    "tracing",
]

JITTER_ENV = "COLLECTORS_STANDIN_JITTER"
# A cursor suspends before each batch, as a driver waits for each getMore (MongoDB's first batch
# holds 101 documents; the size of later ones depends on bytes, 100 is close enough here).
BATCH_SIZE = 101
# Largest delay jitter draws, before and after an operation (a loopback round trip is ~0.1-1 ms).
MAX_DELAY_S = 0.015


class Jitter:
    """Seeded random delays around operations. A quarter of the ``before`` draws are a bare yield, the
    rest up to ``max_delay_s``; a quarter of the ``after`` draws add a delay (a reply slow to come)."""

    def __init__(self, seed: int, max_delay_s: float = MAX_DELAY_S) -> None:
        self.seed = seed
        self.max_delay_s = max_delay_s
        self._rng = random.Random(seed)
        self.delays = 0

    def before(self) -> float:
        rng = self._rng
        if rng.random() < 0.25:
            return 0.0
        self.delays += 1
        return rng.random() * self.max_delay_s

    def after(self) -> float:
        rng = self._rng
        if rng.random() < 0.75:
            return 0.0
        self.delays += 1
        return rng.random() * self.max_delay_s


@dataclass(frozen=True, slots=True)
class Op:
    """One operation as the stand-in applied it: ``seq`` orders them, ``task`` names who ran it."""

    seq: int
    task: str
    namespace: str  # "db.collection" (or a database's / the client's name)
    name: str  # insert_one, find, bulk_write...


@dataclass
class Trace:
    """The operations applied while tracing, in the order they were applied."""

    ops: list[Op] = field(default_factory=list)

    def on(self, collection: str, *names: str) -> list[Op]:
        """Operations on a collection (``namespace`` ending in ``.collection``) among ``names``."""
        suffix = "." + collection
        return [op for op in self.ops if op.namespace.endswith(suffix) and (not names or op.name in names)]

    def overlaps(self, collection: str, enter: tuple[str, ...], leave: tuple[str, ...],
                 leave_collection: str | None = None) -> int:
        """How many writes (operations among ``leave`` on ``leave_collection``, by default
        ``collection``) came after their task's read (its last operation among ``enter`` on
        ``collection`` before the write) with another task's read in between: both were inside the
        read-modify-write before either finished. Zero means the coroutines ran one after the other:
        a race test then proves nothing."""
        reads_in = "." + collection
        writes_in = "." + (leave_collection or collection)
        last_read: dict[str, int] = {}  # task -> position of its latest read not yet followed by a write
        readers: list[tuple[int, str]] = []  # (position, task) of every read
        count = 0
        for position, op in enumerate(self.ops):
            if op.name in enter and op.namespace.endswith(reads_in):
                last_read[op.task] = position
                readers.append((position, op.task))
            elif op.name in leave and op.namespace.endswith(writes_in) and op.task in last_read:
                since = last_read.pop(op.task)
                for at, task in reversed(readers):
                    if at <= since:
                        break
                    if task != op.task:
                        count += 1
                        break
        return count

    def tasks(self, collection: str, *names: str) -> set[str]:
        return {op.task for op in self.on(collection, *names)}


_jitter: Jitter | None = None
_traces: list[Trace] = []
_seq = 0


def _task_name() -> str:
    task = asyncio.current_task()
    return "-" if task is None else f"{task.get_name()}@{id(task):x}"


def set_jitter(seed: int | Jitter | None, max_delay_s: float = MAX_DELAY_S) -> Jitter | None:
    """Turn jitter on with ``seed`` (None: off; a ``Jitter``: that one, as it stands) for every
    stand-in client of this process."""
    global _jitter
    _jitter = seed if seed is None or isinstance(seed, Jitter) else Jitter(seed, max_delay_s)
    return _jitter


def current_jitter() -> Jitter | None:
    return _jitter


@contextmanager
def tracing() -> Iterator[Trace]:
    """Record the operations applied inside the block."""
    trace = Trace()
    _traces.append(trace)
    try:
        yield trace
    finally:
        _traces.remove(trace)


async def before() -> None:
    """Ahead of applying an operation (or reading a batch): suspend, as waiting on a socket does."""
    jitter = _jitter
    if jitter is None:
        await asyncio.sleep(0)
        return
    await asyncio.sleep(jitter.before())


async def after() -> None:
    """Once an operation is applied: the reply may be slow to come (jitter only)."""
    jitter = _jitter
    if jitter is not None:
        delay = jitter.after()
        if delay:
            await asyncio.sleep(delay)


def applied(namespace: str, name: str) -> None:
    """Record that the current task applies operation ``name`` on ``namespace`` now (if tracing)."""
    global _seq
    if _traces:
        _seq += 1
        op = Op(_seq, _task_name(), namespace, name)
        for trace in _traces:
            trace.ops.append(op)


def tracing_active() -> bool:
    return bool(_traces)


def _from_env() -> None:
    value = os.environ.get(JITTER_ENV, "").strip()
    if value:
        try:
            set_jitter(int(value))
        except ValueError:
            raise ValueError(f"{JITTER_ENV} must be an integer seed, not {value!r}") from None


_from_env()
