"""The SPA collector's parsers, on JSON replies saved from the sandbox's API."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.scraper.collectors.sandbox_spa import pages
from services.scraper.kit import (
    ActionRequiredOnSite,
    CaptchaRequired,
    InterfaceChanged,
    LoginFailed,
    PasswordExpired,
    TwoFactorRequired,
)

FIXTURES = Path(__file__).parent / "fixtures" / "sandbox_spa"
API = "http://127.0.0.1:8765/spa/api/invoices"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_login_gives_the_rotated_csrf_token() -> None:
    reply = fixture("login_ok.json")
    assert pages.parse_login(200, reply) == reply["csrf_token"]


@pytest.mark.parametrize(("status", "reply", "error"), [
    (401, {"error": "invalid_credentials"}, LoginFailed),
    (403, {"error": "captcha_required"}, CaptchaRequired),
    (200, {"next": "password_expired", "csrf_token": "t"}, PasswordExpired),
    (200, {"next": "terms", "csrf_token": "t"}, ActionRequiredOnSite),
    (200, {"next": "otp", "csrf_token": "t"}, TwoFactorRequired),
    (200, {"next": "survey", "csrf_token": "t"}, InterfaceChanged),
    (200, {"user": {}}, InterfaceChanged),
    (418, {"error": "teapot"}, InterfaceChanged),
    (200, ["not", "an", "object"], InterfaceChanged),
])
def test_login_replies_become_typed_errors(status: int, reply: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        pages.parse_login(status, reply)


def test_invoice_pages() -> None:
    first = pages.parse_invoice_page(fixture("invoices_page1.json"), API)
    assert (first.page, first.page_count, len(first.refs)) == (1, 2, 12)
    ref = first.refs[0]
    assert (ref.number, ref.issue_date, ref.amount, ref.currency, ref.kind) == (
        "FA2026-bf2baa-0003", date(2026, 3, 1), Decimal("3885.93"), "EUR", "invoice")
    assert ref.download_url == "http://127.0.0.1:8765/spa/api/invoices/FA2026-bf2baa-0003/pdf"
    assert any(r.kind == "credit_note" for r in first.refs)
    last = pages.parse_invoice_page(fixture("invoices_last.json"), API)
    assert (last.page, last.page_count, len(last.refs)) == (2, 2, 9)


def test_a_renamed_api_is_an_interface_change() -> None:
    with pytest.raises(InterfaceChanged, match="without 'total'"):
        pages.parse_invoice_page(fixture("invoices_renamed.json"), API)
    with pytest.raises(InterfaceChanged):
        pages.parse_invoice_page({"items": [], "page": "x"}, API)
