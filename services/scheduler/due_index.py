"""Which runs come due next, in memory: a tick costs O(due · log n), not a scan of every schedule.

MongoDB stays the source of truth: entries are hints, each claimed atomically in the database
before anything is dispatched, and the index is reloaded from it at start and refreshed now and
then (another replica may have changed a schedule).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, order=True)
class Entry:
    at: datetime
    account_id: str


class DueIndex:
    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._when: dict[str, datetime] = {}
        self._collector: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._when)

    def set(self, account_id: str, at: datetime | None, collector_id: str | None = None) -> None:
        """Schedule (or, with None, unschedule) an account; older heap entries become stale."""
        if collector_id is not None:
            self._collector[account_id] = collector_id
        if at is None:
            self._when.pop(account_id, None)
            return
        if self._when.get(account_id) == at:
            return
        self._when[account_id] = at
        heapq.heappush(self._heap, Entry(at, account_id))
        if len(self._heap) > 2 * len(self._when) + 1024:
            self._compact()

    def when(self, account_id: str) -> datetime | None:
        return self._when.get(account_id)

    def collector(self, account_id: str) -> str | None:
        return self._collector.get(account_id)

    def pop_due(self, now: datetime, limit: int) -> list[Entry]:
        """Remove and return up to ``limit`` due entries, oldest first."""
        out: list[Entry] = []
        while self._heap and len(out) < limit and self._heap[0].at <= now:
            entry = heapq.heappop(self._heap)
            if self._when.get(entry.account_id) == entry.at:
                del self._when[entry.account_id]
                out.append(entry)
        return out

    def next_due(self) -> datetime | None:
        while self._heap and self._when.get(self._heap[0].account_id) != self._heap[0].at:
            heapq.heappop(self._heap)
        return self._heap[0].at if self._heap else None

    def _compact(self) -> None:
        self._heap = [Entry(at, aid) for aid, at in self._when.items()]
        heapq.heapify(self._heap)
