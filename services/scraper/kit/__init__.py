"""The collector kit: what a collector plugin is made of, the typed errors it may raise, and the
tools it reads a portal with. Collectors import from here only (``kit.recipe`` for recipes)."""

from services.scraper.kit.collector import CollectContext, Collector, Found
from services.scraper.kit.download import ACCEPT_PDF, document_limit, fetch_document, fetch_documents, judge_download
from services.scraper.kit.errors import (
    AccountLocked,
    ActionRequiredOnSite,
    CaptchaRequired,
    CollectorBug,
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
from services.scraper.kit.fetch import page_fetch, page_fetch_all, page_fill_and_click, page_html
from services.scraper.kit.forms import FormSubmission, submission
from services.scraper.kit.har import HarRecorder, HarReplay, scrub_har, scrub_recording
from services.scraper.kit.http import error_for_status, page_text, raise_for_status, retry_after_seconds
from services.scraper.kit.invoice import CollectedDocument, DocumentKind, InvoiceKey, InvoiceRef, MissingDocument
from services.scraper.kit.manifest import LoginKind, Manifest
from services.scraper.kit.offline import har_session, portal_url_for
from services.scraper.kit.portal_http import PortalHttp, navigation_headers
from services.scraper.kit.reply import HttpReply
from services.scraper.kit.values import FRENCH_LONG, ISO, parse_amount, parse_date, parse_kind
from services.scraper.kit.witness import Witness

__all__ = [
    "ACCEPT_PDF",
    "FRENCH_LONG",
    "ISO",
    "AccountLocked",
    "ActionRequiredOnSite",
    "CaptchaRequired",
    "CollectContext",
    "CollectedDocument",
    "Collector",
    "CollectorBug",
    "CollectorError",
    "DocumentKind",
    "DownloadFailed",
    "FormSubmission",
    "Found",
    "HarRecorder",
    "HarReplay",
    "HttpReply",
    "InterfaceChanged",
    "InvoiceKey",
    "InvoiceRef",
    "LoginFailed",
    "LoginKind",
    "Manifest",
    "MissingDocument",
    "PasswordExpired",
    "PortalHttp",
    "RateLimited",
    "SessionExpired",
    "SupplierUnavailable",
    "TwoFactorRequired",
    "Witness",
    "document_limit",
    "error_for_status",
    "fetch_document",
    "fetch_documents",
    "har_session",
    "judge_download",
    "navigation_headers",
    "page_fetch",
    "page_fetch_all",
    "page_fill_and_click",
    "page_html",
    "page_text",
    "parse_amount",
    "parse_date",
    "parse_kind",
    "portal_url_for",
    "raise_for_status",
    "retry_after_seconds",
    "scrub_har",
    "scrub_recording",
    "submission",
]
