"""Delivery of recorded notifications, each channel on its own so that one failing never holds the others.

The notification log is the queue: a notification is recorded ``pending`` before the event that
caused it is acked, so nothing is lost if the process dies. The dispatcher claims due notifications
(a lease, so a second replica does not send them too), tries each a few times in a row with
exponential backoff (tenacity), and if that round fails, schedules another round later. After the
last round the failure is final and kept in the history with its error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from services.notifier.channels import Channel, PermanentDeliveryError
from services.notifier.metrics import record_delivery
from services.notifier.preferences import to_prefs
from services.notifier.repository import NotifierRepository
from shared.logging import get_logger
from shared.settings import NotifierSettings

log = get_logger("collectors.notifier.delivery")


@dataclass(frozen=True)
class DeliveryPolicy:
    attempts: int = 3
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    timeout_s: float = 10.0
    rounds: int = 8
    round_delay_s: float = 60.0
    round_delay_max_s: float = 3600.0
    poll_s: float = 2.0
    concurrency: int = 32
    batch: int = 200

    @classmethod
    def from_settings(cls, s: NotifierSettings) -> DeliveryPolicy:
        return cls(attempts=s.delivery_attempts, backoff_s=s.delivery_backoff_s,
                   backoff_max_s=s.delivery_backoff_max_s, timeout_s=s.delivery_timeout_s,
                   rounds=s.delivery_rounds, round_delay_s=s.delivery_round_delay_s,
                   round_delay_max_s=s.delivery_round_delay_max_s, poll_s=s.delivery_poll_s,
                   concurrency=s.delivery_concurrency)

    @property
    def lease(self) -> timedelta:
        """Longer than a whole round can take, so a live claim never expires under it."""
        waits = sum(min(self.backoff_s * 2**i, self.backoff_max_s) for i in range(self.attempts - 1))
        return timedelta(seconds=self.attempts * self.timeout_s + waits + 30)

    def round_delay(self, rounds_done: int) -> timedelta:
        return timedelta(seconds=min(self.round_delay_s * 2 ** max(rounds_done - 1, 0), self.round_delay_max_s))


def _describe(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


class Dispatcher:
    def __init__(self, repo: NotifierRepository, channels: Sequence[Channel], policy: DeliveryPolicy,
                 clock: Callable[[], datetime]) -> None:
        self.repo = repo
        self.channels = {c.name: c for c in channels}
        self.policy = policy
        self.clock = clock
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """New notifications were recorded: look for due ones now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                try:
                    await self.start_due()
                except Exception as exc:  # the database blinked: try again at the next poll
                    log.warning("delivery_sweep_failed", error=str(exc)[:300])
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.policy.poll_s)
                except TimeoutError:
                    pass
        finally:
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def start_due(self) -> int:
        """Claim what is due and start delivering it in the background; return how many started."""
        now = self.clock()
        started = 0
        for doc in await self.repo.due_deliveries(now, self.policy.batch):
            claimed = await self.repo.claim(doc, now, now + self.policy.lease)
            if claimed is None:
                continue
            task = asyncio.create_task(self._guarded(claimed), name=f"deliver:{claimed['_id']}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            started += 1
        return started

    async def _guarded(self, doc: dict[str, Any]) -> None:
        async with self._slots:
            try:
                await self.deliver(doc)
            except asyncio.CancelledError:
                raise
            except Exception:  # the lease expires and another round picks it up
                log.exception("delivery_crashed", notification_id=doc["_id"])

    async def deliver(self, doc: dict[str, Any]) -> None:
        """One round for one claimed notification: a few attempts, then the outcome is recorded."""
        tenant_id = doc["tenant_id"]
        prefs = to_prefs(tenant_id, await self.repo.get_prefs(tenant_id))
        channel = self.channels.get(doc["channel"])
        attempts = 0
        recipient = channel.recipient(prefs) if channel else None
        p = self.policy
        try:
            if channel is None:
                raise PermanentDeliveryError(f"channel {doc['channel']} is not run by this notifier")
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(p.attempts),
                wait=wait_exponential(multiplier=p.backoff_s, max=p.backoff_max_s),
                retry=retry_if_not_exception_type(PermanentDeliveryError), reraise=True,
            ):
                with attempt:
                    attempts += 1
                    async with asyncio.timeout(p.timeout_s):
                        await channel.deliver(doc, prefs)
        except Exception as exc:
            await self._failed(doc, exc, attempts, recipient)
            return
        await self.repo.mark_delivered(doc, self.clock(), attempts, recipient)
        record_delivery(doc["channel"], "delivered", attempts)
        log.info("notification_delivered", tenant_id=tenant_id, channel=doc["channel"], kind=doc["kind"],
                 notification_id=doc["_id"], attempts=attempts)

    async def _failed(self, doc: dict[str, Any], exc: Exception, attempts: int, recipient: str | None) -> None:
        rounds = int(doc.get("rounds", 0)) + 1
        error = _describe(exc)
        context = {"tenant_id": doc["tenant_id"], "channel": doc["channel"], "notification_id": doc["_id"],
                   "kind": doc["kind"], "attempts": attempts, "round": rounds, "error": error[:300]}
        if isinstance(exc, PermanentDeliveryError) or rounds >= self.policy.rounds:
            await self.repo.mark_failed(doc, error, attempts, self.clock(), recipient)
            record_delivery(doc["channel"], "failed", attempts)
            log.error("notification_failed", **context)
            return
        next_at = self.clock() + self.policy.round_delay(rounds)
        await self.repo.mark_retry(doc, error, attempts, next_at, recipient)
        record_delivery(doc["channel"], "retried_later", attempts)
        log.warning("notification_delivery_retried_later", next_attempt_at=next_at.isoformat(), **context)
