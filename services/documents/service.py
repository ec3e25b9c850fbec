"""Use cases of the documents service; handlers in ``app.py`` only call these.

Each collected invoice is read once: its file from the invoice bucket (bounded), the e-invoice inside
it by the extractor in a child process (a hostile file costs that process, never this one), checked
against what the portal listed, stored with its ``invoice data extracted`` event in one insert (the
outbox), then published. A redelivered or duplicated ``invoice collected`` finds the record and does
nothing: no second read, no second event.
"""

from __future__ import annotations

import asyncio
import importlib
from collections import Counter
from typing import Any, Protocol

from services.documents import messages
from services.documents.repository import DocumentRepository, record_id
from shared import api
from shared.errors import NotFound
from shared.events import InvoiceCollected, InvoiceDataExtracted, utcnow
from shared.invoice_data import Check, DataWarning, EInvoice, Extraction, Listed
from shared.logging import get_logger
from shared.outbox import outbox_entry
from shared.subjects import Events

log = get_logger("collectors.documents")

# Records read from the database per round while filling an export page.
EXPORT_BATCH = 200


class FileTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


class FileMissing(Exception):
    """The bucket no longer holds the object the event names."""


class InvoiceFiles(Protocol):
    async def read(self, key: str, max_bytes: int) -> bytes:
        """The object's bytes; FileTooLarge above ``max_bytes`` (before reading it), FileMissing."""
        ...


class Outbox(Protocol):
    """What the use cases need of ``shared.outbox.OutboxRelay``: publish a record's queued events."""

    async def flush(self, doc_filter: dict[str, Any]) -> int: ...


class Extractor(Protocol):
    async def extract(self, data: bytes, *, filename: str | None) -> Extraction: ...

    def reconcile(self, extraction: Extraction, listed: Listed) -> list[DataWarning]: ...


class IsolatedExtractor:
    """The extractor of ``services.documents.einvoice``, run in a child process with a timeout and an
    address-space limit. Imported on first use: building the service (for the AsyncAPI document, the
    NATS permissions) must not need the parsing libraries."""

    def __init__(self, *, timeout_s: float, memory_mb: int) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb

    async def load(self) -> None:
        """Import the parsing libraries once the service starts, in a thread: imported by the first
        document instead, they held the event loop ~0.5 s (no message handled, no heartbeat)."""
        await asyncio.to_thread(importlib.import_module, "services.documents.einvoice")

    async def extract(self, data: bytes, *, filename: str | None) -> Extraction:
        from services.documents.einvoice import extract_isolated

        return await extract_isolated(data, filename=filename, timeout_s=self.timeout_s, memory_mb=self.memory_mb)

    def reconcile(self, extraction: Extraction, listed: Listed) -> list[DataWarning]:
        from services.documents.einvoice import reconcile

        return reconcile(extraction, listed)

    async def close(self) -> None:
        """Stop the idle extraction workers (kept between documents) with the service, not at exit."""
        from services.documents.einvoice import shutdown_workers

        await asyncio.to_thread(shutdown_workers)


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json")  # Decimals as exact strings, dates as ISO strings


def to_view(doc: dict[str, Any]) -> api.InvoiceDataView:
    return api.InvoiceDataView(
        invoice_id=doc["invoice_id"], tenant_id=doc["tenant_id"], account_id=doc["account_id"],
        collector_id=doc["collector_id"], listed=api.ListedValues.model_validate(doc["listed"]),
        source=doc["source"], attachment=doc.get("attachment"),
        data=EInvoice.model_validate(doc["invoice"]) if doc.get("invoice") else None,
        warnings=[DataWarning.model_validate(w) for w in doc.get("warnings", [])],
        checks=[Check.model_validate(c) for c in doc.get("checks", [])],
        extracted_at=doc["extracted_at"],
    )


def export_rows(doc: dict[str, Any]) -> list[api.ExportRow]:
    """The accountant's rows of one record: one per VAT rate of its e-invoice, or a single row with
    the portal's amount (and no VAT) when it has no structured data."""
    listed = api.ListedValues.model_validate(doc["listed"])
    inv = EInvoice.model_validate(doc["invoice"]) if doc.get("invoice") else None
    common: dict[str, Any] = {"invoice_id": doc["invoice_id"], "source": doc["source"],
                              "warnings": len(doc.get("warnings", []))}
    if inv is None:
        return [api.ExportRow(**common, number=listed.number, issue_date=listed.issue_date, kind=listed.kind,
                              currency=listed.currency, grand_total=listed.amount)]
    common.update(number=inv.number, issue_date=inv.issue_date, kind=inv.kind, currency=inv.currency,
                  seller_name=inv.seller.name, seller_siren=inv.seller.siren, seller_vat_id=inv.seller.vat_id,
                  tax_basis=inv.totals.tax_basis, tax_total=inv.totals.tax_total, grand_total=inv.totals.grand_total)
    if not inv.vat_breakdown:  # MINIMUM-like data: the totals, no breakdown
        return [api.ExportRow(**common)]
    return [api.ExportRow(**common, vat_category=vat.category, vat_rate=vat.rate, vat_basis=vat.basis,
                          vat_amount=vat.amount) for vat in inv.vat_breakdown]


def _cursor(doc: dict[str, Any]) -> str:
    return f"{doc['issue_date']}/{doc['invoice_id']}"


def _parse_cursor(after: str | None) -> tuple[str, str] | None:
    if after is None:
        return None
    day, _, invoice_id = after.partition("/")
    return day, invoice_id


class DocumentsService:
    def __init__(self, repo: DocumentRepository, outbox: Outbox, files: InvoiceFiles, extractor: Extractor,
                 *, max_file_bytes: int, concurrency: int = 2) -> None:
        self.repo = repo
        self.concurrency = concurrency
        self.outbox = outbox
        self.files = files
        self.extractor = extractor
        self.max_file_bytes = max_file_bytes

    async def _flush(self, ids: list[str]) -> None:
        """Publish what the inserts queued; on failure the relay's sweep will."""
        try:
            await self.outbox.flush({"_id": {"$in": ids}})
        except Exception as exc:
            log.warning("outbox_flush_deferred", records=len(ids), error=str(exc))

    # --- events ------------------------------------------------------------------------------

    async def invoice_collected(self, evt: InvoiceCollected) -> None:
        """Read the collected file's e-invoice, check it against the portal's list, store and publish."""
        await self.invoices_collected([evt])

    async def invoices_collected(self, evts: list[InvoiceCollected]) -> None:
        """``invoice_collected`` for a batch: one look-up of what is stored already, the files read and
        extracted in ``concurrency`` lanes (one worker process each), one insert, one publish round.

        Raises (nothing stored, so the batch is redelivered) only on a failure of ours: the bucket or
        the database unreachable, a worker that cannot start. A hostile or missing file is a result.
        """
        fresh: dict[str, InvoiceCollected] = {}
        for evt in evts:  # the same invoice twice in a batch: a duplicate event, read once
            fresh.setdefault(record_id(evt.tenant_id, evt.invoice_id), evt)
        stored = await self.repo.existing(list(fresh))
        if stored:
            log.info("invoice_data_already_extracted", records=len(stored))
        todo = [evt for rid, evt in fresh.items() if rid not in stored]
        if not todo:
            return
        extractions = await self._extract_all(todo)
        records = [self._record(evt, extraction) for evt, extraction in zip(todo, extractions, strict=True)]
        inserted = await self.repo.insert_many(records)
        if len(inserted) < len(records):  # concurrent deliveries of the same events stored them first
            log.info("invoice_data_already_extracted", records=len(records) - len(inserted))
        log.info("invoice_data_extracted", records=len(inserted),
                 sources=dict(Counter(r["source"] for r in records)),
                 warnings=dict(Counter(w["code"] for r in records for w in r["warnings"])))
        if inserted:
            await self._flush(inserted)

    async def _extract_all(self, evts: list[InvoiceCollected]) -> list[Extraction]:
        """Each file read then extracted, ``concurrency`` at a time: at most that many files in memory."""
        results: list[Extraction | None] = [None] * len(evts)
        queue = iter(enumerate(evts))  # shared by the lanes: each takes the next event when free

        async def lane() -> None:
            for index, evt in queue:
                results[index] = await self._extract(evt)

        await asyncio.gather(*(lane() for _ in range(min(self.concurrency, len(evts)))))
        return [r for r in results if r is not None]

    def _record(self, evt: InvoiceCollected, extraction: Extraction) -> dict[str, Any]:
        """The stored record of one invoice, its event in its outbox."""
        listed = Listed(number=evt.number, issue_date=evt.issue_date, amount=evt.amount, kind=evt.kind)
        # Disagreements with the portal are flagged on the invoice, never settled in silence.
        warnings = [*extraction.warnings,
                    *(self.extractor.reconcile(extraction, listed) if extraction.invoice is not None else [])]
        out = InvoiceDataExtracted(
            tenant_id=evt.tenant_id, account_id=evt.account_id, collector_id=evt.collector_id,
            invoice_id=evt.invoice_id, source=extraction.source, attachment=extraction.attachment,
            invoice=extraction.invoice, data_warnings=warnings, checks=extraction.checks)
        inv = extraction.invoice
        return {
            "_id": record_id(evt.tenant_id, evt.invoice_id), "tenant_id": evt.tenant_id,
            "invoice_id": evt.invoice_id, "account_id": evt.account_id, "collector_id": evt.collector_id,
            "listed": {"number": evt.number, "issue_date": evt.issue_date.isoformat(), "amount": str(evt.amount),
                       "currency": evt.currency, "kind": evt.kind},
            # The export's date: the e-invoice's own when there is one, else the portal's.
            "issue_date": (inv.issue_date if inv is not None else evt.issue_date).isoformat(),
            "source": extraction.source, "attachment": extraction.attachment,
            "invoice": _dump(inv) if inv is not None else None,
            "warnings": [_dump(w) for w in warnings], "checks": [_dump(c) for c in extraction.checks],
            "sha256": evt.sha256, "extracted_at": utcnow(),
            "outbox": [outbox_entry(Events.INVOICE_DATA_EXTRACTED.for_tenant(evt.tenant_id), out)],
        }

    async def _extract(self, evt: InvoiceCollected) -> Extraction:
        try:
            data = await self.files.read(evt.object_key, self.max_file_bytes)
        except FileTooLarge as exc:
            return Extraction(source="none", warnings=[messages.file_too_large(exc.size, self.max_file_bytes)])
        except FileMissing:
            log.error("invoice_file_missing", tenant_id=evt.tenant_id, invoice_id=evt.invoice_id,
                      object_key=evt.object_key)
            return Extraction(source="none", warnings=[messages.file_missing(evt.object_key)])
        # The object key carries no file name: the extractor tells a PDF from an XML by its bytes.
        return await self.extractor.extract(data, filename=None)

    # --- API ---------------------------------------------------------------------------------

    async def invoice_data(self, req: api.InvoiceRef) -> api.InvoiceDataView:
        """The data read from one of the pharmacy's invoices, its warnings and checks."""
        doc = await self.repo.get(req.tenant_id, req.invoice_id)
        if doc is None:
            raise NotFound(messages.api_message("not_found", req.lang), field="invoice_id")
        return to_view(doc)

    async def export(self, req: api.ExportInvoiceData) -> api.ExportReply:
        """One page of rows (one per invoice and VAT rate) of the pharmacy's invoices within the dates."""
        rows: list[api.ExportRow] = []
        size = 0
        after = _parse_cursor(req.after)
        last: dict[str, Any] | None = None
        while True:
            batch = await self.repo.page(req.tenant_id, req.date_from, req.date_to, after, EXPORT_BATCH)
            for doc in batch:
                these = export_rows(doc)
                cost = sum(len(r.model_dump_json()) for r in these)
                if last is not None and size + cost > api.EXPORT_PAGE_BYTES:  # full: at least one invoice
                    return api.ExportReply(rows=rows, next=_cursor(last))
                rows.extend(these)
                size += cost
                last = doc
            if len(batch) < EXPORT_BATCH:
                return api.ExportReply(rows=rows, next=None)
            after = _parse_cursor(_cursor(batch[-1]))
