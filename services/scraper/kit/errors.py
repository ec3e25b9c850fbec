"""Typed errors a collector raises; the framework maps each to its §4 error code.

A collector never decides an account's status: it raises one of these (or lets a Playwright
timeout escape, which the framework classifies) and the worker does the rest.
"""

from __future__ import annotations

from shared.errors import CollectionErrorCode


class CollectorError(Exception):
    code: CollectionErrorCode = CollectionErrorCode.INTERNAL_ERROR

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code.value)
        self.detail = detail


class LoginFailed(CollectorError):
    code = CollectionErrorCode.LOGIN_FAILED


class PasswordExpired(CollectorError):
    code = CollectionErrorCode.PASSWORD_EXPIRED


class AccountLocked(CollectorError):
    code = CollectionErrorCode.ACCOUNT_LOCKED


class ActionRequiredOnSite(CollectorError):
    code = CollectionErrorCode.ACTION_REQUIRED_ON_SITE


class TwoFactorRequired(CollectorError):
    code = CollectionErrorCode.TWO_FACTOR_REQUIRED


class SupplierUnavailable(CollectorError):
    code = CollectionErrorCode.SUPPLIER_UNAVAILABLE


class RateLimited(CollectorError):
    code = CollectionErrorCode.RATE_LIMITED

    def __init__(self, detail: str = "", *, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class InterfaceChanged(CollectorError):
    code = CollectionErrorCode.INTERFACE_CHANGED


class DownloadFailed(CollectorError):
    """Some documents could not be fetched; the others were collected."""

    code = CollectionErrorCode.DOWNLOAD_FAILED


class CaptchaRequired(RateLimited):
    """The portal wants a human to prove itself: it is pushing back on automated logins."""


class SessionExpired(CollectorError):
    """The portal logged us out mid-run. The framework logs in again and resumes; only a portal
    that keeps doing it ends the run (as unavailable, so it is retried later)."""

    code = CollectionErrorCode.SUPPLIER_UNAVAILABLE
