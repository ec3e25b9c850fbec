"""The collected-invoice ledger: what was collected per account, so nothing is published twice."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError, OperationFailure

from services.scraper.kit import CollectedDocument
from services.scraper.kit.invoice import InvoiceKey
from shared.events import InvoiceCollected

# The unique key before sites: dropped once the one with the site is in place (see create_indexes).
PRE_SITES_UNIQUE_INDEX = "tenant_id_1_account_id_1_number_1"


def invoice_id(tenant_id: str, account_id: str, number: str, site: str | None = None) -> str:
    """The ledger's ``_id`` of a document: its (tenant, account, site, number), hashed.

    A document without a site keeps the id it had before sites existed, so a ledger written by
    earlier versions still recognises what it holds and nothing is collected twice. A site's id
    hashes a JSON array, which starts with "[" where the site-less form starts with the tenant id
    (a letter or digit): the two forms never produce the same input.
    """
    if site is None:
        key = f"{tenant_id}\x00{account_id}\x00{number}"
    else:
        key = json.dumps([tenant_id, account_id, site, number])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def object_key(tenant_id: str, account_id: str, sha256: str) -> str:
    """Content-addressed within the account: the site takes no part, as two documents with the same
    bytes are one file (and the keys of files stored before sites stay what they were)."""
    return f"{tenant_id}/{account_id}/{sha256}"


class LedgerEntry(BaseModel):
    """A document of the ledger as read back (without its stored event). Entries written before
    sites have no ``site`` field: they read as ``None``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    tenant_id: str
    account_id: str
    collector_id: str
    number: str
    site: str | None = None
    issue_date: date
    amount: Decimal
    currency: str
    kind: Literal["invoice", "credit_note"]
    sha256: str
    size: int
    object_key: str
    collected_at: datetime
    published: bool = False


class Ledger:
    def __init__(self, db: Any) -> None:
        self.invoices = db["invoices"]
        # Jobs kept aside live in `dead_letters`, shared.dead_letters's (services/scraper/app.py).

    async def create_indexes(self) -> None:
        # A document is (tenant, account, site, number); a missing site indexes as null, so entries
        # written before sites and new site-less ones share one key. The old key, which would refuse
        # a second site's number, goes once the new one holds.
        await self.invoices.create_index([("tenant_id", ASCENDING), ("account_id", ASCENDING),
                                          ("site", ASCENDING), ("number", ASCENDING)], unique=True)
        try:
            await self.invoices.drop_index(PRE_SITES_UNIQUE_INDEX)
        except OperationFailure:
            pass  # a ledger created with sites, or already upgraded
        await self.invoices.create_index([("tenant_id", ASCENDING), ("account_id", ASCENDING),
                                          ("sha256", ASCENDING)])
        await self.invoices.create_index([("tenant_id", ASCENDING), ("issue_date", DESCENDING)])

    async def known(self, tenant_id: str, account_id: str) -> frozenset[InvoiceKey]:
        """The (site, number) of every document the account has (``CollectContext.known``)."""
        cursor = self.invoices.find({"tenant_id": tenant_id, "account_id": account_id}, {"number": 1, "site": 1})
        return frozenset([(d.get("site"), d["number"]) async for d in cursor])

    async def has_content(self, tenant_id: str, account_id: str, sha256: str) -> bool:
        return await self.invoices.find_one(
            {"tenant_id": tenant_id, "account_id": account_id, "sha256": sha256}, {"_id": 1}
        ) is not None

    async def record(self, tenant_id: str, account_id: str, collector_id: str,
                     document: CollectedDocument, collected_at: datetime) -> InvoiceCollected | None:
        """Record a new document (unpublished); None when the account already has it."""
        ref = document.ref
        evt = InvoiceCollected(
            tenant_id=tenant_id, account_id=account_id, collector_id=collector_id,
            invoice_id=invoice_id(tenant_id, account_id, ref.number, ref.site), number=ref.number,
            site=ref.site, issue_date=ref.issue_date, amount=ref.amount, currency=ref.currency, kind=ref.kind,
            sha256=document.sha256, size=document.size,
            object_key=object_key(tenant_id, account_id, document.sha256), occurred_at=collected_at,
        )
        try:
            await self.invoices.insert_one({
                "_id": evt.invoice_id, "tenant_id": tenant_id, "account_id": account_id,
                "collector_id": collector_id, "number": ref.number, "site": ref.site,
                "issue_date": ref.issue_date.isoformat(), "amount": str(ref.amount),
                "currency": ref.currency, "kind": ref.kind, "sha256": document.sha256,
                "size": document.size, "object_key": evt.object_key, "collected_at": collected_at,
                "event": evt.model_dump_json(), "published": False,
            })
        except DuplicateKeyError:
            return None
        return evt

    async def mark_published(self, tenant_id: str, invoice_ids: list[str]) -> None:
        await self.invoices.update_many({"tenant_id": tenant_id, "_id": {"$in": invoice_ids}},
                                        {"$set": {"published": True}})

    async def unpublished(self, tenant_id: str, account_id: str) -> list[InvoiceCollected]:
        cursor = self.invoices.find({"tenant_id": tenant_id, "account_id": account_id,
                                     "published": False}, {"event": 1})
        return [InvoiceCollected.model_validate_json(d["event"]) async for d in cursor]

    async def count(self, tenant_id: str, account_id: str) -> int:
        return int(await self.invoices.count_documents({"tenant_id": tenant_id, "account_id": account_id}))

    async def list(self, tenant_id: str, account_id: str | None, limit: int) -> list[LedgerEntry]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if account_id:
            query["account_id"] = account_id
        cursor = self.invoices.find(query, {"event": 0}).sort(
            [("issue_date", DESCENDING), ("number", ASCENDING), ("site", ASCENDING)]).limit(limit)
        return [LedgerEntry.model_validate(d) async for d in cursor]

    async def get(self, tenant_id: str, invoice_id_: str) -> LedgerEntry | None:
        doc = await self.invoices.find_one({"tenant_id": tenant_id, "_id": invoice_id_}, {"event": 0})
        return None if doc is None else LedgerEntry.model_validate(doc)

