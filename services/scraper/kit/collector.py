"""The collector plugin protocol.

A collector is a manifest plus an async generator that logs in with the given credentials in a
fresh session and yields every document it finds. It reads the portal over HTTP (``ctx.http``: no
page, no rendering, no browser at all until one is needed: the cheap way) or opens a page
(``await ctx.open_page()``, which opens the job's browser context) when the portal needs a real
browser; both share one session.
Navigation lives in the collector's ``navigation`` module, pure parsing in its ``pages`` module
(unit-tested on saved pages). Simple portals need no code at all: a
:class:`~services.scraper.kit.recipe.Recipe` describes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from playwright.async_api import BrowserContext, Page

from services.scraper.kit.invoice import CollectedDocument, InvoiceKey, InvoiceRef, MissingDocument
from services.scraper.kit.manifest import Manifest
from services.scraper.kit.portal_http import PortalHttp
from services.scraper.kit.witness import Witness

Found = CollectedDocument | MissingDocument


@dataclass
class CollectContext:
    portal_url: str  # base URL to use (the manifest's, or an override such as a local sandbox)
    login: str
    password: str
    # The job's fresh browser context; or only a ``page`` already open in one; or neither yet, and
    # ``open_context`` makes it the first time a page is wanted (a job starts without a browser:
    # ``kit.session``).
    browser_context: BrowserContext | None = None
    open_context: Callable[[], Awaitable[BrowserContext]] | None = None
    # Called with the browser context once it is opened (the run's evidence watches its pages).
    context_opened: list[Callable[[BrowserContext], None]] = field(default_factory=list)
    page: Page | None = None  # opened on demand by ``open_page``
    # The (site, number) of every document the ledger already holds for this account: a collector
    # may skip downloading them (``is_known``; the framework dedups anyway).
    known: frozenset[InvoiceKey] = frozenset()
    # Called during long work so the job's in-progress ack keeps the message ours.
    heartbeat: Callable[[], None] = field(default=lambda: None)
    # Set once the portal accepted the credentials: a login page met after that point means the
    # session expired, not that the portal changed.
    logged_in: bool = False
    # HTTP in the browser context (made from it unless given, e.g. to record or replay a HAR).
    http: PortalHttp = None  # type: ignore[assignment]
    # What the collector was shown, for the framework to explain a failure.
    witness: Witness = field(default_factory=Witness)

    def __post_init__(self) -> None:
        if self.browser_context is None and self.page is not None:
            self.browser_context = self.page.context
        if self.http is None:
            if self.browser_context is None:
                raise ValueError("a CollectContext needs a browser context, a page or an http client")
            self.http = PortalHttp(self.browser_context)
        self.http.observe(self.witness.saw_http)
        if self.page is not None:
            self.witness.attach(self.page)

    async def open_page(self) -> Page:
        """The context's page, opened on first use (a renderer process: only when needed)."""
        if self.page is None:
            self.page = await (await self.browser()).new_page()
            self.witness.attach(self.page)
        return self.page

    async def browser(self) -> BrowserContext:
        """The job's browser context, opened on first use; ``http`` continues in it (its cookies
        handed over), so a page sees what was done over HTTP before it."""
        if self.browser_context is None:
            if self.open_context is None:
                raise RuntimeError("no browser context to open a page in")
            context = await self.open_context()
            self.browser_context = context
            for opened in self.context_opened:
                opened(context)
        if self.http.browserless:
            await self.http.use_browser(self.browser_context)
        return self.browser_context

    async def close_page(self) -> None:
        """Close the page once its work is done (the rest over ``http``): its renderer stops
        drawing what the collector will not look at."""
        if self.page is not None:
            page, self.page = self.page, None
            self.witness.detach(page)
            await page.close()
            # The rest over HTTP: with the job's own session again (kit.session), the browser's
            # cookies carried over once instead of asked for on every download.
            await self.http.leave_browser()

    async def set_cookie(self, name: str, value: str) -> None:
        """A cookie for the portal in the job's context (pages and ``http`` both send it)."""
        if self.browser_context is None:
            if not self.http.browserless:
                raise RuntimeError("no browser context to set a cookie in")
            self.http.set_cookie(name, value, self.base_url)
            return
        await self.browser_context.add_cookies([{"name": name, "value": value, "url": self.base_url}])

    def is_known(self, ref: InvoiceRef) -> bool:
        """The ledger already holds this document (same site and number): no need to download it.
        A number known on one site does not hide another site's document."""
        return ref.key in self.known

    @property
    def known_numbers(self) -> frozenset[str]:
        """Deprecated, use ``is_known(ref)``: the numbers known without a site, which is all a
        collector whose refs carry no site needs. A collector that reads sites must not filter on it."""
        return frozenset(number for site, number in self.known if site is None)

    @property
    def today(self) -> date:
        """The portal's today: the day a replayed recording was made, so that the dates a collector
        types (a search up to today) are those the recording holds."""
        return self.http.recorded_on or date.today()

    def mark_logged_in(self) -> None:
        self.logged_in = True

    @property
    def base_url(self) -> str:
        """The portal URL with its trailing slash, so relative URLs join under it."""
        return self.portal_url if self.portal_url.endswith("/") else self.portal_url + "/"


class Collector(Protocol):
    manifest: Manifest

    def collect(self, ctx: CollectContext) -> AsyncIterator[Found]: ...
