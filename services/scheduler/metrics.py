"""The scheduler's series: runs found due, jobs dispatched, and those dispatched late."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared import telemetry
from shared.events import CollectJob

# A run dispatched this long after its planned time counts as late (a tick is a second).
LATE_AFTER_S = 60.0
DELAY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def record_dispatch(due: int, jobs: Sequence[CollectJob], now: datetime) -> None:
    """One dispatch: ``due`` runs were due, ``jobs`` went out at ``now``."""
    if not telemetry.metrics_enabled():
        return
    telemetry.counter("collectors_scheduler_due", "Runs found due (each time one is taken up for dispatch)"
                      ).inc(due)
    dispatched = telemetry.counter("collectors_scheduler_dispatched", "Collect jobs dispatched, by reason",
                                   ("collector", "reason"))
    late = telemetry.counter("collectors_scheduler_late",
                             f"Collect jobs dispatched more than {LATE_AFTER_S:.0f} s after their planned time",
                             ("collector",))
    delay = telemetry.histogram("collectors_scheduler_dispatch_delay_seconds",
                                "From a run's planned time to its dispatch", (), DELAY_BUCKETS)
    for job in jobs:
        dispatched.labels(job.collector_id, job.reason).inc()
        seconds = max(0.0, (now - job.planned_at).total_seconds())
        delay.observe(seconds)
        if seconds > LATE_AFTER_S:
            late.labels(job.collector_id).inc()
