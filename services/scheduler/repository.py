"""The scheduler's schedules: one document per live account."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError


class ScheduleRepository:
    def __init__(self, db: Any) -> None:
        self.schedules = db["schedules"]
        self.collectors = db["collectors"]

    async def create_indexes(self) -> None:
        await self.schedules.create_index([("next_run_at", ASCENDING)],
                                          partialFilterExpression={"active": True})
        await self.schedules.create_index([("tenant_id", ASCENDING), ("collector_id", ASCENDING)])

    async def upsert_active(self, tenant_id: str, account_id: str, collector_id: str,
                            credential_version: int, next_run_at: datetime) -> dict[str, Any] | None:
        """Make the account runnable at ``next_run_at`` unless it was deleted (deletion is final)
        or newer credentials already own its schedule; then return None."""
        try:
            doc: dict[str, Any] | None = await self.schedules.find_one_and_update(
                {"_id": account_id, "tenant_id": tenant_id, "deleted": {"$ne": True},
                 "credential_version": {"$not": {"$gt": credential_version}}},
                {"$set": {"collector_id": collector_id, "credential_version": credential_version,
                          "next_run_at": next_run_at, "paused": None, "active": True},
                 "$setOnInsert": {"failures": 0}},
                upsert=True, return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # the filter missed an existing document: deleted or newer
            return None
        return doc

    async def delete(self, tenant_id: str, account_id: str) -> None:
        await self.schedules.update_one(
            {"_id": account_id, "tenant_id": tenant_id},
            {"$set": {"deleted": True, "active": False, "next_run_at": None}}, upsert=True,
        )

    async def due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        cursor = self.schedules.find({"active": True, "next_run_at": {"$lte": now}}).sort(
            "next_run_at", ASCENDING).limit(limit)
        return [d async for d in cursor]

    async def claim(self, doc: dict[str, Any], next_run_at: datetime | None) -> bool:
        """Move a due run forward only if nobody else did: replicas never both own one run."""
        res = await self.schedules.update_one(
            {"_id": doc["_id"], "next_run_at": doc["next_run_at"], "active": True},
            {"$set": {"next_run_at": next_run_at}},
        )
        return bool(res.modified_count)

    async def get(self, tenant_id: str, account_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.schedules.find_one(
            {"_id": account_id, "tenant_id": tenant_id})
        return doc

    async def record_result(self, tenant_id: str, account_id: str, credential_version: int,
                            update: dict[str, Any]) -> None:
        await self.schedules.update_one(
            {"_id": account_id, "tenant_id": tenant_id, "active": True,
             "credential_version": credential_version},
            update,
        )

    async def set_frequency(self, collector_id: str, frequency_hours: int) -> None:
        await self.collectors.update_one({"_id": collector_id},
                                         {"$set": {"frequency_hours": frequency_hours}}, upsert=True)

    async def frequency(self, collector_id: str) -> int:
        doc = await self.collectors.find_one({"_id": collector_id})
        return int(doc["frequency_hours"]) if doc else 24
