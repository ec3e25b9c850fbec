"""What a collection was shown, kept so a failure can be explained afterwards.

The framework, not the collector, watches HTTP answers, on both ways a collector reads a portal: its
page (if it opened one) and the page-less client (``kit.portal_http``). A collector that only waited
for an element it never found still gets the right error code (see ``services.scraper.diagnose``):
the evidence is whatever it was shown last.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Response

from services.scraper.kit.download import ACCEPT_PDF
from services.scraper.kit.reply import HttpReply

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


def _failed(status: int) -> bool:
    """An API answer that explains a failure on its own: pushed back, or the portal's fault."""
    return status == 429 or status >= 500


class Witness:
    def __init__(self) -> None:
        self._page: Page | None = None
        self._document: HttpSeen | None = None
        self._api_errors: list[HttpSeen] = []
        # An HTML page fetched since the last navigation (a list page read without navigating to
        # it, or any page read over HTTP): what the collector last looked at.
        self._fetched_page: Response | None = None
        # The same from the page-less client; decoded only if a failure has to be explained.
        self._fetched_reply: HttpReply | None = None
        # What was last read as the page shown, and how much had been seen then.
        self._observed = 0
        self._read: tuple[int, str, str] | None = None

    def attach(self, page: Page) -> None:
        """Watch the collector's page (once it opens one)."""
        if page is self._page:
            return
        self._page = page
        self._observed += 1
        page.on("response", self._seen)

    def detach(self, page: Page) -> None:
        if page is self._page:
            page.remove_listener("response", self._seen)
            self._page = None
            self._observed += 1

    def _shown(self, document: HttpSeen) -> None:
        self._observed += 1
        self._document = document
        self._api_errors.clear()
        self._fetched_page = None
        self._fetched_reply = None

    def saw_http(self, reply: HttpReply, request_headers: Mapping[str, str]) -> None:
        """An exchange of the page-less client: an HTML answer is a page shown, like a navigation."""
        if reply.status == 0:
            return
        if any(v.startswith(ACCEPT_PDF) for k, v in request_headers.items() if k.lower() == "accept"):
            return
        seen = HttpSeen(reply.url, reply.status, reply.headers.get("retry-after"))
        if "html" in reply.headers.get("content-type", ""):
            self._shown(seen)
            self._fetched_reply = reply
        elif _failed(reply.status):
            self._api_errors.append(seen)

    def _seen(self, response: Response) -> None:
        assert self._page is not None
        request = response.request
        seen = HttpSeen(response.url, response.status, response.headers.get("retry-after"))
        try:
            is_main_document = request.is_navigation_request() and request.frame == self._page.main_frame
        except PlaywrightError:  # requests of service workers have no frame
            is_main_document = False
        if is_main_document:
            self._shown(seen)
            return
        if request.resource_type not in ("xhr", "fetch") or request.headers.get("accept", "").startswith(ACCEPT_PDF):
            return
        self._observed += 1
        if _failed(response.status):
            self._api_errors.append(seen)
        if "html" in response.headers.get("content-type", ""):
            self._fetched_page = response
            self._fetched_reply = None

    async def _page_html(self, page: Page) -> str:
        for _ in range(2):  # refused while a navigation is under way: let it settle once
            try:
                return await asyncio.wait_for(page.content(), SNAPSHOT_TIMEOUT_S)
            except (PlaywrightError, TimeoutError):
                with contextlib.suppress(PlaywrightError, TimeoutError):
                    await page.wait_for_load_state("domcontentloaded", timeout=SNAPSHOT_TIMEOUT_S * 1000)
        return ""

    async def evidence(self, *, logged_in: bool) -> Evidence:
        # Read once per thing seen: a failed run asks twice (its diagnosis, then its kept evidence),
        # and a page stuck loading from a silent host costs SNAPSHOT_TIMEOUT_S each time it is read.
        if self._read is None or self._read[0] != self._observed:
            self._read = (self._observed, *await self._last_shown())
        _, url, html = self._read
        return Evidence(url=url, html=html, document=self._document, api_errors=list(self._api_errors),
                        logged_in=logged_in)

    async def _last_shown(self) -> tuple[str, str]:
        if self._fetched_reply is not None:
            return self._fetched_reply.url, self._fetched_reply.text()
        if self._fetched_page is not None:
            try:
                return self._fetched_page.url, await asyncio.wait_for(self._fetched_page.text(), SNAPSHOT_TIMEOUT_S)
            except (PlaywrightError, TimeoutError):
                pass  # its body is gone: the page itself is the next best witness
        if self._page is None:
            return "", ""
        return self._page.url, await self._page_html(self._page)
