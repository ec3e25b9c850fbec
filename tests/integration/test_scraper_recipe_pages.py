"""A recipe's fields checked on pages saved from its portal, in a browser but with no portal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from services.scraper.browser import launch_browser
from services.scraper.collectors.sandbox_twostep import RECIPE
from services.scraper.kit import InterfaceChanged
from services.scraper.kit.recipe import RecipeCollector

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).parents[1] / "unit" / "fixtures" / "sandbox_twostep"
URL = "http://127.0.0.1:8765/twostep/documents"


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        yield await (await browser.new_context()).new_page()
        await browser.close()


async def show(page: Page, name: str) -> None:
    # A real URL for the page, so relative links resolve as on the portal.
    await page.route(URL, lambda route: route.fulfill(body=(FIXTURES / name).read_text(encoding="utf-8"),
                                                     content_type="text/html"))
    await page.goto(URL)


async def test_first_page_of_cards(page: Page) -> None:
    await show(page, "documents_page1.html")
    refs, next_url = await RecipeCollector(RECIPE).read_shown_page(page)
    assert len(refs) == 8 and next_url == URL + "?page=2"
    credit_notes = [r for r in refs if r.kind == "credit_note"]
    assert credit_notes and all(r.amount > 0 for r in credit_notes)  # shown as −52,21 €, kept positive
    assert all(r.currency == "EUR" and r.download_url.startswith(URL + "/") for r in refs)
    assert [r.issue_date for r in refs] == sorted((r.issue_date for r in refs), reverse=True)
    assert refs[0].issue_date <= date(2026, 3, 15) and refs[0].amount > Decimal(0)


async def test_last_page_has_no_next(page: Page) -> None:
    await show(page, "documents_last.html")
    refs, next_url = await RecipeCollector(RECIPE).read_shown_page(page)
    assert next_url is None and len(refs) == 7


async def test_a_page_without_the_list_is_an_interface_change(page: Page) -> None:
    await show(page, "password.html")
    with pytest.raises(InterfaceChanged, match="document-list"):
        await RecipeCollector(RECIPE).read_shown_page(page)
