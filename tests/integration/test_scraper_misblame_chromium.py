"""Never blame the supplier for our mistakes (issue 12), in a real Chromium: what Playwright really
raises for a ``javascript:`` link, a bad selector, a strict-mode violation or a page we closed ends
``internal_error``; a portal answering 503, refusing connections on its own host, never answering,
or showing a maintenance page still ends ``supplier_unavailable``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, Page

from services.scraper.kit import CollectContext, Found, InterfaceChanged, Manifest
from services.scraper.kit.fetch import page_fetch
from services.scraper.kit.http import page_text
from services.scraper.runner import RunReport, run_collection
from shared.errors import CollectionErrorCode as C
from shared.natsserver import free_port

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

POSTBACK = "javascript:__doPostBack('ctl00$Invoices','Page$2')"
LIST = ('<table id="invoices"><tr><td><a class="pdf" href="/1.pdf">1</a>'
        '<a class="pdf" href="/2.pdf">2</a></td></tr></table>')


@pytest_asyncio.fixture(loop_scope="module")
async def portal() -> AsyncIterator[str]:
    async def page(_: web.Request) -> web.Response:
        return web.Response(text=f"<html><body>{LIST}</body></html>", content_type="text/html")

    async def down(_: web.Request) -> web.Response:
        return web.Response(status=503, text="<h1>Oops</h1>", content_type="text/html")

    async def maintenance(_: web.Request) -> web.Response:
        return web.Response(text="<h1>Site en maintenance</h1><p>Revenez plus tard.</p>", content_type="text/html")

    app = web.Application()
    app.add_routes([web.get("/list", page), web.get("/down", down), web.get("/maintenance", maintenance)])
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/"
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module")
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


Step = Callable[[CollectContext], Awaitable[Any]]


class OneStep:
    def __init__(self, portal_url: str, step: Step) -> None:
        self.manifest = Manifest(id="fake", name="Fake", supplier="Fake", portal_url=portal_url)
        self.step = step

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        await self.step(ctx)
        return
        yield


async def run(browser: Browser, portal_url: str, step: Step) -> RunReport:
    context = await browser.new_context()
    context.set_default_timeout(3_000)
    try:
        ctx = CollectContext(browser_context=context, portal_url=portal_url, login="l", password="p")
        ctx.http.timeout_ms = 1_500

        async def store(_: Any) -> bool:
            return True

        return await run_collection(OneStep(portal_url, step), ctx, store, timeout_s=30)
    finally:
        await context.close()


def code(report: RunReport) -> C:
    assert report.outcome is not None
    return report.outcome.code


async def on_list(ctx: CollectContext) -> Page:
    page = await ctx.open_page()
    await page.goto(ctx.base_url + "list")
    ctx.mark_logged_in()
    return page


# --- our mistakes -------------------------------------------------------------------------------


async def test_a_javascript_href_over_http_is_our_bug(browser: Browser, portal: str) -> None:
    async def follow(ctx: CollectContext) -> None:
        page_text(await ctx.http.get(POSTBACK), POSTBACK)

    report = await run(browser, portal, follow)
    assert code(report) is C.INTERNAL_ERROR and "javascript" in report.outcome.detail  # was supplier_unavailable


async def test_a_javascript_href_in_a_page_is_our_bug(browser: Browser, portal: str) -> None:
    async def goto(ctx: CollectContext) -> None:
        await (await on_list(ctx)).goto(POSTBACK)  # net::ERR_ABORTED

    assert code(await run(browser, portal, goto)) is C.INTERNAL_ERROR
    for url in ("mailto:factures@portal.test", "file:///etc/hostname", "data:text/html,x"):
        async def fetch(ctx: CollectContext, url: str = url) -> None:
            page_text(await page_fetch(await on_list(ctx), url), url)

        assert code(await run(browser, portal, fetch)) is C.INTERNAL_ERROR, url


async def test_a_bad_css_selector_is_our_bug(browser: Browser, portal: str) -> None:
    async def click(ctx: CollectContext) -> None:
        await (await on_list(ctx)).click("a.pdf[")

    assert code(await run(browser, portal, click)) is C.INTERNAL_ERROR


async def test_a_strict_mode_violation_is_our_bug(browser: Browser, portal: str) -> None:
    async def click(ctx: CollectContext) -> None:
        await (await on_list(ctx)).locator("a.pdf").click()

    assert code(await run(browser, portal, click)) is C.INTERNAL_ERROR


async def test_a_page_we_closed_is_our_bug(browser: Browser, portal: str) -> None:
    async def closed(ctx: CollectContext) -> None:
        page = await on_list(ctx)
        await page.close()
        await page.goto(ctx.base_url + "list")

    assert code(await run(browser, portal, closed)) is C.INTERNAL_ERROR


async def test_a_python_exception_is_our_bug(browser: Browser, portal: str) -> None:
    async def crash(ctx: CollectContext) -> None:
        await on_list(ctx)
        {}["invoice_number"]

    assert code(await run(browser, portal, crash)) is C.INTERNAL_ERROR


async def test_another_host_refusing_a_navigation_is_not_the_supplier(browser: Browser, portal: str) -> None:
    elsewhere = f"http://127.0.0.2:{free_port()}/"

    async def goto(ctx: CollectContext) -> None:
        await (await on_list(ctx)).goto(elsewhere)

    assert code(await run(browser, portal, goto)) is C.INTERNAL_ERROR


# --- the supplier's outages ---------------------------------------------------------------------


async def test_a_503_page_is_the_suppliers_outage(browser: Browser, portal: str) -> None:
    async def read(ctx: CollectContext) -> None:
        page_text(await ctx.http.get(ctx.base_url + "down"), "list")

    assert code(await run(browser, portal, read)) is C.SUPPLIER_UNAVAILABLE


async def test_connection_refused_on_the_portals_host_is_its_outage(browser: Browser) -> None:
    closed = f"http://127.0.0.1:{free_port()}/"

    async def over_http(ctx: CollectContext) -> None:
        page_text(await ctx.http.get(ctx.base_url + "login"), "login page")

    async def in_page(ctx: CollectContext) -> None:
        await (await ctx.open_page()).goto(ctx.base_url + "login")

    assert code(await run(browser, closed, over_http)) is C.SUPPLIER_UNAVAILABLE
    assert code(await run(browser, closed, in_page)) is C.SUPPLIER_UNAVAILABLE


async def test_the_portals_host_never_answering_is_its_outage(browser: Browser, silent_port: int) -> None:
    silent = f"http://127.0.0.1:{silent_port}/"

    async def over_http(ctx: CollectContext) -> None:
        page_text(await ctx.http.get(ctx.base_url + "login"), "login page")

    async def in_page(ctx: CollectContext) -> None:
        await (await ctx.open_page()).goto(ctx.base_url + "login", timeout=1_500)

    started = asyncio.get_running_loop().time()
    assert code(await run(browser, silent, over_http)) is C.SUPPLIER_UNAVAILABLE
    assert code(await run(browser, silent, in_page)) is C.SUPPLIER_UNAVAILABLE  # was interface_changed
    assert asyncio.get_running_loop().time() - started < 20


async def test_a_maintenance_page_is_the_suppliers_outage(browser: Browser, portal: str) -> None:
    async def shown(ctx: CollectContext) -> None:
        page = await ctx.open_page()
        await page.goto(ctx.base_url + "maintenance")
        raise InterfaceChanged("no #invoices table")

    report = await run(browser, portal, shown)
    assert code(report) is C.SUPPLIER_UNAVAILABLE and "maintenance" in report.outcome.detail
