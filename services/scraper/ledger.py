"""The collected-invoice ledger: what was collected per account, so nothing is published twice."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from services.scraper.kit import CollectedDocument
from shared.events import InvoiceCollected


def invoice_id(tenant_id: str, account_id: str, number: str) -> str:
    return hashlib.sha256(f"{tenant_id}\x00{account_id}\x00{number}".encode()).hexdigest()[:32]


def object_key(tenant_id: str, account_id: str, sha256: str) -> str:
    return f"{tenant_id}/{account_id}/{sha256}"


class Ledger:
    def __init__(self, db: Any) -> None:
        self.invoices = db["invoices"]
        self.dead_letters = db["dead_letters"]

    async def create_indexes(self) -> None:
        await self.invoices.create_index([("tenant_id", ASCENDING), ("account_id", ASCENDING),
                                          ("number", ASCENDING)], unique=True)
        await self.invoices.create_index([("tenant_id", ASCENDING), ("account_id", ASCENDING),
                                          ("sha256", ASCENDING)])
        await self.invoices.create_index([("tenant_id", ASCENDING), ("issue_date", DESCENDING)])

    async def known_numbers(self, tenant_id: str, account_id: str) -> frozenset[str]:
        cursor = self.invoices.find({"tenant_id": tenant_id, "account_id": account_id}, {"number": 1})
        return frozenset([d["number"] async for d in cursor])

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
            invoice_id=invoice_id(tenant_id, account_id, ref.number), number=ref.number,
            issue_date=ref.issue_date, amount=ref.amount, currency=ref.currency, kind=ref.kind,
            sha256=document.sha256, size=document.size,
            object_key=object_key(tenant_id, account_id, document.sha256), occurred_at=collected_at,
        )
        try:
            await self.invoices.insert_one({
                "_id": evt.invoice_id, "tenant_id": tenant_id, "account_id": account_id,
                "collector_id": collector_id, "number": ref.number,
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

    async def list(self, tenant_id: str, account_id: str | None, limit: int) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if account_id:
            query["account_id"] = account_id
        cursor = self.invoices.find(query, {"event": 0}).sort(
            [("issue_date", DESCENDING), ("number", ASCENDING)]).limit(limit)
        return [d async for d in cursor]

    async def get(self, tenant_id: str, invoice_id_: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.invoices.find_one(
            {"tenant_id": tenant_id, "_id": invoice_id_}, {"event": 0})
        return doc

    async def keep_dead_letter(self, subject: str, data: bytes, error: str, at: datetime) -> None:
        """A job that can never run is kept for inspection instead of being retried forever."""
        await self.dead_letters.insert_one({"subject": subject, "data": data.decode(errors="replace"),
                                            "error": error, "at": at})

