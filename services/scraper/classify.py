"""Turning whatever a collector raised into a §4 error code, in one place for every collector."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from services.scraper.kit.errors import CollectorError, RateLimited
from shared.errors import CollectionErrorCode

# Chromium's network errors: the portal could not be reached at all.
_NETWORK_MARKERS = ("net::ERR_", "NS_ERROR_", "ECONNREFUSED", "Connection refused")


@dataclass(frozen=True)
class Outcome:
    code: CollectionErrorCode
    detail: str
    retry_after_s: float | None = None


def classify(exc: BaseException) -> Outcome:
    if isinstance(exc, CollectorError):
        retry_after = exc.retry_after_s if isinstance(exc, RateLimited) else None
        return Outcome(exc.code, exc.detail or type(exc).__name__, retry_after)
    if isinstance(exc, PlaywrightTimeout):
        # A page that loaded but lacks what the collector waits for: the portal changed.
        return Outcome(CollectionErrorCode.INTERFACE_CHANGED, _first_line(exc))
    if isinstance(exc, PlaywrightError):
        message = str(exc)
        if any(marker in message for marker in _NETWORK_MARKERS):
            return Outcome(CollectionErrorCode.SUPPLIER_UNAVAILABLE, _first_line(exc))
        return Outcome(CollectionErrorCode.INTERNAL_ERROR, _first_line(exc))
    if isinstance(exc, TimeoutError):
        return Outcome(CollectionErrorCode.SUPPLIER_UNAVAILABLE, "collection timed out")
    return Outcome(CollectionErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
