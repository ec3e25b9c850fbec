"""The collector kit: what a collector plugin is made of and the typed errors it may raise."""

from services.scraper.kit.collector import CollectContext, Collector, Found
from services.scraper.kit.download import fetch_document, fetch_documents, judge_download
from services.scraper.kit.errors import (
    AccountLocked,
    ActionRequiredOnSite,
    CaptchaRequired,
    CollectorError,
    DownloadFailed,
    InterfaceChanged,
    LoginFailed,
    PasswordExpired,
    RateLimited,
    SessionExpired,
    SupplierUnavailable,
    TwoFactorRequired,
)
from services.scraper.kit.http import raise_for_status, retry_after_seconds
from services.scraper.kit.invoice import CollectedDocument, DocumentKind, InvoiceRef, MissingDocument
from services.scraper.kit.manifest import LoginKind, Manifest

__all__ = [
    "AccountLocked",
    "ActionRequiredOnSite",
    "CaptchaRequired",
    "CollectContext",
    "CollectedDocument",
    "Collector",
    "CollectorError",
    "DocumentKind",
    "DownloadFailed",
    "Found",
    "InterfaceChanged",
    "InvoiceRef",
    "LoginFailed",
    "LoginKind",
    "Manifest",
    "MissingDocument",
    "PasswordExpired",
    "RateLimited",
    "SessionExpired",
    "SupplierUnavailable",
    "TwoFactorRequired",
    "fetch_document",
    "fetch_documents",
    "judge_download",
    "raise_for_status",
    "retry_after_seconds",
]
