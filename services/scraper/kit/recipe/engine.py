"""The one engine that runs every recipe: log in step by step, walk the list pages, download.

A recipe runs over HTTP when it can (``http_engine``: no page, several times cheaper), in a real
page when it needs scripts (``Recipe.over_http``); this module is the page side.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypedDict
from urllib.parse import urljoin

from playwright.async_api import Page, Response

from services.scraper.kit.collector import CollectContext, Found
from services.scraper.kit.download import fetch_documents
from services.scraper.kit.errors import InterfaceChanged, LoginFailed
from services.scraper.kit.http import error_for_status
from services.scraper.kit.invoice import InvoiceRef
from services.scraper.kit.manifest import Manifest
from services.scraper.kit.recipe.http_engine import collect_over_http, list_over_http
from services.scraper.kit.recipe.model import Click, Fill, Goto, Recipe, SetCookie, Submit, Value, WaitFor
from services.scraper.kit.recipe.rows import RawRow, refs_from_rows
from services.scraper.kit.reply import require_http_url

# Reads one list page in a single round trip to the browser: the page shown (drawn by the server or
# by a script), or a page fetched and parsed without navigating to it (no rendering: much cheaper).
_EXTRACT = """
async (spec) => {
  let doc = document, status = 200, url = location.href, retryAfter = null;
  if (spec.url) {
    const response = await fetch(spec.url, {credentials: "include", redirect: "follow"});
    status = response.status;
    url = response.url;
    retryAfter = response.headers.get("retry-after");
    const type = response.headers.get("content-type") || "";
    if (!response.ok || !type.includes("html")) {
      return {status, url, retryAfter, container: false, rows: [], next: null, headers: {}};
    }
    doc = new DOMParser().parseFromString(await response.text(), "text/html");
  }
  const read = (root, value) => {
    const element = value.selector ? root.querySelector(value.selector) : root;
    if (!element) return null;
    return value.attribute ? element.getAttribute(value.attribute) : element.textContent;
  };
  const container = doc.querySelector(spec.container);
  if (!container) return {status, url, retryAfter, container: false, rows: [], next: null, headers: {}};
  const rows = Array.from(container.querySelectorAll(spec.row)).map((row) => {
    const out = {};
    for (const [name, value] of Object.entries(spec.fields)) out[name] = read(row, value);
    return out;
  });
  const next = spec.next ? doc.querySelector(spec.next) : null;
  const headers = {};
  for (const [name, value] of Object.entries(spec.headers)) headers[name] = read(doc, value);
  return {status, url, retryAfter, container: true, rows, next: next ? next.getAttribute("href") : null, headers};
}
"""

_PRESENT = "(selector) => document.querySelector(selector) !== null"


class ListPage(TypedDict):
    status: int
    url: str
    retryAfter: str | None
    container: bool
    rows: list[RawRow]
    next: str | None
    headers: dict[str, str | None]


def _value_spec(value: Value) -> dict[str, str | None]:
    return {"selector": value.selector, "attribute": value.attribute}


class RecipeCollector:
    """A collector made of a recipe: ``RecipeCollector(RECIPE)`` is all a simple portal needs."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.manifest: Manifest = recipe.manifest
        listing = recipe.listing
        fields = {name: getattr(listing, name) for name in ("number", "issue_date", "amount", "kind", "download")}
        if listing.currency is not None:
            fields["currency"] = listing.currency
        self._spec: dict[str, Any] = {
            "container": listing.container,
            "row": listing.row,
            "fields": {name: _value_spec(value) for name, value in fields.items()},
            "next": listing.next_page,
            "headers": {name: _value_spec(value) for name, value in recipe.download.headers.items()},
        }

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        found: AsyncGenerator[Found] = (collect_over_http(self.recipe, ctx) if self.recipe.over_http
                                        else self._collect_in_page(ctx))
        try:
            async for document in found:
                yield document
        finally:
            await found.aclose()  # abandoned by the framework: the inner run's cleanup runs now

    async def _collect_in_page(self, ctx: CollectContext) -> AsyncGenerator[Found]:
        page = await ctx.open_page()
        await self._log_in(page, ctx)
        ctx.mark_logged_in()
        if self.recipe.reads_forms:
            # Searches, options and postbacks are forms: read over HTTP in the same session, as the
            # HTTP engine does (the page was needed for the login's scripts only).
            await ctx.close_page()
            async for document in list_over_http(self.recipe, ctx, None):
                yield document
            return
        listing = self.recipe.listing
        first = urljoin(ctx.base_url, listing.url)
        if page.url != first:
            await self._open(page, first)
        fetch_url: str | None = None  # None: read the page shown
        for _ in range(listing.max_pages):
            found = await self._read_list(page, fetch_url)
            headers = {name: value for name, value in found["headers"].items() if value}
            refs = refs_from_rows(found["rows"], listing, found["url"])
            async for document in fetch_documents(page, [r for r in refs if not ctx.is_known(r)],
                                                  headers=headers):
                yield document
            ctx.heartbeat()
            if not found["next"]:
                return
            next_url = urljoin(found["url"], found["next"])
            if self.recipe.scripted:  # pages drawn by scripts must be shown to exist
                await self._open(page, next_url)
            else:
                fetch_url = next_url
        raise InterfaceChanged(f"more than {listing.max_pages} list pages")

    async def read_shown_page(self, page: Page) -> tuple[list[InvoiceRef], str | None]:
        """The documents of the list page shown and the next page's URL: what ``collect`` reads on
        each page, and how a recipe's fields are tested on a saved page (``page.set_content``)."""
        found = await self._read_list(page, None)
        next_url = urljoin(found["url"], found["next"]) if found["next"] else None
        return refs_from_rows(found["rows"], self.recipe.listing, found["url"]), next_url

    # --- login -------------------------------------------------------------------------------

    async def _log_in(self, page: Page, ctx: CollectContext) -> None:
        login = self.recipe.login
        await self._open(page, urljoin(ctx.base_url, login.url), logging_in=True)
        for step in login.steps:
            if isinstance(step, Goto):
                await self._open(page, urljoin(ctx.base_url, step.url), logging_in=True)
            elif isinstance(step, Click):
                if step.optional:
                    if await self._present(page, step.selector):
                        banner = page.locator(step.selector).first
                        if await banner.is_visible():
                            await banner.click()
                    continue
                await self._require(page, step.selector)
                await page.click(step.selector)
            elif isinstance(step, Fill):
                await self._require(page, step.selector)
                typed = step.typed(ctx.login, ctx.password, today=ctx.today,
                                   earliest=self.recipe.listing.earliest)
                await page.fill(step.selector, typed)
            elif isinstance(step, Submit):
                await self._submit(page, step.selector)
                if login.failure and await self._present(page, login.failure):
                    raise LoginFailed("the portal rejected the login or password")
            elif isinstance(step, WaitFor):
                await page.wait_for_selector(step.selector, state="attached")
            elif isinstance(step, SetCookie):
                await ctx.set_cookie(step.name, step.value)
        await self._check_logged_in(page)

    async def _check_logged_in(self, page: Page) -> None:
        login = self.recipe.login
        if self.recipe.scripted:
            either = f"{login.success}, {login.failure}" if login.failure else login.success
            await page.wait_for_selector(either, state="attached")
        if login.failure and await self._present(page, login.failure):
            raise LoginFailed("the portal rejected the login or password")
        if not await self._present(page, login.success):
            # Not necessarily a redesign: the framework reads the page (terms, OTP, maintenance...).
            raise InterfaceChanged(f"after login, neither {login.success!r} nor the failure message is shown")

    async def _submit(self, page: Page, selector: str) -> None:
        await self._require(page, selector)
        if self.recipe.scripted:
            await page.click(selector)
            return
        async with page.expect_navigation() as navigation:
            await page.click(selector)
        self._check(await navigation.value, page.url, logging_in=True)

    # --- pages -------------------------------------------------------------------------------

    async def _open(self, page: Page, url: str, *, logging_in: bool = False) -> None:
        require_http_url(url, "GET")  # a script link is no page to open: our recipe's mistake
        self._check(await page.goto(url), url, logging_in=logging_in)

    @staticmethod
    def _check(response: Response | None, url: str, *, logging_in: bool = False) -> None:
        if response is None:
            return  # same-document navigation (an anchor): nothing new was loaded
        if logging_in and response.status in (401, 403):
            return  # many portals answer a bad password this way: the failure selector tells
        error = error_for_status(response.status, response.headers, url)
        if error is not None:
            raise error

    @staticmethod
    async def _present(page: Page, selector: str) -> bool:
        # A plain DOM query: Playwright's locators would first load their helper script into the page.
        present: bool = await page.evaluate(_PRESENT, selector)
        return present

    async def _require(self, page: Page, selector: str) -> None:
        if self.recipe.scripted:
            await page.wait_for_selector(selector, state="visible")
        elif not await self._present(page, selector):
            raise InterfaceChanged(f"element {selector!r} not found at {page.url}")

    async def _read_list(self, page: Page, fetch_url: str | None) -> ListPage:
        listing = self.recipe.listing
        if self.recipe.scripted and fetch_url is None:
            await page.wait_for_selector(listing.container, state="attached")
        found: ListPage = await page.evaluate(_EXTRACT, {**self._spec, "url": fetch_url})
        error = error_for_status(found["status"], {"retry-after": found["retryAfter"] or ""}, found["url"])
        if error is not None:
            raise error
        if not found["container"]:
            raise InterfaceChanged(f"list {listing.container!r} not found at {found['url']}")
        return found
