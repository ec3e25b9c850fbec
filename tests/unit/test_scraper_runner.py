"""The framework's run loop, with fake collectors on a fake page: what it stores, when it logs in
again, and the one outcome it reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from services.scraper.kit import (
    CollectContext,
    CollectedDocument,
    DownloadFailed,
    Found,
    InterfaceChanged,
    InvoiceRef,
    Manifest,
    MissingDocument,
    RateLimited,
    SessionExpired,
)
from services.scraper.kit.download import ACCEPT_PDF
from services.scraper.kit.har import HarReplay
from services.scraper.kit.invoice import InvoiceKey
from services.scraper.kit.portal_http import PortalHttp
from services.scraper.kit.reply import HttpReply
from services.scraper.runner import MAX_LOGINS, STORES_IN_FLIGHT, run_collection
from shared.errors import CollectionErrorCode as C

LOGIN_PAGE = '<form id="login-form"><input name="login"><input type="password" name="password"></form>'
MAINTENANCE = "<h1>Maintenance en cours</h1>"


class FakePage:
    def __init__(self, html: str = "<p>Mes factures</p>") -> None:
        self.html = html
        self.url = "http://portal.test/list"
        self.main_frame = object()
        self.context = None

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        pass

    async def content(self) -> str:
        return self.html

    async def wait_for_load_state(self, *args: Any, **kwargs: Any) -> None:
        pass


def doc(n: int) -> CollectedDocument:
    ref = InvoiceRef(number=f"FA-{n}", issue_date=date(2026, 3, 1), amount=Decimal("1.00"), currency="EUR",
                     kind="invoice", download_url=f"http://portal.test/{n}.pdf")
    return CollectedDocument(ref=ref, content=f"%PDF-{n}".encode())


class Scripted:
    """Each login runs the next script: a list of documents, missing ones, and an error to end with."""

    def __init__(self, *scripts: list[Found | Exception], on_run: Callable[[CollectContext], None] | None = None):
        self.manifest = Manifest(id="fake", name="Fake", supplier="Fake", portal_url="http://portal.test/")
        self.scripts = list(scripts)
        self.contexts: list[CollectContext] = []
        self.on_run = on_run

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        self.contexts.append(ctx)
        if self.on_run:
            self.on_run(ctx)
        for step in self.scripts.pop(0):
            if isinstance(step, Exception):
                raise step
            if ctx.is_known(step.ref):
                continue
            yield step


async def run(collector: Scripted, page: FakePage | None = None, known: frozenset[InvoiceKey] = frozenset(),
              timeout_s: float = 10.0) -> tuple[Any, list[str]]:
    stored: list[str] = []

    async def store(document: CollectedDocument) -> bool:
        stored.append(document.ref.number)
        return True

    ctx = CollectContext(page=page or FakePage(), portal_url="http://portal.test/", login="l", password="p",  # type: ignore[arg-type]
                         known=known, http=no_network())
    return await run_collection(collector, ctx, store, timeout_s=timeout_s), stored


def no_network() -> PortalHttp:
    return PortalHttp(None, replay=HarReplay([]))


def context() -> CollectContext:
    return CollectContext(page=FakePage(), portal_url="http://p/", login="l", password="p",  # type: ignore[arg-type]
                          http=no_network())


def html_reply(html: str, status: int = 200) -> HttpReply:
    return HttpReply(status=status, url="http://portal.test/read", headers={"content-type": "text/html"},
                     body=html.encode())


async def test_everything_collected_is_a_success() -> None:
    report, stored = await run(Scripted([doc(1), doc(2)]))
    assert report.outcome is None and stored == ["FA-1", "FA-2"] and report.new_documents == 2


async def test_missing_documents_end_as_download_failed_after_the_others() -> None:
    report, stored = await run(Scripted([doc(1), MissingDocument(doc(2).ref, "HTTP 500"), doc(3)]))
    assert stored == ["FA-1", "FA-3"]
    assert report.outcome.code is C.DOWNLOAD_FAILED and "FA-2 (HTTP 500)" in report.outcome.detail
    legacy, _ = await run(Scripted([doc(1), DownloadFailed("1 document")]))
    assert legacy.outcome.code is C.DOWNLOAD_FAILED


async def test_a_session_that_ends_is_logged_in_again_without_collecting_twice() -> None:
    collector = Scripted([doc(1), doc(2), SessionExpired("401")], [doc(1), doc(2), doc(3)])
    report, stored = await run(collector)
    assert report.outcome is None and report.logins == 2
    assert stored == ["FA-1", "FA-2", "FA-3"]
    assert collector.contexts[1].known == {(None, "FA-1"), (None, "FA-2")}


def on_site(n: int, site: str) -> CollectedDocument:
    document = doc(n)
    return CollectedDocument(ref=replace(document.ref, site=site), content=f"%PDF-{site}-{n}".encode())


async def test_after_a_new_login_a_number_collected_on_one_site_does_not_hide_another_site_s() -> None:
    collector = Scripted([on_site(1, "A"), SessionExpired("401")], [on_site(1, "A"), on_site(1, "B")])
    report, stored = await run(collector, known=frozenset({("C", "FA-1")}))
    assert report.outcome is None and report.logins == 2
    assert stored == ["FA-1", "FA-1"] and report.collected == {("A", "FA-1"), ("B", "FA-1")}
    assert collector.contexts[1].known == {("A", "FA-1"), ("C", "FA-1")}


async def test_a_missing_document_names_its_site() -> None:
    missing = MissingDocument(on_site(2, "B").ref, "HTTP 500")
    report, stored = await run(Scripted([on_site(2, "A"), missing, doc(3)]))
    assert stored == ["FA-2", "FA-3"] and report.missing == {("B", "FA-2"): "HTTP 500"}
    assert report.outcome.code is C.DOWNLOAD_FAILED and "FA-2 on site B (HTTP 500)" in report.outcome.detail


async def test_a_login_page_met_after_logging_in_is_a_session_expiry_too() -> None:
    page = FakePage(LOGIN_PAGE)
    collector = Scripted([InterfaceChanged("no table")], [doc(1)], on_run=lambda ctx: ctx.mark_logged_in())
    report, stored = await run(collector, page)
    assert report.outcome is None and stored == ["FA-1"] and report.logins == 2


async def test_a_portal_that_keeps_ending_sessions_is_unavailable() -> None:
    collector = Scripted(*([doc(1), SessionExpired()] for _ in range(MAX_LOGINS)))
    report, _ = await run(collector)
    assert report.outcome.code is C.SUPPLIER_UNAVAILABLE and report.logins == MAX_LOGINS


async def test_a_missing_element_is_explained_by_the_page() -> None:
    report, _ = await run(Scripted([InterfaceChanged("no table")]), FakePage(MAINTENANCE))
    assert report.outcome.code is C.SUPPLIER_UNAVAILABLE and "no table" in report.outcome.detail
    report, _ = await run(Scripted([InterfaceChanged("no table")]))
    assert report.outcome.code is C.INTERFACE_CHANGED
    report, _ = await run(Scripted([KeyError("boom")]), FakePage(MAINTENANCE))
    assert report.outcome.code is C.SUPPLIER_UNAVAILABLE  # a crash in front of a maintenance page
    report, _ = await run(Scripted([KeyError("boom")]))
    assert report.outcome.code is C.INTERNAL_ERROR


async def test_typed_errors_are_trusted() -> None:
    report, _ = await run(Scripted([RateLimited("429", retry_after_s=30)]), FakePage(MAINTENANCE))
    assert (report.outcome.code, report.outcome.retry_after_s) == (C.RATE_LIMITED, 30)


async def test_storage_failures_are_not_the_collectors_fault() -> None:
    async def broken_store(_: CollectedDocument) -> bool:
        raise ConnectionError("nats down")

    ctx = context()
    with pytest.raises(ConnectionError):
        await run_collection(Scripted([doc(1)]), ctx, broken_store, timeout_s=5)

    async def slow_store(_: CollectedDocument) -> bool:
        raise TimeoutError("publish timed out")

    with pytest.raises(TimeoutError):  # not mistaken for the collection's own deadline
        await run_collection(Scripted([doc(1)]), ctx, slow_store, timeout_s=5)


async def test_a_collection_past_its_deadline_is_stopped() -> None:
    class Stuck:
        manifest = Manifest(id="stuck", name="S", supplier="S", portal_url="http://p/")

        async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
            yield doc(1)
            await asyncio.sleep(30)

    ctx = context()
    stored: list[str] = []

    async def store(d: CollectedDocument) -> bool:
        stored.append(d.ref.number)
        return True

    report = await run_collection(Stuck(), ctx, store, timeout_s=0.3)
    assert report.outcome.code is C.SUPPLIER_UNAVAILABLE and stored == ["FA-1"]


class Stores:
    """A store that takes a while, and tells how many documents it held at once."""

    def __init__(self, delay_s: float = 0.02, gate: asyncio.Event | None = None) -> None:
        self.delay_s, self.gate = delay_s, gate
        self.held = self.most = 0
        self.started: list[str] = []
        self.stored: list[str] = []
        self.cancelled: list[str] = []

    async def __call__(self, document: CollectedDocument) -> bool:
        self.started.append(document.ref.number)
        self.held += 1
        self.most = max(self.most, self.held)
        try:
            await (self.gate.wait() if self.gate is not None else asyncio.sleep(self.delay_s))
            self.stored.append(document.ref.number)
            return True
        except asyncio.CancelledError:
            self.cancelled.append(document.ref.number)
            raise
        finally:
            self.held -= 1


async def test_documents_are_stored_a_few_at_a_time_while_the_collector_goes_on() -> None:
    stores = Stores()
    count = 3 * STORES_IN_FLIGHT
    report = await run_collection(Scripted([doc(n) for n in range(count)]), context(), stores, timeout_s=5)
    assert report.outcome is None and report.new_documents == count
    assert sorted(stores.stored) == sorted(f"FA-{n}" for n in range(count))
    assert stores.most == STORES_IN_FLIGHT > 1  # never more at once, and really that many


async def test_what_was_handed_over_is_stored_before_the_run_reports_even_a_failure() -> None:
    stores = Stores(delay_s=0.05)
    report = await run_collection(Scripted([doc(1), doc(2), InterfaceChanged("no table")]), context(), stores,
                                  timeout_s=5)
    assert report.outcome.code is C.INTERFACE_CHANGED
    assert sorted(stores.stored) == ["FA-1", "FA-2"] and report.new_documents == 2


async def test_a_failed_store_fails_the_run_once_the_others_have_ended() -> None:
    class Paced:
        manifest = Manifest(id="paced", name="P", supplier="P", portal_url="http://p/")

        async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
            yield doc(1)
            yield doc(2)
            await asyncio.sleep(0.05)  # FA-1's store has failed by now, FA-2's still runs
            yield doc(3)

    stored: list[str] = []

    async def store(document: CollectedDocument) -> bool:
        if document.ref.number == "FA-1":
            await asyncio.sleep(0.01)
            raise ConnectionError("nats down")
        await asyncio.sleep(0.2)
        stored.append(document.ref.number)
        return True

    with pytest.raises(ConnectionError):
        await run_collection(Paced(), context(), store, timeout_s=5)
    assert stored == ["FA-2"]  # handed over before the failure was known: kept; FA-3 never handed over


async def test_a_cancelled_run_cancels_its_stores() -> None:
    class Slow:
        manifest = Manifest(id="slow", name="S", supplier="S", portal_url="http://p/")

        async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
            yield doc(1)
            yield doc(2)
            await asyncio.sleep(30)

    stores = Stores(gate=asyncio.Event())
    run_task = asyncio.create_task(run_collection(Slow(), context(), stores, timeout_s=60))
    for _ in range(100):
        if len(stores.started) == 2:
            break
        await asyncio.sleep(0.01)
    assert stores.started == ["FA-1", "FA-2"]  # both stores running when the run is cancelled
    run_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run_task
    await asyncio.sleep(0)
    assert sorted(stores.cancelled) == ["FA-1", "FA-2"] and stores.held == 0


class ReadsOverHttp:
    """A page-less collector: what it read last over HTTP is what the framework reads to explain."""

    def __init__(self, *shown: HttpReply, then: Exception, logged_in: bool = False,
                 downloads: tuple[HttpReply, ...] = ()) -> None:
        self.manifest = Manifest(id="http", name="H", supplier="H", portal_url="http://portal.test/")
        self.shown, self.then, self.logged_in, self.downloads = shown, then, logged_in, downloads
        self.runs = 0

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        self.runs += 1
        if self.logged_in:
            ctx.mark_logged_in()
        for reply in self.shown:
            ctx.witness.saw_http(reply, {})
        for reply in self.downloads:
            ctx.witness.saw_http(reply, {"Accept": ACCEPT_PDF})
        if self.runs > 1:
            yield doc(1)
            return
        raise self.then


async def run_http(collector: ReadsOverHttp) -> Any:
    async def store(_: CollectedDocument) -> bool:
        return True

    ctx = CollectContext(portal_url="http://portal.test/", login="l", password="p", http=no_network())
    return await run_collection(collector, ctx, store, timeout_s=5)


async def test_a_page_read_over_http_explains_a_failure() -> None:
    report = await run_http(ReadsOverHttp(html_reply(MAINTENANCE), then=InterfaceChanged("no table")))
    assert report.outcome.code is C.SUPPLIER_UNAVAILABLE and "maintenance" in report.outcome.detail
    # The last page shown wins: a maintenance page left behind says nothing any more.
    report = await run_http(ReadsOverHttp(html_reply(MAINTENANCE), html_reply("<p>Mes factures</p>"),
                                          then=InterfaceChanged("no table")))
    assert report.outcome.code is C.INTERFACE_CHANGED


async def test_api_answers_over_http_count_but_downloads_do_not() -> None:
    api_429 = HttpReply(status=429, url="http://portal.test/api", headers={"retry-after": "120"}, body=b"{}")
    report = await run_http(ReadsOverHttp(html_reply("<p>app</p>"), api_429, then=InterfaceChanged("empty")))
    assert (report.outcome.code, report.outcome.retry_after_s) == (C.RATE_LIMITED, 120)

    broken_pdf = HttpReply(status=500, url="http://portal.test/1.pdf", headers={}, body=b"")
    report = await run_http(ReadsOverHttp(html_reply("<p>app</p>"), then=InterfaceChanged("empty"),
                                          downloads=(broken_pdf,)))
    assert report.outcome.code is C.INTERFACE_CHANGED
    api_500 = HttpReply(status=500, url="http://portal.test/api", headers={}, body=b"")
    report = await run_http(ReadsOverHttp(html_reply("<p>app</p>"), api_500, then=InterfaceChanged("empty")))
    assert report.outcome.code is C.SUPPLIER_UNAVAILABLE


async def test_a_login_page_read_over_http_after_logging_in_means_log_in_again() -> None:
    collector = ReadsOverHttp(html_reply(LOGIN_PAGE), then=InterfaceChanged("no table"), logged_in=True)
    report = await run_http(collector)
    assert report.outcome is None and collector.runs == 2
