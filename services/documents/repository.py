"""MongoDB repository of the documents service: one document per collected invoice, its extracted data.

A record's ``_id`` is ``<tenant>:<invoice_id>``: the unique key that makes a redelivered or duplicated
``invoice collected`` a no-op (the second insert loses, its event is never queued), and every lookup
names the tenant, so another pharmacy's invoice id finds nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import BulkWriteError

_DUPLICATE_KEY = 11000

# What a page of the export reads; the listed values and the data, never the outbox.
_EXPORT_FIELDS = {"outbox": 0, "checks": 0}


def record_id(tenant_id: str, invoice_id: str) -> str:
    return f"{tenant_id}:{invoice_id}"


class DocumentRepository:
    def __init__(self, db: Any) -> None:
        self.invoice_data = db["invoice_data"]

    async def create_indexes(self) -> None:
        # The export walks a tenant's invoices by issue date (then id, for a stable order across pages).
        await self.invoice_data.create_index(
            [("tenant_id", ASCENDING), ("issue_date", ASCENDING), ("invoice_id", ASCENDING)])

    async def existing(self, ids: list[str]) -> set[str]:
        """Which of these record ids are stored already."""
        return {d["_id"] async for d in self.invoice_data.find({"_id": {"$in": ids}}, {"_id": 1})}

    async def insert_many(self, docs: list[dict[str, Any]]) -> list[str]:
        """Store new records (each with its outbox) in one write; the ids stored, without those that
        already had one (a concurrent delivery of the same event stored it first)."""
        if not docs:
            return []
        try:
            await self.invoice_data.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            lost = {e["index"] for e in errors}
            return [d["_id"] for n, d in enumerate(docs) if n not in lost]
        return [d["_id"] for d in docs]

    async def get(self, tenant_id: str, invoice_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.invoice_data.find_one(
            {"_id": record_id(tenant_id, invoice_id), "tenant_id": tenant_id}, {"outbox": 0})
        return doc

    async def page(self, tenant_id: str, date_from: date | None, date_to: date | None,
                   after: tuple[str, str] | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` records of the tenant issued within the dates (ISO strings compare as dates),
        ordered by (issue_date, invoice_id), strictly after ``after``."""
        clauses: list[dict[str, Any]] = [{"tenant_id": tenant_id}]
        if date_from is not None:
            clauses.append({"issue_date": {"$gte": date_from.isoformat()}})
        if date_to is not None:
            clauses.append({"issue_date": {"$lte": date_to.isoformat()}})
        if after is not None:
            day, invoice_id = after
            clauses.append({"$or": [{"issue_date": {"$gt": day}},
                                    {"issue_date": day, "invoice_id": {"$gt": invoice_id}}]})
        cursor = self.invoice_data.find({"$and": clauses}, _EXPORT_FIELDS).sort(
            [("issue_date", ASCENDING), ("invoice_id", ASCENDING)]).limit(limit)
        return [d async for d in cursor]
