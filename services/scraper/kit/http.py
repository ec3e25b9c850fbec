"""HTTP statuses a portal answers with, turned into the kit's typed errors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from services.scraper.kit.errors import (
    CollectorError,
    PortalUnreachable,
    RateLimited,
    SessionExpired,
    SupplierUnavailable,
)
from services.scraper.kit.reply import HttpReply, http_url_problem

# A portal asking for more than this is treated as asking for this: the scheduler backs off anyway.
MAX_RETRY_AFTER_S = 7 * 24 * 3600.0


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER_S)


def error_for_status(status: int, headers: Mapping[str, str], what: str) -> CollectorError | None:
    """The typed error an HTTP status means, or None for a status a collector handles itself.

    ``headers`` keys are expected lower-case, as Playwright gives them. Status 0 (no HTTP answer at
    all: refused, timed out, the kit's convention) is ``PortalUnreachable``: the supplier's outage
    if ``what`` (the URL, as callers pass it) is on the portal's host, which the framework checks.
    """
    if status == 0:
        return PortalUnreachable(f"{what}: no answer", url=what if http_url_problem(what) is None else None)
    if status == 429:
        return RateLimited(f"{what}: HTTP 429", retry_after_s=retry_after_seconds(headers.get("retry-after")))
    if status == 401:
        return SessionExpired(f"{what}: HTTP 401")
    if status >= 500:
        return SupplierUnavailable(f"{what}: HTTP {status}")
    return None


def raise_for_status(status: int, headers: Mapping[str, str], what: str) -> None:
    error = error_for_status(status, headers, what)
    if error is not None:
        raise error


def page_text(reply: HttpReply, what: str, *, accept: tuple[int, ...] = ()) -> str:
    """The text of a page read over HTTP (decoded as a browser decodes it), or the typed error its
    answer means.

    ``accept``: statuses the caller reads itself (many portals answer a bad password with a 401
    or 403 page, whose message tells).
    """
    if reply.status == 0:
        raise PortalUnreachable(f"{what}: no answer ({reply.error})", url=reply.url)
    if reply.status not in accept:
        raise_for_status(reply.status, reply.headers, what)
    return reply.text()
