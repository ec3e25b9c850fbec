"""The documents service's use cases with fakes: the extractor, the invoice bucket and the outbox.

The extractor is a fake here (its own tests are test_einvoice_*): what is checked is what the
service does with an extraction: one record and one event per invoice whatever the deliveries, the
size limit before any read, the portal's disagreements kept, the tenant's walls, the export's rows.
A test through FastStream's TestNatsBroker checks the consumer's acks on the composition root.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from faststream.nats import TestNatsBroker

from services.documents import app as documents_app
from services.documents.repository import DocumentRepository
from services.documents.service import DocumentsService, FileMissing, FileTooLarge
from shared import api
from shared.errors import NotFound
from shared.events import InvoiceCollected, InvoiceDataExtracted
from shared.invoice_data import DataWarning, EInvoice, Extraction, Listed, Party, Totals, VatBreakdown
from shared.memory_mongo import InMemoryMongoClient
from shared.subjects import STREAMS, Events

MAX = 1000


def invoice(number: str = "FA-1", issue: date = date(2026, 3, 14), rates: int = 2) -> EInvoice:
    """Written by hand: two VAT rates of a pharmacy invoice (2.1 % and 20 %), amounts as strings."""
    breakdown = [VatBreakdown(category="S", rate=Decimal("2.10"), basis=Decimal("10.90"), amount=Decimal("0.23")),
                 VatBreakdown(category="S", rate=Decimal("20.00"), basis=Decimal("14.99"), amount=Decimal("3.00"))]
    return EInvoice(
        syntax="CII", profile="EN 16931", number=number, type_code="380", kind="invoice", issue_date=issue,
        currency="EUR", seller=Party(name="Répartiteur SA", siren="732829320", vat_id="FR44732829320"),
        buyer=Party(name="Pharmacie"),
        totals=Totals(line_total=Decimal("25.89"), tax_basis=Decimal("25.89"), tax_total=Decimal("3.23"),
                      grand_total=Decimal("29.12"), due=Decimal("29.12")),
        vat_breakdown=breakdown[:rates], lines=[])


def collected(invoice_id: str = "inv1", tenant: str = "ph1", **kw: Any) -> InvoiceCollected:
    fields: dict[str, Any] = {
        "tenant_id": tenant, "account_id": "acc1", "collector_id": "sandbox-classic", "invoice_id": invoice_id,
        "number": "FA-1", "issue_date": date(2026, 3, 14), "amount": Decimal("29.12"), "currency": "EUR",
        "kind": "invoice", "sha256": "ab" * 32, "size": 10, "object_key": f"{tenant}/acc1/{invoice_id}"}
    return InvoiceCollected(**{**fields, **kw})


class FakeFiles:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.reads: list[str] = []

    async def read(self, key: str, max_bytes: int) -> bytes:
        if key not in self.objects:
            raise FileMissing(key)
        if len(self.objects[key]) > max_bytes:
            raise FileTooLarge(len(self.objects[key]))
        self.reads.append(key)
        return self.objects[key]


class FakeExtractor:
    """Answers what the test set per file content; ``gate`` holds every extraction until it is set."""

    def __init__(self) -> None:
        self.results: dict[bytes, Extraction] = {}
        self.calls: list[bytes] = []
        self.reconciled: list[Listed] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def extract(self, data: bytes, *, filename: str | None) -> Extraction:
        self.calls.append(data)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.results.get(data, Extraction(source="none", warnings=[
            DataWarning(code="no_einvoice", message="no e-invoice in this file")]))

    def reconcile(self, extraction: Extraction, listed: Listed) -> list[DataWarning]:
        self.reconciled.append(listed)
        assert extraction.invoice is not None
        if extraction.invoice.number != listed.number:
            return [DataWarning(code="listed_number_differs", message="differs", field="number")]
        return []


class FakeOutbox:
    """The relay's job without NATS: pull the matching records' entries into ``published``, deduplicated
    by msg_id as JetStream's window would (a duplicate publish must not be needed to pass)."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.published: list[dict[str, Any]] = []
        self.sent_ids: list[str] = []

    async def flush(self, doc_filter: dict[str, Any]) -> int:
        docs = await self.collection.find({**doc_filter, "outbox.0": {"$exists": True}}).to_list()
        for doc in docs:
            for entry in doc["outbox"]:
                self.sent_ids.append(entry["msg_id"])
                self.published.append(entry)
            await self.collection.update_one({"_id": doc["_id"]}, {"$set": {"outbox": []}})
        return sum(len(d["outbox"]) for d in docs)


class World:
    def __init__(self) -> None:
        self.repo = DocumentRepository(InMemoryMongoClient()[f"unit-documents-{uuid.uuid4().hex}"])
        self.files = FakeFiles()
        self.extractor = FakeExtractor()
        self.outbox = FakeOutbox(self.repo.invoice_data)
        self.service = DocumentsService(self.repo, self.outbox, self.files, self.extractor, max_file_bytes=MAX)

    def store(self, evt: InvoiceCollected, data: bytes, extraction: Extraction | None = None) -> None:
        self.files.objects[evt.object_key] = data
        if extraction is not None:
            self.extractor.results[data] = extraction

    def events(self) -> list[InvoiceDataExtracted]:
        return [InvoiceDataExtracted.model_validate_json(e["payload"]) for e in self.outbox.published]


@pytest.fixture
async def world() -> World:
    w = World()
    await w.repo.create_indexes()
    return w


async def test_a_collected_invoice_is_stored_once_and_published_once(world: World) -> None:
    evt = collected()
    world.store(evt, b"%PDF factur-x", Extraction(source="factur-x", attachment="factur-x.xml", invoice=invoice()))
    await world.service.invoice_collected(evt)

    [published] = world.events()
    assert world.outbox.published[0]["subject"] == "collectors.evt.documents.invoice_data_extracted.ph1"
    assert world.outbox.published[0]["msg_id"] == "invoice-data:ph1:inv1"
    assert (published.tenant_id, published.invoice_id, published.account_id) == ("ph1", "inv1", "acc1")
    assert published.source == "factur-x" and published.invoice == invoice() and published.data_warnings == []
    assert world.extractor.reconciled == [Listed(number="FA-1", issue_date=date(2026, 3, 14),
                                                 amount=Decimal("29.12"), kind="invoice")]

    view = await world.service.invoice_data(api.InvoiceRef(tenant_id="ph1", invoice_id="inv1"))
    assert view.data == invoice() and view.source == "factur-x" and view.attachment == "factur-x.xml"
    assert view.listed.amount == Decimal("29.12")
    # exact decimals through the database and JSON: 0.23 stays "0.23", 20.00 stays "20.00"
    dumped = view.model_dump(mode="json")
    assert dumped["data"]["vat_breakdown"][1]["rate"] == "20.00"
    assert dumped["data"]["totals"]["grand_total"] == "29.12"

    # the same event again (a redelivery) and a duplicate with a new event id: nothing read, nothing sent
    await world.service.invoice_collected(evt)
    await world.service.invoice_collected(collected())
    assert len(world.extractor.calls) == 1 and len(world.outbox.published) == 1


async def test_two_deliveries_at_once_store_one_record_and_queue_one_event(world: World) -> None:
    evt = collected()
    world.store(evt, b"x", Extraction(source="ubl", invoice=invoice()))
    world.extractor.gate = asyncio.Event()
    first = asyncio.create_task(world.service.invoice_collected(evt))
    second = asyncio.create_task(world.service.invoice_collected(evt))
    for _ in range(100):  # until both passed the "already stored?" look-up and wait in the extractor
        await asyncio.sleep(0)
    assert len(world.extractor.calls) == 2
    world.extractor.gate.set()
    await asyncio.gather(first, second)
    assert len(world.outbox.published) == 1
    assert await world.repo.invoice_data.count_documents({}) == 1


async def test_a_batch_reads_each_new_invoice_once_in_two_lanes_and_stores_them_in_one_write(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    done = collected("inv0")
    world.store(done, b"f0", Extraction(source="cii", invoice=invoice()))
    await world.service.invoice_collected(done)
    world.extractor.calls.clear()
    evts = [collected(f"inv{n}") for n in range(1, 5)]
    for n, evt in enumerate(evts, 1):
        world.store(evt, f"f{n}".encode(), Extraction(source="cii", invoice=invoice()))
    writes: list[int] = []
    insert_many = world.repo.insert_many

    async def counted(docs: list[dict[str, Any]]) -> list[str]:
        writes.append(len(docs))
        return await insert_many(docs)

    monkeypatch.setattr(world.repo, "insert_many", counted)
    world.extractor.gate = asyncio.Event()
    # inv0 stored already, inv2 twice in the batch (a duplicate event)
    batch = asyncio.create_task(world.service.invoices_collected([done, *evts, collected("inv2")]))
    for _ in range(100):
        await asyncio.sleep(0)
    assert len(world.extractor.calls) == 2  # two lanes (concurrency 2): two extractions in flight, no more
    world.extractor.gate.set()
    await batch
    assert sorted(world.extractor.calls) == [b"f1", b"f2", b"f3", b"f4"]  # each once, not the stored f0
    assert writes == [4]
    assert sorted(e.invoice_id for e in world.events()) == ["inv0", "inv1", "inv2", "inv3", "inv4"]


async def test_a_file_above_the_limit_is_not_read_and_says_so(world: World) -> None:
    evt = collected()
    world.store(evt, b"x" * (MAX + 1))
    await world.service.invoice_collected(evt)
    assert world.extractor.calls == [] and world.files.reads == []
    [published] = world.events()
    assert published.source == "none" and published.invoice is None
    assert [w.code for w in published.data_warnings] == ["file_too_large"]
    assert str(MAX + 1) in published.data_warnings[0].message


async def test_a_missing_file_ends_with_a_warning(world: World) -> None:
    await world.service.invoice_collected(collected())
    [published] = world.events()
    assert [w.code for w in published.data_warnings] == ["file_missing"]


async def test_a_file_without_e_invoice_keeps_source_none_and_is_not_reconciled(world: World) -> None:
    evt = collected()
    world.store(evt, b"%PDF plain")
    await world.service.invoice_collected(evt)
    [published] = world.events()
    assert published.source == "none" and [w.code for w in published.data_warnings] == ["no_einvoice"]
    assert world.extractor.reconciled == []


async def test_a_disagreement_with_the_portal_is_flagged_not_overwritten(world: World) -> None:
    evt = collected(number="FA-0001")
    world.store(evt, b"x", Extraction(source="factur-x", invoice=invoice("FA-1")))
    await world.service.invoice_collected(evt)
    view = await world.service.invoice_data(api.InvoiceRef(tenant_id="ph1", invoice_id="inv1"))
    assert [w.code for w in view.warnings] == ["listed_number_differs"]
    assert view.listed.number == "FA-0001" and view.data is not None and view.data.number == "FA-1"


async def test_an_extractor_failure_stores_nothing_so_that_the_event_is_retried(world: World) -> None:
    evt = collected()
    world.store(evt, b"x")
    world.extractor.fail = OSError("cannot fork")
    with pytest.raises(OSError):
        await world.service.invoice_collected(evt)
    assert await world.repo.invoice_data.count_documents({}) == 0 and world.outbox.published == []
    world.extractor.fail = None
    await world.service.invoice_collected(evt)  # the redelivery does the work
    assert len(world.outbox.published) == 1


async def test_another_pharmacy_s_invoice_is_not_found(world: World) -> None:
    evt = collected()
    world.store(evt, b"x", Extraction(source="factur-x", invoice=invoice()))
    await world.service.invoice_collected(evt)
    with pytest.raises(NotFound):
        await world.service.invoice_data(api.InvoiceRef(tenant_id="ph2", invoice_id="inv1"))
    reply = await world.service.export(api.ExportInvoiceData(tenant_id="ph2"))
    assert reply.rows == []


async def test_the_export_has_a_row_per_invoice_and_rate_and_the_portal_amount_without_data(world: World) -> None:
    with_data = collected("inv1")
    world.store(with_data, b"a", Extraction(source="factur-x", invoice=invoice()))
    plain = collected("inv2", number="BL-77", issue_date=date(2026, 3, 15), amount=Decimal("12.50"))
    world.store(plain, b"b")
    older = collected("inv0", issue_date=date(2026, 1, 2))
    world.store(older, b"c")
    for evt in (with_data, plain, older):
        await world.service.invoice_collected(evt)

    reply = await world.service.export(api.ExportInvoiceData.model_validate(
        {"tenant_id": "ph1", "from": "2026-03-01", "to": "2026-03-31"}))
    rows = [r.model_dump(mode="json") for r in reply.rows]
    assert reply.next is None
    assert [(r["invoice_id"], r["vat_rate"], r["vat_basis"], r["vat_amount"]) for r in rows] == [
        ("inv1", "2.10", "10.90", "0.23"), ("inv1", "20.00", "14.99", "3.00"), ("inv2", None, None, None)]
    assert rows[0]["seller_siren"] == "732829320" and rows[0]["seller_vat_id"] == "FR44732829320"
    assert (rows[0]["tax_basis"], rows[0]["tax_total"], rows[0]["grand_total"]) == ("25.89", "3.23", "29.12")
    assert rows[2]["source"] == "none" and rows[2]["grand_total"] == "12.50" and rows[2]["number"] == "BL-77"
    assert rows[2]["warnings"] == 1

    everything = await world.service.export(api.ExportInvoiceData(tenant_id="ph1"))
    assert [r.invoice_id for r in everything.rows] == ["inv0", "inv1", "inv1", "inv2"]


async def test_the_export_pages_by_size_without_losing_or_repeating_a_row(world: World,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(7):
        evt = collected(f"inv{n}", issue_date=date(2026, 3, 1 + n % 3))
        world.store(evt, f"f{n}".encode(), Extraction(source="cii", invoice=invoice(issue=evt.issue_date)))
        await world.service.invoice_collected(evt)
    one_invoice = sum(len(r.model_dump_json()) for r in (await world.service.export(
        api.ExportInvoiceData(tenant_id="ph1"))).rows[:2])
    monkeypatch.setattr(api, "EXPORT_PAGE_BYTES", one_invoice * 2 + 10)  # two invoices a page
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        reply = await world.service.export(api.ExportInvoiceData(tenant_id="ph1", after=after))
        pages += 1
        seen += [r.invoice_id for r in reply.rows]
        if reply.next is None:
            break
        after = reply.next
    assert pages == 4
    # by issue date, then id; each invoice's two rates together, every invoice once
    assert seen == [i for i in ("inv0", "inv3", "inv6", "inv1", "inv4", "inv2", "inv5") for _ in range(2)]


async def test_the_consumer_acks_a_hostile_file_s_warning_and_retries_a_failure_of_ours() -> None:
    """The composition root's consumer under TestNatsBroker: an extraction ending in a warning is a
    result (stored, published); an exception is ours (nothing stored: JetStream redelivers it);
    poison is kept aside as a dead letter without reaching the use case."""
    rt = documents_app.build(documents_app.DocumentsSettings(db_prefix=f"unit{uuid.uuid4().hex[:8]}"))
    service: DocumentsService = rt.extras["service"]
    files, extractor = FakeFiles(), FakeExtractor()
    outbox = FakeOutbox(service.repo.invoice_data)
    service.files, service.extractor, service.outbox = files, extractor, outbox
    good, bad = collected("inv1"), collected("inv2")
    files.objects[good.object_key] = b"truncated %PDF-1.7"
    extractor.results[b"truncated %PDF-1.7"] = Extraction(source="none", warnings=[
        DataWarning(code="extraction_crashed", message="the child died")])
    files.objects[bad.object_key] = b"boom"
    stream = str(STREAMS["scraper"].name)
    async with TestNatsBroker(rt.broker) as br:
        await br.publish(good.model_dump_json(), Events.INVOICE_COLLECTED.for_tenant("ph1"), stream=stream)
        stored = await service.repo.get("ph1", "inv1")
        assert stored is not None and stored["warnings"][0]["code"] == "extraction_crashed"

        extractor.fail = RuntimeError("database down")
        await br.publish(bad.model_dump_json(), Events.INVOICE_COLLECTED.for_tenant("ph1"), stream=stream)
        assert await service.repo.get("ph1", "inv2") is None

        extractor.fail = None
        await br.publish(json.dumps({"tenant_id": "ph1"}), Events.INVOICE_COLLECTED.for_tenant("ph1"),
                         stream=stream)  # poison: kept aside, never reaches the use case
        assert len(extractor.calls) == 2
        letters = await service.repo.invoice_data.database["dead_letters"].find({}).to_list()
        assert [letter["reason"][:14] for letter in letters] == ["invalid event:"]
    assert [e["msg_id"] for e in outbox.published] == ["invoice-data:ph1:inv1"]


def test_the_parsing_libraries_are_loaded_when_the_service_starts_not_by_the_first_document() -> None:
    """Imported by the first document, they held the event loop ~0.5 s; the service's start hooks
    load them in a thread. A fresh interpreter shows the import happens in ``load`` (building the
    service, for its AsyncAPI document, still needs none of them)."""
    import subprocess
    import sys

    code = ("import asyncio, sys\n"
            "from services.documents import app\n"
            "rt = app.build(app.DocumentsSettings(db_prefix='unit-load'))\n"
            "assert 'services.documents.einvoice' not in sys.modules, 'imported at build'\n"
            "loads = [h for h in rt.on_connect if getattr(h, '__name__', '') == 'load']\n"
            "assert len(loads) == 1, rt.on_connect\n"
            "asyncio.run(loads[0]())\n"
            "assert 'services.documents.einvoice.extract' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
