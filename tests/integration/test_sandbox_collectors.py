"""Every sandbox collector against its portal style in a real (Debian) Chromium, through the
framework's runner: complete collections, skipped known documents, and a collector that knows
nothing about faults still getting the right code, whether it reads the portal in a page or over
HTTP.

"twostep-browser" is the two-step recipe forced into a page, without its consent cookie: the recipe
engine's page side (cookie banner clicked away, forms typed in, lists read in the page)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from sandbox import SandboxPortal, documents_for, start_portal
from sandbox.faults import broken_numbers
from services.scraper.collectors import builtin_collectors
from services.scraper.collectors.sandbox_twostep.recipe import RECIPE as TWOSTEP
from services.scraper.kit import CollectContext, CollectedDocument, Collector, Found, InterfaceChanged, Manifest
from services.scraper.kit.forms import submission
from services.scraper.kit.recipe import RecipeCollector, SetCookie
from services.scraper.runner import RunReport, run_collection
from shared.errors import CollectionErrorCode as C

# One portal and one browser for the whole module, as a worker would hold them.
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

TODAY = date(2026, 3, 15)
STYLES = {"classic": "sandbox-classic", "twostep": "sandbox-twostep", "spa": "sandbox-spa",
          "twostep-browser": "sandbox-twostep"}


def collector_for(style: str) -> Collector:
    if style == "twostep-browser":
        steps = [s for s in TWOSTEP.login.steps if not isinstance(s, SetCookie)]
        recipe = TWOSTEP.model_copy(update={"engine": "browser",
                                            "login": TWOSTEP.login.model_copy(update={"steps": steps})})
        assert not recipe.over_http
        return RecipeCollector(recipe)
    return builtin_collectors()[STYLES[style]]


def portal_of(portal: SandboxPortal, style: str) -> str:
    return f"{portal.url}/{style.removesuffix('-browser')}/"


def login_for(style: str, name: str) -> str:
    return f"{name}@pharmacie.test" if style.startswith("twostep") else name


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal(today=TODAY, slow_s=0.3)
    yield p
    await p.close()


async def collect(browser: Browser, collector: Collector, url: str, login: str, password: str = "demo",
                  known: frozenset[str] = frozenset()) -> tuple[RunReport, list[CollectedDocument]]:
    context = await browser.new_context()
    context.set_default_timeout(5_000)
    stored: list[CollectedDocument] = []

    async def store(document: CollectedDocument) -> bool:
        stored.append(document)
        return True

    try:
        ctx = CollectContext(browser_context=context, portal_url=url, login=login, password=password,
                             known=frozenset((None, n) for n in known))
        return await run_collection(collector, ctx, store, timeout_s=60), stored
    finally:
        await context.close()


@pytest.mark.parametrize("style", list(STYLES))
async def test_collects_every_document_with_its_details(portal: SandboxPortal, browser: Browser,
                                                        style: str) -> None:
    login = login_for(style, "pharma-42")
    report, stored = await collect(browser, collector_for(style), portal_of(portal, style), login)
    expected = documents_for(login, TODAY)
    assert report.outcome is None and report.logins == 1
    assert [(d.ref.number, d.ref.issue_date, d.ref.amount, d.ref.kind, d.ref.currency) for d in stored] == [
        (e.number, e.issue_date, e.amount, e.kind, e.currency) for e in expected]
    assert {"invoice", "credit_note"} == {d.ref.kind for d in stored}
    assert all(d.content.startswith(b"%PDF") and d.size > 500 for d in stored)
    assert len({d.sha256 for d in stored}) == len(stored)


@pytest.mark.parametrize("style", list(STYLES))
async def test_known_documents_are_not_downloaded_again(portal: SandboxPortal, browser: Browser,
                                                        style: str) -> None:
    login = login_for(style, "pharma-7")
    numbers = [d.number for d in documents_for(login, TODAY)]
    known = frozenset(numbers[::2])
    report, stored = await collect(browser, collector_for(style), portal_of(portal, style),
                                   login, known=known)
    assert report.outcome is None
    assert [d.ref.number for d in stored] == [n for n in numbers if n not in known]


@pytest.mark.parametrize("style", list(STYLES))
async def test_wrong_password(portal: SandboxPortal, browser: Browser, style: str) -> None:
    report, stored = await collect(browser, collector_for(style), portal_of(portal, style),
                                   login_for(style, "pharma-7"), password="nope")
    assert report.outcome is not None and report.outcome.code is C.LOGIN_FAILED and stored == []


@pytest.mark.parametrize("style", list(STYLES))
async def test_logged_out_mid_run_then_in_again_without_losing_or_repeating(
        portal: SandboxPortal, browser: Browser, style: str) -> None:
    login = login_for(style, f"fault-session_expiry-{style}")
    report, stored = await collect(browser, collector_for(style), portal_of(portal, style), login)
    assert report.outcome is None and report.logins == 2
    assert sorted(d.ref.number for d in stored) == sorted(d.number for d in documents_for(login, TODAY))


@pytest.mark.parametrize("style", list(STYLES))
async def test_broken_downloads_keep_the_others(portal: SandboxPortal, browser: Browser, style: str) -> None:
    login = login_for(style, "fault-broken_download-9")
    report, stored = await collect(browser, collector_for(style), portal_of(portal, style), login)
    broken = broken_numbers(login, TODAY)
    assert report.outcome is not None and report.outcome.code is C.DOWNLOAD_FAILED
    assert set(report.missing) == {(None, n) for n in broken}
    assert {d.ref.number for d in stored} == {d.number for d in documents_for(login, TODAY)} - broken


class NaiveCollector:
    """Logs in on the classic portal, then waits for the invoice table: it knows no fault at all."""

    manifest = Manifest(id="naive", name="Naive", supplier="Test", portal_url="http://127.0.0.1/classic/")

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        page = await ctx.open_page()
        await page.goto(ctx.base_url + "login")
        await page.fill("#login", ctx.login)
        await page.fill("#password", ctx.password)
        await page.click("#login-submit")
        await page.wait_for_selector("table#invoices", timeout=1_500)
        return
        yield  # an async generator that finds nothing


class NaiveHttpCollector:
    """The same over HTTP: submits the login form, then looks for the table in what came back."""

    manifest = Manifest(id="naive-http", name="Naive", supplier="Test", portal_url="http://127.0.0.1/classic/")

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        login_url = ctx.base_url + "login"
        reply = await ctx.http.get(login_url)
        form = submission(reply.body.decode(), login_url, "#login-submit",
                          {"#login": ctx.login, "#password": ctx.password})
        reply = await ctx.http.submit(form)
        if "table id=\"invoices\"" not in reply.body.decode():
            raise InterfaceChanged("no invoice table")
        return
        yield  # an async generator that finds nothing


@pytest.mark.parametrize(("mode", "code"), [
    ("maintenance", C.SUPPLIER_UNAVAILABLE),
    ("server_error", C.SUPPLIER_UNAVAILABLE),
    ("rate_limited", C.RATE_LIMITED),
    ("captcha", C.RATE_LIMITED),
    ("password_expired", C.PASSWORD_EXPIRED),
    ("terms", C.ACTION_REQUIRED_ON_SITE),
    ("otp", C.TWO_FACTOR_REQUIRED),
    ("layout_changed", C.INTERFACE_CHANGED),
    ("wrong_password", C.LOGIN_FAILED),
])
@pytest.mark.parametrize("naive", [NaiveCollector, NaiveHttpCollector])
async def test_a_collector_that_only_waits_for_an_element_is_classified_by_the_framework(
        portal: SandboxPortal, browser: Browser, mode: str, code: C, naive: type[Collector]) -> None:
    login, password = (("pharma-1", "nope") if mode == "wrong_password" else (f"fault-{mode}-naive", "demo"))
    report, _ = await collect(browser, naive(), f"{portal.url}/classic/", login, password)
    outcome: Any = report.outcome
    assert outcome is not None and outcome.code is code, outcome
    if mode == "rate_limited":
        assert outcome.retry_after_s == 120
