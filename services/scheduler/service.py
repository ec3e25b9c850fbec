"""Use cases of the scheduler: react to account events and results, dispatch what is due, and turn
a collector-wide failure into one incident instead of N separate ones."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.scheduler import metrics, policy
from services.scheduler.due_index import DueIndex
from services.scheduler.repository import CollectorConfig, ScheduleRepository, default_config
from shared.errors import CollectionErrorCode
from shared.events import (
    AccountCreated,
    AccountCredentialsUpdated,
    AccountDeleted,
    AccountEvent,
    AccountRetryRequested,
    AffectedAccount,
    CollectionFailed,
    CollectionStarted,
    CollectionSucceeded,
    CollectionTimedOut,
    CollectJob,
    CollectorAnnounced,
    IncidentDeclared,
    IncidentResolved,
    JobReason,
    ScheduleChanged,
    new_id,
    utcnow,
)
from shared.logging import get_logger
from shared.outbox import OutboxRelay, outbox_entry
from shared.subjects import Events, collect_job

log = get_logger("collectors.scheduler")
INCIDENT = "incident"
# What a tick needs to build a job without reading each schedule first.
META_FIELDS = {"tenant_id": 1, "collector_id": 1, "credential_version": 1, "fraction": 1, "failures": 1,
               "probe": 1, "next_run_at": 1, "active": 1, "paused": 1}


@dataclass(frozen=True, slots=True)
class Meta:
    tenant_id: str
    collector_id: str
    credential_version: int
    fraction: float
    failures: int = 0
    probe: bool = False


@dataclass(frozen=True)
class Tuning:
    max_dispatch_per_tick: int = 100  # catch-up after downtime is spread over ticks, not all at once
    lease_ttl: timedelta = timedelta(minutes=10)
    lease_retry: timedelta = timedelta(seconds=2)
    probe_interval: timedelta = timedelta(minutes=15)
    incident_window: timedelta = timedelta(minutes=30)
    incident_min_accounts: int = 3
    incident_share: float = 0.5
    resume_spread: timedelta = timedelta(minutes=5)
    refresh_horizon: timedelta = timedelta(minutes=2)
    # The watch of runs in flight (the `runs` collection): a job not started within `start_timeout`
    # goes out again (each time after twice as long, up to 16 times), a run started longer ago than
    # `run_timeout` without a result is closed as internal_error; tombstones are kept `forget_after`.
    start_timeout: timedelta = timedelta(minutes=2)
    run_timeout: timedelta = timedelta(minutes=7)
    forget_after: timedelta = timedelta(hours=1)
    watch_every: timedelta = timedelta(seconds=5)


class SchedulerService:
    def __init__(self, repo: ScheduleRepository, schedules_outbox: OutboxRelay, incidents_outbox: OutboxRelay,
                 clock: Callable[[], datetime] = utcnow, tuning: Tuning = Tuning()) -> None:
        self.repo = repo
        self.outbox = schedules_outbox
        self.incident_outbox = incidents_outbox
        self.clock = clock
        self.tuning = tuning
        self.index = DueIndex()
        self.meta: dict[str, Meta] = {}
        self._lease_start: dict[str, int] = {}
        self.configs: dict[str, CollectorConfig] = {}
        self._slots_ready: set[tuple[str, int]] = set()
        # Runs refused a session slot, per collector, first refused first: a slot this replica frees
        # goes to the next of them at once (_dispatch_waiting). Each is also due again after
        # `lease_retry` (a slot freed by another replica, or by a lease's expiry, is found by a tick).
        self._waiting: dict[str, dict[str, datetime]] = {}
        self.loaded = asyncio.Event()

    # --- start and refresh ---------------------------------------------------------------------

    def _track(self, doc: dict[str, Any] | None) -> None:
        """Remember what the database says of a schedule (None: it is gone)."""
        if doc is None:
            return
        account_id = doc["_id"]
        if not doc.get("active"):
            self.meta.pop(account_id, None)
            self.index.set(account_id, None)
            return
        self.meta[account_id] = Meta(doc["tenant_id"], doc["collector_id"], int(doc["credential_version"]),
                                     float(doc["fraction"]), int(doc.get("failures") or 0), bool(doc.get("probe")))
        runnable = doc.get("paused") is None and doc.get("next_run_at") is not None
        self.index.set(account_id, doc["next_run_at"] if runnable else None, doc["collector_id"])

    async def load(self) -> int:
        """Rebuild the due index from the database (schedules survive restarts)."""
        self.configs = {c.collector_id: c for c in await self.repo.collector_configs()}
        for collector_id in self.configs:  # now rather than in the first ticks that reach each collector
            await self._ensure_slots(collector_id)
        async for doc in self.repo.active(META_FIELDS):
            self._track(doc)
        return len(self.index)

    async def refresh(self) -> None:
        """Pick up schedules another replica changed, shortly before they come due."""
        for doc in await self.repo.due_before(self.clock() + self.tuning.refresh_horizon, META_FIELDS):
            self._track(doc)

    def config(self, collector_id: str) -> CollectorConfig:
        return self.configs.get(collector_id) or default_config(collector_id)

    async def _ensure_slots(self, collector_id: str) -> None:
        """Create the collector's session slots, once per size (a collector may announce more)."""
        max_sessions = self.config(collector_id).max_sessions
        if (collector_id, max_sessions) not in self._slots_ready:
            await self.repo.ensure_slots(collector_id, max_sessions)
            self._slots_ready.add((collector_id, max_sessions))

    # --- events ------------------------------------------------------------------------------------

    def _changed(self, doc: dict[str, Any], next_run_at: datetime | None, pause: str | None) -> dict[str, Any]:
        evt = ScheduleChanged(tenant_id=doc["tenant_id"], account_id=doc["_id"], collector_id=doc["collector_id"],
                              next_run_at=next_run_at, pause_reason=pause, changed_at=self.clock())
        return outbox_entry(Events.SCHEDULE_CHANGED.for_tenant(doc["tenant_id"]), evt)

    async def _flush(self, doc_filter: dict[str, Any]) -> None:
        """Send what a write queued; NATS away is no failure of the write: the relay's sweep sends it
        later. (Raising would fail a tick or an event handler whose claim already stands, and the
        handler's redelivery would queue the same run twice.)"""
        try:
            await self.outbox.flush(doc_filter)
        except Exception as exc:
            log.warning("outbox_flush_deferred", error=str(exc))

    async def _run_now(self, evt: AccountEvent, reason: JobReason) -> None:
        now = self.clock()
        doc = await self.repo.get(evt.account_id, evt.tenant_id)
        if doc is None:
            seq = await self.repo.next_seq(evt.collector_id)
            stub = {"_id": evt.account_id, "tenant_id": evt.tenant_id, "collector_id": evt.collector_id}
            doc = await self.repo.create(evt.tenant_id, evt.account_id, evt.collector_id, evt.credential_version,
                                         seq, now, [self._changed(stub, now, None)])
            if doc is None:  # created meanwhile by another replica: handle it as an update
                doc = await self.repo.get(evt.account_id, evt.tenant_id)
        elif doc.get("deleted") or doc["credential_version"] > evt.credential_version:
            return  # deletion is final; newer credentials already own the schedule
        else:
            at = policy.run_at_once(now, doc.get("not_before"))
            doc = await self.repo.update(
                doc, {"credential_version": evt.credential_version, "next_run_at": at, "paused": None,
                      "failures": 0}, [self._changed(doc, at, None)],
                guard={"credential_version": {"$lte": evt.credential_version}})
        if doc is None or doc.get("deleted"):
            return
        self._track(doc)
        if doc["next_run_at"] <= now:
            await self._dispatch([(doc["_id"], doc["next_run_at"])], {doc["_id"]: reason})
        await self._flush({"_id": doc["_id"]})

    async def account_created(self, evt: AccountCreated) -> None:
        await self._run_now(evt, "activation")

    async def credentials_updated(self, evt: AccountCredentialsUpdated) -> None:
        await self._run_now(evt, "credentials_updated")

    async def retry_requested(self, evt: AccountRetryRequested) -> None:
        await self._run_now(evt, "retry")

    async def account_deleted(self, evt: AccountDeleted) -> None:
        await self.repo.delete(evt.tenant_id, evt.account_id)
        self.meta.pop(evt.account_id, None)
        self.index.set(evt.account_id, None)
        await self._release(evt.collector_id, evt.account_id)

    async def collector_announced(self, evt: CollectorAnnounced) -> None:
        before = await self.repo.save_collector(evt.collector_id, evt.frequency_hours, evt.max_sessions, evt.version,
                                                evt.run_window)
        self.configs[evt.collector_id] = CollectorConfig(
            evt.collector_id, policy.Cadence(evt.frequency_hours, policy.Window.parse(evt.run_window)),
            evt.max_sessions, evt.version)
        await self._ensure_slots(evt.collector_id)
        if before is not None and before.get("version") != evt.version:
            incident = await self.repo.open_incident(evt.collector_id)
            if incident is not None:
                await self._resolve(incident, "collector_updated")

    async def collection_started(self, evt: CollectionStarted) -> None:
        """The job left the queue: watch the run's end from now on (its start is no longer awaited)."""
        await self.repo.run_started(evt.job_id, evt.started_at, self.clock() + self.tuning.run_timeout, evt.worker_id)

    async def collection_succeeded(self, evt: CollectionSucceeded) -> None:
        await self.repo.run_ended(evt.job_id)
        await self._release(evt.collector_id, evt.account_id)
        await self.repo.clear_failure(evt.collector_id, evt.account_id)
        doc = await self.repo.get(evt.account_id, evt.tenant_id)
        if doc is None or doc.get("credential_version") != evt.credential_version:
            return
        incident = await self.repo.open_incident(evt.collector_id)
        if incident is not None:
            await self._resolve(incident, "probe_succeeded")
            return
        cfg = self.config(evt.collector_id)
        nxt = policy.after_success(evt.finished_at, doc["fraction"], cfg.cadence)
        await self._set(doc, {"failures": 0, "paused": None, "not_before": None, "next_run_at": nxt}, nxt, None)

    async def collection_failed(self, evt: CollectionFailed) -> None:
        run = await self.repo.run_ended(evt.job_id)
        # A run the watch closed as timed out was counted as a failure then: its real result, come
        # late, decides what follows (a bad password pauses it) but is not a second failure.
        await self._failed(evt, count=not (run and run.get("closed")))

    async def _failed(self, evt: CollectionFailed, *, count: bool = True) -> None:
        await self._release(evt.collector_id, evt.account_id)
        doc = await self.repo.get(evt.account_id, evt.tenant_id)
        if doc is None or doc.get("credential_version") != evt.credential_version or not doc.get("active"):
            return
        failures = int(doc.get("failures", 0)) + (1 if count else 0)
        decision = policy.after_failure(evt.finished_at, evt.error_code, failures, evt.retry_after_s)
        if decision.alert_operators:
            log.error("operator_alert_internal_error", account_id=evt.account_id, collector_id=evt.collector_id,
                      failures=failures, detail=evt.detail)
        if doc.get("probe"):
            incident = await self.repo.open_incident(evt.collector_id)
            if incident is not None:  # the portal is still broken: probe again later
                await self._probe_later(evt.collector_id, doc, incident["_id"])
                return
        await self._set(doc, {"failures": failures, "paused": decision.pause_reason,
                              "not_before": decision.not_before, "next_run_at": decision.next_run_at},
                        decision.next_run_at, decision.pause_reason)
        if evt.error_code in policy.INCIDENT_CODES:
            await self.repo.record_failure(evt.collector_id, evt.account_id, evt.error_code.value, evt.finished_at)
            await self._maybe_declare(evt)

    async def _set(self, doc: dict[str, Any], fields: dict[str, Any], nxt: datetime | None,
                   pause: str | None) -> None:
        new = await self.repo.update(doc, fields, [self._changed(doc, nxt, pause)],
                                     guard={"credential_version": doc["credential_version"]})
        if new is not None:
            self._track(new)
            await self._flush({"_id": doc["_id"]})

    # --- dispatch ----------------------------------------------------------------------------------

    async def _release(self, collector_id: str, account_id: str) -> None:
        """Free the account's session slot and hand it to the collector's next waiting run now: a
        backlog (a hundred new accounts on one portal) then drains as fast as the portal's sessions
        end, instead of a run per slot per `lease_retry` and tick (which left slots idle ~1 s each)."""
        await self.repo.release_leases([account_id])
        await self._dispatch_waiting(collector_id)

    async def _dispatch_waiting(self, collector_id: str) -> None:
        waiting = self._waiting.get(collector_id)
        while waiting:
            account_id = next(iter(waiting))
            at = waiting.pop(account_id)
            if self.index.when(account_id) is None:  # paused, deleted or dispatched since
                continue
            # Refused again (a replica took the slot): _dispatch puts it back in line, at the end.
            if await self._dispatch([(account_id, at)]):
                await self._flush({"_id": account_id})  # its job now, not at the relay's next sweep
            return

    async def _dispatch(self, due: list[tuple[str, datetime]],
                        reasons: dict[str, JobReason] | None = None) -> list[str]:
        """Claim due runs and queue their jobs; return the accounts dispatched.

        A few round trips per collector whatever the number of runs: a session slot on the portal
        for each run (fleet-wide politeness), then one guarded claim per run, all in one write.
        """
        now = self.clock()
        by_collector: dict[str, list[tuple[str, datetime, Meta]]] = {}
        for account_id, at in due:
            meta = self.meta.get(account_id)
            if meta is None:
                self._track(await self.repo.get(account_id))
                meta = self.meta.get(account_id)
                if meta is None:
                    continue
            by_collector.setdefault(meta.collector_id, []).append((account_id, at, meta))
        runs: list[tuple[str, int, datetime, dict[str, Any]]] = []
        jobs: dict[str, CollectJob] = {}
        # Marks this call's job entries: a replica that lost a race sees the winner's identical job.
        token = new_id()
        wanted: dict[str, tuple[int, list[str], int]] = {}
        for collector_id, items in by_collector.items():
            cfg = self.config(collector_id)
            await self._ensure_slots(collector_id)  # a collector not announced yet when loaded
            # Replicas start at random places round the slots, so they rarely reach for the same one.
            start = self._lease_start.get(collector_id) or random.randrange(cfg.max_sessions)
            wanted[collector_id] = (cfg.max_sessions, [a for a, _, _ in items], start)
        slots = await self.repo.acquire_leases(wanted, now, self.tuning.lease_ttl)
        for collector_id, items in by_collector.items():
            cfg = self.config(collector_id)
            granted = [a for a, _, _ in items if a in slots]
            self._lease_start[collector_id] = (wanted[collector_id][2] + len(granted)) % cfg.max_sessions
            waiting = self._waiting.setdefault(collector_id, {})
            for account_id, at, meta in items:
                if account_id not in slots:  # every session on that portal is taken: wait for one
                    self.index.set(account_id, max(at, now) + self.tuning.lease_retry, collector_id)
                    waiting.setdefault(account_id, at)  # keeps its place in the line
                    continue
                waiting.pop(account_id, None)
                reason: JobReason = "probe" if meta.probe else (reasons or {}).get(account_id, "scheduled")
                job = CollectJob(job_id=CollectJob.make_id(account_id, at), tenant_id=meta.tenant_id,
                                 account_id=account_id, collector_id=collector_id,
                                 credential_version=meta.credential_version, planned_at=at, reason=reason,
                                 attempt=meta.failures)
                # While the job runs, the next regular slot stands: a lost result never stops collection.
                nxt = policy.after_success(now, meta.fraction, cfg.cadence)
                entry = {**outbox_entry(collect_job(collector_id), job), "by": token}
                jobs[account_id] = job
                runs.append((account_id, meta.credential_version, nxt, entry))
        claimed = await self.repo.claim_and_queue(runs, now)
        dispatched = [account_id for account_id, _, _, _ in runs]
        if claimed < len(runs):  # raced by a replica, paused, deleted or new credentials: ask the database
            dispatched = []
            for account_id, _, _, _ in runs:
                fresh = await self.repo.get(account_id)
                # The claim's mark, not the outbox: a relay (this replica's sweep, another's flush) may
                # already have published and pulled the job entry this call queued.
                if fresh is not None and fresh.get("claimed_by") == token:
                    dispatched.append(account_id)
                else:
                    await self.repo.release_slot(slots[account_id], account_id)
                self._track(fresh)
        else:
            for account_id, _, nxt, _ in runs:
                self.index.set(account_id, nxt)
        if dispatched:
            # After the claim, so that a replica that lost the race watches nothing; a crash just
            # before this leaves the run unwatched, as every run was before the watch existed.
            await self.repo.watch_runs([self._watch(jobs[a], now, 0) for a in dispatched])
            log.info("jobs_dispatched", count=len(dispatched), collectors=len(by_collector))
        metrics.record_dispatch(len(due), [jobs[a] for a in dispatched], now)
        return dispatched

    def _watch(self, job: CollectJob, now: datetime, tries: int) -> dict[str, Any]:
        return {"_id": job.job_id, "tenant_id": job.tenant_id, "account_id": job.account_id,
                "collector_id": job.collector_id, "credential_version": job.credential_version,
                "reason": job.reason, "attempt": job.attempt, "tries": tries, "dispatched_at": now,
                "started_at": None, "deadline": now + self.tuning.start_timeout * 2 ** min(tries, 4)}

    async def tick(self) -> int:
        """Dispatch what is due (at most ``max_dispatch_per_tick``); return how many went out."""
        due = [(e.account_id, e.at) for e in self.index.pop_due(self.clock(), self.tuning.max_dispatch_per_tick)]
        dispatched = await self._dispatch(due)
        if dispatched:
            await self._flush({"_id": {"$in": dispatched}})
        return len(dispatched)

    async def run(self, every_s: float = 1.0, refresh_s: float = 60.0) -> None:
        await self.load()
        self.loaded.set()
        clock = asyncio.get_running_loop().time
        last_refresh = last_watch = clock()
        while True:
            await asyncio.sleep(every_s)
            # One failed round (the database away a moment) is logged and the next one tries again:
            # reloading a million schedules for a restarted loop would cost far more.
            try:
                await self.tick()
                if clock() - last_watch >= self.tuning.watch_every.total_seconds():
                    last_watch = clock()
                    await self.watch()
                if clock() - last_refresh >= refresh_s:
                    last_refresh = clock()
                    await self.refresh()
            except Exception:
                log.exception("scheduler_round_failed")

    # --- runs that never started or never finished --------------------------------------------------

    async def watch(self) -> int:
        """Act on the runs past their deadline; return how many went out again or were closed."""
        now = self.clock()
        acted = 0
        for run in await self.repo.overdue_runs(now, self.tuning.max_dispatch_per_tick):
            if run.get("closed") or (run.get("superseded") and run.get("started_at") is None):
                await self.repo.forget_run(run)  # a tombstone, or a lost job replaced long ago
            elif run.get("started_at") is None:
                acted += await self._dispatch_again(run, now)
            else:
                acted += await self._close(run, now)
        return acted

    async def _dispatch_again(self, run: dict[str, Any], now: datetime) -> int:
        """No `collection started` in time: the job was lost (with NATS, or by a worker that took it
        and never ran it), or is still waiting behind others. Send a new job for the same run now,
        keeping the account's session slot; a duplicate, if the first one still runs, costs a visit
        of the portal (invoices are recorded once, and accounts keep the newest attempt's status)."""
        job = CollectJob(job_id=CollectJob.make_id(run["account_id"], now), tenant_id=run["tenant_id"],
                         account_id=run["account_id"], collector_id=run["collector_id"],
                         credential_version=run["credential_version"], planned_at=now, reason=run["reason"],
                         attempt=run["attempt"])
        if job.job_id == run["_id"] or not await self.repo.move_run(
                run, {"superseded": True, "deadline": now + self.tuning.forget_after}):
            return 0  # another replica acted on it first
        # Watched before it is queued: a crash in between leaves a watch that sends it again.
        await self.repo.watch_runs([self._watch(job, now, int(run.get("tries", 0)) + 1)])
        if not await self.repo.requeue(job.account_id, job.credential_version,
                                       outbox_entry(collect_job(job.collector_id), job)):
            await self.repo.run_ended(job.job_id)  # paused, deleted or new credentials since
            return 0
        await self.repo.extend_lease(job.account_id, now + self.tuning.lease_ttl)
        log.warning("job_dispatched_again", account_id=job.account_id, lost_job=run["_id"], job_id=job.job_id,
                    collector_id=job.collector_id, dispatched_at=run["dispatched_at"].isoformat())
        await self._flush({"_id": job.account_id})
        return 1

    async def _close(self, run: dict[str, Any], now: datetime) -> int:
        """Started, then silence past the scraper's time limit plus a margin: the worker died or its
        result was lost. The account is told internal_error and the run is retried as one."""
        if not await self.repo.move_run(run, {"closed": True, "deadline": now + self.tuning.forget_after}):
            return 0
        detail = f"no result {int(self.tuning.run_timeout.total_seconds())} s after the run started"
        common = {k: run[k] for k in ("tenant_id", "account_id", "collector_id", "credential_version")}
        common.update(job_id=run["_id"], started_at=run["started_at"], worker_id=run.get("worker_id") or "")
        timed_out = CollectionTimedOut(**common, timed_out_at=now, detail=detail)
        log.error("run_timed_out", account_id=run["account_id"], job_id=run["_id"], collector_id=run["collector_id"],
                  worker_id=common["worker_id"])
        doc = await self.repo.get(run["account_id"], run["tenant_id"])
        if doc is not None:
            await self.repo.update(doc, {"timed_out_job": run["_id"]},
                                   [outbox_entry(Events.COLLECTION_TIMED_OUT.for_tenant(run["tenant_id"]), timed_out)])
        await self._failed(CollectionFailed(**common, finished_at=now, error_code=CollectionErrorCode.INTERNAL_ERROR,
                                            detail=detail))
        await self._flush({"_id": run["account_id"]})
        return 1

    # --- supplier-wide incidents -------------------------------------------------------------------

    async def _maybe_declare(self, evt: CollectionFailed) -> None:
        t = self.tuning
        failing = await self.repo.failing_since(evt.collector_id, evt.finished_at - t.incident_window)
        active = await self.repo.count_active(evt.collector_id)
        if not policy.is_incident(failing, active, min_accounts=t.incident_min_accounts, share=t.incident_share):
            return
        now = self.clock()
        members = [d for d in await self.repo.of_collector(evt.collector_id) if d.get("paused") in (None, INCIDENT)]
        affected = [AffectedAccount(tenant_id=d["tenant_id"], account_id=d["_id"]) for d in members]
        declared = IncidentDeclared(incident_id=new_id(), collector_id=evt.collector_id, error_code=evt.error_code,
                                    affected=affected)
        created = await self.repo.create_incident({
            "_id": declared.incident_id, "collector_id": evt.collector_id, "open": True, "declared_at": now,
            "error_code": evt.error_code.value, "version": self.config(evt.collector_id).version,
            "affected": [a.model_dump() for a in affected],
            "outbox": [outbox_entry(Events.INCIDENT_DECLARED.base, declared)]})
        if not created:
            return  # another replica declared it first
        log.error("incident_declared", collector_id=evt.collector_id, error_code=evt.error_code.value,
                  failing=failing, active=active, incident_id=declared.incident_id)
        # Stop hammering the portal: everyone waits, one account probes now and then.
        for doc in members:
            self._track(await self.repo.update(doc, {"paused": INCIDENT, "next_run_at": None, "probe": False},
                                               [self._changed(doc, None, INCIDENT)]))
        await self.outbox.flush({"collector_id": evt.collector_id})
        if members:
            await self._probe_later(evt.collector_id, members[0], declared.incident_id)
        await self.incident_outbox.flush({"_id": declared.incident_id})

    async def _probe_later(self, collector_id: str, doc: dict[str, Any], incident_id: str | None = None) -> None:
        at = self.clock() + self.tuning.probe_interval
        self._track(await self.repo.update(doc, {"next_run_at": at, "paused": None, "probe": True}, []))
        if incident_id is None:
            incident = await self.repo.open_incident(collector_id)
            incident_id = incident["_id"] if incident else None
        if incident_id:
            await self.repo.set_probe(incident_id, doc["_id"], at)

    async def _resolve(self, incident: dict[str, Any], reason: str) -> None:
        now = self.clock()
        affected = [AffectedAccount(**a) for a in incident.get("affected", [])]
        resolved = IncidentResolved(incident_id=incident["_id"], collector_id=incident["collector_id"],
                                    error_code=incident["error_code"], affected=affected, reason=reason)
        if not await self.repo.close_incident(incident["_id"], now, reason,
                                              [outbox_entry(Events.INCIDENT_RESOLVED.base, resolved)]):
            return
        log.info("incident_resolved", collector_id=incident["collector_id"], reason=reason,
                 incident_id=incident["_id"])
        # Everyone resumes, spread over a few minutes rather than all at the same second.
        step = self.tuning.resume_spread / max(1, len(affected))
        for i, member in enumerate(affected):
            doc = await self.repo.get(member.account_id, member.tenant_id)
            if doc is None or not doc.get("active"):
                continue
            at = now + step * i
            self._track(await self.repo.update(doc, {"next_run_at": at, "paused": None, "probe": False,
                                                     "failures": 0}, [self._changed(doc, at, None)]))
            await self.repo.clear_failure(incident["collector_id"], member.account_id)
        await self.outbox.flush({"collector_id": incident["collector_id"]})
        await self.incident_outbox.flush({"_id": incident["_id"]})
