"""Pure pieces of the collector kit: values, HTTP statuses, download verdicts, page facts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services.scraper.kit import (
    CollectedDocument,
    InterfaceChanged,
    InvoiceRef,
    MissingDocument,
    RateLimited,
    SessionExpired,
    SupplierUnavailable,
    judge_download,
    raise_for_status,
    retry_after_seconds,
)
from services.scraper.kit.har import scrub_har
from services.scraper.kit.html import fold, looks_like_login_page, page_facts
from services.scraper.kit.values import FRENCH_LONG, ISO, parse_amount, parse_date, parse_kind

REF = InvoiceRef(number="FA-1", issue_date=date(2026, 3, 1), amount=Decimal("1.00"), currency="EUR",
                 kind="invoice", download_url="http://portal.test/invoices/FA-1.pdf")


@pytest.mark.parametrize(("text", "separator", "value", "negative"), [
    ("3\u202f885,93\u00a0€", ",", "3885.93", False),
    ("\u221252,21\u00a0€", ",", "52.21", True),
    ("-1.234,50 EUR", ",", "1234.50", True),
    ("(12,00)", ",", "12.00", True),
    ("1,234.56", ".", "1234.56", False),
    ("-52.21", ".", "52.21", True),
    ("7", ",", "7.00", False),
])
def test_amounts(text: str, separator: str, value: str, negative: bool) -> None:
    assert parse_amount(text, separator) == (Decimal(value), negative)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "gratuit", "1,2,3"])
def test_unreadable_amounts_mean_the_portal_changed(text: str) -> None:
    with pytest.raises(InterfaceChanged):
        parse_amount(text)


def test_dates_and_kinds() -> None:
    assert parse_date("01/03/2026") == date(2026, 3, 1)
    assert parse_date("2026-03-01T10:00:00", ISO) == date(2026, 3, 1)
    assert parse_date("1er mars 2026", FRENCH_LONG) == date(2026, 3, 1)
    assert parse_date("25 Décembre 2025", FRENCH_LONG) == date(2025, 12, 25)
    with pytest.raises(InterfaceChanged):
        parse_date("March 1st", ISO)
    labels = {"Facture": "invoice", "Avoir": "credit_note"}
    assert parse_kind(" AVOIR ", labels) == "credit_note"  # type: ignore[arg-type]
    with pytest.raises(InterfaceChanged):
        parse_kind("Relevé", labels)  # type: ignore[arg-type]


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Sun, 01 Mar 2026 12:05:00 GMT", now) == 300.0
    assert retry_after_seconds("Sun, 01 Mar 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert retry_after_seconds("99999999") == 7 * 24 * 3600.0


def test_statuses_become_typed_errors() -> None:
    with pytest.raises(RateLimited) as limited:
        raise_for_status(429, {"retry-after": "60"}, "list")
    assert limited.value.retry_after_s == 60.0
    with pytest.raises(SupplierUnavailable):
        raise_for_status(503, {}, "list")
    with pytest.raises(SessionExpired):
        raise_for_status(401, {}, "list")
    raise_for_status(200, {}, "list")
    raise_for_status(404, {}, "list")  # the collector's call: a missing page is not always an outage


def test_download_verdicts() -> None:
    pdf = judge_download(REF, 200, {"content-type": "application/pdf"}, b"%PDF-1.4 ...", REF.download_url)
    assert isinstance(pdf, CollectedDocument) and pdf.size == 12 and len(pdf.sha256) == 64
    broken = judge_download(REF, 500, {}, b"oops", REF.download_url)
    assert isinstance(broken, MissingDocument) and broken.reason == "HTTP 500"
    error_page = judge_download(REF, 200, {"content-type": "text/html"}, b"<p>indisponible</p>", REF.download_url)
    assert isinstance(error_page, MissingDocument) and error_page.reason == "not a PDF"
    login = b'<form id="login"><input type="password" name="password"></form>'
    with pytest.raises(SessionExpired):
        judge_download(REF, 200, {"content-type": "text/html"}, login, "http://portal.test/login")
    with pytest.raises(SessionExpired):
        judge_download(REF, 401, {}, b"", REF.download_url)
    with pytest.raises(RateLimited):
        judge_download(REF, 429, {"retry-after": "5"}, b"", REF.download_url)


def test_page_facts_see_only_what_is_shown() -> None:
    facts = page_facts('<head><title>Maintenance</title></head><body><script>"captcha"</script>'
                       '<p class="Notice big">Mot de passe  EXPIRÉ</p><input type="password"></body>')
    assert facts.text == "mot de passe expire"
    assert {"notice", "big"} <= facts.markers
    assert looks_like_login_page(facts)
    assert not looks_like_login_page(page_facts("<p>Mes factures</p>"))
    assert fold("Conditions\u00a0générales d’utilisation") == "conditions generales d'utilisation"


def test_scrub_har_removes_the_password_from_requests(tmp_path: Path) -> None:
    har = tmp_path / "portal.har"
    har.write_text(json.dumps({"log": {"entries": [
        {"request": {"url": "https://p.test/login?next=%2F", "queryString": [],
                     "postData": {"text": "login=pharma&password=s%C3%A9cret+1", "params": []}},
         "response": {"content": {"text": "Bonjour"}}},
        {"request": {"url": "https://p.test/api?token=sécret 1",
                     "queryString": [{"name": "token", "value": "sécret 1"}]},
         "response": {}},
        {"request": {"url": "https://p.test/invoices", "queryString": []}, "response": {}},
    ]}}), encoding="utf-8")
    assert scrub_har(har, {"sécret 1": "scrubbed-password"}) == 2
    text = har.read_text(encoding="utf-8")
    assert "cret" not in text and text.count("scrubbed-password") == 3


def test_scrub_har_finds_the_password_in_json_bodies_and_headers(tmp_path: Path) -> None:
    secret = 'pa"ss\\wörd'
    har = tmp_path / "portal.har"
    har.write_text(json.dumps({"log": {"entries": [
        {"request": {"url": "https://p.test/api/login", "queryString": [], "headers": [],
                     "postData": {"text": json.dumps({"login": "p", "password": secret}), "params": []}},
         "response": {}},
        {"request": {"url": "https://p.test/api/login2", "queryString": [], "headers": [],
                     "postData": {"text": json.dumps({"password": secret}, ensure_ascii=False), "params": []}},
         "response": {}},
        {"request": {"url": "https://p.test/api/me", "queryString": [],
                     "headers": [{"name": "X-Api-Key", "value": secret}]}, "response": {}},
    ]}}), encoding="utf-8")
    assert scrub_har(har, {secret: "scrubbed-password"}) == 3
    entries = json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]
    assert json.loads(entries[0]["request"]["postData"]["text"])["password"] == "scrubbed-password"
    assert json.loads(entries[1]["request"]["postData"]["text"])["password"] == "scrubbed-password"
    assert entries[2]["request"]["headers"][0]["value"] == "scrubbed-password"


def test_a_ref_is_known_by_its_site_and_number() -> None:
    from dataclasses import replace

    from services.scraper.kit import CollectContext
    from services.scraper.kit.har import HarReplay
    from services.scraper.kit.portal_http import PortalHttp

    on_a, on_b = replace(REF, site="A"), replace(REF, site="B")
    assert REF.site is None and REF.key == (None, "FA-1") and on_a.key == ("A", "FA-1")
    # Blank is no site: the key documents had before sites.
    assert replace(REF, site="  ").site is None and replace(REF, site=" A ").site == "A"
    ctx = CollectContext(portal_url="http://portal.test/", login="l", password="p",
                         http=PortalHttp(None, replay=HarReplay([])), known=frozenset({("A", "FA-1"), (None, "FA-2")}))
    # A number known on site A does not hide site B's document, nor the site-less one.
    assert ctx.is_known(on_a) and not ctx.is_known(on_b) and not ctx.is_known(REF)
    assert ctx.is_known(replace(REF, number="FA-2")) and not ctx.is_known(replace(REF, number="FA-2", site="A"))
    # The deprecated view: numbers known without a site only.
    assert ctx.known_numbers == {"FA-2"}
