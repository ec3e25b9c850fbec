"""The collector kit: what a collector plugin is made of and the typed errors it may raise."""

from services.scraper.kit.collector import CollectContext, Collector
from services.scraper.kit.errors import (
    AccountLocked,
    ActionRequiredOnSite,
    CollectorError,
    DownloadFailed,
    InterfaceChanged,
    LoginFailed,
    PasswordExpired,
    RateLimited,
    SupplierUnavailable,
    TwoFactorRequired,
)
from services.scraper.kit.invoice import CollectedDocument, DocumentKind, InvoiceRef
from services.scraper.kit.manifest import LoginKind, Manifest

__all__ = [
    "AccountLocked",
    "ActionRequiredOnSite",
    "CollectContext",
    "CollectedDocument",
    "Collector",
    "CollectorError",
    "DocumentKind",
    "DownloadFailed",
    "InterfaceChanged",
    "InvoiceRef",
    "LoginFailed",
    "LoginKind",
    "Manifest",
    "PasswordExpired",
    "RateLimited",
    "SupplierUnavailable",
    "TwoFactorRequired",
]
