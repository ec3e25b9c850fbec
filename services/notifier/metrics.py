"""The notifier's series: delivery rounds by channel and outcome."""

from __future__ import annotations

from shared import telemetry


def record_delivery(channel: str, outcome: str, attempts: int) -> None:
    """One delivery round ended: ``delivered``, ``failed`` (for good) or ``retried_later``."""
    if not telemetry.metrics_enabled():
        return
    telemetry.counter("collectors_notifier_deliveries", "Notification delivery rounds, by channel and outcome",
                      ("channel", "outcome")).labels(channel, outcome).inc()
    telemetry.counter("collectors_notifier_delivery_attempts", "Delivery attempts made, by channel",
                      ("channel",)).labels(channel).inc(attempts)
