"""What a collection's page went through, kept so a failure can be explained afterwards.

The framework, not the collector, watches HTTP answers: a collector that only waited for an
element it never found still gets the right error code (see ``diagnose``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Response

from services.scraper.kit.download import ACCEPT_PDF

SNAPSHOT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class HttpSeen:
    url: str
    status: int
    retry_after: str | None = None


@dataclass
class Evidence:
    url: str = ""
    html: str = ""
    # The main frame's last document, and the API calls (XHR/fetch) that failed since it loaded.
    document: HttpSeen | None = None
    api_errors: list[HttpSeen] = field(default_factory=list)
    logged_in: bool = False


class PageWitness:
    def __init__(self, page: Page) -> None:
        self._page = page
        self._document: HttpSeen | None = None
        self._api_errors: list[HttpSeen] = []
        # An HTML page fetched from inside the page since the last navigation (a list page read
        # without navigating to it): what the collector last looked at.
        self._fetched_page: Response | None = None
        page.on("response", self._seen)

    def _seen(self, response: Response) -> None:
        request = response.request
        seen = HttpSeen(response.url, response.status, response.headers.get("retry-after"))
        try:
            is_main_document = request.is_navigation_request() and request.frame == self._page.main_frame
        except PlaywrightError:  # requests of service workers have no frame
            is_main_document = False
        if is_main_document:
            self._document = seen
            self._api_errors.clear()
            self._fetched_page = None
            return
        if request.resource_type not in ("xhr", "fetch") or request.headers.get("accept", "").startswith(ACCEPT_PDF):
            return
        if response.status == 429 or response.status >= 500:
            self._api_errors.append(seen)
        if "html" in response.headers.get("content-type", ""):
            self._fetched_page = response

    async def _page_html(self) -> str:
        for _ in range(2):  # refused while a navigation is under way: let it settle once
            try:
                return await asyncio.wait_for(self._page.content(), SNAPSHOT_TIMEOUT_S)
            except (PlaywrightError, TimeoutError):
                with contextlib.suppress(PlaywrightError, TimeoutError):
                    await self._page.wait_for_load_state("domcontentloaded", timeout=SNAPSHOT_TIMEOUT_S * 1000)
        return ""

    async def evidence(self, *, logged_in: bool) -> Evidence:
        if self._fetched_page is not None:
            try:
                html = await asyncio.wait_for(self._fetched_page.text(), SNAPSHOT_TIMEOUT_S)
                return Evidence(url=self._fetched_page.url, html=html, document=self._document,
                                api_errors=list(self._api_errors), logged_in=logged_in)
            except (PlaywrightError, TimeoutError):
                pass  # its body is gone: the page itself is the next best witness
        return Evidence(url=self._page.url, html=await self._page_html(), document=self._document,
                        api_errors=list(self._api_errors), logged_in=logged_in)
