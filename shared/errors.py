"""Error codes of the public contract (§3, §4) and the exception hierarchy of the API.

Every API reply is either a result or ``{"error": {"code", "message", "field"?}}``; services raise
``ApiError`` subclasses and the reply middleware turns them into that shape.
"""

from __future__ import annotations

from enum import StrEnum


class CollectionErrorCode(StrEnum):
    """Outcome of a collection that did not fully succeed (§4)."""

    LOGIN_FAILED = "login_failed"
    PASSWORD_EXPIRED = "password_expired"
    ACCOUNT_LOCKED = "account_locked"
    ACTION_REQUIRED_ON_SITE = "action_required_on_site"
    TWO_FACTOR_REQUIRED = "two_factor_required"
    SUPPLIER_UNAVAILABLE = "supplier_unavailable"
    RATE_LIMITED = "rate_limited"
    INTERFACE_CHANGED = "interface_changed"
    DOWNLOAD_FAILED = "download_failed"
    INTERNAL_ERROR = "internal_error"

    @property
    def user_fixable(self) -> bool:
        return self in USER_FIXABLE


USER_FIXABLE = frozenset(
    {
        CollectionErrorCode.LOGIN_FAILED,
        CollectionErrorCode.PASSWORD_EXPIRED,
        CollectionErrorCode.ACCOUNT_LOCKED,
        CollectionErrorCode.ACTION_REQUIRED_ON_SITE,
        CollectionErrorCode.TWO_FACTOR_REQUIRED,
    }
)


class ApiErrorCode(StrEnum):
    """Codes of request/reply API errors."""

    VALIDATION_ERROR = "validation_error"
    NOT_FOUND = "not_found"
    UNKNOWN_COLLECTOR = "unknown_collector"
    TOO_MANY_ACCOUNTS = "too_many_accounts"
    DUPLICATE_ACCOUNT = "duplicate_account"
    CONFLICT = "conflict"
    INTERNAL_ERROR = "internal_error"
    UNAVAILABLE = "unavailable"


class ApiError(Exception):
    """An error the API reports to its caller; ``message`` is safe to show (never holds a secret)."""

    code: ApiErrorCode = ApiErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(ApiError):
    code = ApiErrorCode.VALIDATION_ERROR


class NotFound(ApiError):
    code = ApiErrorCode.NOT_FOUND


class UnknownCollector(ApiError):
    code = ApiErrorCode.UNKNOWN_COLLECTOR


class TooManyAccounts(ApiError):
    code = ApiErrorCode.TOO_MANY_ACCOUNTS


class DuplicateAccount(ApiError):
    code = ApiErrorCode.DUPLICATE_ACCOUNT


class Conflict(ApiError):
    code = ApiErrorCode.CONFLICT


class RemoteApiError(ApiError):
    """Raised by the API client when a service replied with an error."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.remote_code = code
