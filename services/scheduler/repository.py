"""The scheduler's data: schedules, collector cadences, portal session leases, failures, incidents.

``tenant_id`` leads the schedules' filters; leases, failures and incidents are per collector, a
platform-wide notion, not a tenant's data.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.scheduler.policy import Cadence, Window, slot_fraction

# Rounds of looking for a free session slot when other callers took the ones found (see acquire_leases).
LEASE_ATTEMPTS = 8


@dataclass(frozen=True)
class CollectorConfig:
    collector_id: str
    cadence: Cadence
    max_sessions: int
    version: str


class ScheduleRepository:
    def __init__(self, db: Any) -> None:
        self.schedules = db["schedules"]
        self.collectors = db["collectors"]
        self.leases = db["leases"]
        self.failures = db["failures"]
        self.incidents = db["incidents"]
        # One document per dispatched job (`_id`: its job id) until its result comes: the watch that
        # notices a job that never started and a run that never finished. It holds runs in flight and
        # recent tombstones only, so it stays small whatever the number of schedules.
        self.runs = db["runs"]

    async def create_indexes(self) -> None:
        await self.schedules.create_index([("next_run_at", ASCENDING)], partialFilterExpression={"active": True})
        await self.schedules.create_index([("tenant_id", ASCENDING), ("collector_id", ASCENDING)])
        await self.schedules.create_index([("collector_id", ASCENDING), ("active", ASCENDING)])
        await self.leases.create_index([("holder", ASCENDING)])
        await self.failures.create_index([("collector_id", ASCENDING), ("at", ASCENDING)])
        await self.runs.create_index([("deadline", ASCENDING)])
        # At most one open incident per collector, whatever replicas race to declare it.
        await self.incidents.create_index([("collector_id", ASCENDING)], unique=True,
                                          partialFilterExpression={"open": True})

    # --- collectors ----------------------------------------------------------------------------

    async def save_collector(self, collector_id: str, frequency_hours: int, max_sessions: int, version: str,
                             run_window: str | None) -> dict[str, Any] | None:
        """Record a collector's cadence; return what was recorded before (None if new)."""
        before: dict[str, Any] | None = await self.collectors.find_one_and_update(
            {"_id": collector_id},
            {"$set": {"frequency_hours": frequency_hours, "max_sessions": max_sessions, "version": version,
                      "run_window": run_window}, "$setOnInsert": {"seq": 0}},
            upsert=True, return_document=ReturnDocument.BEFORE,
        )
        return before

    async def collector_configs(self) -> list[CollectorConfig]:
        return [_config(d) async for d in self.collectors.find({})]

    async def next_seq(self, collector_id: str) -> int:
        doc = await self.collectors.find_one_and_update(
            {"_id": collector_id}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
        return int(doc["seq"])

    # --- schedules -----------------------------------------------------------------------------

    async def get(self, account_id: str, tenant_id: str | None = None) -> dict[str, Any] | None:
        query: dict[str, Any] = {"_id": account_id}
        if tenant_id is not None:
            query["tenant_id"] = tenant_id
        doc: dict[str, Any] | None = await self.schedules.find_one(query)
        return doc

    async def create(self, tenant_id: str, account_id: str, collector_id: str, credential_version: int,
                     seq: int, next_run_at: datetime, outbox: list[dict[str, Any]]) -> dict[str, Any] | None:
        doc = {"_id": account_id, "tenant_id": tenant_id, "collector_id": collector_id,
               "credential_version": credential_version, "seq": seq,
               "fraction": slot_fraction(seq, collector_id),
               "next_run_at": next_run_at, "paused": None, "failures": 0, "not_before": None,
               "active": True, "deleted": False, "outbox": outbox}
        try:
            await self.schedules.insert_one(doc)
        except DuplicateKeyError:
            return None
        return doc

    async def update(self, doc: dict[str, Any], fields: dict[str, Any], outbox: list[dict[str, Any]],
                     *, guard: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Change a live schedule, queueing its events in the same write."""
        update: dict[str, Any] = {"$set": fields}
        if outbox:
            update["$push"] = {"outbox": {"$each": outbox}}
        new: dict[str, Any] | None = await self.schedules.find_one_and_update(
            {"_id": doc["_id"], "tenant_id": doc["tenant_id"], "active": True, **(guard or {})}, update,
            return_document=ReturnDocument.AFTER)
        return new

    async def delete(self, tenant_id: str, account_id: str) -> None:
        await self.schedules.update_one(
            {"_id": account_id, "tenant_id": tenant_id},
            {"$set": {"deleted": True, "active": False, "next_run_at": None, "paused": "deleted"}},
            upsert=True)

    async def active(self, fields: dict[str, int]) -> AsyncIterator[dict[str, Any]]:
        async for doc in self.schedules.find({"active": True, "next_run_at": {"$ne": None}}, fields):
            yield doc

    async def due_before(self, until: datetime, fields: dict[str, int]) -> list[dict[str, Any]]:
        return [d async for d in self.schedules.find({"active": True, "next_run_at": {"$lte": until}}, fields)]

    async def of_collector(self, collector_id: str) -> list[dict[str, Any]]:
        return [d async for d in self.schedules.find({"collector_id": collector_id, "active": True})
                .sort("_id", ASCENDING)]

    async def count_active(self, collector_id: str) -> int:
        return int(await self.schedules.count_documents({"collector_id": collector_id, "active": True}))

    # --- portal sessions (politeness across the whole fleet) ------------------------------------
    # A collector has `max_sessions` slot documents with fixed ids; holding one is holding a session
    # on its portal. Each call costs a few round trips whatever the number of jobs.

    async def ensure_slots(self, collector_id: str, max_sessions: int) -> None:
        slots = [_slot(collector_id, n) for n in range(max_sessions)]
        have = {d["_id"] async for d in self.leases.find({"_id": {"$in": slots}}, {"_id": 1})}
        missing = [{"_id": s, "collector_id": collector_id, "holder": None, "token": None, "expires_at": None}
                   for s in slots if s not in have]
        if missing:
            try:
                await self.leases.insert_many(missing, ordered=False)
            except BulkWriteError:
                pass  # another replica created some of them: fine

    async def acquire_leases(self, wanted: dict[str, tuple[int, list[str], int]], now: datetime,
                             ttl: timedelta) -> dict[str, str]:
        """Give a free session slot to as many waiting accounts as possible, for every collector at
        once: a read of candidate slots (again while too few were free), one guarded write for them
        all, and a read-back only if a replica raced for some of them. ``wanted``: collector -> (max
        sessions, accounts, first slot to look at). Returns account -> slot.

        Slots are looked at in windows round the ring, so a portal allowing many sessions costs no
        more than the jobs at hand. A slot whose holder never reported back (a worker died) is free
        again after ``ttl``. The accounts whose slot another caller took meanwhile (a replica, or a
        concurrent dispatch of this one starting at the same place) look again, a few times, while
        free slots remain: losing a race for a slot is no reason to wait when another is free.
        """
        granted: dict[str, str] = {}
        for _ in range(LEASE_ATTEMPTS):
            got, raced = await self._acquire_leases_once(wanted, now, ttl)
            granted.update(got)
            if not raced:
                break
            wanted = {c: (n, rest, start) for c, (n, accounts, start) in wanted.items()
                      if (rest := [a for a in accounts if a not in granted])}
            if not wanted:
                break
        return granted

    async def _acquire_leases_once(self, wanted: dict[str, tuple[int, list[str], int]], now: datetime,
                                   ttl: timedelta) -> tuple[dict[str, str], bool]:
        """One round of ``acquire_leases``: account -> slot, and whether another caller raced for some."""
        free_filter = {"$or": [{"holder": None}, {"expires_at": {"$lte": now}}]}
        free: dict[str, list[str]] = {c: [] for c in wanted}
        scanned = dict.fromkeys(wanted, 0)
        while True:
            window: list[str] = []
            for collector_id, (max_sessions, accounts, start) in wanted.items():
                if len(free[collector_id]) >= len(accounts) or scanned[collector_id] >= max_sessions:
                    continue
                size = min(max(16, 2 * len(accounts)), max_sessions - scanned[collector_id])
                window += [_slot(collector_id, (start + scanned[collector_id] + i) % max_sessions)
                           for i in range(size)]
                scanned[collector_id] += size
            if not window:
                break
            async for d in self.leases.find({"_id": {"$in": window}, **free_filter}, {"_id": 1, "collector_id": 1}):
                free[d["collector_id"]].append(d["_id"])
        token = uuid4().hex
        for slots in free.values():  # callers that read the same free slots rarely pick the same ones
            random.shuffle(slots)
        pairs = [(slot, account) for collector_id, (_, accounts, _) in wanted.items()
                 for slot, account in zip(free[collector_id], accounts, strict=False)]
        if not pairs:
            return {}, False
        result = await self.leases.bulk_write([
            UpdateOne({"_id": slot, **free_filter}, {"$set": {"holder": account, "token": token,
                                                               "expires_at": now + ttl}})
            for slot, account in pairs], ordered=False)
        if result.modified_count == len(pairs):  # each guarded write took its slot (the usual case)
            return {account: slot for slot, account in pairs}, False
        # A replica took some of these slots meanwhile: which writes won, only the slots can tell.
        taken = [slot for slot, _ in pairs]
        return {d["holder"]: d["_id"]
                async for d in self.leases.find({"_id": {"$in": taken}, "token": token}, {"holder": 1})}, True

    async def release_slot(self, slot: str, account_id: str) -> None:
        await self.leases.update_one({"_id": slot, "holder": account_id},
                                     {"$set": {"holder": None, "token": None, "expires_at": None}})

    async def release_leases(self, accounts: list[str]) -> None:
        if accounts:
            await self.leases.update_many({"holder": {"$in": accounts}},
                                          {"$set": {"holder": None, "token": None, "expires_at": None}})

    async def claim_and_queue(self, runs: list[tuple[str, int, datetime, dict[str, Any]]], now: datetime) -> int:
        """Claim due runs and queue their jobs, one guarded update each, in one round trip.

        ``runs``: (account, credential version, next regular run, job outbox entry). A run claims only
        while its schedule is still due, live and for those credentials; the update moves the run
        forward at once, so a replica racing for it matches nothing. Returns how many were claimed;
        each claimed schedule keeps the claim's mark (``claimed_by``: the entry's ``by``), which tells
        the winner even once a relay has flushed the job from the outbox.
        """
        if not runs:
            return 0
        result = await self.schedules.bulk_write([
            UpdateOne({"_id": account_id, "next_run_at": {"$lte": now}, "active": True, "paused": None,
                       "credential_version": version},
                      {"$set": {"next_run_at": nxt, "claimed_by": entry.get("by")}, "$push": {"outbox": entry}})
            for account_id, version, nxt, entry in runs], ordered=False)
        return int(result.modified_count)

    # --- runs in flight ---------------------------------------------------------------------------
    # A run's `deadline` is when the watch looks at it next; every change of state sets a new one and
    # is guarded by the one it read, so replicas never act twice on the same run.

    async def watch_runs(self, runs: list[dict[str, Any]]) -> None:
        """Record dispatched jobs; a replica that raced for the same run recorded the same document."""
        if runs:
            try:
                await self.runs.insert_many(runs, ordered=False)
            except BulkWriteError:
                pass  # duplicates of a raced run: the same job id, the same watch

    async def run_started(self, job_id: str, started_at: datetime, deadline: datetime, worker_id: str) -> None:
        await self.runs.update_one({"_id": job_id, "started_at": None},
                                   {"$set": {"started_at": started_at, "deadline": deadline, "worker_id": worker_id}})

    async def run_ended(self, job_id: str) -> dict[str, Any] | None:
        """Forget a run whose result came; return its watch (None if it had none)."""
        doc: dict[str, Any] | None = await self.runs.find_one_and_delete({"_id": job_id})
        return doc

    async def overdue_runs(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        return [d async for d in self.runs.find({"deadline": {"$lte": now}}).sort("deadline", ASCENDING).limit(limit)]

    async def move_run(self, run: dict[str, Any], fields: dict[str, Any]) -> bool:
        """Change a run's state if nobody did since it was read."""
        res = await self.runs.update_one({"_id": run["_id"], "deadline": run["deadline"]}, {"$set": fields})
        return bool(res.modified_count)

    async def forget_run(self, run: dict[str, Any]) -> None:
        await self.runs.delete_one({"_id": run["_id"], "deadline": run["deadline"]})

    async def requeue(self, account_id: str, credential_version: int, entry: dict[str, Any]) -> bool:
        """Queue a job again for a run still due to this schedule (live, not paused, same credentials)."""
        res = await self.schedules.update_one(
            {"_id": account_id, "active": True, "paused": None, "credential_version": credential_version},
            {"$push": {"outbox": entry}})
        return bool(res.modified_count)

    async def extend_lease(self, account_id: str, expires_at: datetime) -> None:
        await self.leases.update_one({"holder": account_id}, {"$set": {"expires_at": expires_at}})

    # --- failures and incidents ------------------------------------------------------------------

    async def record_failure(self, collector_id: str, account_id: str, code: str, at: datetime) -> None:
        await self.failures.update_one({"_id": f"{collector_id}:{account_id}"},
                                       {"$set": {"collector_id": collector_id, "code": code, "at": at}},
                                       upsert=True)

    async def clear_failure(self, collector_id: str, account_id: str) -> None:
        await self.failures.delete_one({"_id": f"{collector_id}:{account_id}"})

    async def failing_since(self, collector_id: str, since: datetime) -> int:
        return int(await self.failures.count_documents({"collector_id": collector_id, "at": {"$gte": since}}))

    async def open_incident(self, collector_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.incidents.find_one({"collector_id": collector_id, "open": True})
        return doc

    async def create_incident(self, doc: dict[str, Any]) -> bool:
        try:
            await self.incidents.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def close_incident(self, incident_id: str, at: datetime, reason: str,
                             outbox: list[dict[str, Any]]) -> bool:
        res = await self.incidents.update_one(
            {"_id": incident_id, "open": True},
            {"$set": {"open": False, "resolved_at": at, "reason": reason}, "$push": {"outbox": {"$each": outbox}}})
        return bool(res.modified_count)

    async def set_probe(self, incident_id: str, account_id: str | None, at: datetime | None) -> None:
        await self.incidents.update_one({"_id": incident_id}, {"$set": {"probe": account_id, "probe_at": at}})


def _slot(collector_id: str, n: int) -> str:
    return f"{collector_id}:{n}"


def _config(doc: dict[str, Any]) -> CollectorConfig:
    return CollectorConfig(
        collector_id=doc["_id"],
        cadence=Cadence(int(doc.get("frequency_hours", 24)), Window.parse(doc.get("run_window"))),
        max_sessions=int(doc.get("max_sessions", 4)),
        version=str(doc.get("version", "")),
    )


def default_config(collector_id: str) -> CollectorConfig:
    return CollectorConfig(collector_id, Cadence(), max_sessions=4, version="")
