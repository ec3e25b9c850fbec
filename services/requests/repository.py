"""MongoDB repository of the requests service.

Requests are shared by pharmacies (one request, several requesters), so they are not filtered by a
single tenant; a tenant's own requests are found through the ``requesters`` index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

OPEN = {"open": True}


class AlreadyRequested(Exception):
    """Another open request already holds this supplier or portal domain."""


class RequestRepository:
    def __init__(self, db: Any) -> None:
        self.requests = db["requests"]
        # What the catalog says of each collector, to tell requesters how to activate the one they got.
        self.catalog = db["catalog"]

    async def create_indexes(self) -> None:
        # At most one open request per supplier and per portal domain: two pharmacies asking at the
        # same moment end up on one request (the loser of the race joins the winner's).
        await self.requests.create_index(
            [("supplier_key", ASCENDING)], unique=True, partialFilterExpression=OPEN,
            name="one_open_request_per_supplier",
        )
        await self.requests.create_index(
            [("portal_domain", ASCENDING)], unique=True,
            partialFilterExpression={**OPEN, "portal_domain": {"$type": "string"}},
            name="one_open_request_per_portal",
        )
        await self.requests.create_index([("requesters", ASCENDING), ("created_at", ASCENDING)])
        await self.requests.create_index(
            [("status", ASCENDING), ("votes", DESCENDING), ("created_at", ASCENDING)]
        )

    async def open_matching(self, key: str | None, domain: str | None) -> list[dict[str, Any]]:
        """Open requests for this supplier key or portal domain, oldest first."""
        clauses = [{field: value} for field, value in (("supplier_key", key), ("portal_domain", domain))
                   if value is not None]
        if not clauses:
            return []
        cursor = self.requests.find({**OPEN, "$or": clauses}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)])
        return [d async for d in cursor]

    async def insert(self, doc: dict[str, Any]) -> None:
        try:
            await self.requests.insert_one(doc)
        except DuplicateKeyError as exc:
            raise AlreadyRequested() from exc

    async def add_requester(self, request_id: str, tenant_id: str, now: datetime,
                            comment: dict[str, Any] | None) -> dict[str, Any] | None:
        """Add a requester to an open request that does not have it yet; None if nothing changed."""
        update: dict[str, Any] = {"$addToSet": {"requesters": tenant_id}, "$inc": {"votes": 1},
                                  "$set": {"updated_at": now}}
        if comment is not None:
            update["$push"] = {"comments": comment}
        doc: dict[str, Any] | None = await self.requests.find_one_and_update(
            {"_id": request_id, **OPEN, "requesters": {"$ne": tenant_id}}, update,
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def set_portal_if_missing(self, request_id: str, portal_url: str, domain: str) -> None:
        """Best effort: a request made without a portal learns it from a later requester."""
        try:
            await self.requests.update_one(
                {"_id": request_id, **OPEN, "portal_domain": None},
                {"$set": {"portal_url": portal_url, "portal_domain": domain}},
            )
        except DuplicateKeyError:
            pass  # another open request holds that portal: leave both as they are

    async def get(self, request_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.requests.find_one({"_id": request_id})
        return doc

    async def list(self, tenant_id: str | None, status: str | None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if tenant_id is not None:
            query["requesters"] = tenant_id
        if status is not None:
            query["status"] = status
        cursor = self.requests.find(query, {"outbox": 0, "comments": 0}).sort(
            [("votes", DESCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)])
        return [d async for d in cursor]

    async def update_if_unchanged(self, doc: dict[str, Any], update: dict[str, Any]) -> dict[str, Any] | None:
        """Apply ``update`` only if the request's status and requesters are still those of ``doc``."""
        new: dict[str, Any] | None = await self.requests.find_one_and_update(
            {"_id": doc["_id"], "status": doc["status"], "votes": doc["votes"]}, update,
            return_document=ReturnDocument.AFTER,
        )
        return new

    # --- catalog -------------------------------------------------------------------------------

    async def record_collector(self, collector_id: str, fields: dict[str, Any]) -> None:
        await self.catalog.update_one({"_id": collector_id}, {"$set": fields}, upsert=True)

    async def collector(self, collector_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.catalog.find_one({"_id": collector_id})
        return doc
