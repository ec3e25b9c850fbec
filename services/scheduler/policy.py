"""Pure scheduling rules: where an account's runs fall, and what follows each outcome (§4)."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.errors import CollectionErrorCode

TRANSIENT_BACKOFF = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=6), timedelta(hours=24))
LOCKED_COOLDOWN = timedelta(hours=24)
INTERNAL_RETRIES = 2
PARIS = ZoneInfo("Europe/Paris")
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
# The golden ratio's fractional part: the n-th account of a collector sits at frac(n·φ) of the
# period, which keeps any number of accounts evenly spread (a low-discrepancy sequence), and an
# account keeps its place forever.
GOLDEN = (math.sqrt(5) - 1) / 2
INCIDENT_CODES = frozenset({CollectionErrorCode.INTERFACE_CHANGED, CollectionErrorCode.SUPPLIER_UNAVAILABLE})


def slot_fraction(seq: int, collector_id: str = "") -> float:
    """The n-th account of a collector; each collector's sequence starts at its own phase so that
    the first accounts of every portal do not all land on the same minute."""
    phase = int.from_bytes(hashlib.sha256(collector_id.encode()).digest()[:8], "big") / 2**64
    return (phase + seq * GOLDEN) % 1.0


@dataclass(frozen=True)
class Window:
    """Local hours a portal may be visited; ``end`` before ``start`` spans midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str | None) -> Window | None:
        if not text:
            return None
        match = re.fullmatch(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})", text.strip())
        if not match:
            raise ValueError(f"run window {text!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        return cls(time(h1, m1), time(h2, m2))

    @property
    def minutes(self) -> int:
        start, end = self.start.hour * 60 + self.start.minute, self.end.hour * 60 + self.end.minute
        return (end - start) % (24 * 60) or 24 * 60


@dataclass(frozen=True)
class Cadence:
    frequency_hours: int = 24
    window: Window | None = None


def next_slot(after: datetime, fraction: float, cadence: Cadence) -> datetime:
    """The account's first regular run strictly after ``after``."""
    period = timedelta(hours=cadence.frequency_hours)
    if cadence.window is None:
        base = EPOCH + period * fraction
        k = math.floor((after - base) / period) + 1
        return _whole_second(base + period * k)
    # In a window: one run every `days` local days, at the account's fraction of the window.
    days = max(1, cadence.frequency_hours // 24)
    offset = timedelta(minutes=cadence.window.minutes * fraction)
    day = after.astimezone(PARIS).date() - timedelta(days=1)
    phase = int(fraction * 1_000_003) % days
    while True:
        if (day.toordinal() - phase) % days == 0:
            candidate = _local(day, cadence.window.start) + offset
            if candidate > after:
                return _whole_second(candidate.astimezone(UTC))
        day += timedelta(days=1)


def _whole_second(at: datetime) -> datetime:
    """Round up: MongoDB keeps milliseconds, and a slot should read the same once stored."""
    return at if not at.microsecond else at.replace(microsecond=0) + timedelta(seconds=1)


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=PARIS)


def after_success(now: datetime, fraction: float, cadence: Cadence) -> datetime:
    """The next regular slot, at least a sixth of a period away: a run just done (an activation,
    say) is not repeated within hours, and the gap never exceeds 7/6 of a period."""
    return next_slot(now + timedelta(hours=cadence.frequency_hours) / 6, fraction, cadence)


@dataclass(frozen=True)
class Decision:
    next_run_at: datetime | None
    pause_reason: str | None = None
    # Earliest time a user's retry or new credentials may run (portal lockouts).
    not_before: datetime | None = None
    alert_operators: bool = False


def after_failure(now: datetime, code: CollectionErrorCode, failures: int,
                  retry_after_s: float | None = None) -> Decision:
    """Authentication and other user-fixable errors are never retried in the background: repeated
    bad logins lock the pharmacy out of its supplier portal."""
    if code is CollectionErrorCode.ACCOUNT_LOCKED:
        return Decision(None, code.value, not_before=now + LOCKED_COOLDOWN)
    if code.user_fixable:
        return Decision(None, code.value)
    delay = TRANSIENT_BACKOFF[min(max(failures, 1), len(TRANSIENT_BACKOFF)) - 1]
    if retry_after_s is not None:
        delay = max(delay, timedelta(seconds=retry_after_s))
    alert = code is CollectionErrorCode.INTERNAL_ERROR and failures > INTERNAL_RETRIES
    return Decision(now + delay, alert_operators=alert)


def run_at_once(now: datetime, not_before: datetime | None) -> datetime:
    """When a user-triggered run (activation, new credentials, retry) may go."""
    return max(now, not_before) if not_before else now


def is_incident(failing_accounts: int, active_accounts: int, *, min_accounts: int = 3,
                share: float = 0.5) -> bool:
    """A large share of one collector's accounts failing alike is the collector's problem."""
    return failing_accounts >= min_accounts and failing_accounts >= share * active_accounts
