"""The operators' fleet view (``collectors fleet``): per collector of the catalog, its active accounts,
the share whose status is ``ok``, the accounts by current error code, its open incident, its latest
success, and the median / 95th percentile run duration over the last 24 hours.

Where the data comes from (the accounts service owns statuses and already consumes the results):

* accounts: one pass over the live accounts (``AccountRepository.status_rows``), grouped here by
  collector; no query per account or per collector. Computed in Python rather than by a ``$group``
  pipeline: on the embedded stand-in (mongomock-ng) a ``$group`` over 100,000 accounts took 11 s against
  1.1 s for the projected cursor, and against a real server four small fields per account is a few MB.
* run durations: ``run_stats``, one small document per job id (``finished_at - started_at`` of its
  result), written with ``$setOnInsert`` so a redelivered result counts once. Only the window is read
  (``finished_at`` >= now - 24 h), so what is older never shows whenever it is pruned. Pruning is a
  periodic sweep, not a TTL index: the stand-in honours TTL indexes but by scanning the whole collection
  on every access to it (mongomock-ng's ``_remove_expired_documents``), which would make each write
  O(runs of the day); one ``delete_many`` every few minutes costs one scan. A result already outside
  the window (a new consumer replaying the month the stream keeps) is not written at all. Raw records
  rather than per-collector histograms: exact percentiles, and idempotence comes from the job id.
* incidents: ``fleet_incidents``, one document per incident id, from the scheduler's declared and
  resolved events; each event only sets its own fields, so their order does not matter (a resolution
  read before its declaration leaves the incident closed). Resolved ones are swept after a week.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from pymongo import ASCENDING

from services.accounts.repository import AccountRepository, AccountStatusRow, CatalogRepository
from shared import api
from shared.errors import CollectionErrorCode
from shared.events import (
    AccountStatus,
    CollectionFailed,
    CollectionSucceeded,
    IncidentDeclared,
    IncidentResolved,
    utcnow,
)
from shared.logging import get_logger

log = get_logger("collectors.accounts.fleet")

WINDOW = timedelta(hours=24)
RESOLVED_KEPT = timedelta(days=7)
SWEEP_EVERY_S = 600.0


# --- documents -------------------------------------------------------------------------------------


class RunStat(BaseModel):
    """One ended run in ``run_stats`` (``_id`` is its job id)."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    collector_id: str
    tenant_id: str
    account_id: str
    succeeded: bool
    error_code: str | None = None
    started_at: datetime
    finished_at: datetime
    duration_s: float

    @classmethod
    def of(cls, evt: CollectionSucceeded | CollectionFailed) -> RunStat:
        return cls(job_id=evt.job_id, collector_id=evt.collector_id, tenant_id=evt.tenant_id,
                   account_id=evt.account_id, succeeded=isinstance(evt, CollectionSucceeded),
                   error_code=evt.error_code.value if isinstance(evt, CollectionFailed) else None,
                   started_at=evt.started_at, finished_at=evt.finished_at,
                   # a worker's clock behind the scheduler's never makes a negative duration
                   duration_s=max(0.0, (evt.finished_at - evt.started_at).total_seconds()))


class IncidentRecord(BaseModel):
    """One incident in ``fleet_incidents`` (``_id`` is its incident id)."""

    model_config = ConfigDict(extra="ignore")

    incident_id: str
    collector_id: str
    error_code: str | None = None
    since: datetime | None = None  # None: only its resolution was read so far
    resolved_at: datetime | None = None


class RunStatsRepository:
    def __init__(self, db: Any) -> None:
        self.runs = db["run_stats"]

    async def create_indexes(self) -> None:
        await self.runs.create_index([("finished_at", ASCENDING)])

    async def add(self, run: RunStat) -> None:
        """Once per job id: a redelivered or republished result changes nothing."""
        await self.runs.update_one({"_id": run.job_id}, {"$setOnInsert": run.model_dump()}, upsert=True)

    async def durations_since(self, since: datetime) -> dict[str, list[float]]:
        """Run durations (s) by collector of the runs that ended at or after ``since``: one cursor."""
        out: dict[str, list[float]] = {}
        async for d in self.runs.find({"finished_at": {"$gte": since}}, {"_id": 0, "collector_id": 1,
                                                                         "duration_s": 1}):
            out.setdefault(d["collector_id"], []).append(float(d["duration_s"]))
        return out

    async def prune(self, before: datetime) -> int:
        return int((await self.runs.delete_many({"finished_at": {"$lt": before}})).deleted_count)


class IncidentRepository:
    def __init__(self, db: Any) -> None:
        self.incidents = db["fleet_incidents"]

    async def declared(self, evt: IncidentDeclared) -> None:
        await self.incidents.update_one(
            {"_id": evt.incident_id},
            {"$set": {"incident_id": evt.incident_id, "collector_id": evt.collector_id,
                      "error_code": evt.error_code.value, "since": evt.occurred_at}},
            upsert=True)

    async def resolved(self, evt: IncidentResolved) -> None:
        await self.incidents.update_one(
            {"_id": evt.incident_id},
            {"$set": {"incident_id": evt.incident_id, "collector_id": evt.collector_id,
                      "resolved_at": evt.occurred_at}},
            upsert=True)

    async def open(self) -> list[IncidentRecord]:
        cursor = self.incidents.find({"resolved_at": None, "since": {"$ne": None}})
        return [IncidentRecord.model_validate(d) async for d in cursor]

    async def prune(self, resolved_before: datetime) -> int:
        res = await self.incidents.delete_many({"resolved_at": {"$lt": resolved_before}})
        return int(res.deleted_count)


# --- pure computation ------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (any order): the smallest value with at least p % of the
    values at or below it; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Tally:
    """One collector's live accounts, counted."""

    accounts: int = 0
    ok: int = 0
    error_codes: Counter[str] = field(default_factory=Counter)
    last_success_at: datetime | None = None

    def add(self, row: AccountStatusRow) -> None:
        self.accounts += 1
        if row.status == AccountStatus.OK.value:
            self.ok += 1
        if row.error_code:
            self.error_codes[row.error_code] += 1
        if row.last_success_at is not None and (self.last_success_at is None
                                                or row.last_success_at > self.last_success_at):
            self.last_success_at = row.last_success_at

    @property
    def ok_share(self) -> float | None:
        return round(100.0 * self.ok / self.accounts, 1) if self.accounts else None


def tally(rows: Iterable[AccountStatusRow]) -> dict[str, Tally]:
    out: dict[str, Tally] = {}
    for row in rows:
        out.setdefault(row.collector_id, Tally()).add(row)
    return out


def _incident_view(incidents: Iterable[IncidentRecord]) -> dict[str, api.FleetIncident]:
    """The latest open incident of each collector."""
    out: dict[str, api.FleetIncident] = {}
    for inc in incidents:
        if inc.since is None or inc.resolved_at is not None:
            continue
        known = out.get(inc.collector_id)
        if known is not None and known.since >= inc.since:
            continue
        code = inc.error_code if inc.error_code in CollectionErrorCode._value2member_map_ else None
        out[inc.collector_id] = api.FleetIncident(id=inc.incident_id, since=inc.since,
                                                  error_code=CollectionErrorCode(code) if code else None)
    return out


def summarise(catalog: Mapping[str, str], tallies: Mapping[str, Tally], durations: Mapping[str, Sequence[float]],
              incidents: Iterable[IncidentRecord], now: datetime, window: timedelta = WINDOW) -> api.FleetReply:
    """One row per collector of the catalog (``id -> name``), with or without accounts, then any
    collector that has accounts or runs but left the catalog."""
    open_incidents = _incident_view(incidents)
    ids = list(catalog) + sorted((set(tallies) | set(durations) | set(open_incidents)) - set(catalog))
    rows = []
    for cid in ids:
        t = tallies.get(cid, Tally())
        runs = durations.get(cid, [])
        rows.append(api.FleetCollector(
            collector_id=cid, name=catalog.get(cid, ""), accounts=t.accounts, ok=t.ok, ok_share=t.ok_share,
            error_codes=dict(sorted(t.error_codes.items(), key=lambda kv: (-kv[1], kv[0]))),
            incident=open_incidents.get(cid), last_success_at=t.last_success_at, runs=len(runs),
            p50_s=percentile(runs, 50), p95_s=percentile(runs, 95)))
    return api.FleetReply(generated_at=now, window_hours=int(window.total_seconds() // 3600), collectors=rows)


# --- use cases ------------------------------------------------------------------------------------


class FleetService:
    def __init__(self, accounts: AccountRepository, catalog: CatalogRepository, runs: RunStatsRepository,
                 incidents: IncidentRepository, clock: Callable[[], datetime] = utcnow) -> None:
        self.accounts = accounts
        self.catalog = catalog
        self.runs = runs
        self.incidents = incidents
        self.clock = clock

    async def create_indexes(self) -> None:
        await self.runs.create_indexes()

    async def run_ended(self, evt: CollectionSucceeded | CollectionFailed) -> None:
        if evt.finished_at < self.clock() - WINDOW:
            return  # would be pruned at once (a consumer replaying the stream's month)
        await self.runs.add(RunStat.of(evt))

    async def incident_declared(self, evt: IncidentDeclared) -> None:
        await self.incidents.declared(evt)

    async def incident_resolved(self, evt: IncidentResolved) -> None:
        await self.incidents.resolved(evt)

    async def fleet(self, _: api.FleetRequest) -> api.FleetReply:
        now = self.clock()
        catalog = {d["_id"]: d.get("name", "") for d in await self.catalog.all()}
        tallies: dict[str, Tally] = {}
        async for row in self.accounts.status_rows():
            tallies.setdefault(row.collector_id, Tally()).add(row)
        durations = await self.runs.durations_since(now - WINDOW)
        return summarise(catalog, tallies, durations, await self.incidents.open(), now)

    async def sweep(self) -> None:
        now = self.clock()
        runs = await self.runs.prune(now - WINDOW)
        incidents = await self.incidents.prune(now - RESOLVED_KEPT)
        if runs or incidents:
            log.info("fleet_pruned", runs=runs, incidents=incidents)

    async def sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away for a moment: the next sweep catches up
                log.warning("fleet_sweep_failed", error=str(exc))
            await asyncio.sleep(SWEEP_EVERY_S)
