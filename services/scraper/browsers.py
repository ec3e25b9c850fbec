"""One Chromium per worker process; each job gets a fresh, isolated browser context (§7)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

from services.scraper.browser import launch_browser
from shared.logging import get_logger

log = get_logger("collectors.scraper.browser")


class BrowserPool:
    def __init__(self, page_timeout_s: float = 15.0) -> None:
        self.page_timeout_s = page_timeout_s
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> Browser:
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            if self._browser is not None:
                log.warning("browser_relaunched")  # it crashed: the next jobs get a new one
            self._browser = await launch_browser(self._playwright)
            return self._browser

    @asynccontextmanager
    async def context(self) -> AsyncIterator[BrowserContext]:
        browser = await self._ensure()
        ctx = await browser.new_context(accept_downloads=True, locale="fr-FR",
                                        timezone_id="Europe/Paris")
        ctx.set_default_timeout(self.page_timeout_s * 1000)
        try:
            yield ctx
        finally:
            await ctx.close()

    async def close(self) -> None:
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None
