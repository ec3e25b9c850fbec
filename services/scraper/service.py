"""Use cases of the scraper: run one collect job end to end, answer invoice queries."""

from __future__ import annotations

import asyncio
import base64
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from faststream.nats import NatsBroker
from nats.js.errors import NotFoundError, ObjectNotFoundError

from services.scraper import metrics
from services.scraper.browsers import BrowserPool
from services.scraper.downloads import read_slice
from services.scraper.kit import CollectContext, CollectedDocument, Collector
from services.scraper.kit.body import HEAD_BYTES
from services.scraper.kit.download import document_limit
from services.scraper.kit.portal_http import PortalHttp
from services.scraper.kit.session import HttpSession
from services.scraper.ledger import Ledger, LedgerEntry, object_key
from services.scraper.runner import RunReport, run_collection
from services.scraper.runs import FinishedRun, RunKeeper
from shared import api
from shared.broker import jetstream, publish_event
from shared.client import ApiClient
from shared.errors import ApiErrorCode, CollectionErrorCode, NotFound, RemoteApiError, ValidationFailed
from shared.events import (
    CollectionFailed,
    CollectionStarted,
    CollectionSucceeded,
    CollectJob,
    CollectorAnnounced,
    InvoiceCollected,
    utcnow,
)
from shared.logging import REDACTED, forget_secret, get_logger, register_secret
from shared.settings import MAX_DOCUMENT_BYTES
from shared.subjects import Api, Events

log = get_logger("collectors.scraper")
# A run's published invoices are marked so in the ledger this many at a time (one write), and the
# rest when its collection ends: a write per invoice was ~7 % of the worker's CPU on a first run.
MARK_PUBLISHED_EVERY = 16


@dataclass
class JobSettings:
    worker_id: str
    sandbox_url: str | None = None
    job_timeout_s: float = 300.0
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    browserless_start: bool = True


class ScraperService:
    def __init__(self, broker: NatsBroker, ledger: Ledger, collectors: dict[str, Collector],
                 browsers: BrowserPool, store: Callable[[], Any], settings: JobSettings,
                 accounts: Callable[[], ApiClient], *, runs: RunKeeper | None = None) -> None:
        self.broker = broker
        self.ledger = ledger
        self.collectors = collectors
        self.browsers = browsers
        self.store = store
        self.settings = settings
        self.accounts = accounts
        self.runs = runs  # the run index and evidence (services/scraper/runs.py)
        # Politeness within this worker; fleet-wide limits are the scheduler's (§9).
        self._sessions = {cid: asyncio.Semaphore(c.manifest.max_sessions) for cid, c in collectors.items()}

    def portal_url(self, collector: Collector) -> str:
        url = str(collector.manifest.portal_url)
        if self.settings.sandbox_url and collector.manifest.id.startswith("sandbox-"):
            return self.settings.sandbox_url.rstrip("/") + urlparse(url).path
        return url

    async def announce(self) -> None:
        for collector in self.collectors.values():
            m = collector.manifest
            await publish_event(self.broker, Events.COLLECTOR_ANNOUNCED.base, CollectorAnnounced(
                collector_id=m.id, name=m.name, supplier=m.supplier, portal_url=self.portal_url(collector),
                login_kind=m.login_kind, frequency_hours=m.frequency_hours, max_sessions=m.max_sessions,
                version=m.version, worker_id=self.settings.worker_id))

    # --- jobs --------------------------------------------------------------------------------

    async def _reveal(self, job: CollectJob) -> api.RevealedCredentials | None:
        try:
            reply = await self.accounts().call(Api.ACCOUNTS_REVEAL_CREDENTIALS, api.RevealCredentials(
                tenant_id=job.tenant_id, account_id=job.account_id,
                credential_version=job.credential_version).model_dump())
        except RemoteApiError as exc:
            if exc.remote_code in (ApiErrorCode.NOT_FOUND, ApiErrorCode.CONFLICT):
                return None
            raise
        return api.RevealedCredentials.model_validate(reply)

    async def run_job(self, job: CollectJob) -> None:
        # The pages' HAR of the run is written here when its context closes (kept only as evidence).
        with tempfile.TemporaryDirectory(prefix="collectors-run-") as scratch:
            await self._run_job(job, Path(scratch) / "pages.har" if self.runs is not None else None)

    async def _keep_run(self, run_id: str, job: CollectJob, started_at: datetime, report: RunReport, detail: str,
                        page_har: Path | None, password: str) -> None:
        if self.runs is not None:
            await self.runs.keep(FinishedRun(run_id, job, self.settings.worker_id, started_at, report, detail),
                                 page_har, password)

    async def _run_job(self, job: CollectJob, page_har: Path | None) -> None:
        creds = await self._reveal(job)
        if creds is None:
            # Deleted account or credentials replaced since the job was planned: the job for the
            # new credentials is already on its way; running this one would only risk a lockout.
            log.info("job_dropped_stale_or_deleted", job_id=job.job_id, account_id=job.account_id)
            return
        collector = self.collectors[job.collector_id]
        started_at = utcnow()
        run_id = uuid.uuid4().hex  # this attempt of the job in the run index
        common = {"tenant_id": job.tenant_id, "account_id": job.account_id,
                  "collector_id": job.collector_id, "job_id": job.job_id,
                  "credential_version": job.credential_version, "started_at": started_at,
                  "worker_id": self.settings.worker_id}
        await publish_event(self.broker, Events.COLLECTION_STARTED.for_tenant(job.tenant_id),
                            CollectionStarted(**common))
        register_secret(creds.password)
        try:
            known = await self.ledger.known(job.tenant_id, job.account_id)
            unmarked: list[str] = []  # published, not yet marked so in the ledger (_publish_invoice)

            async def store(document: CollectedDocument) -> bool:
                return await self._store(job, document, unmarked)

            # The job starts without a browser context (most portals are read over HTTP, kit.session);
            # one opens only if the collector asks for a page, and the session continues in it.
            async with (self._sessions[job.collector_id], self.browsers.job_browser(har_path=page_har) as browser,
                        HttpSession(user_agent=await self.browsers.user_agent()) as session):
                client = session if self.settings.browserless_start else await browser.open()
                http = PortalHttp(client, timeout_ms=self.browsers.page_timeout_s * 1000)
                ctx = CollectContext(open_context=browser.open, browser_context=browser.context, http=http,
                                     portal_url=self.portal_url(collector), login=creds.login,
                                     password=creds.password, known=known)
                with document_limit(collector.manifest.max_document_bytes or self.settings.max_document_bytes):
                    report = await run_collection(collector, ctx, store, timeout_s=self.settings.job_timeout_s)
                if report.outcome is not None and browser.context is not None:
                    # The portal's or the collector's fault only if our browser outlived the run:
                    # else BrowserLost hands the job back, and no failure is published.
                    await self.browsers.verify(browser.context)
        finally:
            forget_secret(creds.password)
        outcome = report.outcome
        await self._mark_published(job.tenant_id, unmarked)
        # Invoices recorded by an earlier attempt that died before publishing go out now.
        await self._publish_pending(job)
        total = await self.ledger.count(job.tenant_id, job.account_id)
        await metrics.record_run(self.ledger, job, report, started_at)
        if outcome is None:
            await self._keep_run(run_id, job, started_at, report, "", page_har, creds.password)
            await publish_event(self.broker, Events.COLLECTION_SUCCEEDED.for_tenant(job.tenant_id),
                                CollectionSucceeded(**common, new_invoices=report.new_documents,
                                                    total_invoices=total, run_id=run_id))
            log.info("collection_succeeded", job_id=job.job_id, new_invoices=report.new_documents,
                     total=total, logins=report.logins)
            return
        # Playwright's messages quote what was typed or found: never let the password through.
        detail = outcome.detail.replace(creds.password, REDACTED) if len(creds.password) >= 3 else outcome.detail
        if outcome.code is CollectionErrorCode.INTERNAL_ERROR:
            log.error("collector_internal_error", job_id=job.job_id, collector_id=job.collector_id,
                      detail=detail)
        # Its evidence is kept before the event that links to it (run_id) goes out.
        await self._keep_run(run_id, job, started_at, report, detail, page_har, creds.password)
        await publish_event(self.broker, Events.COLLECTION_FAILED.for_tenant(job.tenant_id),
                            CollectionFailed(**common, error_code=outcome.code, detail=detail,
                                             retry_after_s=outcome.retry_after_s,
                                             new_invoices=report.new_documents, total_invoices=total,
                                             run_id=run_id))
        log.info("collection_failed", job_id=job.job_id, error_code=outcome.code.value, detail=detail,
                 new_invoices=report.new_documents, logins=report.logins)

    async def _store(self, job: CollectJob, document: CollectedDocument, unmarked: list[str] | None = None) -> bool:
        if await self.ledger.has_content(job.tenant_id, job.account_id, document.sha256):
            return False
        # The file goes first (content-addressed, so a retry rewrites the same object): a ledger
        # entry never points at a missing file.
        # Read from its spooled file in chunks: a large PDF never sits whole in the worker's memory.
        # A small one is in memory already (its head): as bytes, nats-py reads it without handing each
        # chunk to a thread (it does for a file).
        data = document.content if document.size <= HEAD_BYTES else document.open()
        await self.store().put(object_key(job.tenant_id, job.account_id, document.sha256), data)
        evt = await self.ledger.record(job.tenant_id, job.account_id, job.collector_id, document, utcnow())
        if evt is None:
            return False
        await self._publish_invoice(evt, unmarked)
        return True

    async def _publish_invoice(self, evt: InvoiceCollected, unmarked: list[str] | None = None) -> None:
        """Publish an invoice's event, then mark it published in the ledger: at once, or with
        ``unmarked`` (a run's list) ``MARK_PUBLISHED_EVERY`` at a time, one ledger write for them all.
        One published and not marked yet (a worker that died meanwhile) goes out again with the next
        run of the account (``_publish_pending``), under the same ``Nats-Msg-Id``: JetStream drops the
        copy within its duplicate window, and the documents service reads an invoice once anyway."""
        await publish_event(self.broker, Events.INVOICE_COLLECTED.for_tenant(evt.tenant_id), evt)
        if unmarked is None:
            await self.ledger.mark_published(evt.tenant_id, [evt.invoice_id])
            return
        unmarked.append(evt.invoice_id)
        if len(unmarked) >= MARK_PUBLISHED_EVERY:
            await self._mark_published(evt.tenant_id, unmarked)

    async def _mark_published(self, tenant_id: str, unmarked: list[str]) -> None:
        if unmarked:
            # Taken before the write: a run stores documents concurrently (runner.STORES_IN_FLIGHT), and
            # one published meanwhile waits for the next write instead of being cleared unmarked.
            batch = list(unmarked)
            unmarked.clear()
            await self.ledger.mark_published(tenant_id, batch)

    async def _publish_pending(self, job: CollectJob) -> None:
        for evt in await self.ledger.unpublished(job.tenant_id, job.account_id):
            await self._publish_invoice(evt)

    # --- invoice API ---------------------------------------------------------------------------

    @staticmethod
    def _view(entry: LedgerEntry) -> api.InvoiceView:
        return api.InvoiceView.model_validate(entry.model_dump(include=set(api.InvoiceView.model_fields)))

    async def list_invoices(self, req: api.ListInvoices) -> api.InvoiceListReply:
        docs = await self.ledger.list(req.tenant_id, req.account_id, req.limit)
        return api.InvoiceListReply(invoices=[self._view(d) for d in docs])

    async def get_invoice(self, req: api.InvoiceRef) -> api.InvoiceView:
        return self._view(await self._ledger_entry(req))

    async def _ledger_entry(self, req: api.InvoiceRef) -> LedgerEntry:
        # The tenant leads the lookup: another pharmacy's invoice is not found, as a missing one.
        doc = await self.ledger.get(req.tenant_id, req.invoice_id)
        if doc is None:
            raise NotFound("Facture introuvable." if req.lang == "fr" else "Invoice not found.",
                           field="invoice_id")
        return doc

    async def download_invoice(self, req: api.DownloadInvoice) -> api.InvoiceChunk:
        """One chunk of an invoice's PDF, for its own tenant only (nobody else reads the bucket)."""
        doc = await self._ledger_entry(req)
        try:
            part = await read_slice(jetstream(self.broker), self.store(), doc.object_key, req.offset,
                                    req.cursor, api.INVOICE_CHUNK_BYTES)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="offset") from exc
        except (ObjectNotFoundError, NotFoundError) as exc:
            log.error("invoice_file_missing", invoice_id=doc.id, object_key=doc.object_key)
            raise NotFound("Fichier de la facture introuvable." if req.lang == "fr"
                           else "The invoice's file is missing.", field="invoice_id") from exc
        return api.InvoiceChunk(invoice_id=doc.id, size=part.size, sha256=doc.sha256, offset=req.offset,
                                data=base64.b64encode(part.data).decode(), next_offset=part.next_offset,
                                cursor=part.cursor)

