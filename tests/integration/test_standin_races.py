"""Races settled by the database, run under the stand-in's jitter (issue 11, bullet 2): the scraper
ledger's double insert and the outbox flushed by two relays at once. Each round checks its outcome;
the test passes only once a round really interleaved (``tests.standin``)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast
from uuid import uuid4

import nats
from nats.aio.client import Client

from services.scraper.kit import CollectedDocument
from services.scraper.kit.invoice import InvoiceRef
from services.scraper.ledger import Ledger
from services.scraper.service import JobSettings, ScraperService
from shared.broker import ensure_streams, jetstream, make_broker
from shared.events import InvoiceCollected, ScheduleChanged
from shared.mongo import MongoClientLike
from shared.outbox import OutboxRelay, outbox_entry
from shared.subjects import Events
from tests.standin import StandIn


class _Store:
    """The invoice bucket: content-addressed, so writing a key twice is harmless."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def put(self, key: str, _data: Any) -> None:
        await asyncio.sleep(0)
        self.keys.append(key)


async def test_a_document_stored_twice_at_once_is_one_ledger_entry_and_one_event(
        mongo_client: MongoClientLike, standin: StandIn) -> None:
    """A job redelivered while its first delivery still stores the same document: both find it new
    (``has_content``), both write the file, and the ledger's unique index lets one record it."""
    ledger = Ledger(mongo_client[f"t{uuid4().hex[:10]}_scraper"])
    await ledger.create_indexes()
    published: list[InvoiceCollected] = []
    service = ScraperService(cast(Any, None), ledger, {}, cast(Any, None), _Store, JobSettings(worker_id="w"),
                             cast(Any, None))

    async def publish(evt: InvoiceCollected, _unmarked: list[str] | None = None) -> None:
        published.append(evt)
        await ledger.mark_published(evt.tenant_id, [evt.invoice_id])

    service._publish_invoice = publish  # type: ignore[method-assign]

    async def store_twice(round_: int) -> None:
        published.clear()
        job = cast(Any, SimpleNamespace(tenant_id="t1", account_id=f"acc-{round_}", collector_id="c"))
        ref = InvoiceRef(number=f"F-{round_}", issue_date=date(2026, 5, 1), amount=Decimal("12.50"),
                         currency="EUR", kind="invoice", download_url="https://p.example/f.pdf")
        stored = await asyncio.gather(*(service._store(job, CollectedDocument(ref, b"%PDF-1.4 same"))
                                        for _ in range(2)))
        assert sorted(stored) == [False, True]
        assert [e.number for e in published] == [f"F-{round_}"]
        assert await ledger.count("t1", f"acc-{round_}") == 1

    await standin.race(store_twice, "invoices", enter=("find_one",), leave=("insert_one",))


async def test_two_relays_flushing_one_outbox_at_once_publish_each_event_once(
        nats_url: str, mongo_client: MongoClientLike, standin: StandIn) -> None:
    """Two replicas' relays (their sweeps) flush the same documents at once: both read the entries,
    both publish them (JetStream drops the copies by ``Nats-Msg-Id``), both pull them; nothing is
    lost, nothing goes out twice, the outboxes end empty."""
    collection = mongo_client[f"t{uuid4().hex[:10]}_scheduler"]["schedules"]
    brokers = [make_broker(nats_url, f"relay-{i}") for i in range(2)]
    for broker in brokers:
        await broker.connect()
    await ensure_streams(jetstream(brokers[0]))
    relays = [OutboxRelay(collection, broker) for broker in brokers]
    nc: Client = await nats.connect(nats_url)
    try:
        async def flush_twice(round_: int) -> None:
            ids = [f"r{round_}-{i}" for i in range(5)]
            entries = {doc_id: [outbox_entry(Events.SCHEDULE_CHANGED.for_tenant("t1"), ScheduleChanged(
                tenant_id="t1", account_id=doc_id, collector_id="c", next_run_at=None, pause_reason=None,
                changed_at=datetime(2026, 6, 1, 8, round_, n, tzinfo=UTC))) for n in range(3)] for doc_id in ids}
            await collection.insert_many([{"_id": doc_id, "outbox": entries[doc_id]} for doc_id in ids])
            sent = await asyncio.gather(*(relay.flush({"_id": {"$in": ids}}) for relay in relays))
            assert min(sent) > 0, sent  # both relays published: the flush was double
            assert await collection.count_documents({"_id": {"$in": ids}, "outbox.0": {"$exists": True}}) == 0
            sub = await nc.jetstream().subscribe(Events.SCHEDULE_CHANGED.for_tenant("t1"),
                                                 stream="COLLECTORS_SCHEDULER", ordered_consumer=True)
            got: list[tuple[str, str]] = []
            try:
                while True:
                    event = json.loads((await sub.next_msg(timeout=0.5)).data)
                    if event["account_id"] in ids:
                        got.append((event["account_id"], event["changed_at"]))
            except (nats.errors.TimeoutError, TimeoutError):
                pass
            finally:
                await sub.unsubscribe()
            expected = [(doc_id, json.loads(e["payload"])["changed_at"]) for doc_id in ids for e in entries[doc_id]]
            assert sorted(got) == sorted(expected)  # each event once: JetStream dropped the copies

        await standin.race(flush_twice, "schedules", enter=("find",), leave=("bulk_write",))
    finally:
        await nc.close()
        for broker in brokers:
            await broker.stop()
