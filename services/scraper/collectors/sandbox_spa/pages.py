"""Pure reading of the SPA portal's JSON API replies: no browser, unit-tested on saved replies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from services.scraper.kit import (
    ISO,
    ActionRequiredOnSite,
    CaptchaRequired,
    CollectorError,
    DocumentKind,
    InterfaceChanged,
    InvoiceRef,
    LoginFailed,
    PasswordExpired,
    TwoFactorRequired,
    parse_amount,
    parse_date,
)

CSRF_HEADER = "X-CSRF-Token"
_KINDS: dict[str, DocumentKind] = {"invoice": "invoice", "credit_note": "credit_note"}
# What the portal says stands between a good password and the invoices.
_NEXT_STEPS: dict[str, type[CollectorError]] = {
    "password_expired": PasswordExpired,
    "terms": ActionRequiredOnSite,
    "otp": TwoFactorRequired,
}


@dataclass(frozen=True)
class InvoicePage:
    refs: list[InvoiceRef]
    page: int
    page_count: int


def _object(payload: Any, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InterfaceChanged(f"{what}: expected a JSON object")
    return payload


def parse_login(status: int, payload: Any) -> str:
    """The session's new CSRF token, or the typed error the login reply means."""
    reply = _object(payload, "login reply")
    if status == 200:
        step = reply.get("next")
        if step in _NEXT_STEPS:
            raise _NEXT_STEPS[step](f"the portal asks for {step} after login")
        if step is not None:
            raise InterfaceChanged(f"unknown step after login: {step!r}")
        token = reply.get("csrf_token")
        if not isinstance(token, str) or not token:
            raise InterfaceChanged("login reply without csrf_token")
        return token
    error = reply.get("error")
    if error == "invalid_credentials":
        raise LoginFailed("the portal rejected the login or password")
    if error == "captcha_required":
        raise CaptchaRequired("the portal asks for a captcha at login")
    raise InterfaceChanged(f"unexpected login reply: HTTP {status} {error!r}")


def _ref(item: Any, api_url: str) -> InvoiceRef:
    entry = _object(item, "invoice item")
    try:
        total = _object(entry["total"], "invoice total")
        amount, _ = parse_amount(str(total["amount"]), ".")
        kind = _KINDS.get(str(entry["type"]))
        if kind is None:
            raise InterfaceChanged(f"unexpected document type {entry['type']!r}")
        return InvoiceRef(
            number=str(entry["number"]),
            issue_date=parse_date(str(entry["issued_on"]), ISO),
            amount=amount,
            currency=str(total["currency"]),
            kind=kind,
            download_url=urljoin(api_url, str(entry["pdf_url"])),
        )
    except KeyError as missing:
        raise InterfaceChanged(f"invoice item without {missing}") from None


def parse_invoice_page(payload: Any, api_url: str) -> InvoicePage:
    reply = _object(payload, "invoice list")
    items = reply.get("items")
    if not isinstance(items, list):
        raise InterfaceChanged("invoice list without items")
    try:
        page, page_count = int(reply["page"]), int(reply["page_count"])
    except (KeyError, TypeError, ValueError):
        raise InterfaceChanged("invoice list without page / page_count") from None
    return InvoicePage(refs=[_ref(item, api_url) for item in items], page=page, page_count=page_count)
