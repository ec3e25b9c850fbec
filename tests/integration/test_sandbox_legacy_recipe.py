"""The legacy WebForms extranet collected by its recipe (issue 12, bullet 2) in a real Chromium,
through the framework's runner: a two-site customer over the whole history, page tokens, postback
paging and POST downloads, the portal's own count, on both engines."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from sandbox import SandboxPortal, start_portal
from sandbox.faults import broken_numbers
from sandbox.legacy import LEGACY_SITES, legacy_documents, sites_for
from services.scraper.collectors.sandbox_legacy import RECIPE
from services.scraper.kit import CollectContext, CollectedDocument, har_session
from services.scraper.kit.invoice import InvoiceKey
from services.scraper.kit.recipe import Fill, Recipe, RecipeCollector
from services.scraper.runner import RunReport, run_collection
from shared.errors import CollectionErrorCode as C

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

TODAY = date(2026, 3, 15)
MULTI = "pharma-multi-1"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal(today=TODAY, slow_s=0.3)
    yield p
    await p.close()


async def collect(browser: Browser, portal: SandboxPortal, login: str, *, recipe: Recipe = RECIPE,
                  password: str = "demo", known: frozenset[InvoiceKey] = frozenset(),
                  ) -> tuple[RunReport, list[CollectedDocument]]:
    context = await browser.new_context()
    context.set_default_timeout(5_000)
    stored: list[CollectedDocument] = []

    async def store(document: CollectedDocument) -> bool:
        stored.append(document)
        return True

    try:
        ctx = CollectContext(browser_context=context, portal_url=f"{portal.url}/legacy/", login=login,
                             password=password, known=known)
        return await run_collection(RecipeCollector(recipe), ctx, store, timeout_s=90), stored
    finally:
        await context.close()


def expected(login: str) -> set[tuple[str, str, date, str, str]]:
    names = dict(sites_for(login))
    return {(names[code], d.number, d.issue_date, str(d.amount), d.kind) for code, d in legacy_documents(login, TODAY)}


def got(stored: list[CollectedDocument]) -> set[tuple[str, str, date, str, str]]:
    return {(d.ref.site or "", d.ref.number, d.ref.issue_date, str(d.ref.amount), d.ref.kind) for d in stored}


@pytest.mark.parametrize("engine", ["auto", "browser"])
async def test_a_two_site_customer_gets_every_document_of_the_whole_history(
        browser: Browser, portal: SandboxPortal, engine: str) -> None:
    recipe = RECIPE.model_copy(update={"engine": engine})
    report, stored = await collect(browser, portal, MULTI, recipe=recipe)
    assert report.outcome is None, report.outcome
    want = expected(MULTI)
    assert got(stored) == want and len(stored) == len(want)
    # Two sites reuse a number: both documents are kept, each under its site.
    by_number: dict[str, set[str | None]] = {}
    for d in stored:
        by_number.setdefault(d.ref.number, set()).add(d.ref.site)
    assert any(len(sites) == 2 for sites in by_number.values())
    # The whole history, not the 90 days the list opens on.
    assert min(d.ref.issue_date for d in stored) < date(2025, 12, 15)
    assert all(d.content.startswith(b"%PDF") for d in stored)
    assert {d.ref.kind for d in stored} == {"invoice", "credit_note"}


async def test_a_single_site_customer_records_its_site(browser: Browser, portal: SandboxPortal) -> None:
    report, stored = await collect(browser, portal, "pharma-42")
    assert report.outcome is None
    assert got(stored) == expected("pharma-42")
    assert {d.ref.site for d in stored} == {LEGACY_SITES["single"][0][1]}


async def test_a_number_known_on_one_site_does_not_hide_the_other_sites(browser: Browser,
                                                                         portal: SandboxPortal) -> None:
    names = dict(sites_for(MULTI))
    first_code = sites_for(MULTI)[0][0]
    known = frozenset((names[code], d.number) for code, d in legacy_documents(MULTI, TODAY) if code == first_code)
    report, stored = await collect(browser, portal, MULTI, known=known)
    assert report.outcome is None
    assert got(stored) == {e for e in expected(MULTI) if (e[0], e[1]) not in known}
    assert stored and all(d.ref.site == names[code] for code in names if code != first_code for d in stored)


async def test_without_widening_the_search_only_the_last_90_days_come(browser: Browser,
                                                                       portal: SandboxPortal) -> None:
    # The control for the test above: the recipe's date fills are what reach the whole history.
    search = [s for s in RECIPE.listing.search if not isinstance(s, Fill)]
    recipe = RECIPE.model_copy(update={"listing": RECIPE.listing.model_copy(update={"search": search})})
    report, stored = await collect(browser, portal, MULTI, recipe=recipe)
    assert report.outcome is None
    assert stored and len(stored) < len(expected(MULTI))
    assert min(d.ref.issue_date for d in stored) >= date(2025, 12, 15)


async def test_rows_the_recipe_misses_are_caught_by_the_portal_count(browser: Browser,
                                                                      portal: SandboxPortal) -> None:
    # A recipe that reads only every other row (a redesign the selectors half survive).
    recipe = RECIPE.model_copy(update={"listing": RECIPE.listing.model_copy(update={"row": "tr.ligne"})})
    report, _ = await collect(browser, portal, MULTI, recipe=recipe)
    assert report.outcome is not None and report.outcome.code is C.INTERFACE_CHANGED
    assert "counts" in report.outcome.detail


async def test_wrong_password(browser: Browser, portal: SandboxPortal) -> None:
    report, stored = await collect(browser, portal, MULTI, password="nope")
    assert report.outcome is not None and report.outcome.code is C.LOGIN_FAILED and stored == []


async def test_logged_out_mid_run_then_in_again(browser: Browser, portal: SandboxPortal) -> None:
    login = "fault-session_expiry-legacy"
    report, stored = await collect(browser, portal, login)
    assert report.outcome is None and report.logins >= 2
    assert got(stored) == expected(login) and len(stored) == len(expected(login))


async def test_broken_downloads_keep_the_others(browser: Browser, portal: SandboxPortal) -> None:
    login = "fault-broken_download-9"
    report, stored = await collect(browser, portal, login)
    broken = broken_numbers(login, TODAY)
    assert report.outcome is not None and report.outcome.code is C.DOWNLOAD_FAILED
    assert {number for _site, number in report.missing} == broken
    assert {d.ref.number for d in stored} == {d.number for _c, d in legacy_documents(login, TODAY)} - broken


async def test_a_recording_replays_on_another_day(browser: Browser, portal: SandboxPortal, tmp_path: Path) -> None:
    # The search is typed up to {today}: a recording must replay with the day it was made, or its
    # POST bodies no longer match the next day. Make this one look recorded on 1 March 2026.
    har = tmp_path / "legacy.har"
    async with har_session(browser, record=har) as (context, http):
        ctx = CollectContext(browser_context=context, http=http, portal_url=f"{portal.url}/legacy/",
                             login=MULTI, password="demo")
        live = await run_collection(RecipeCollector(RECIPE), ctx, _keep([]), timeout_s=90)
    assert live.outcome is None
    typed_today = quote(f"{date.today():%d/%m/%Y}", safe="")
    recording = json.loads(har.read_text(encoding="utf-8"))
    for entry in recording["log"]["entries"]:
        entry["startedDateTime"] = "2026-03-01T09:00:00.000+00:00"
        post = entry["request"].get("postData")
        if post and post.get("text"):
            post["text"] = post["text"].replace(typed_today, quote("01/03/2026", safe=""))
        content = entry["response"].get("content", {})
        if content.get("text"):  # pages echo the dates typed (windows-1252 pages are kept as base64)
            was, now = f"{date.today():%d/%m/%Y}", "01/03/2026"
            if content.get("encoding") == "base64":
                body = base64.b64decode(content["text"]).replace(was.encode(), now.encode())
                content["text"] = base64.b64encode(body).decode("ascii")
            else:
                content["text"] = content["text"].replace(was, now)
    assert typed_today not in json.dumps(recording)
    har.write_text(json.dumps(recording), encoding="utf-8")
    stored: list[CollectedDocument] = []
    async with har_session(browser, replay=har) as (context, http):
        ctx = CollectContext(browser_context=context, http=http, portal_url=f"{portal.url}/legacy/",
                             login=MULTI, password="demo")
        assert ctx.today == date(2026, 3, 1)
        replayed = await run_collection(RecipeCollector(RECIPE), ctx, _keep(stored), timeout_s=90)
    assert replayed.outcome is None, replayed.outcome
    assert got(stored) == expected(MULTI)


def _keep(into: list[CollectedDocument]) -> Callable[[CollectedDocument], Awaitable[bool]]:
    async def store(document: CollectedDocument) -> bool:
        into.append(document)
        return True
    return store
