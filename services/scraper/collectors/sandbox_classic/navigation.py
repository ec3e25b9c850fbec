"""Driving the classic sandbox portal with Playwright; all HTML understanding is in ``pages``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urljoin

from playwright.async_api import Page, Response

from services.scraper.collectors.sandbox_classic import pages
from services.scraper.kit import (
    CollectContext,
    CollectedDocument,
    DownloadFailed,
    InterfaceChanged,
    LoginFailed,
    SupplierUnavailable,
)

NAVIGATION_TIMEOUT_MS = 15_000
DOWNLOAD_TIMEOUT_MS = 30_000
# A portal that loops on "Page suivante" must not keep a worker forever.
MAX_PAGES = 500


def _check_response(response: Response | None, url: str) -> None:
    if response is None or response.status >= 500:
        status = "no response" if response is None else f"HTTP {response.status}"
        raise SupplierUnavailable(f"{url}: {status}")


async def _log_in(page: Page, portal_url: str, login: str, password: str) -> None:
    login_url = urljoin(portal_url, "login")
    _check_response(await page.goto(login_url, timeout=NAVIGATION_TIMEOUT_MS), login_url)
    if not pages.has_login_form(await page.content()):
        raise InterfaceChanged("login form not found")
    await page.fill("input[name=login]", login, timeout=NAVIGATION_TIMEOUT_MS)
    await page.fill("input[name=password]", password, timeout=NAVIGATION_TIMEOUT_MS)
    async with page.expect_navigation(timeout=NAVIGATION_TIMEOUT_MS) as navigation:
        await page.click("form#login-form [type=submit]", timeout=NAVIGATION_TIMEOUT_MS)
    _check_response(await navigation.value, login_url)
    if pages.is_login_error(await page.content()):
        raise LoginFailed("the portal rejected the login or password")


async def collect(ctx: CollectContext) -> AsyncIterator[CollectedDocument]:
    page = ctx.page
    # urljoin drops the last segment of a root given without its trailing slash.
    portal_url = ctx.portal_url if ctx.portal_url.endswith("/") else ctx.portal_url + "/"
    await _log_in(page, portal_url, ctx.login, ctx.password)

    failed: list[str] = []
    page_url: str | None = page.url  # the portal lands on the first list page after login
    pages_seen = 0
    while page_url is not None:
        pages_seen += 1
        if pages_seen > MAX_PAGES:
            raise InterfaceChanged(f"more than {MAX_PAGES} list pages")
        if page.url != page_url:
            _check_response(await page.goto(page_url, timeout=NAVIGATION_TIMEOUT_MS), page_url)
        refs, page_url = pages.parse_invoice_list(await page.content(), page.url)
        for ref in refs:
            if ref.number in ctx.known_numbers:
                continue
            # The context's request client shares the session cookies, without a download dialog.
            response = await page.request.get(ref.download_url, timeout=DOWNLOAD_TIMEOUT_MS)
            try:
                content = await response.body()
                ok = response.status == 200 and content.startswith(b"%PDF")
            finally:
                await response.dispose()
            if not ok:
                reason = f"HTTP {response.status}" if response.status != 200 else "not a PDF"
                failed.append(f"{ref.number} ({reason})")
                continue
            yield CollectedDocument(ref=ref, content=content)
        ctx.heartbeat()

    if failed:
        raise DownloadFailed(f"{len(failed)} document(s) not downloaded: {', '.join(failed)}")
