"""Use cases of the scraper: run one collect job end to end, answer invoice queries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from services.scraper.browsers import BrowserPool
from services.scraper.classify import Outcome, classify
from services.scraper.kit import CollectContext, Collector
from services.scraper.ledger import Ledger, object_key
from shared import api
from shared.broker import publish_event
from shared.client import ApiClient
from shared.errors import ApiErrorCode, CollectionErrorCode, NotFound, RemoteApiError
from shared.events import (
    CollectionFailed,
    CollectionStarted,
    CollectionSucceeded,
    CollectJob,
    CollectorAnnounced,
    InvoiceCollected,
    utcnow,
)
from shared.logging import forget_secret, get_logger, register_secret
from shared.subjects import Api, Events

log = get_logger("collectors.scraper")


@dataclass
class JobSettings:
    worker_id: str
    sandbox_url: str | None = None
    job_timeout_s: float = 300.0
    heartbeat_s: float = 10.0


class ScraperService:
    def __init__(self, broker: NatsBroker, ledger: Ledger, collectors: dict[str, Collector],
                 browsers: BrowserPool, store: Callable[[], Any], settings: JobSettings,
                 accounts: Callable[[], ApiClient]) -> None:
        self.broker = broker
        self.ledger = ledger
        self.collectors = collectors
        self.browsers = browsers
        self.store = store
        self.settings = settings
        self.accounts = accounts
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

    async def handle_job_message(self, msg: NatsMessage) -> None:
        """Consume one job; the ack is sent only after its results are published."""
        try:
            job = CollectJob.model_validate_json(msg.body)
        except (ValidationError, ValueError) as exc:
            await self.ledger.keep_dead_letter(msg.raw_message.subject, msg.body, str(exc)[:500], utcnow())
            log.error("poison_job_kept_aside", subject=msg.raw_message.subject)
            await msg.reject()
            return
        if job.collector_id not in self.collectors:
            await self.ledger.keep_dead_letter(msg.raw_message.subject, msg.body, "unknown collector",
                                               utcnow())
            log.error("job_for_unknown_collector", collector_id=job.collector_id)
            await msg.reject()
            return
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            await self.run_job(job)
        except Exception:
            # Our plumbing failed (NATS, database): let JetStream redeliver the job later.
            log.exception("job_failed_transiently", job_id=job.job_id)
            await msg.nack(delay=5.0)
            return
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        await msg.ack()

    async def _heartbeat(self, msg: NatsMessage) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            await msg.in_progress()

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
        creds = await self._reveal(job)
        if creds is None:
            log.info("job_dropped_stale_or_deleted", job_id=job.job_id, account_id=job.account_id)
            return
        collector = self.collectors[job.collector_id]
        started_at = utcnow()
        common = {"tenant_id": job.tenant_id, "account_id": job.account_id,
                  "collector_id": job.collector_id, "job_id": job.job_id,
                  "credential_version": job.credential_version, "started_at": started_at}
        await publish_event(self.broker, Events.COLLECTION_STARTED.for_tenant(job.tenant_id),
                            CollectionStarted(**common))
        register_secret(creds.password)
        new = 0
        outcome: Outcome | None = None
        try:
            async with self._sessions[job.collector_id], self.browsers.context() as context:
                page = await context.new_page()
                ctx = CollectContext(page=page, portal_url=self.portal_url(collector), login=creds.login,
                                     password=creds.password,
                                     known_numbers=await self.ledger.known_numbers(job.tenant_id,
                                                                                   job.account_id))
                async with asyncio.timeout(self.settings.job_timeout_s):
                    async for document in collector.collect(ctx):
                        new += await self._store(job, document)
        except Exception as exc:
            outcome = classify(exc)
            if outcome.code is CollectionErrorCode.INTERNAL_ERROR:
                log.exception("collector_internal_error", job_id=job.job_id, collector_id=job.collector_id)
        finally:
            forget_secret(creds.password)
        # Invoices recorded by an earlier attempt that died before publishing go out now.
        await self._publish_pending(job)
        total = await self.ledger.count(job.tenant_id, job.account_id)
        if outcome is None:
            await publish_event(self.broker, Events.COLLECTION_SUCCEEDED.for_tenant(job.tenant_id),
                                CollectionSucceeded(**common, new_invoices=new, total_invoices=total))
            log.info("collection_succeeded", job_id=job.job_id, new_invoices=new, total=total)
        else:
            await publish_event(self.broker, Events.COLLECTION_FAILED.for_tenant(job.tenant_id),
                                CollectionFailed(**common, error_code=outcome.code, detail=outcome.detail,
                                                 retry_after_s=outcome.retry_after_s, new_invoices=new,
                                                 total_invoices=total))
            log.info("collection_failed", job_id=job.job_id, error_code=outcome.code.value,
                     detail=outcome.detail)

    async def _store(self, job: CollectJob, document: Any) -> int:
        if await self.ledger.has_content(job.tenant_id, job.account_id, document.sha256):
            return 0
        # The file goes first (content-addressed, so a retry rewrites the same object): a ledger
        # entry never points at a missing file.
        await self.store().put(object_key(job.tenant_id, job.account_id, document.sha256), document.content)
        evt = await self.ledger.record(job.tenant_id, job.account_id, job.collector_id, document, utcnow())
        if evt is None:
            return 0
        await self._publish_invoice(evt)
        return 1

    async def _publish_invoice(self, evt: InvoiceCollected) -> None:
        await publish_event(self.broker, Events.INVOICE_COLLECTED.for_tenant(evt.tenant_id), evt)
        await self.ledger.mark_published(evt.tenant_id, [evt.invoice_id])

    async def _publish_pending(self, job: CollectJob) -> None:
        for evt in await self.ledger.unpublished(job.tenant_id, job.account_id):
            await self._publish_invoice(evt)

    # --- invoice API ---------------------------------------------------------------------------

    @staticmethod
    def _view(doc: dict[str, Any]) -> api.InvoiceView:
        return api.InvoiceView(id=doc["_id"], **{k: doc[k] for k in api.InvoiceView.model_fields
                                                 if k not in ("id",)})

    async def list_invoices(self, req: api.ListInvoices) -> api.InvoiceListReply:
        docs = await self.ledger.list(req.tenant_id, req.account_id, req.limit)
        return api.InvoiceListReply(invoices=[self._view(d) for d in docs])

    async def get_invoice(self, req: api.InvoiceRef) -> api.InvoiceView:
        doc = await self.ledger.get(req.tenant_id, req.invoice_id)
        if doc is None:
            raise NotFound("Facture introuvable." if req.lang == "fr" else "Invoice not found.",
                           field="invoice_id")
        return self._view(doc)

