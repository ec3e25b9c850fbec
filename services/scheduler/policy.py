"""Pure scheduling rules: when an account runs next after what happened to it (§4)."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.errors import CollectionErrorCode

TRANSIENT_BACKOFF = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=6), timedelta(hours=24))
LOCKED_COOLDOWN = timedelta(hours=24)


def after_success(now: datetime, frequency_hours: int) -> datetime:
    return now + timedelta(hours=frequency_hours)


def after_failure(
    now: datetime, code: CollectionErrorCode, failures: int, retry_after_s: float | None = None
) -> tuple[datetime | None, str | None]:
    """Next run and pause reason; ``None`` next run means paused until the user acts.

    Authentication errors are never retried in the background: repeated bad logins lock the
    pharmacy out of its supplier portal.
    """
    if code.user_fixable:
        return None, code.value
    delay = TRANSIENT_BACKOFF[min(max(failures, 1), len(TRANSIENT_BACKOFF)) - 1]
    if retry_after_s is not None:
        delay = max(delay, timedelta(seconds=retry_after_s))
    return now + delay, None
