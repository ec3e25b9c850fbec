"""Pure parsing of the classic sandbox portal's pages: no browser, unit-tested on saved HTML."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from urllib.parse import urljoin

from services.scraper.kit import DocumentKind, InterfaceChanged, InvoiceRef

CURRENCY = "EUR"
_KINDS: dict[str, DocumentKind] = {"facture": "invoice", "avoir": "credit_note"}
_CELLS = ("number", "date", "kind", "amount")
# Every kind of space French formatting uses as a thousands separator (incl. no-break ones).
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009]+")


def parse_french_amount(text: str) -> Decimal:
    """``1 234,56 €`` (any space flavour, optional currency sign) -> ``Decimal("1234.56")``."""
    cleaned = _SPACES.sub("", text).removesuffix("€").removesuffix("EUR").replace(",", ".")
    try:
        return Decimal(cleaned).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise InterfaceChanged(f"unexpected amount {text!r}") from None


def parse_french_date(text: str) -> date:
    try:
        return datetime.strptime(text.strip(), "%d/%m/%Y").date()
    except ValueError:
        raise InterfaceChanged(f"unexpected date {text!r}") from None


def parse_kind(text: str) -> DocumentKind:
    try:
        return _KINDS[text.strip().lower()]
    except KeyError:
        raise InterfaceChanged(f"unexpected document type {text!r}") from None


class _PortalPage(HTMLParser):
    """Collects what the collector needs from one page in a single pass."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.has_login_error = False
        self.login_inputs: set[str] = set()
        self._in_login_form = False
        self.has_invoice_table = False
        self.next_href: str | None = None
        self.rows: list[dict[str, str]] = []
        self._row: dict[str, str] | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        classes = attributes.get("class", "").split()
        if attributes.get("id") == "login-error":
            self.has_login_error = True
        if tag == "form" and attributes.get("id") == "login-form":
            self._in_login_form = True
        elif tag == "input" and self._in_login_form:
            self.login_inputs.add(attributes.get("name", ""))
        elif tag == "table" and attributes.get("id") == "invoices":
            self.has_invoice_table = True
        elif tag == "tr" and "invoice-row" in classes:
            self._row = {}
        elif tag == "td" and self._row is not None:
            self._cell = next((c for c in classes if c in (*_CELLS, "download")), None)
            if self._cell in _CELLS:
                self._row[self._cell] = ""
        elif tag == "a":
            if self._row is not None and self._cell == "download":
                self._row["href"] = attributes.get("href", "")
            elif "next" in attributes.get("rel", "").split():
                self.next_href = attributes.get("href") or None

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_login_form = False
        elif tag == "td":
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._cell in _CELLS:
            self._row[self._cell] += data


def _parse(html: str) -> _PortalPage:
    parser = _PortalPage()
    parser.feed(html)
    parser.close()
    return parser


def has_login_form(html: str) -> bool:
    return {"login", "password"} <= _parse(html).login_inputs


def is_login_error(html: str) -> bool:
    return _parse(html).has_login_error


def parse_invoice_list(html: str, page_url: str) -> tuple[list[InvoiceRef], str | None]:
    """The page's documents (absolute download URLs) and the next page's absolute URL, if any."""
    parsed = _parse(html)
    if not parsed.has_invoice_table:
        raise InterfaceChanged("invoice table #invoices not found")
    refs: list[InvoiceRef] = []
    for row in parsed.rows:
        missing = [name for name in (*_CELLS, "href") if not row.get(name, "").strip()]
        if missing:
            raise InterfaceChanged(f"invoice row without {', '.join(missing)}")
        refs.append(
            InvoiceRef(
                number=row["number"].strip(),
                issue_date=parse_french_date(row["date"]),
                amount=parse_french_amount(row["amount"]),
                currency=CURRENCY,
                kind=parse_kind(row["kind"]),
                download_url=urljoin(page_url, row["href"]),
            )
        )
    next_url = urljoin(page_url, parsed.next_href) if parsed.next_href else None
    return refs, next_url
