"""Use cases of the scheduler: react to account events and results, dispatch what is due."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from faststream.nats import NatsBroker

from services.scheduler import policy
from services.scheduler.repository import ScheduleRepository
from shared.broker import publish_event
from shared.events import (
    AccountCreated,
    AccountCredentialsUpdated,
    AccountDeleted,
    AccountEvent,
    AccountRetryRequested,
    CollectionFailed,
    CollectionSucceeded,
    CollectJob,
    CollectorAnnounced,
    JobReason,
    utcnow,
)
from shared.logging import get_logger
from shared.subjects import collect_job

log = get_logger("collectors.scheduler")


class SchedulerService:
    def __init__(self, repo: ScheduleRepository, broker: NatsBroker,
                 clock: Callable[[], datetime] = utcnow, batch: int = 500) -> None:
        self.repo = repo
        self.broker = broker
        self.clock = clock
        self.batch = batch

    async def _dispatch(self, doc: dict[str, Any], reason: JobReason) -> bool:
        planned_at: datetime = doc["next_run_at"]
        job = CollectJob(
            job_id=CollectJob.make_id(doc["_id"], planned_at), tenant_id=doc["tenant_id"],
            account_id=doc["_id"], collector_id=doc["collector_id"],
            credential_version=doc["credential_version"], planned_at=planned_at, reason=reason,
            attempt=doc.get("failures", 0),
        )
        # Publish first, then claim: a crash in between re-publishes the same Nats-Msg-Id, which
        # JetStream drops; two replicas racing publish one job and only one wins the claim.
        await publish_event(self.broker, collect_job(job.collector_id), job)
        frequency = await self.repo.frequency(doc["collector_id"])
        claimed = await self.repo.claim(doc, policy.after_success(self.clock(), frequency))
        if claimed:
            log.info("job_dispatched", tenant_id=job.tenant_id, account_id=job.account_id,
                     collector_id=job.collector_id, reason=reason, job_id=job.job_id)
        return claimed

    async def _run_now(self, evt: AccountEvent, reason: JobReason) -> None:
        doc = await self.repo.upsert_active(evt.tenant_id, evt.account_id, evt.collector_id,
                                            evt.credential_version, self.clock())
        if doc is not None:
            await self._dispatch(doc, reason)

    async def account_created(self, evt: AccountCreated) -> None:
        await self._run_now(evt, "activation")

    async def credentials_updated(self, evt: AccountCredentialsUpdated) -> None:
        await self._run_now(evt, "credentials_updated")

    async def retry_requested(self, evt: AccountRetryRequested) -> None:
        await self._run_now(evt, "retry")

    async def account_deleted(self, evt: AccountDeleted) -> None:
        await self.repo.delete(evt.tenant_id, evt.account_id)

    async def collector_announced(self, evt: CollectorAnnounced) -> None:
        await self.repo.set_frequency(evt.collector_id, evt.frequency_hours)

    async def collection_succeeded(self, evt: CollectionSucceeded) -> None:
        frequency = await self.repo.frequency(evt.collector_id)
        await self.repo.record_result(evt.tenant_id, evt.account_id, evt.credential_version, {
            "$set": {"failures": 0, "paused": None,
                     "next_run_at": policy.after_success(evt.finished_at, frequency)}})

    async def collection_failed(self, evt: CollectionFailed) -> None:
        doc = await self.repo.get(evt.tenant_id, evt.account_id)
        if doc is None or doc.get("credential_version") != evt.credential_version:
            return
        failures = int(doc.get("failures", 0)) + 1
        next_run, paused = policy.after_failure(evt.finished_at, evt.error_code, failures,
                                                evt.retry_after_s)
        await self.repo.record_result(evt.tenant_id, evt.account_id, evt.credential_version, {
            "$set": {"failures": failures, "paused": paused, "next_run_at": next_run}})

    async def tick(self) -> int:
        """Dispatch every due run; return how many were dispatched."""
        dispatched = 0
        while True:
            due = await self.repo.due(self.clock(), self.batch)
            for doc in due:
                dispatched += await self._dispatch(doc, "scheduled")
            if len(due) < self.batch:
                return dispatched

    async def run(self, every_s: float = 1.0) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(every_s)
