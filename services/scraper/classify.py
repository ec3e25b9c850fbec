"""Turning whatever a collector raised into a §4 error code, in one place for every collector.

Never blame the supplier for our mistakes: ``supplier_unavailable`` is only a portal that answered
with an outage (a 5xx, a maintenance page: the diagnosis) or that gave no answer at all on its own
host (refused, reset, name not resolved, timed out). A request we could not send (a
``javascript:`` link taken for a URL, ``net::ERR_ABORTED``, ``ERR_UNKNOWN_URL_SCHEME``...), a
selector that does not parse, a strict-mode violation, a page we closed, an exception in our own
code, a third-party host (CDN, analytics) that does not answer: all ``internal_error``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from services.scraper.diagnose import Diagnosis
from services.scraper.kit.errors import (
    CollectorError,
    InterfaceChanged,
    PortalUnreachable,
    RateLimited,
    is_no_answer,
)
from services.scraper.kit.reply import host_of, on_host
from shared.errors import CollectionErrorCode

# Where a failed navigation was going: "net::ERR_CONNECTION_REFUSED at http://...", or the call
# log of a navigation that timed out ('navigating to "http://...", waiting until "load"').
_NET_ERROR_AT = re.compile(r"(?:net::ERR_|NS_ERROR_)\w+ at (\S+)")
_NAVIGATING_TO = re.compile(r'navigating to "([^"]+)"')
# A navigation replaced the page under a script: the portal may have sent us somewhere else.
_PAGE_REPLACED = ("Execution context was destroyed",)
# What a portal's failure page can explain even when our own code is what stopped: an outage.
_OUTAGES = frozenset({CollectionErrorCode.SUPPLIER_UNAVAILABLE, CollectionErrorCode.RATE_LIMITED})


@dataclass(frozen=True)
class Outcome:
    code: CollectionErrorCode
    detail: str
    retry_after_s: float | None = None


def is_network_error(exc: BaseException) -> bool:
    """A page's request got no HTTP answer (refused, reset, name not resolved...). Not every
    ``net::ERR_``: ``ERR_ABORTED``, ``ERR_INVALID_URL``, ``ERR_UNKNOWN_URL_SCHEME``,
    ``ERR_BLOCKED_BY_CLIENT``... are requests of ours that were never sent."""
    return isinstance(exc, PlaywrightError) and not isinstance(exc, PlaywrightTimeout) and is_no_answer(str(exc))


def failed_url(exc: BaseException) -> str | None:
    """The URL a failed or timed-out navigation was going to, when Playwright says."""
    found = _NET_ERROR_AT.search(str(exc)) or _NAVIGATING_TO.search(str(exc))
    return found.group(1) if found else None


def is_our_bug(exc: BaseException) -> bool:
    """Our code stopped the run, not the portal: an exception of our own (``KeyError``,
    ``TypeError``...), or Playwright refusing what we asked (a selector that does not parse, a
    strict-mode violation, a page we closed, our script failing, a request never sent)."""
    if isinstance(exc, CollectorError):
        return exc.code is CollectionErrorCode.INTERNAL_ERROR
    if isinstance(exc, PlaywrightTimeout):
        return False
    if isinstance(exc, PlaywrightError):
        return not (is_network_error(exc) or any(marker in str(exc) for marker in _PAGE_REPLACED))
    return not isinstance(exc, TimeoutError)


def needs_diagnosis(exc: BaseException) -> bool:
    """Whether the page must be looked at to know what this failure means.

    A typed error says what happened, except ``InterfaceChanged``: "what I expected is not there"
    is what a collector says in front of a maintenance page or a captcha too. Our own bugs are
    looked at only for an outage the portal shows (``classify`` keeps no other diagnosis for them).
    """
    if isinstance(exc, CollectorError):
        return isinstance(exc, InterfaceChanged)
    if isinstance(exc, PlaywrightTimeout):
        return True
    # Unreachable portals have no page to read; the job's own deadline says nothing about the page.
    return not (is_network_error(exc) or isinstance(exc, TimeoutError))


def _elsewhere(url: str | None, portal_url: str | None) -> str:
    return f" (not the portal's host {host_of(portal_url)}: {host_of(url)})"


def classify(exc: BaseException, diagnosis: Diagnosis | None = None, *, portal_url: str | None = None) -> Outcome:
    """The §4 outcome of ``exc``; ``portal_url``: the collector's portal, whose host alone can be
    the supplier's outage (unknown: any host is taken for the portal's)."""
    if diagnosis is not None and is_our_bug(exc) and diagnosis.code not in _OUTAGES:
        diagnosis = None  # a bug of ours in front of a login or terms page is still our bug
    if isinstance(exc, PortalUnreachable) and not on_host(exc.url, portal_url):
        return Outcome(CollectionErrorCode.INTERNAL_ERROR, f"{exc.detail}{_elsewhere(exc.url, portal_url)}"[:500])
    if isinstance(exc, CollectorError) and not (diagnosis and isinstance(exc, InterfaceChanged)):
        retry_after = exc.retry_after_s if isinstance(exc, RateLimited) else None
        return Outcome(exc.code, exc.detail or type(exc).__name__, retry_after)
    if diagnosis is not None:
        return Outcome(diagnosis.code, f"{diagnosis.detail}; collector said: {_first_line(exc)}"[:500],
                       diagnosis.retry_after_s)
    if isinstance(exc, PlaywrightTimeout):
        going_to = _NAVIGATING_TO.search(str(exc))
        if going_to is not None:
            # A navigation that never loaded: the portal's host not answering, or someone else's.
            url = going_to.group(1)
            if on_host(url, portal_url):
                return Outcome(CollectionErrorCode.SUPPLIER_UNAVAILABLE, f"no answer: {_first_line(exc)} ({url})"[:500])
            return Outcome(CollectionErrorCode.INTERNAL_ERROR, f"{_first_line(exc)}{_elsewhere(url, portal_url)}"[:500])
        # A page that loaded but lacks what the collector waits for: the portal changed.
        return Outcome(CollectionErrorCode.INTERFACE_CHANGED, _first_line(exc))
    if isinstance(exc, PlaywrightError):
        if is_network_error(exc):
            url = failed_url(exc)
            if on_host(url, portal_url):
                return Outcome(CollectionErrorCode.SUPPLIER_UNAVAILABLE, _first_line(exc))
            return Outcome(CollectionErrorCode.INTERNAL_ERROR, f"{_first_line(exc)}{_elsewhere(url, portal_url)}"[:500])
        return Outcome(CollectionErrorCode.INTERNAL_ERROR, _first_line(exc))
    if isinstance(exc, TimeoutError):
        return Outcome(CollectionErrorCode.SUPPLIER_UNAVAILABLE, "collection timed out")
    return Outcome(CollectionErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
