"""The documents service on a real nats-server: files in the invoice bucket, `invoice collected` on
JetStream, the extractor in its child process, the records in its own database.

The Factur-X files come from the project's generator (sandbox/einvoice.py, written from the
standards), never from the extractor's code.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import multiprocessing
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import ObjectMeta, ObjectMetaOptions
from nats.js.object_store import ObjectStore
from pypdf import PdfWriter
from typer.testing import CliRunner

from collectors.cli import app as cli_app
from sandbox import einvoice as gen
from services.documents.app import BucketFiles, DocumentsSettings, build
from services.documents.service import FileMissing, FileTooLarge
from shared.client import ApiClient
from shared.errors import RemoteApiError
from shared.events import InvoiceCollected
from shared.subjects import INVOICE_BUCKET, STREAMS, Api, Events
from tests.integration.helpers import eventually, services_running
from tests.unit.test_deploy import LiveNats, connect, server  # noqa: F401 (fixture)

TENANT = "pharma-1"
DURABLE = "documents-extract"


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
async def platform(nats_url: str, mongodb_url: str | None, db_prefix: str) -> AsyncIterator[tuple[ApiClient, Any]]:
    """The documents service alone (max file 256 KiB, to test the limit cheaply), and a JetStream
    client that plays the scraper: it writes the bucket and publishes `invoice collected`."""
    settings = DocumentsSettings(nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix,
                                 documents_max_file_bytes=256 * 1024)
    nc = await nats.connect(nats_url)
    try:
        async with services_running([build(settings)], nats_url) as client:
            yield client, nc
    finally:
        await nc.close()


async def put_and_announce(nc: Any, invoice_id: str, data: bytes, *, number: str, issue: date, amount: str,
                           kind: str = "invoice", chunk: int = 4096, event_id: str | None = None) -> InvoiceCollected:
    """Store ``data`` in the bucket (small chunks: the reader must reassemble them) and publish its
    `invoice collected` as the scraper does (msg_id from the event)."""
    js: JetStreamContext = nc.jetstream()
    store = await js.create_object_store(INVOICE_BUCKET)
    key = f"{TENANT}/acc1/{invoice_id}"
    await store.put(key, data, meta=ObjectMeta(name=key, options=ObjectMetaOptions(max_chunk_size=chunk)))
    fields: dict[str, Any] = {
        "tenant_id": TENANT, "account_id": "acc1", "collector_id": "sandbox-classic", "invoice_id": invoice_id,
        "number": number, "issue_date": issue, "amount": Decimal(amount), "currency": "EUR", "kind": kind,
        "sha256": "00" * 32, "size": len(data), "object_key": key}
    evt = InvoiceCollected(**fields) if event_id is None else InvoiceCollected(**fields, event_id=event_id)
    await js.publish(Events.INVOICE_COLLECTED.for_tenant(TENANT), evt.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": f"{evt.msg_id()}:{evt.event_id}"})  # a duplicate is not deduped
    return evt


async def settled(nc: Any) -> bool:
    """Every `invoice collected` delivered to the documents service has been acked."""
    info = await nc.jetstream().consumer_info(str(STREAMS["scraper"].name), DURABLE)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def published(nc: Any) -> int:
    info = await nc.jetstream().stream_info(str(STREAMS["documents"].name))
    return int(info.state.messages)


async def data_of(client: ApiClient, invoice_id: str, tenant: str = TENANT) -> dict[str, Any] | None:
    try:
        return await client.call(Api.DOCUMENTS_INVOICE_DATA, {"tenant_id": tenant, "invoice_id": invoice_id})
    except RemoteApiError as exc:
        if exc.remote_code == "not_found":
            return None
        raise


async def test_a_factur_x_yields_its_data_and_one_event_and_a_duplicate_nothing(
        platform: tuple[ApiClient, Any]) -> None:
    client, nc = platform
    spec = gen.four_rates_spec()
    pdf = gen.facturx_pdf(spec, "en16931", blank_pdf())
    totals = spec.totals()
    evt = await put_and_announce(nc, "inv-fx", pdf, number=spec.number, issue=spec.issue_date,
                                 amount=str(totals.grand_total))
    data = await eventually(lambda: data_of(client, "inv-fx"), what="the extracted data")
    assert data["source"] == "factur-x" and data["attachment"] == "factur-x.xml"
    assert data["data"]["number"] == spec.number and data["data"]["totals"]["grand_total"] == str(totals.grand_total)
    rates = [(v["rate"], v["basis"], v["amount"]) for v in data["data"]["vat_breakdown"]]
    assert [Decimal(r) for r, _, _ in rates] == [v.rate for v in totals.vat_breakdown]
    assert [(Decimal(b), Decimal(a)) for _, b, a in rates] == [(v.basis, v.amount) for v in totals.vat_breakdown]
    assert data["warnings"] == [], data["warnings"]  # the portal listed what the e-invoice says

    # exactly one `invoice data extracted`, carrying the model
    sub = await nc.jetstream().pull_subscribe(Events.INVOICE_DATA_EXTRACTED.pattern, durable="test-reader",
                                              stream=str(STREAMS["documents"].name))
    [msg] = await sub.fetch(1, timeout=10)
    assert msg.headers and msg.headers["Nats-Msg-Id"] == f"invoice-data:{TENANT}:inv-fx"
    assert msg.subject == Events.INVOICE_DATA_EXTRACTED.for_tenant(TENANT)

    # the scraper announcing it again (a new event id, not deduplicated by JetStream): nothing new
    await put_and_announce(nc, "inv-fx", pdf, number=spec.number, issue=spec.issue_date,
                           amount=str(totals.grand_total))
    await eventually(lambda: settled(nc), what="the duplicate handled")
    assert await published(nc) == 1
    assert evt.invoice_id == "inv-fx"

    # another pharmacy asking for this invoice id is told it does not exist
    with pytest.raises(RemoteApiError) as refused:
        await client.call(Api.DOCUMENTS_INVOICE_DATA, {"tenant_id": "pharma-2", "invoice_id": "inv-fx"})
    assert refused.value.remote_code == "not_found"
    assert (await client.call(Api.DOCUMENTS_EXPORT, {"tenant_id": "pharma-2"}))["rows"] == []
    rows = (await client.call(Api.DOCUMENTS_EXPORT, {"tenant_id": TENANT}))["rows"]
    assert len(rows) == len(totals.vat_breakdown) and {r["invoice_id"] for r in rows} == {"inv-fx"}


async def test_a_hostile_file_ends_with_a_warning_and_the_service_keeps_consuming(
        platform: tuple[ApiClient, Any]) -> None:
    client, nc = platform
    spec = gen.credit_note_spec()
    pdf = gen.facturx_pdf(spec, "basic", blank_pdf())
    await put_and_announce(nc, "inv-cut", pdf[: len(pdf) // 2], number="X-1", issue=date(2026, 3, 1), amount="1.00")
    await put_and_announce(nc, "inv-big", b"%PDF-1.7\n" + b"0" * (300 * 1024), number="X-2",
                           issue=date(2026, 3, 2), amount="2.00")
    # the next one, listed with another amount than the e-invoice says: flagged, not overwritten
    await put_and_announce(nc, "inv-cn", pdf, number=spec.number, issue=spec.issue_date, amount="999.99",
                           kind="credit_note")

    cut = await eventually(lambda: data_of(client, "inv-cut"), what="the truncated file's record")
    assert cut["source"] == "none" and cut["data"] is None and cut["warnings"], cut
    big = await eventually(lambda: data_of(client, "inv-big"), what="the large file's record")
    assert [w["code"] for w in big["warnings"]] == ["file_too_large"]
    credit = await eventually(lambda: data_of(client, "inv-cn"), what="the credit note's record")
    assert credit["source"] == "factur-x" and credit["data"]["kind"] == "credit_note"
    assert credit["data"]["preceding_invoice"] == "FA2026-000417"
    assert "listed_amount_differs" in [w["code"] for w in credit["warnings"]]
    assert credit["listed"]["amount"] == "999.99"
    await eventually(lambda: settled(nc), what="every event acked")
    assert await published(nc) == 3

    rows = (await client.call(Api.DOCUMENTS_EXPORT, {"tenant_id": TENANT, "from": "2026-03-01",
                                                     "to": "2026-03-01"}))["rows"]
    assert [(r["invoice_id"], r["source"], r["grand_total"], r["vat_rate"]) for r in rows] == [
        ("inv-cut", "none", "1.00", None)]


async def test_the_cli_shows_an_invoice_s_data_and_exports_it_as_csv_and_jsonl(
        platform: tuple[ApiClient, Any], nats_url: str, tmp_path: Path) -> None:
    client, nc = platform
    spec = gen.four_rates_spec()
    totals = spec.totals()
    await put_and_announce(nc, "inv-cli", gen.facturx_pdf(spec, "en16931", blank_pdf()), number=spec.number,
                           issue=spec.issue_date, amount=str(totals.grand_total))
    await put_and_announce(nc, "inv-plain", blank_pdf(), number="BL-9", issue=date(2026, 3, 20), amount="12.50")
    await eventually(lambda: data_of(client, "inv-plain"), what="the plain PDF's record")
    await eventually(lambda: data_of(client, "inv-cli"), what="the Factur-X's record")

    # the scraper's half of `invoices show` (its ledger), answered here: the scraper is not running
    async def ledger(msg: Any) -> None:
        ref = json.loads(msg.data)
        await msg.respond(json.dumps({
            "id": ref["invoice_id"], "tenant_id": TENANT, "account_id": "acc1", "collector_id": "sandbox-classic",
            "number": spec.number, "issue_date": spec.issue_date.isoformat(), "amount": str(totals.grand_total),
            "currency": "EUR", "kind": "invoice", "sha256": "00" * 32, "size": 1, "object_key": "k",
            "collected_at": "2026-03-14T10:00:00+00:00"}).encode())

    await nc.subscribe(Api.SCRAPER_INVOICE_GET, cb=ledger)
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(cli_app, [*args, "--nats-url", nats_url])
        assert result.exit_code == 0, result.output
        return result.output

    shown = json.loads(await asyncio.to_thread(cli, "invoices", "show", "inv-cli", "--tenant", TENANT, "--json"))
    assert shown["number"] == spec.number and shown["data_source"] == "factur-x"
    assert shown["data"]["totals"]["tax_total"] == str(totals.tax_total) and shown["data_warnings"] == []
    assert {c["name"] for c in shown["checks"]} >= {"totals"}

    out = tmp_path / "export.csv"
    await asyncio.to_thread(cli, "invoices", "export", "--tenant", TENANT, "--from", "2026-03-01", "--to",
                            "2026-03-31", "--format", "csv", "-o", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    fx = [r for r in rows if r["invoice_id"] == "inv-cli"]
    assert [(Decimal(r["vat_rate"]), r["vat_basis"], r["vat_amount"]) for r in fx] == [
        (v.rate, str(v.basis), str(v.amount)) for v in totals.vat_breakdown]
    assert {r["grand_total"] for r in fx} == {str(totals.grand_total)}
    assert {r["seller_siren"] for r in fx} == {gen.SELLER.siren}
    [plain] = [r for r in rows if r["invoice_id"] == "inv-plain"]
    assert (plain["source"], plain["grand_total"], plain["vat_rate"], plain["number"]) == ("none", "12.50", "", "BL-9")

    lines = (await asyncio.to_thread(cli, "invoices", "export", "--tenant", TENANT, "--format", "jsonl")).splitlines()
    assert [json.loads(line)["invoice_id"] for line in lines] == [r["invoice_id"] for r in rows]


async def test_stopping_the_service_stops_its_idle_extraction_workers(
        nats_url: str, mongodb_url: str | None, db_prefix: str) -> None:
    """The extractor keeps workers between documents; a stopped service must not leave them behind
    (`collectors up` stops and starts services in one process)."""
    settings = DocumentsSettings(nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix)
    nc = await nats.connect(nats_url)
    try:
        async with services_running([build(settings)], nats_url) as client:
            spec = gen.credit_note_spec()
            await put_and_announce(nc, "inv-w", gen.facturx_pdf(spec, "basic", blank_pdf()), number=spec.number,
                                   issue=spec.issue_date, amount=str(spec.totals().grand_total), kind="credit_note")
            await eventually(lambda: data_of(client, "inv-w"), what="the record")
            assert [p for p in multiprocessing.active_children() if p.is_alive()], "no idle worker was kept"
    finally:
        await nc.close()
    assert await eventually(_none_alive, timeout=10, what="the workers stopped")


async def _none_alive() -> bool:
    return not [p for p in multiprocessing.active_children() if p.is_alive()]


async def test_the_documents_user_reads_a_collected_file_by_direct_get_and_nothing_else(
        server: LiveNats) -> None:  # noqa: F811
    """On nats-server with deploy/nats's users (nats.conf and the Helm values): the scraper's user writes
    a file of three chunks to the invoice bucket; the documents service's ``BucketFiles``, on its own
    user, reads it whole (metadata, then each chunk, by direct get), refuses one above the limit and
    says a missing one is missing; nats-py's JetStream-API read of the metadata is refused to it."""
    data = bytes(range(256)) * 1200  # 307,200 bytes: three chunks of nats-py's 128 KiB
    async with connect(server, "scraper") as scraper, connect(server, "documents") as documents:
        bucket = await scraper.nc.jetstream().create_object_store(INVOICE_BUCKET)
        await bucket.put("ph1/acc1/abc", data)
        files = BucketFiles(documents.nc.jetstream)
        assert await files.read("ph1/acc1/abc", len(data)) == data
        with pytest.raises(FileTooLarge):
            await files.read("ph1/acc1/abc", len(data) - 1)
        with pytest.raises(FileMissing):
            await files.read("ph1/acc1/nothing", len(data))
        assert not documents.errors, documents.errors

        with pytest.raises(Exception):  # noqa: B017 (a timeout or no responders: the server dropped it)
            js = documents.nc.jetstream(timeout=1)
            await ObjectStore(INVOICE_BUCKET, f"OBJ_{INVOICE_BUCKET}", js).get_info("ph1/acc1/abc")
        assert await documents.refused(f"$JS.API.STREAM.MSG.GET.OBJ_{INVOICE_BUCKET}")
