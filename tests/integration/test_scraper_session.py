"""A job starts without a browser (``kit.session``): portals read over HTTP never open one, the
session's cookies follow into a page opened later, one connection serves a whole collection, and no
answer is still told from an HTTP error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext

from sandbox import SandboxPortal, documents_for, start_portal
from services.scraper.collectors import builtin_collectors
from services.scraper.kit import CollectContext, CollectedDocument, SupplierUnavailable
from services.scraper.kit.fetch import page_html
from services.scraper.kit.forms import submission
from services.scraper.kit.http import page_text
from services.scraper.kit.portal_http import PortalHttp
from services.scraper.kit.session import HttpSession
from services.scraper.runner import run_collection
from shared.natsserver import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

TODAY = date(2026, 3, 15)
AGENT = "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/1.0"


@pytest_asyncio.fixture(loop_scope="module")
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal(today=TODAY)
    yield p
    await p.close()


async def refuse_a_browser() -> BrowserContext:
    raise AssertionError("a portal read over HTTP opened a browser context")


async def test_an_http_portal_is_collected_without_ever_opening_a_browser(portal: SandboxPortal) -> None:
    stored: list[CollectedDocument] = []

    async def store(document: CollectedDocument) -> bool:
        stored.append(document)
        return True

    async with HttpSession(user_agent=AGENT) as session:
        ctx = CollectContext(http=PortalHttp(session), open_context=refuse_a_browser,
                             portal_url=f"{portal.url}/classic/", login="pharma-3", password="demo")
        report = await run_collection(builtin_collectors()["sandbox-classic"], ctx, store, timeout_s=60)
    assert report.outcome is None, report.outcome
    assert ctx.browser_context is None
    assert sorted(d.ref.number for d in stored) == sorted(d.number for d in documents_for("pharma-3", TODAY))
    assert all(d.content.startswith(b"%PDF") for d in stored)


@pytest.mark.browser
async def test_a_login_over_http_continues_in_a_page_opened_afterwards(browser: Browser,
                                                                       portal: SandboxPortal) -> None:
    opened: list[BrowserContext] = []

    async def open_context() -> BrowserContext:
        context = await browser.new_context()
        opened.append(context)
        return context

    try:
        async with HttpSession(user_agent=AGENT) as session:
            ctx = CollectContext(http=PortalHttp(session), open_context=open_context,
                                 portal_url=f"{portal.url}/classic/", login="pharma-3", password="demo")
            login_url = ctx.base_url + "login"
            form = submission(page_text(await ctx.http.get(login_url), login_url), login_url, "#login-submit",
                              {"#login": ctx.login, "#password": ctx.password})
            landed = await ctx.http.submit(form)
            assert landed.url == ctx.base_url + "invoices" and b'id="invoices"' in landed.body
            assert not opened  # positive control below: the page is what opens it
            page = await ctx.open_page()
            assert len(opened) == 1 and ctx.browser_context is opened[0]
            await page.goto(ctx.base_url + "invoices")
            # Logged in: the session's cookie went with it (without it, the portal sends the login form).
            assert page.url == ctx.base_url + "invoices" and 'id="invoices"' in await page_html(page)
            # And from now on HTTP goes through the context (its cookies: still logged in).
            again = await ctx.http.get(ctx.base_url + "invoices")
            assert again.url == ctx.base_url + "invoices" and b'id="invoices"' in again.body
            assert not ctx.http.browserless
    finally:
        for context in opened:
            await context.close()


async def test_one_connection_serves_a_whole_collection_and_cookies_follow_each_hop() -> None:
    peers: list[tuple[str, int]] = []
    seen: list[tuple[str, str | None, str | None]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername")[:2])  # type: ignore[union-attr]
        seen.append((request.path, request.cookies.get("sid"), request.headers.get("User-Agent")))
        if request.path == "/login":  # a redirect hop that sets the session cookie
            response = web.HTTPFound("/home")
            response.set_cookie("sid", "s1", path="/")
            raise response
        return web.Response(body=b"%PDF-1.4 doc" if request.path.endswith(".pdf") else b"<p>home</p>",
                            content_type="application/pdf" if request.path.endswith(".pdf") else "text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with HttpSession(user_agent=AGENT) as session:
            http = PortalHttp(session)
            home = await http.get(f"{base}/login")
            assert home.status == 200 and home.url == f"{base}/home"
            downloads = [await http.download(f"{base}/doc-{i}.pdf", max_bytes=1000) for i in range(5)]
        assert all(d.status == 200 and d.file is not None and d.file.read() == b"%PDF-1.4 doc" for d in downloads)
        assert seen[0] == ("/login", None, AGENT)
        assert all(sid == "s1" and agent == AGENT for _, sid, agent in seen[1:]), seen
        assert len(seen) == 7 and len(set(peers)) == 1, peers  # 7 exchanges, one client port
    finally:
        await runner.cleanup()


async def test_no_answer_without_a_browser_is_the_supplier_unavailable() -> None:
    async with HttpSession(user_agent=AGENT) as session:
        ctx = CollectContext(http=PortalHttp(session), open_context=refuse_a_browser,
                             portal_url=f"http://127.0.0.1:{free_port()}/", login="l", password="p")
        reply = await ctx.http.get(ctx.base_url + "login")
        assert reply.status == 0 and reply.error
        with pytest.raises(SupplierUnavailable, match="no answer"):
            page_text(reply, "login page")
        download = await ctx.http.download(ctx.base_url + "a.pdf", max_bytes=100)
        assert download.status == 0 and download.error


@pytest.mark.browser
async def test_a_javascript_login_then_http_downloads_with_the_jobs_own_session(browser: Browser,
                                                                                portal: SandboxPortal) -> None:
    """The SPA logs in through its page, closes it, and downloads over HTTP: the context's cookies are
    carried over once, never asked for per download, and every document is collected."""
    stored: list[CollectedDocument] = []
    asked: list[int] = []

    async def store(document: CollectedDocument) -> bool:
        stored.append(document)
        return True

    async def open_context() -> BrowserContext:
        context = await browser.new_context()
        original = context.cookies

        async def counting(*args: object, **kwargs: object) -> object:
            asked.append(1)
            return await original(*args, **kwargs)  # type: ignore[arg-type]

        context.cookies = counting  # type: ignore[method-assign,assignment]
        opened.append(context)
        return context

    opened: list[BrowserContext] = []
    try:
        async with HttpSession(user_agent=AGENT) as session:
            ctx = CollectContext(http=PortalHttp(session), open_context=open_context,
                                 portal_url=f"{portal.url}/spa/", login="pharma-5", password="demo")
            report = await run_collection(builtin_collectors()["sandbox-spa"], ctx, store, timeout_s=60)
            assert report.outcome is None, report.outcome
            assert len(opened) == 1 and ctx.http.browserless  # the page closed, the session is the job's again
    finally:
        for context in opened:
            await context.close()
    expected = documents_for("pharma-5", TODAY)
    assert sorted(d.ref.number for d in stored) == sorted(d.number for d in expected) and len(expected) > 5
    assert len(asked) == 1, f"the browser's cookies were asked {len(asked)} times for {len(stored)} downloads"
