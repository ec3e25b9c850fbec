"""Running one collector in one browser context to the end: storing what it finds, logging in again when the
portal drops the session, and turning whatever stopped it into one §4 outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from services.scraper.classify import Outcome, classify, is_our_bug, needs_diagnosis
from services.scraper.diagnose import SESSION_EXPIRED, Diagnosis, diagnose
from services.scraper.evidence import RunRecorder, snapshot
from services.scraper.kit import (
    CollectContext,
    CollectedDocument,
    Collector,
    Found,
    MissingDocument,
    SessionExpired,
)
from services.scraper.kit.invoice import InvoiceKey
from services.scraper.kit.witness import Witness
from shared.errors import CollectionErrorCode
from shared.logging import get_logger

log = get_logger("collectors.scraper.runner")

# The first login, and as many again after the portal logged us out mid-run.
MAX_LOGINS = 3
# Documents being stored at once while the collector goes on to the next: each store is a chain of
# waits (the Object Store's writes, the ledger's, the event's), ~40 ms a document on a busy worker,
# which one after another made up most of a classic job's time.
STORES_IN_FLIGHT = 4

Store = Callable[[CollectedDocument], Awaitable[bool]]


@dataclass
class RunReport:
    new_documents: int = 0
    collected: set[InvoiceKey] = field(default_factory=set)  # (site, number) of each document stored
    missing: dict[InvoiceKey, str] = field(default_factory=dict)  # -> why its file could not be had
    logins: int = 0
    outcome: Outcome | None = None  # None: everything listed was collected
    # The run's trail and in-memory HAR entries; on failure, its last page and screenshot too.
    recorder: RunRecorder = field(default_factory=RunRecorder)


class _StoreFailed(Exception):
    """Keeping a document failed on our side (NATS, database): not the collector's doing, so it
    escapes the classification and the job is retried."""


class _Stores:
    """The run's documents stored ``STORES_IN_FLIGHT`` at a time, while the collector fetches the next.

    A failed store stops the run at the next document handed over (``_StoreFailed``, which escapes the
    collector's classification), and ``wait`` raises its own error once the others have ended. What
    was handed over is stored even when the run then fails or times out: ``wait`` lets every store
    end (each bounded by its own NATS and database timeouts); a cancelled run cancels them."""

    def __init__(self, store: Store, report: RunReport) -> None:
        self._store = store
        self._report = report
        self._slots = asyncio.Semaphore(STORES_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failed: Exception | None = None

    async def add(self, document: CollectedDocument) -> None:
        if self._failed is not None:
            raise _StoreFailed()
        await self._slots.acquire()
        task = asyncio.create_task(self._one(document))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _one(self, document: CollectedDocument) -> None:
        try:
            new = await self._store(document)
            self._report.new_documents += new  # read after the await: other stores add meanwhile
        except Exception as exc:
            self._failed = self._failed or exc
        finally:
            self._slots.release()

    async def wait(self) -> None:
        """Every store handed over ended; the first that failed is raised as it came (ours: NATS, the
        database), so the job is retried."""
        while self._tasks:
            await asyncio.gather(*self._tasks)
        if self._failed is not None:
            raise self._failed

    def cancel(self) -> None:
        """The run was cancelled (its worker stops, or hands the job back): so are its stores."""
        for task in self._tasks:
            task.cancel()


class _Relogin:
    """The session ended under us: start again, skipping what is already stored."""


_RELOGIN = _Relogin()


@asynccontextmanager
async def _closing(items: AsyncIterator[Found]) -> AsyncIterator[None]:
    """Close an abandoned collector generator now (its ``finally`` blocks run while the page lives)."""
    try:
        yield
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


def _label(key: InvoiceKey) -> str:
    site, number = key
    return number if site is None else f"{number} on site {site}"


def _order(item: tuple[InvoiceKey, str]) -> tuple[str, str, bool]:
    (site, number), _ = item
    return (number, site or "", site is not None)


async def _judge(exc: Exception, witness: Witness, logged_in: bool, portal_url: str) -> Outcome | _Relogin:
    if isinstance(exc, SessionExpired):
        return _RELOGIN
    diagnosis: Diagnosis | None = None
    if needs_diagnosis(exc):
        found = diagnose(await witness.evidence(logged_in=logged_in))
        if found is SESSION_EXPIRED and not is_our_bug(exc):  # our bug on a login page is still ours
            return _RELOGIN
        diagnosis = found if isinstance(found, Diagnosis) else None
    return classify(exc, diagnosis, portal_url=portal_url)


async def run_collection(collector: Collector, ctx: CollectContext, store: Store, *,
                         timeout_s: float, recorder: RunRecorder | None = None) -> RunReport:
    """Run ``collector`` until it is done or stopped; ``store`` keeps each document (True if new).
    ``recorder`` follows the run (its trail, always); a failed run also gets its last page shown
    and a screenshot (``report.recorder.snapshot``), taken while the page is still open."""
    report = RunReport(recorder=recorder or RunRecorder())
    report.recorder.watch(ctx)
    stores = _Stores(store, report)
    try:
        report = await _run(collector, ctx, stores, timeout_s, report)
    finally:
        stores.cancel()  # none left but on a cancellation
        report.recorder.stop()
    return report


async def _run(collector: Collector, ctx: CollectContext, stores: _Stores, timeout_s: float,
               report: RunReport) -> RunReport:
    witness = ctx.witness
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            while report.outcome is None:
                report.logins += 1
                try:
                    found_items = collector.collect(ctx)
                    async with _closing(found_items):
                        async for found in found_items:
                            key = found.ref.key
                            if isinstance(found, MissingDocument):
                                report.missing[key] = found.reason
                                continue
                            report.missing.pop(key, None)
                            report.collected.add(key)
                            await stores.add(found)
                    break
                except _StoreFailed:
                    await stores.wait()  # raises the failed store's error once the others have ended
                    raise  # not reached
                except Exception as exc:
                    logged_in = ctx.logged_in or bool(report.collected)
                    verdict = await _judge(exc, witness, logged_in, ctx.portal_url)
                    if not isinstance(verdict, _Relogin):
                        report.outcome = verdict
                    elif report.logins >= MAX_LOGINS:
                        report.outcome = Outcome(CollectionErrorCode.SUPPLIER_UNAVAILABLE,
                                                 f"the portal ended the session {report.logins} times")
                    else:
                        log.info("session_expired_logging_in_again", collector_id=collector.manifest.id,
                                 collected=len(report.collected))
                        ctx = replace(ctx, known=ctx.known | report.collected, logged_in=False)
    except TimeoutError:
        if not deadline.expired():
            raise  # a NATS or database timeout while storing: the job is retried
        report.outcome = Outcome(CollectionErrorCode.SUPPLIER_UNAVAILABLE,
                                 f"collection did not finish within {timeout_s:.0f} s")
    await stores.wait()  # what was handed over is stored, whatever the outcome
    if report.outcome is None and report.missing:
        listed = ", ".join(f"{_label(key)} ({why})" for key, why in sorted(report.missing.items(), key=_order))
        report.outcome = Outcome(CollectionErrorCode.DOWNLOAD_FAILED,
                                 f"{len(report.missing)} document(s) not downloaded: {listed}"[:500])
    if report.outcome is not None:
        report.recorder.snapshot = await snapshot(ctx)
    return report
