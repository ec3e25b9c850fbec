"""How a worker takes collect jobs off the work queue: a fixed number of slots, each job kept alive
with in-progress acks from the moment it is received, acked only once its results are published.

FastStream's own concurrent subscriber prefetches messages into a buffer where nobody sends in-progress
acks for them: past the ack wait JetStream hands them to another worker while they are still queued
here, and the same collection runs twice. So the subscriber takes one message at a time and this
class decides when it runs: a worker holds at most one job beyond those it is running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from shared.broker import KeepAside, invalid_reason
from shared.events import CollectJob
from shared.logging import get_logger

log = get_logger("collectors.scraper.jobs")


class WorkerUnavailable(Exception):
    """This worker, not the job, failed (its browser died): the job goes back to the queue at once,
    for another worker or for this one once it has recovered, and nobody is told it failed."""


async def _always_available() -> None:
    pass


@dataclass
class JobPolicy:
    concurrency: int = 4
    heartbeat_s: float = 10.0
    retry_delay_s: float = 5.0
    # The consumer's max_deliver: the last delivery of a job that keeps failing on our side keeps
    # it aside instead of letting JetStream drop it silently.
    max_deliver: int = 10


class JobConsumer:
    def __init__(self, policy: JobPolicy, known_collectors: Callable[[], set[str]],
                 run: Callable[[CollectJob], Awaitable[None]], keep_aside: KeepAside,
                 available: Callable[[], Awaitable[None]] = _always_available) -> None:
        self.policy = policy
        self._known = known_collectors
        self._run = run
        self._keep_aside = keep_aside
        self._available = available
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._handed_back: set[asyncio.Task[None]] = set()
        self._hand_back_why = ""
        self._stopping = False

    async def receive(self, msg: NatsMessage) -> None:
        """The subscriber's handler: returns as soon as the job has a slot, which runs it."""
        if self._stopping:
            await msg.nack()  # another worker takes it at once
            return
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            # While the browser restarts, hold this one job (the heartbeat keeps it ours) instead of
            # taking jobs that could not run.
            await self._available()
            await self._slots.acquire()
        except BaseException:
            heartbeat.cancel()
            raise
        task = asyncio.create_task(self._handle(msg, heartbeat))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _heartbeat(self, msg: NatsMessage) -> None:
        while True:
            await asyncio.sleep(self.policy.heartbeat_s)
            with contextlib.suppress(Exception):  # a missed beat is retried at the next one
                await msg.in_progress()

    def hand_back_running(self, why: str) -> None:
        """Stop every running job and hand it back to the queue now: this worker cannot run them
        (its browser died). Jobs not in the browser at that moment would only fail on it later."""
        self._hand_back_why = why
        for task in self._running:
            self._handed_back.add(task)
            task.cancel()

    async def _handle(self, msg: NatsMessage, heartbeat: asyncio.Task[None]) -> None:
        task = asyncio.current_task()
        try:
            await self.handle(msg)
        except asyncio.CancelledError:
            if task is not None and task in self._handed_back:
                task.uncancel()  # our own cancellation, done with: the job ends here, handed back
                await self._hand_back(msg, self._hand_back_why)
                return
            with contextlib.suppress(Exception):
                await msg.nack()  # stopping: hand it back now rather than after the ack wait
            raise
        finally:
            if task is not None:
                self._handed_back.discard(task)
            heartbeat.cancel()
            self._slots.release()

    async def handle(self, msg: NatsMessage) -> None:
        """Run one job to the end and settle its message (ack, delayed nack or dead letter)."""
        subject = msg.raw_message.subject
        try:
            job = CollectJob.model_validate_json(msg.body)
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(msg, f"invalid job: {invalid_reason(exc)}"[:500])
            log.error("poison_job_kept_aside", subject=subject)
            return
        if job.collector_id not in self._known():
            # During a rolling deploy another worker may already run this collector: hand the job
            # back, and keep it aside only once every delivery found no worker for it.
            delivered = _deliveries(msg)
            if delivered >= self.policy.max_deliver:
                await self._dead_letter(msg, "unknown collector")
                log.error("job_for_unknown_collector_kept_aside", collector_id=job.collector_id)
            else:
                log.warning("job_for_unknown_collector_handed_back", collector_id=job.collector_id,
                            deliveries=delivered)
                await msg.nack(delay=self.policy.retry_delay_s)
            return
        try:
            await self._run(job)
        except WorkerUnavailable as exc:
            await self._hand_back(msg, str(exc))
            return
        except Exception as exc:
            # Our plumbing failed (NATS, database, accounts API): the job is fine, run it again later.
            delivered = _deliveries(msg)
            if delivered >= self.policy.max_deliver:
                log.exception("job_failed_too_often_kept_aside", job_id=job.job_id, deliveries=delivered)
                await self._dead_letter(msg, f"failed {delivered} times, last: {type(exc).__name__}: {exc}"[:500])
                return
            log.exception("job_failed_transiently", job_id=job.job_id, deliveries=delivered)
            await msg.nack(delay=self.policy.retry_delay_s)
            return
        await msg.ack()

    async def _hand_back(self, msg: NatsMessage, why: str) -> None:
        """Nack without delay: the job is fine, another worker (or this one, recovered) runs it now."""
        delivered = _deliveries(msg)
        if delivered >= self.policy.max_deliver:
            # JetStream would deliver it no more: a job that was running at every browser death is
            # likely the one killing it (a huge download), so it is kept, not dropped silently.
            await self._dead_letter(msg, f"the worker's browser died during each of its {delivered} "
                                         f"deliveries, last: {why}"[:500])
            log.error("job_kept_aside_after_browser_deaths", subject=msg.raw_message.subject,
                      deliveries=delivered)
            return
        with contextlib.suppress(Exception):  # else it comes back after the ack wait anyway
            await msg.nack()
        log.warning("job_handed_back", subject=msg.raw_message.subject, deliveries=delivered, why=why)

    async def _dead_letter(self, msg: NatsMessage, why: str) -> None:
        """A job that can never run is stored for inspection and terminated, never retried forever."""
        await self._keep_aside(msg, why, "job")  # with its delivery count (shared.dead_letters)
        await msg.reject()

    async def drain(self, grace_s: float) -> None:
        """Stop taking jobs; let running ones finish for ``grace_s``, then hand the rest back."""
        self._stopping = True
        running = set(self._running)
        if not running:
            return
        log.info("draining_jobs", running=len(running), grace_s=grace_s)
        _, late = await asyncio.wait(running, timeout=grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


def _deliveries(msg: NatsMessage) -> int:
    try:
        return int(msg.raw_message.metadata.num_delivered or 1)
    except Exception:  # not a JetStream message (a handler driven directly)
        return 1
