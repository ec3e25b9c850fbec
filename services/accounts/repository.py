"""MongoDB repositories of the accounts service; ``tenant_id`` leads every index and filter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.events import CollectorAnnounced

ACTIVE = {"active": True}


class SlotTaken(Exception):
    pass


@dataclass(frozen=True)
class AccountStatusRow:
    """What the fleet view reads of a live account (services.accounts.fleet)."""

    collector_id: str
    status: str
    error_code: str | None
    last_success_at: datetime | None


class AccountRepository:
    def __init__(self, db: Any) -> None:
        self.accounts = db["accounts"]

    async def create_indexes(self) -> None:
        # Partial unique indexes: only live accounts hold a slot and a login, so a deleted account
        # never blocks adding the same login again.
        await self.accounts.create_index(
            [("tenant_id", ASCENDING), ("collector_id", ASCENDING), ("slot", ASCENDING)],
            unique=True, partialFilterExpression=ACTIVE, name="one_account_per_slot",
        )
        await self.accounts.create_index(
            [("tenant_id", ASCENDING), ("collector_id", ASCENDING), ("login_key", ASCENDING)],
            unique=True, partialFilterExpression=ACTIVE, name="one_login_per_collector",
        )
        await self.accounts.create_index([("tenant_id", ASCENDING), ("created_at", ASCENDING)])

    async def insert(self, doc: dict[str, Any]) -> None:
        """Insert a live account; :class:`SlotTaken` if its slot or its login is already taken."""
        try:
            await self.accounts.insert_one(doc)
        except DuplicateKeyError as exc:
            raise SlotTaken() from exc

    async def used_slots(self, tenant_id: str, collector_id: str) -> list[int]:
        cursor = self.accounts.find({"tenant_id": tenant_id, "collector_id": collector_id, **ACTIVE},
                                    {"slot": 1})
        return [d["slot"] async for d in cursor]

    async def find_login(self, tenant_id: str, collector_id: str, key: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.accounts.find_one(
            {"tenant_id": tenant_id, "collector_id": collector_id, "login_key": key, **ACTIVE}
        )
        return doc

    async def get(self, tenant_id: str, account_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.accounts.find_one(
            {"tenant_id": tenant_id, "_id": account_id}
        )
        return doc

    async def list_live(self, tenant_id: str, collector_id: str | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"tenant_id": tenant_id, **ACTIVE}
        if collector_id:
            query["collector_id"] = collector_id
        return [d async for d in self.accounts.find(query).sort([("created_at", ASCENDING),
                                                                 ("_id", ASCENDING)])]

    async def with_secret_not_under(self, kid: str, batch: int) -> list[dict[str, Any]]:
        cursor = self.accounts.find({"active": True, "secret.kid": {"$exists": True, "$ne": kid}},
                                    {"tenant_id": 1, "secret": 1}).sort("_id", ASCENDING).limit(batch)
        return [d async for d in cursor]

    async def count_under(self, kid: str) -> int:
        return int(await self.accounts.count_documents({"active": True, "secret.kid": kid}))

    async def replace_secret(self, doc: dict[str, Any], secret: dict[str, str]) -> bool:
        """Swap a ciphertext only if it is still the one we read (a concurrent update wins)."""
        res = await self.accounts.update_one(
            {"_id": doc["_id"], "tenant_id": doc["tenant_id"], "secret.nonce": doc["secret"]["nonce"]},
            {"$set": {"secret": secret}})
        return bool(res.modified_count)

    async def status_rows(self) -> AsyncIterator[AccountStatusRow]:
        """Every live account's collector, status, error code and last success, in one pass over one
        cursor (the fleet view): no query per account or per collector, only four fields travel."""
        cursor = self.accounts.find(ACTIVE, {"_id": 0, "collector_id": 1, "status": 1, "error_code": 1,
                                             "last_success_at": 1})
        async for d in cursor:
            yield AccountStatusRow(d["collector_id"], d["status"], d.get("error_code"), d.get("last_success_at"))

    async def update(self, tenant_id: str, account_id: str, update: dict[str, Any],
                     *, extra_filter: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Apply an update to a live account and return it, or None if no live account matched;
        :class:`SlotTaken` if the update would give it a login another live account holds."""
        try:
            doc: dict[str, Any] | None = await self.accounts.find_one_and_update(
                {"tenant_id": tenant_id, "_id": account_id, **ACTIVE, **(extra_filter or {})},
                update, return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError as exc:
            raise SlotTaken() from exc
        return doc


class CatalogRepository:
    """The accounts service's projection of the collectors announced by scraper workers."""

    def __init__(self, db: Any) -> None:
        self.catalog = db["catalog"]

    async def upsert(self, evt: CollectorAnnounced, seen_at: datetime) -> None:
        await self.catalog.update_one(
            {"_id": evt.collector_id},
            {"$set": {
                "name": evt.name, "supplier": evt.supplier, "portal_url": evt.portal_url,
                "login_kind": evt.login_kind, "frequency_hours": evt.frequency_hours,
                "max_sessions": evt.max_sessions, "version": evt.version, "seen_at": seen_at,
            }},
            upsert=True,
        )

    async def get(self, collector_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.catalog.find_one({"_id": collector_id})
        return doc

    async def all(self) -> list[dict[str, Any]]:
        return [d async for d in self.catalog.find({}).sort("_id", ASCENDING)]
