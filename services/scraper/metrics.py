"""The scraper's series for the fleet view, per collector: runs by outcome and code, their duration,
the documents and bytes they brought; and the dead letters kept aside. ``record_run`` is called once
per run, after its report."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from services.scraper.ledger import Ledger
from services.scraper.runner import RunReport
from shared import telemetry
from shared.events import CollectJob, utcnow
from shared.logging import get_logger

log = get_logger("collectors.scraper.metrics")

# A sandbox run takes about a second, a real portal's first collection minutes (job timeout 300 s).
RUN_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
SUCCEEDED = "ok"


async def record_run(ledger: Ledger, job: CollectJob, report: RunReport, started_at: datetime) -> None:
    """Count one finished run of ``job`` (its outcome known); never fails the run."""
    if not telemetry.metrics_enabled():
        return
    seconds = (utcnow() - started_at).total_seconds()
    code = SUCCEEDED if report.outcome is None else report.outcome.code.value
    outcome = "succeeded" if report.outcome is None else "failed"
    collector = job.collector_id
    telemetry.counter("collectors_scraper_runs", "Collection runs finished, by collector, outcome and code",
                      ("collector", "outcome", "code")).labels(collector, outcome, code).inc()
    telemetry.histogram("collectors_scraper_run_duration_seconds", "Duration of a collection run, login to report",
                        ("collector", "outcome"), RUN_BUCKETS).labels(collector, outcome).observe(seconds)
    telemetry.counter("collectors_scraper_documents", "New documents (invoices, credit notes) collected",
                      ("collector",)).labels(collector).inc(report.new_documents)
    size = 0
    if report.new_documents:
        try:
            size = await _bytes_since(ledger, job, started_at)
        except Exception as exc:  # the database blinked: the count of bytes is not worth a failed run
            log.warning("run_bytes_unread", job_id=job.job_id, error=str(exc)[:200])
    telemetry.counter("collectors_scraper_document_bytes", "Bytes of the new documents collected",
                      ("collector",)).labels(collector).inc(size)


async def _bytes_since(ledger: Ledger, job: CollectJob, started_at: datetime) -> int:
    cursor = ledger.invoices.find({"tenant_id": job.tenant_id, "account_id": job.account_id,
                                   "collected_at": {"$gte": started_at}}, {"size": 1})
    docs: list[dict[str, Any]] = [d async for d in cursor]
    return sum(int(d.get("size") or 0) for d in docs)


async def watch_dead_letters(letters: Any, every_s: float, service: str = "scraper") -> None:
    """How many dead letters the scraper keeps aside (collection ``dead_letters``, those not replayed),
    as a gauge."""
    kept = telemetry.gauge("collectors_dead_letters", "Messages kept aside as dead letters, not replayed",
                           ("service",)).labels(service)
    while True:
        try:
            kept.set(await letters.count_documents({"status": {"$ne": "replayed"}}))
        except Exception as exc:
            log.warning("dead_letters_uncounted", error=str(exc)[:200])
        await asyncio.sleep(every_s)
