"""MongoDB repository of the notifier; ``tenant_id`` leads every index and filter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError


class NotifierRepository:
    def __init__(self, db: Any) -> None:
        # One document per tenant, ``_id`` = tenant id.
        self.prefs = db["prefs"]
        # The notification log: one document per (source event, channel).
        self.notifications = db["notifications"]
        # Per account, the problem still open (action_required / retrying), to tell a recovery.
        self.account_states = db["account_states"]

    async def create_indexes(self) -> None:
        # A redelivered or re-published source event inserts nothing: never the same alert twice.
        await self.notifications.create_index(
            [("tenant_id", ASCENDING), ("source_event_id", ASCENDING), ("channel", ASCENDING)],
            unique=True, name="one_notification_per_event_and_channel",
        )
        await self.notifications.create_index(
            [("tenant_id", ASCENDING), ("created_at", DESCENDING)], name="history"
        )
        await self.account_states.create_index(
            [("tenant_id", ASCENDING), ("account_id", ASCENDING)], unique=True, name="one_state_per_account"
        )

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
        """Insert a notification; False if this source event already has one on this channel."""
        try:
            await self.notifications.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def undelivered(self, tenant_id: str, source_event_id: str) -> list[dict[str, Any]]:
        cursor = self.notifications.find(
            {"tenant_id": tenant_id, "source_event_id": source_event_id, "delivered": False}
        ).sort("channel", ASCENDING)
        return [d async for d in cursor]

    async def mark_delivered(self, tenant_id: str, notification_id: str, at: datetime) -> None:
        await self.notifications.update_one(
            {"tenant_id": tenant_id, "_id": notification_id},
            {"$set": {"delivered": True, "delivered_at": at, "error": None}, "$inc": {"attempts": 1}},
        )

    async def mark_failed(self, tenant_id: str, notification_id: str, error: str) -> None:
        await self.notifications.update_one(
            {"tenant_id": tenant_id, "_id": notification_id},
            {"$set": {"error": error[:500]}, "$inc": {"attempts": 1}},
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

    async def set_problem(self, tenant_id: str, account_id: str, problem: str | None,
                          event_at: datetime) -> None:
        """Remember (or forget) an account's open problem, unless a newer event already spoke."""
        try:
            await self.account_states.update_one(
                {"tenant_id": tenant_id, "account_id": account_id,
                 "$or": [{"event_at": None}, {"event_at": {"$lte": event_at}}]},
                {"$set": {"problem": problem, "event_at": event_at}}, upsert=True,
            )
        except DuplicateKeyError:
            pass  # the state holds a newer event: this late one changes nothing
