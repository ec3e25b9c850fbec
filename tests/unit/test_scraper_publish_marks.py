"""The scraper marks a run's published invoices in its ledger a batch at a time (services/scraper/
service.py ``_publish_invoice``): fewer ledger writes, every invoice published once, and one whose
mark was lost goes out again with the account's next run."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast
from uuid import uuid4

import pytest

from services.scraper import service as scraper_service
from services.scraper.kit import CollectedDocument
from services.scraper.kit.invoice import InvoiceRef
from services.scraper.ledger import Ledger
from services.scraper.service import MARK_PUBLISHED_EVERY, JobSettings, ScraperService
from shared.events import InvoiceCollected
from shared.mongo import make_mongo_client


class _Store:
    async def put(self, key: str, _data: Any) -> None:
        pass


def document(n: int) -> CollectedDocument:
    ref = InvoiceRef(number=f"F-{n}", issue_date=date(2026, 5, 1), amount=Decimal("12.50"), currency="EUR",
                     kind="invoice", download_url=f"https://p.example/{n}.pdf")
    return CollectedDocument(ref, f"%PDF-1.4 {n}".encode())


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    ledger = Ledger(make_mongo_client(None)[f"unit-marks-{uuid4().hex[:10]}"])
    published: list[str] = []
    marks: list[int] = []

    async def publish_event(_broker: Any, _subject: str, evt: InvoiceCollected) -> None:
        published.append(evt.number)

    monkeypatch.setattr(scraper_service, "publish_event", publish_event)
    mark = ledger.mark_published

    async def counted(tenant_id: str, invoice_ids: list[str]) -> None:
        marks.append(len(invoice_ids))
        await mark(tenant_id, invoice_ids)

    monkeypatch.setattr(ledger, "mark_published", counted)
    service = ScraperService(cast(Any, None), ledger, {}, cast(Any, None), _Store, JobSettings(worker_id="w"),
                             cast(Any, None))
    job = cast(Any, SimpleNamespace(tenant_id="t1", account_id="acc", collector_id="c"))
    return SimpleNamespace(ledger=ledger, published=published, marks=marks, service=service, job=job)


async def test_a_run_marks_its_invoices_a_batch_at_a_time_and_the_rest_at_its_end(world: SimpleNamespace) -> None:
    await world.ledger.create_indexes()
    unmarked: list[str] = []
    count = 2 * MARK_PUBLISHED_EVERY + 5
    for n in range(count):
        assert await world.service._store(world.job, document(n), unmarked)
    assert world.marks == [MARK_PUBLISHED_EVERY, MARK_PUBLISHED_EVERY]
    assert len(await world.ledger.unpublished("t1", "acc")) == 5 == len(unmarked)
    await world.service._mark_published("t1", unmarked)  # the run's end
    assert world.marks[-1] == 5 and unmarked == []
    assert await world.ledger.unpublished("t1", "acc") == []
    assert world.published == [f"F-{n}" for n in range(count)]  # each once


async def test_invoices_whose_mark_was_lost_go_out_again_with_the_next_run(world: SimpleNamespace) -> None:
    await world.ledger.create_indexes()
    unmarked: list[str] = []
    for n in range(3):
        await world.service._store(world.job, document(n), unmarked)
    # the worker dies here: published, not marked
    world.published.clear()
    await world.service._publish_pending(world.job)  # what the account's next run does first
    assert world.published == ["F-0", "F-1", "F-2"]
    assert await world.ledger.unpublished("t1", "acc") == []


async def test_invoices_published_while_a_mark_is_written_are_marked_later(world: SimpleNamespace,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A run stores a few documents at once (runner.STORES_IN_FLIGHT): others are published while one
    of them writes a batch of marks, and must not be cleared from the list unmarked."""
    await world.ledger.create_indexes()
    slow_mark = world.ledger.mark_published
    unmarked: list[str] = []
    published_meanwhile: list[int] = []  # per mark write: invoices published while it was in flight

    async def slower(tenant_id: str, invoice_ids: list[str]) -> None:
        before = len(world.published)
        await asyncio.sleep(0.01)
        published_meanwhile.append(len(world.published) - before)
        await slow_mark(tenant_id, invoice_ids)

    monkeypatch.setattr(world.ledger, "mark_published", slower)
    count = 3 * MARK_PUBLISHED_EVERY
    await asyncio.gather(*(world.service._store(world.job, document(n), unmarked) for n in range(count)))
    assert any(published_meanwhile)  # the interleaving this test is about happened
    assert len(world.marks) >= 2 and sum(world.marks) + len(unmarked) == count
    await world.service._mark_published("t1", unmarked)  # the run's end
    assert await world.ledger.unpublished("t1", "acc") == []
