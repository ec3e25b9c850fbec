"""The files ``collectors dev new`` writes: a collector package (navigation apart from pure page
parsing, or a recipe) with a unit test on a saved page and an offline test on a recorded session."""

from __future__ import annotations

from string import Template

_INIT_CODE = '''"""Collector for $title."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.scraper.kit import CollectContext, Collector, Found, Manifest

from . import navigation

MANIFEST = Manifest(
    id="$name",
    name="$title",
    supplier="TODO: the supplier's name",
    portal_url="https://portal.example.com/",  # TODO: the portal's address
    login_kind="identifier",
    frequency_hours=24,
    max_sessions=2,
)


class PortalCollector:
    def __init__(self) -> None:
        self.manifest = MANIFEST

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        async for found in navigation.collect(ctx):
            yield found


COLLECTOR: Collector = PortalCollector()

__all__ = ["COLLECTOR", "MANIFEST"]
'''

_NAVIGATION = '''"""Reading the portal over HTTP (no page: cheaper); all HTML understanding is in ``pages``.

Timeouts, retries and telling why a page is not what was expected (maintenance, captcha, terms...)
are the framework's: raise ``InterfaceChanged`` when something is missing and it reads what the
portal last answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urljoin

from services.scraper.kit import (
    CollectContext,
    Found,
    InterfaceChanged,
    LoginFailed,
    fetch_documents,
    page_text,
    submission,
)

from . import pages

MAX_PAGES = 500


async def _log_in(ctx: CollectContext) -> tuple[str, str]:
    """Log in; returns the page the portal lands on: its URL and HTML."""
    login_url = urljoin(ctx.base_url, "login")  # TODO: the login page
    shown = await ctx.http.get(login_url)
    html = page_text(shown, login_url)
    if not pages.has_login_form(html):
        raise InterfaceChanged("login form not found")
    form = submission(html, shown.url, "form#login-form [type=submit]",
                      {"input[name=login]": ctx.login, "input[name=password]": ctx.password}, charset=shown.charset)
    reply = await ctx.http.submit(form)
    landed = page_text(reply, form.url, accept=(401, 403))
    if pages.is_login_error(landed):
        raise LoginFailed("the portal rejected the login or password")
    return reply.url, landed


async def collect(ctx: CollectContext) -> AsyncIterator[Found]:
    page_url, html = await _log_in(ctx)
    ctx.mark_logged_in()
    list_url = urljoin(ctx.base_url, "invoices")  # TODO: the invoice list
    reply = await ctx.http.get(list_url)
    page_url, html = reply.url, page_text(reply, list_url)
    for _ in range(MAX_PAGES):
        refs, next_url = pages.parse_invoice_list(html, page_url)
        async for found in fetch_documents(ctx.http, refs):
            yield found
        ctx.heartbeat()
        if next_url is None:
            return
        reply = await ctx.http.get(next_url)
        page_url, html = reply.url, page_text(reply, next_url)
    raise InterfaceChanged(f"more than {MAX_PAGES} list pages")
'''

_PAGES = '''"""Pure parsing of the portal's pages: no browser, no network; unit-tested on saved pages."""

from __future__ import annotations

from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser, LexborNode

from services.scraper.kit import DocumentKind, InterfaceChanged, InvoiceRef, parse_amount, parse_date, parse_kind

CURRENCY = "EUR"
KINDS: dict[str, DocumentKind] = {"facture": "invoice", "avoir": "credit_note"}
# TODO: the selectors of the real pages.
LOGIN_FORM = "form#login-form"
LOGIN_ERROR = "#login-error"
ROW = "table#invoices tr.invoice-row"
NEXT_PAGE = "a[rel=next]"


def _text(row: LexborNode, selector: str) -> str:
    node = row.css_first(selector)
    if node is None:
        raise InterfaceChanged(f"invoice row without {selector}")
    return node.text(deep=True, separator=" ").strip()


def has_login_form(html: str) -> bool:
    return LexborHTMLParser(html).css_first(LOGIN_FORM) is not None


def is_login_error(html: str) -> bool:
    return LexborHTMLParser(html).css_first(LOGIN_ERROR) is not None


def parse_invoice_list(html: str, page_url: str) -> tuple[list[InvoiceRef], str | None]:
    """The page's documents (absolute download URLs) and the next page's absolute URL, if any."""
    document = LexborHTMLParser(html)
    refs = []
    for row in document.css(ROW):
        link = row.css_first("a.download")
        href = link.attributes.get("href") if link is not None else None
        if not href:
            raise InterfaceChanged("invoice row without a download link")
        amount, _negative = parse_amount(_text(row, ".amount"))
        refs.append(InvoiceRef(
            number=_text(row, ".number"),
            issue_date=parse_date(_text(row, ".date")),
            amount=amount,
            currency=CURRENCY,
            kind=parse_kind(_text(row, ".kind"), KINDS),
            download_url=urljoin(page_url, href),
        ))
    next_link = document.css_first(NEXT_PAGE)
    next_href = next_link.attributes.get("href") if next_link is not None else None
    return refs, urljoin(page_url, next_href) if next_href else None
'''

_SAVED_PAGE = """<!DOCTYPE html>
<!-- A placeholder: replace it with a real list page of the portal (saved from the browser, with
     the pharmacy's name and amounts changed if they are not a test account's). -->
<html lang="fr"><head><meta charset="utf-8"><title>Mes factures</title></head>
<body>
<table id="invoices">
  <tr><th>N°</th><th>Date</th><th>Type</th><th>Montant</th><th></th></tr>
  <tr class="invoice-row"><td class="number">FA-0001</td><td class="date">01/03/2026</td>
    <td class="kind">Facture</td><td class="amount">1 234,56 €</td>
    <td><a class="download" href="documents/FA-0001.pdf">PDF</a></td></tr>
  <tr class="invoice-row"><td class="number">AV-0002</td><td class="date">02/03/2026</td>
    <td class="kind">Avoir</td><td class="amount">-12,00 €</td>
    <td><a class="download" href="documents/AV-0002.pdf">PDF</a></td></tr>
</table>
<a rel="next" href="invoices?page=2">Page suivante</a>
</body></html>
"""

_TEST_PAGES_CODE = '''"""The page parsing of $name on saved pages (no browser, no network)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from .. import pages

SAVED = Path(__file__).parent / "saved"
URL = "https://portal.example.com/invoices"


def test_reads_the_invoice_list() -> None:
    html = (SAVED / "list_page.html").read_text(encoding="utf-8")
    refs, next_url = pages.parse_invoice_list(html, URL)
    # TODO: what the real saved page holds.
    assert [(r.number, r.issue_date, r.amount, r.kind) for r in refs] == [
        ("FA-0001", date(2026, 3, 1), Decimal("1234.56"), "invoice"),
        ("AV-0002", date(2026, 3, 2), Decimal("12.00"), "credit_note"),
    ]
    assert refs[0].download_url == "https://portal.example.com/documents/FA-0001.pdf"
    assert next_url == "https://portal.example.com/invoices?page=2"


def test_a_login_page_is_no_list() -> None:
    assert not pages.has_login_form((SAVED / "list_page.html").read_text(encoding="utf-8"))
'''

_TEST_OFFLINE = '''"""$name replayed offline from a recorded session (`collectors dev record`): no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.dev import collect

from .. import COLLECTOR

pytestmark = pytest.mark.browser

SESSION = Path(__file__).parent / "saved" / "session.har"
LOGIN = "TODO: the login the session was recorded with"


@pytest.mark.skipif(not SESSION.exists(), reason="no recorded session: `collectors dev record $name ...`")
async def test_replays_the_recorded_session() -> None:
    result = await collect(COLLECTOR, login=LOGIN, password="scrubbed-password", replay=SESSION)
    assert result.outcome == "ok", result.detail
    assert result.documents  # TODO: the numbers the recording holds
'''

_INIT_RECIPE = '''"""Collector for $title, written as a recipe: no code of its own."""

from __future__ import annotations

from services.scraper.kit import Collector
from services.scraper.kit.recipe import RecipeCollector

from .recipe import RECIPE

MANIFEST = RECIPE.manifest
COLLECTOR: Collector = RecipeCollector(RECIPE)

__all__ = ["COLLECTOR", "MANIFEST", "RECIPE"]
'''

_RECIPE = '''"""$title described as data: how to log in, where the list is, what each row holds."""

from __future__ import annotations

from services.scraper.kit import Manifest
from services.scraper.kit.recipe import Fill, ListingRecipe, LoginRecipe, Recipe, Submit, Value

# TODO: the portal's address, pages and selectors.
RECIPE = Recipe(
    manifest=Manifest(
        id="$name",
        name="$title",
        supplier="TODO: the supplier's name",
        portal_url="https://portal.example.com/",
        login_kind="identifier",
        frequency_hours=24,
        max_sessions=2,
    ),
    login=LoginRecipe(
        url="login",
        steps=[
            Fill(selector="form#login-form input[name=login]", value="{login}"),
            Fill(selector="form#login-form input[name=password]", value="{password}"),
            Submit(selector="form#login-form [type=submit]"),
        ],
        success="table#invoices",
        failure="#login-error",
    ),
    listing=ListingRecipe(
        url="invoices",
        container="table#invoices",
        row="tr.invoice-row",
        number=Value(selector=".number"),
        issue_date=Value(selector=".date"),
        amount=Value(selector=".amount"),
        kind=Value(selector=".kind"),
        download=Value(selector="a.download", attribute="href"),
        next_page="a[rel=next]",
    ),
)
'''

_TEST_PAGES_RECIPE = '''"""The recipe of $name read on a saved list page (a browser, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from services.scraper.browser import launch_browser
from services.scraper.kit.recipe import RecipeCollector

from ..recipe import RECIPE

pytestmark = pytest.mark.browser

SAVED = Path(__file__).parent / "saved"


async def test_reads_the_invoice_list() -> None:
    html = (SAVED / "list_page.html").read_text(encoding="utf-8")
    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        page = await browser.new_page()
        await page.set_content(html)
        refs, _next_url = await RecipeCollector(RECIPE).read_shown_page(page)
        await browser.close()
    # TODO: what the real saved page holds.
    assert [r.number for r in refs] == ["FA-0001", "AV-0002"]
'''


def _render(template: str, **values: str) -> str:
    return Template(template).substitute(values)


def skeleton(name: str, module: str, *, recipe: bool) -> dict[str, str]:
    """The files of a new collector ``name`` imported as ``module``: path inside the package -> text."""
    title = name.replace("-", " ").title()
    values = {"name": name, "module": module, "title": title}
    files = {"tests/__init__.py": "", "tests/saved/list_page.html": _SAVED_PAGE,
             "tests/test_offline.py": _render(_TEST_OFFLINE, **values)}
    if recipe:
        files |= {"__init__.py": _render(_INIT_RECIPE, **values), "recipe.py": _render(_RECIPE, **values),
                  "tests/test_pages.py": _render(_TEST_PAGES_RECIPE, **values)}
    else:
        files |= {"__init__.py": _render(_INIT_CODE, **values), "navigation.py": _render(_NAVIGATION, **values),
                  "pages.py": _render(_PAGES, **values), "tests/test_pages.py": _render(_TEST_PAGES_CODE, **values)}
    return files
