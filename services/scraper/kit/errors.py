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


class CollectorBug(CollectorError):
    """Our side failed, not the portal: a recipe or collector asked for something that cannot be
    done (a URL that is not http(s), a selector that does not parse, a request Playwright refuses).

    Its code is ``internal_error``: retried later, shown to the collector team, never counted
    toward a supplier-wide incident nor shown to the pharmacist as the supplier's fault. Its
    message names what in the recipe or collector is wrong.
    """

    code = CollectionErrorCode.INTERNAL_ERROR


class PortalUnreachable(SupplierUnavailable):
    """No HTTP answer at all from ``url`` (refused, reset, name not resolved, timed out).

    The supplier's outage only when ``url`` is on the portal's own host: the framework, which
    knows that host, turns a third-party host's silence into ``internal_error``.
    """

    def __init__(self, detail: str = "", *, url: str | None = None) -> None:
        super().__init__(detail)
        self.url = url


# What a request that got no HTTP answer says (Chromium's net stack, Firefox's, Node's as
# Playwright's request client reports it): the far end refused, dropped or never answered.
# Anything else a request fails with (net::ERR_ABORTED, ERR_INVALID_URL, ERR_UNKNOWN_URL_SCHEME,
# ERR_BLOCKED_BY_CLIENT, 'Protocol "javascript:" not supported', "Invalid URL"...) is our doing.
NO_ANSWER_MARKERS = (
    "ERR_CONNECTION_REFUSED", "ERR_CONNECTION_RESET", "ERR_CONNECTION_CLOSED", "ERR_CONNECTION_ABORTED",
    "ERR_CONNECTION_FAILED", "ERR_CONNECTION_TIMED_OUT", "ERR_TIMED_OUT", "ERR_NAME_NOT_RESOLVED",
    "ERR_NAME_RESOLUTION_FAILED", "ERR_ADDRESS_UNREACHABLE", "ERR_EMPTY_RESPONSE", "ERR_SSL_PROTOCOL_ERROR",
    "ERR_SSL_VERSION_OR_CIPHER_MISMATCH", "ERR_CERT_", "ERR_HTTP2_PROTOCOL_ERROR", "ERR_INVALID_HTTP_RESPONSE",
    "ERR_RESPONSE_HEADERS_TRUNCATED", "ERR_CONTENT_LENGTH_MISMATCH", "ERR_INCOMPLETE_CHUNKED_ENCODING",
    "NS_ERROR_CONNECTION_REFUSED", "NS_ERROR_NET_RESET", "NS_ERROR_NET_TIMEOUT", "NS_ERROR_UNKNOWN_HOST",
    "NS_ERROR_NET_INTERRUPT",
    "ECONNREFUSED", "Connection refused", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH",
    "socket hang up", "Parse Error", "HPE_", "certificate", "CERT_", "EPROTO",
)


def is_no_answer(message: str) -> bool:
    """Whether a failed request's message says the far end gave no HTTP answer."""
    return any(marker in message for marker in NO_ANSWER_MARKERS)
