"""Transactional outbox without transactions.

A write that must produce an event pushes the event into an ``outbox`` array of the very document
it changes, in the same single-document update (atomic in MongoDB, no replica set needed). The
relay publishes pending entries with their ``Nats-Msg-Id`` and then pulls them; if the process dies
in between, the periodic sweep publishes them after restart and JetStream's dedup window drops a
copy that had already gone out.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faststream.nats import NatsBroker

from shared.broker import jetstream
from shared.events import CollectJob, Event
from shared.logging import get_logger

log = get_logger("collectors.outbox")


def outbox_entry(subject: str, event: Event | CollectJob) -> dict[str, Any]:
    return {"msg_id": event.msg_id(), "subject": subject, "payload": event.model_dump_json()}


def push_outbox(*entries: dict[str, Any]) -> dict[str, Any]:
    """The ``$push`` clause that appends entries to a document's outbox."""
    return {"outbox": {"$each": list(entries)}}


class OutboxRelay:
    def __init__(self, collection: Any, broker: NatsBroker, *, sweep_s: float = 2.0) -> None:
        self.collection = collection
        self.broker = broker
        self.sweep_s = sweep_s
        self._lock = asyncio.Lock()

    async def _publish(self, entry: dict[str, Any]) -> None:
        await jetstream(self.broker).publish(
            entry["subject"], entry["payload"].encode(),
            headers={"Nats-Msg-Id": entry["msg_id"], "content-type": "application/json"},
        )

    async def flush(self, doc_filter: dict[str, Any]) -> int:
        """Publish the pending events of the matching documents; return how many went out."""
        sent = 0
        async with self._lock:
            async for doc in self.collection.find({**doc_filter, "outbox.0": {"$exists": True}},
                                                  {"outbox": 1}):
                for entry in doc["outbox"]:
                    await self._publish(entry)
                    await self.collection.update_one(
                        {"_id": doc["_id"]}, {"$pull": {"outbox": {"msg_id": entry["msg_id"]}}}
                    )
                    sent += 1
        return sent

    async def run(self) -> None:
        """Sweep forever: what a crash left behind goes out shortly after restart."""
        while True:
            try:
                await self.flush({})
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS down for a moment: try again next sweep
                log.warning("outbox_sweep_failed", error=str(exc))
            await asyncio.sleep(self.sweep_s)
