"""Turning whatever a collector raised into a §4 error code, in one place for every collector."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from services.scraper.diagnose import Diagnosis
from services.scraper.kit.errors import CollectorError, InterfaceChanged, RateLimited
from shared.errors import CollectionErrorCode

# Chromium's network errors: the portal could not be reached at all.
_NETWORK_MARKERS = ("net::ERR_", "NS_ERROR_", "ECONNREFUSED", "Connection refused")


@dataclass(frozen=True)
class Outcome:
    code: CollectionErrorCode
    detail: str
    retry_after_s: float | None = None


def is_network_error(exc: BaseException) -> bool:
    return isinstance(exc, PlaywrightError) and not isinstance(exc, PlaywrightTimeout) and any(
        marker in str(exc) for marker in _NETWORK_MARKERS)


def needs_diagnosis(exc: BaseException) -> bool:
    """Whether the page must be looked at to know what this failure means.

    A typed error says what happened, except ``InterfaceChanged``: "what I expected is not there"
    is what a collector says in front of a maintenance page or a captcha too.
    """
    if isinstance(exc, CollectorError):
        return isinstance(exc, InterfaceChanged)
    if isinstance(exc, PlaywrightTimeout):
        return True
    # Unreachable portals have no page to read; the job's own deadline says nothing about the page.
    return not (is_network_error(exc) or isinstance(exc, TimeoutError))


def classify(exc: BaseException, diagnosis: Diagnosis | None = None) -> Outcome:
    if isinstance(exc, CollectorError) and not (diagnosis and isinstance(exc, InterfaceChanged)):
        retry_after = exc.retry_after_s if isinstance(exc, RateLimited) else None
        return Outcome(exc.code, exc.detail or type(exc).__name__, retry_after)
    if diagnosis is not None:
        return Outcome(diagnosis.code, f"{diagnosis.detail}; collector said: {_first_line(exc)}"[:500],
                       diagnosis.retry_after_s)
    if isinstance(exc, PlaywrightTimeout):
        # A page that loaded but lacks what the collector waits for: the portal changed.
        return Outcome(CollectionErrorCode.INTERFACE_CHANGED, _first_line(exc))
    if isinstance(exc, PlaywrightError):
        if is_network_error(exc):
            return Outcome(CollectionErrorCode.SUPPLIER_UNAVAILABLE, _first_line(exc))
        return Outcome(CollectionErrorCode.INTERNAL_ERROR, _first_line(exc))
    if isinstance(exc, TimeoutError):
        return Outcome(CollectionErrorCode.SUPPLIER_UNAVAILABLE, "collection timed out")
    return Outcome(CollectionErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
