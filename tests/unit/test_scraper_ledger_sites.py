"""Sites in the scraper's ledger (issue 12, bullet 5): a document is (tenant, account, site, number),
and a ledger written before sites keeps recognising what it holds (same ids, same unique key), so no
invoice is collected twice after the upgrade."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from services.scraper.kit import CollectedDocument, InvoiceRef
from services.scraper.ledger import PRE_SITES_UNIQUE_INDEX, Ledger, invoice_id
from shared.events import InvoiceCollected
from shared.memory_mongo import InMemoryMongoClient

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
REF = InvoiceRef(number="FA-1", issue_date=date(2026, 3, 1), amount=Decimal("12.30"), currency="EUR",
                 kind="invoice", download_url="http://portal.test/FA-1.pdf")


def document(ref: InvoiceRef, content: bytes | None = None) -> CollectedDocument:
    return CollectedDocument(ref, content or f"%PDF-{ref.site}-{ref.number}".encode())


@pytest.fixture
async def db() -> AsyncIterator[Any]:
    client = InMemoryMongoClient()
    try:
        yield client["collectors_scraper"]
    finally:
        client.release()


async def test_the_same_number_on_two_sites_is_two_invoices_and_the_same_site_and_number_one(db: Any) -> None:
    ledger = Ledger(db)
    await ledger.create_indexes()
    on_a = await ledger.record("t1", "acc", "c", document(replace(REF, site="A")), NOW)
    on_b = await ledger.record("t1", "acc", "c", document(replace(REF, site="B")), NOW)
    assert on_a is not None and on_b is not None and on_a.invoice_id != on_b.invoice_id
    assert (on_a.site, on_b.site) == ("A", "B")
    # Once per (site, number), whatever its bytes.
    assert await ledger.record("t1", "acc", "c", document(replace(REF, site="A"), b"%PDF-again"), NOW) is None
    assert await ledger.count("t1", "acc") == 2
    assert await ledger.known("t1", "acc") == {("A", "FA-1"), ("B", "FA-1")}
    assert sorted((e.site, e.number) for e in await ledger.list("t1", None, 10)) == [("A", "FA-1"), ("B", "FA-1")]
    entry = await ledger.get("t1", on_b.invoice_id)
    assert entry is not None and entry.site == "B"
    # The stored event, published later if the first attempt died, keeps the site.
    assert {e.site for e in await ledger.unpublished("t1", "acc")} == {"A", "B"}


def test_a_site_less_id_is_the_one_documents_had_before_sites() -> None:
    before = hashlib.sha256(b"t1\x00acc\x00FA-1").hexdigest()[:32]  # the pre-sites formula, verbatim
    assert invoice_id("t1", "acc", "FA-1") == invoice_id("t1", "acc", "FA-1", None) == before
    assert invoice_id("t1", "acc", "FA-1", "A") not in (before, invoice_id("t1", "acc", "FA-1", "B"))
    # A site in the number does not reach a site's id (the two forms never hash the same input).
    assert invoice_id("t1", "acc", "A\x00FA-1") != invoice_id("t1", "acc", "FA-1", "A")


async def _pre_sites_ledger(db: Any) -> str:
    """A ledger as the code before sites left it: its indexes, and one entry written as it wrote it."""
    invoices = db["invoices"]
    await invoices.create_index([("tenant_id", ASCENDING), ("account_id", ASCENDING), ("number", ASCENDING)],
                                unique=True)
    await invoices.create_index([("tenant_id", ASCENDING), ("account_id", ASCENDING), ("sha256", ASCENDING)])
    await invoices.create_index([("tenant_id", ASCENDING), ("issue_date", DESCENDING)])
    old_id = hashlib.sha256(b"t1\x00acc\x00FA-1").hexdigest()[:32]
    sha = hashlib.sha256(b"%PDF-old").hexdigest()
    evt = InvoiceCollected(tenant_id="t1", account_id="acc", collector_id="c", invoice_id=old_id, number="FA-1",
                           issue_date=REF.issue_date, amount=REF.amount, currency="EUR", kind="invoice",
                           sha256=sha, size=8, object_key=f"t1/acc/{sha}", occurred_at=NOW)
    await invoices.insert_one({
        "_id": old_id, "tenant_id": "t1", "account_id": "acc", "collector_id": "c", "number": "FA-1",
        "issue_date": "2026-03-01", "amount": "12.30", "currency": "EUR", "kind": "invoice", "sha256": sha,
        "size": 8, "object_key": evt.object_key, "collected_at": NOW,
        "event": evt.model_dump_json(exclude={"site"}), "published": True,
    })
    return old_id


async def test_a_ledger_written_before_sites_still_recognises_its_invoices(db: Any) -> None:
    old_id = await _pre_sites_ledger(db)
    ledger = Ledger(db)
    await ledger.create_indexes()  # the upgraded service starting on the old ledger
    assert PRE_SITES_UNIQUE_INDEX not in await db["invoices"].index_information()
    # Known without a site: a collector skips it...
    assert await ledger.known("t1", "acc") == {(None, "FA-1")}
    # ...and one that downloads it anyway (new bytes, e.g. a regenerated PDF) does not record it twice.
    assert await ledger.record("t1", "acc", "c", document(REF, b"%PDF-regenerated"), NOW) is None
    assert await ledger.count("t1", "acc") == 1
    entry = await ledger.get("t1", old_id)
    assert entry is not None and entry.site is None and entry.number == "FA-1" and entry.amount == Decimal("12.30")
    # A site may reuse the number now that the old key (tenant, account, number) is gone.
    assert await ledger.record("t1", "acc", "c", document(replace(REF, site="A")), NOW) is not None
    assert await ledger.count("t1", "acc") == 2


async def test_the_unique_key_holds_without_the_id(db: Any) -> None:
    """Two writers whose ids differ (a future id formula) still meet on (tenant, account, site, number)."""
    ledger = Ledger(db)
    await ledger.create_indexes()
    base = {"tenant_id": "t1", "account_id": "acc", "number": "FA-1"}
    await db["invoices"].insert_one({"_id": "x1", **base})  # written before sites: no site field
    with pytest.raises(DuplicateKeyError):
        await db["invoices"].insert_one({"_id": "x2", **base, "site": None})
    await db["invoices"].insert_one({"_id": "x3", **base, "site": "A"})
