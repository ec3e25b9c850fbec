"""MongoDB repository of the notifier; ``tenant_id`` leads every index and filter of tenant data.

The two sweeps (deliveries due, account problems due) look across tenants by time, as the
scheduler's does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


class NotifierRepository:
    def __init__(self, db: Any) -> None:
        # One document per tenant, ``_id`` = tenant id.
        self.prefs = db["prefs"]
        # The notification log, which is also the delivery queue: one document per (notice, channel).
        self.notifications = db["notifications"]
        # What the rules remember of each account (see ``rules.AccountState``).
        self.account_states = db["account_states"]
        # Supplier-wide incidents: which tenants were told, whether it is over.
        self.incidents = db["incidents"]

    async def create_indexes(self) -> None:
        # The first version keyed notifications on ``source_event_id``; documents without it would
        # all collide on null under that unique index, so it goes.
        try:
            await self.notifications.drop_index("one_notification_per_event_and_channel")
        except OperationFailure:
            pass  # not there: a database created since
        # A notice recorded twice (redelivered event, two sweeping replicas) inserts nothing.
        await self.notifications.create_index(
            [("tenant_id", ASCENDING), ("notice_key", ASCENDING), ("channel", ASCENDING)],
            unique=True, name="one_notification_per_notice_and_channel",
        )
        await self.notifications.create_index(
            [("tenant_id", ASCENDING), ("created_at", DESCENDING)], name="history"
        )
        await self.notifications.create_index(
            [("next_attempt_at", ASCENDING)], partialFilterExpression={"status": PENDING},
            name="deliveries_due",
        )
        await self.account_states.create_index(
            [("tenant_id", ASCENDING), ("account_id", ASCENDING)], unique=True, name="one_state_per_account"
        )
        await self.account_states.create_index([("due_at", ASCENDING)], name="problems_due")

    # --- preferences ---------------------------------------------------------------------------

    async def get_prefs(self, tenant_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.prefs.find_one({"_id": tenant_id})
        return doc

    async def set_prefs(self, tenant_id: str, changes: dict[str, Any], defaults: dict[str, Any],
                        now: datetime) -> dict[str, Any]:
        """Apply ``changes``; a field neither changed nor stored yet takes its default."""
        on_insert = {k: v for k, v in defaults.items() if k not in changes}
        doc: dict[str, Any] = await self.prefs.find_one_and_update(
            {"_id": tenant_id},
            {"$set": {**changes, "updated_at": now},
             "$setOnInsert": {"tenant_id": tenant_id, **on_insert}},
            upsert=True, return_document=ReturnDocument.AFTER,
        )
        return doc

    # --- notifications -------------------------------------------------------------------------

    async def record(self, doc: dict[str, Any]) -> bool:
        """Insert a notification; False if this notice already has one on this channel."""
        try:
            await self.notifications.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def due_deliveries(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        cursor = self.notifications.find({"status": PENDING, "next_attempt_at": {"$lte": now}}).sort(
            "next_attempt_at", ASCENDING).limit(limit)
        return [d async for d in cursor]

    async def claim(self, doc: dict[str, Any], now: datetime, lease_until: datetime) -> dict[str, Any] | None:
        """Take a due delivery for a while; another instance (or loop) claiming it gets None."""
        claimed: dict[str, Any] | None = await self.notifications.find_one_and_update(
            {"tenant_id": doc["tenant_id"], "_id": doc["_id"], "status": PENDING,
             "next_attempt_at": {"$lte": now}},
            {"$set": {"next_attempt_at": lease_until}}, return_document=ReturnDocument.AFTER,
        )
        return claimed

    async def mark_delivered(self, doc: dict[str, Any], at: datetime, attempts: int, recipient: str | None) -> None:
        await self.notifications.update_one(
            {"tenant_id": doc["tenant_id"], "_id": doc["_id"]},
            {"$set": {"status": DELIVERED, "delivered": True, "delivered_at": at, "error": None,
                      "next_attempt_at": None, "recipient": recipient},
             "$inc": {"attempts": attempts, "rounds": 1}},
        )

    async def mark_retry(self, doc: dict[str, Any], error: str, attempts: int, next_attempt_at: datetime,
                         recipient: str | None) -> None:
        await self.notifications.update_one(
            {"tenant_id": doc["tenant_id"], "_id": doc["_id"]},
            {"$set": {"error": error[:500], "next_attempt_at": next_attempt_at, "recipient": recipient},
             "$inc": {"attempts": attempts, "rounds": 1}},
        )

    async def mark_failed(self, doc: dict[str, Any], error: str, attempts: int, at: datetime,
                          recipient: str | None) -> None:
        await self.notifications.update_one(
            {"tenant_id": doc["tenant_id"], "_id": doc["_id"]},
            {"$set": {"status": FAILED, "error": error[:500], "failed_at": at, "next_attempt_at": None,
                      "recipient": recipient},
             "$inc": {"attempts": attempts, "rounds": 1}},
        )

    async def history(self, tenant_id: str, limit: int) -> list[dict[str, Any]]:
        cursor = self.notifications.find({"tenant_id": tenant_id}).sort(
            [("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [d async for d in cursor]

    # --- account states ------------------------------------------------------------------------

    async def account_state(self, tenant_id: str, account_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.account_states.find_one(
            {"tenant_id": tenant_id, "account_id": account_id})
        return doc

    async def account_states_of(self, tenant_id: str, account_ids: list[str]) -> list[dict[str, Any]]:
        cursor = self.account_states.find({"tenant_id": tenant_id, "account_id": {"$in": account_ids}})
        return [d async for d in cursor]

    async def save_state_after_event(self, doc: dict[str, Any], event_at: datetime) -> bool:
        """Store an account's state unless a newer event already spoke; False if one did."""
        try:
            await self.account_states.update_one(
                {"tenant_id": doc["tenant_id"], "account_id": doc["account_id"],
                 "$or": [{"event_at": None}, {"event_at": {"$lte": event_at}}]},
                {"$set": doc}, upsert=True,
            )
        except DuplicateKeyError:
            return False  # the filter missed the stored state: it holds a newer event
        return True

    async def save_state_if(self, doc: dict[str, Any], expected: dict[str, Any]) -> bool:
        """Store an account's state if its fields still have the ``expected`` values (a sweep's claim)."""
        result = await self.account_states.update_one(
            {"tenant_id": doc["tenant_id"], "account_id": doc["account_id"], **expected}, {"$set": doc})
        return bool(result.matched_count)

    async def save_state(self, doc: dict[str, Any]) -> None:
        await self.account_states.update_one(
            {"tenant_id": doc["tenant_id"], "account_id": doc["account_id"]}, {"$set": doc}, upsert=True)

    async def forget_account(self, tenant_id: str, account_id: str) -> None:
        await self.account_states.delete_one({"tenant_id": tenant_id, "account_id": account_id})

    async def problems_due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        cursor = self.account_states.find({"due_at": {"$lte": now}}).sort(
            "due_at", ASCENDING).limit(limit)
        return [d async for d in cursor]

    # --- incidents -----------------------------------------------------------------------------

    async def incident(self, incident_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.incidents.find_one({"_id": incident_id})
        return doc

    async def open_incident(self, incident_id: str, collector_id: str, at: datetime) -> bool:
        """Remember a declared incident; False if it is already over (its end came first)."""
        doc = await self.incidents.find_one_and_update(
            {"_id": incident_id},
            {"$setOnInsert": {"collector_id": collector_id, "resolved": False, "declared_at": at, "told": {}}},
            upsert=True, return_document=ReturnDocument.AFTER,
        )
        return not doc.get("resolved")

    async def remember_told(self, incident_id: str, tenant_id: str, collector: str, logins: list[str]) -> None:
        """A tenant was told of the incident, about these accounts: its end will be told to it too."""
        # Tenant ids are letters, digits, '-' and '_' (TENANT_PATTERN): safe as a field name.
        await self.incidents.update_one(
            {"_id": incident_id}, {"$set": {f"told.{tenant_id}": {"collector": collector, "logins": logins}}})

    async def close_incident(self, incident_id: str, collector_id: str, at: datetime) -> dict[str, dict[str, Any]]:
        """Mark an incident over; return, per tenant told it began, what it was told about."""
        doc = await self.incidents.find_one_and_update(
            {"_id": incident_id},
            {"$set": {"resolved": True, "resolved_at": at},
             "$setOnInsert": {"collector_id": collector_id, "told": {}}},
            upsert=True, return_document=ReturnDocument.BEFORE,
        )
        if doc is None:
            return {}
        # Even if already resolved: a redelivered end records the same notices again, as no-ops.
        told: dict[str, dict[str, Any]] = doc.get("told") or {}
        return told
