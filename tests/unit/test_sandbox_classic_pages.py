"""The classic collector's parsers, on HTML saved from the sandbox portal."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.scraper.collectors.sandbox_classic import pages
from services.scraper.kit import InterfaceChanged

FIXTURES = Path(__file__).parent / "fixtures" / "sandbox_classic"
PAGE_URL = "http://127.0.0.1:8765/classic/invoices"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("1 234,56 €", Decimal("1234.56")),
        ("1\u202f234,56\u00a0€", Decimal("1234.56")),
        ("1\u00a0234\u00a0567,8 €", Decimal("1234567.80")),
        ("52,21 €", Decimal("52.21")),
        (" 0,05 ", Decimal("0.05")),
        ("12 345,00 EUR", Decimal("12345.00")),
    ],
)
def test_french_amounts(text: str, amount: Decimal) -> None:
    assert pages.parse_french_amount(text) == amount


@pytest.mark.parametrize("text", ["", "douze euros", "1.234.56 €"])
def test_unreadable_amount_is_an_interface_change(text: str) -> None:
    with pytest.raises(InterfaceChanged):
        pages.parse_french_amount(text)


def test_french_dates_and_kinds() -> None:
    assert pages.parse_french_date("01/03/2026") == date(2026, 3, 1)
    assert pages.parse_french_date(" 25/12/2025\n") == date(2025, 12, 25)
    assert pages.parse_kind("Facture") == "invoice"
    assert pages.parse_kind("Avoir") == "credit_note"
    with pytest.raises(InterfaceChanged):
        pages.parse_french_date("2026-03-01")
    with pytest.raises(InterfaceChanged):
        pages.parse_kind("Relevé")


def test_first_list_page() -> None:
    refs, next_url = pages.parse_invoice_list(fixture("invoices_page1.html"), PAGE_URL)
    assert len(refs) == 10
    assert next_url == "http://127.0.0.1:8765/classic/invoices?page=2"
    first = refs[0]
    assert first.number == "FA2026-bf2baa-0003"
    assert first.issue_date == date(2026, 3, 1)
    assert first.amount == Decimal("3885.93")  # shown with a narrow no-break space
    assert first.currency == "EUR"
    assert first.kind == "invoice"
    assert first.download_url == "http://127.0.0.1:8765/classic/invoices/FA2026-bf2baa-0003.pdf"
    credit_note = refs[3]
    assert (credit_note.number, credit_note.kind, credit_note.amount) == (
        "AV2026-bf2baa-0001",
        "credit_note",
        Decimal("52.21"),
    )
    assert [ref.issue_date for ref in refs] == sorted((ref.issue_date for ref in refs), reverse=True)


def test_last_list_page_has_no_next_link() -> None:
    refs, next_url = pages.parse_invoice_list(fixture("invoices_last.html"), f"{PAGE_URL}?page=3")
    assert next_url is None
    assert [(ref.number, ref.issue_date, ref.amount) for ref in refs] == [
        ("FA2025-bf2baa-0001", date(2025, 3, 25), Decimal("4166.87"))
    ]


def test_missing_table_is_an_interface_change() -> None:
    with pytest.raises(InterfaceChanged):
        pages.parse_invoice_list(fixture("invoices_no_table.html"), PAGE_URL)
    with pytest.raises(InterfaceChanged):
        pages.parse_invoice_list(fixture("login_error.html"), PAGE_URL)


def test_row_missing_a_cell_is_an_interface_change() -> None:
    html = fixture("invoices_page1.html").replace('<td class="amount">', '<td class="total">', 1)
    with pytest.raises(InterfaceChanged):
        pages.parse_invoice_list(html, PAGE_URL)


def test_login_error_detection() -> None:
    assert pages.is_login_error(fixture("login_error.html"))
    assert pages.has_login_form(fixture("login_error.html"))
    for name in ("invoices_page1.html", "invoices_last.html", "invoices_no_table.html"):
        assert not pages.is_login_error(fixture(name))
        assert not pages.has_login_form(fixture(name))


def test_collector_does_not_depend_on_the_sandbox_code() -> None:
    check = (
        "import sys, services.scraper.collectors.sandbox_classic; "
        "sys.exit(any(m == 'sandbox' or m.startswith('sandbox.') for m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", check], cwd=root, check=False).returncode == 0
