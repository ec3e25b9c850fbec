"""The classic collector against the sandbox portal, in a real (Debian) Chromium context that it
reads over HTTP: it never needs to open a page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from playwright.async_api import BrowserContext, async_playwright

from sandbox import SandboxPortal, documents_for, start_portal
from services.scraper.browser import launch_browser
from services.scraper.collectors.sandbox_classic import COLLECTOR
from services.scraper.kit import CollectContext, CollectedDocument, LoginFailed

pytestmark = pytest.mark.browser

TODAY = date(2026, 3, 15)
LOGIN = "pharma-42"


@pytest.fixture
async def portal() -> AsyncIterator[SandboxPortal]:
    portal = await start_portal(port=0, today=TODAY)
    yield portal
    await portal.close()


@pytest.fixture
async def context() -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        context = await browser.new_context()
        yield context
        await context.close()
        await browser.close()


async def collect(ctx: CollectContext) -> list[CollectedDocument]:
    documents = [document async for document in COLLECTOR.collect(ctx)]
    assert ctx.page is None  # forms, tables and links: no page, no rendering
    return documents


async def test_collects_every_document(portal: SandboxPortal, context: BrowserContext) -> None:
    heartbeats: list[None] = []
    ctx = CollectContext(
        browser_context=context,
        portal_url=portal.url + "/classic/",
        login=LOGIN,
        password="demo",
        heartbeat=lambda: heartbeats.append(None),
    )
    documents = await collect(ctx)

    expected = documents_for(LOGIN, TODAY)
    assert [(d.ref.number, d.ref.issue_date, d.ref.amount, d.ref.kind) for d in documents] == [
        (e.number, e.issue_date, e.amount, e.kind) for e in expected
    ]
    assert all(d.ref.currency == "EUR" for d in documents)
    assert all(d.content.startswith(b"%PDF") for d in documents)
    assert len({d.sha256 for d in documents}) == len(documents)
    assert len(heartbeats) == -(-len(expected) // 10)


async def test_wrong_password_is_a_login_failure(portal: SandboxPortal, context: BrowserContext) -> None:
    ctx = CollectContext(browser_context=context, portal_url=portal.url + "/classic/", login=LOGIN, password="nope")
    with pytest.raises(LoginFailed):
        await collect(ctx)


async def test_known_numbers_are_not_downloaded(portal: SandboxPortal, context: BrowserContext) -> None:
    expected = [doc.number for doc in documents_for(LOGIN, TODAY)]
    known = frozenset(expected[::3])
    ctx = CollectContext(
        browser_context=context, portal_url=portal.url + "/classic", login=LOGIN, password="demo",
        known=frozenset((None, n) for n in known),
    )
    documents = await collect(ctx)
    assert [d.ref.number for d in documents] == [n for n in expected if n not in known]
