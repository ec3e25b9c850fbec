"""The page-less client in a real Chromium context: one session shared with the context's pages,
no answer told from an HTTP error (and from our own browser dying), fields typed into a page as a
framework sees typing, and a collector that uses both recorded once and replayed offline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser
from playwright.async_api import Error as PlaywrightError

from sandbox import SandboxPortal, documents_for, start_portal
from services.scraper.classify import classify
from services.scraper.collectors import builtin_collectors
from services.scraper.kit import CollectContext, CollectedDocument, SupplierUnavailable
from services.scraper.kit.fetch import page_fill_and_click, page_html
from services.scraper.kit.forms import submission
from services.scraper.kit.har import HarReplay, scrub_har
from services.scraper.kit.http import page_text
from services.scraper.kit.offline import har_session
from services.scraper.kit.portal_http import PortalHttp
from services.scraper.runner import RunReport, run_collection
from shared.errors import CollectionErrorCode as C
from shared.natsserver import free_port

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

TODAY = date(2026, 3, 15)


@pytest_asyncio.fixture(loop_scope="module")
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal(today=TODAY)
    yield p
    await p.close()


async def test_a_login_over_http_is_the_pages_session_too(browser: Browser, portal: SandboxPortal) -> None:
    context = await browser.new_context()
    try:
        ctx = CollectContext(browser_context=context, portal_url=f"{portal.url}/classic/", login="pharma-3",
                             password="demo")
        login_url = ctx.base_url + "login"
        form = submission(page_text(await ctx.http.get(login_url), login_url), login_url, "#login-submit",
                          {"#login": ctx.login, "#password": ctx.password})
        landed = await ctx.http.submit(form)
        assert landed.url == ctx.base_url + "invoices" and b'id="invoices"' in landed.body
        page = await ctx.open_page()
        await page.goto(ctx.base_url + "invoices")
        assert page.url == ctx.base_url + "invoices" and 'id="invoices"' in await page_html(page)
    finally:
        await context.close()


async def test_no_answer_is_the_supplier_unavailable(browser: Browser) -> None:
    context = await browser.new_context()
    try:
        ctx = CollectContext(browser_context=context, portal_url=f"http://127.0.0.1:{free_port()}/", login="l",
                             password="p")
        reply = await ctx.http.get(ctx.base_url + "login")
        assert reply.status == 0 and reply.error
        with pytest.raises(SupplierUnavailable, match="no answer"):
            page_text(reply, "login page")
    finally:
        await context.close()


async def collect_spa(browser: Browser, url: str, password: str, *, record: Path | None = None,
                      replay: Path | None = None) -> tuple[RunReport, list[CollectedDocument]]:
    stored: list[CollectedDocument] = []

    async def store(document: CollectedDocument) -> bool:
        stored.append(document)
        return True

    async with har_session(browser, record=record, replay=replay) as (context, http):
        context.set_default_timeout(10_000)
        ctx = CollectContext(browser_context=context, http=http, portal_url=url, login="pharma-5", password=password)
        return await run_collection(builtin_collectors()["sandbox-spa"], ctx, store, timeout_s=60), stored


async def test_a_collector_using_a_page_and_http_replays_offline(browser: Browser, tmp_path: Path) -> None:
    har = tmp_path / "spa.har"
    portal = await start_portal(today=TODAY)
    url = f"{portal.url}/spa/"
    try:
        live, live_documents = await collect_spa(browser, url, "demo", record=har)
    finally:
        await portal.close()  # from here on the HAR is the portal
    assert live.outcome is None and len(live_documents) == len(documents_for("pharma-5", TODAY))
    scrub_har(har, {"demo": "scrubbed-password"})
    assert '"demo"' not in har.read_text(encoding="utf-8")
    replay, documents = await collect_spa(browser, url, "scrubbed-password", replay=har)
    assert replay.outcome is None
    assert [d.sha256 for d in documents] == [d.sha256 for d in live_documents]


# What React does to every controlled input (react-dom's inputValueTracking): it shadows ``value`` on
# the element to remember what its own code set, and on an ``input`` event calls ``onChange`` only
# if the element's real value differs from that. A script setting ``input.value`` goes through the
# shadow, so React sees no change and its state keeps the empty field.
CONTROLLED_FORM = """
<form><input id="login"><input id="password" type="password"><button type="button" id="go">OK</button></form>
<script>
const state = {login: "", password: ""};
for (const input of document.querySelectorAll("input")) {
  const native = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value");
  let tracked = native.get.call(input);
  Object.defineProperty(input, "value", {
    configurable: true,
    get() { return native.get.call(this); },
    set(v) { tracked = "" + v; native.set.call(this, v); },
  });
  input.addEventListener("input", () => {
    const now = native.get.call(input);
    if (now !== tracked) { tracked = now; state[input.id] = now; }
  });
}
document.getElementById("go").addEventListener("click", () => { window.submitted = {...state}; });
</script>
"""


async def test_typing_reaches_a_framework_that_tracks_the_field(browser: Browser) -> None:
    page = await browser.new_page()
    try:
        await page.set_content(CONTROLLED_FORM)
        await page_fill_and_click(page, {"#login": "pharma-5", "#password": "demo"}, "#go", timeout_ms=2000)
        assert await page.evaluate("window.submitted") == {"login": "pharma-5", "password": "demo"}
    finally:
        await page.close()


async def test_a_closed_context_is_our_failure_not_the_portals(browser: Browser) -> None:
    context = await browser.new_context()
    ctx = CollectContext(browser_context=context, portal_url=f"http://127.0.0.1:{free_port()}/", login="l",
                         password="p")
    await context.close()  # the browser died under the job
    with pytest.raises(PlaywrightError) as raised:
        await ctx.http.get(ctx.base_url + "login")
    assert classify(raised.value).code is C.INTERNAL_ERROR


async def test_an_api_that_stops_answering_is_the_supplier_unavailable(browser: Browser) -> None:
    # The SPA logs in through its page (live), then its API gets no answer at all.
    portal = await start_portal(today=TODAY)
    context = await browser.new_context()
    try:
        context.set_default_timeout(10_000)
        ctx = CollectContext(browser_context=context, http=PortalHttp(None, replay=HarReplay([])),
                             portal_url=f"{portal.url}/spa/", login="pharma-5", password="demo")

        async def store(_: CollectedDocument) -> bool:
            return True

        report = await run_collection(builtin_collectors()["sandbox-spa"], ctx, store, timeout_s=30)
        assert report.outcome is not None and report.outcome.code is C.SUPPLIER_UNAVAILABLE, report.outcome
    finally:
        await context.close()
        await portal.close()
