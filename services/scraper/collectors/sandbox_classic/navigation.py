"""Driving the classic sandbox portal with Playwright; all HTML understanding is in ``pages``.

Timeouts are the browser context's (the worker sets them): a collector has no reason to pick its own.
Nothing here looks for maintenance pages, captchas or terms to accept: when the invoice table is not
where it should be, the collector says so and the framework reads the page to tell why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urljoin

from playwright.async_api import Page, Response

from services.scraper.collectors.sandbox_classic import pages
from services.scraper.kit import (
    CollectContext,
    Found,
    InterfaceChanged,
    LoginFailed,
    fetch_documents,
    raise_for_status,
)
from services.scraper.kit.fetch import page_fetch, page_html

# A portal that loops on "Page suivante" must not keep a worker forever.
MAX_PAGES = 500


def _check(response: Response | None, url: str) -> None:
    if response is None:
        raise InterfaceChanged(f"{url}: no response")
    raise_for_status(response.status, response.headers, url)


async def _log_in(page: Page, portal_url: str, login: str, password: str) -> None:
    login_url = urljoin(portal_url, "login")
    _check(await page.goto(login_url), login_url)
    if not pages.has_login_form(await page_html(page)):
        raise InterfaceChanged("login form not found")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", password)
    async with page.expect_navigation() as navigation:
        await page.click("form#login-form [type=submit]")
    response = await navigation.value
    if response is not None and response.status != 401:
        _check(response, login_url)
    if pages.is_login_error(await page_html(page)):
        raise LoginFailed("the portal rejected the login or password")


async def collect(ctx: CollectContext) -> AsyncIterator[Found]:
    page = ctx.page
    await _log_in(page, ctx.base_url, ctx.login, ctx.password)
    ctx.mark_logged_in()

    # The portal lands on the first list page after login; the next ones are read without
    # navigating to them (a navigation costs the browser several times a fetch).
    html, page_url = await page_html(page), page.url
    for _ in range(MAX_PAGES):
        refs, next_url = pages.parse_invoice_list(html, page_url)
        async for found in fetch_documents(page, [r for r in refs if r.number not in ctx.known_numbers]):
            yield found
        ctx.heartbeat()
        if next_url is None:
            return
        reply = await page_fetch(page, next_url)
        raise_for_status(reply.status, reply.headers, next_url)
        html, page_url = reply.body.decode("utf-8", errors="replace"), reply.url
    raise InterfaceChanged(f"more than {MAX_PAGES} list pages")
