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
from pymongo import UpdateOne

from shared.broker import PipelinedPublisher
from shared.events import CollectJob, Event
from shared.logging import get_logger
from shared.telemetry import trace_headers

log = get_logger("collectors.outbox")
# How long JetStream may take to store one flush's messages (nats-py's own timeout for a publish).
ACK_TIMEOUT_S = 5.0


def outbox_entry(subject: str, event: Event | CollectJob) -> dict[str, Any]:
    entry: dict[str, Any] = {"msg_id": event.msg_id(), "subject": subject, "payload": event.model_dump_json()}
    if trace := trace_headers():  # the trace of the write goes out with its event, whenever the relay sends it
        entry["trace"] = trace
    return entry


def push_outbox(*entries: dict[str, Any]) -> dict[str, Any]:
    """The ``$push`` clause that appends entries to a document's outbox."""
    return {"outbox": {"$each": list(entries)}}


class OutboxRelay:
    def __init__(self, collection: Any, broker: NatsBroker, *, sweep_s: float = 2.0) -> None:
        self.collection = collection
        self.broker = broker
        self.sweep_s = sweep_s
        self._lock = asyncio.Lock()
        self._publisher = PipelinedPublisher(broker)

    async def _publish(self, entries: list[dict[str, Any]]) -> list[BaseException | None]:
        """Publish entries with their ``Nats-Msg-Id``; one outcome each (None: JetStream stored it)."""
        return await self._publisher.publish_each(
            [(entry["subject"], entry["payload"].encode(),
              {"Nats-Msg-Id": entry["msg_id"], "content-type": "application/json", **entry.get("trace", {})})
             for entry in entries],
            ACK_TIMEOUT_S)

    async def flush(self, doc_filter: dict[str, Any]) -> int:
        """Publish the pending events of the matching documents; return how many went out.

        Entries go out together (their JetStream acks are awaited at once), then those stored leave
        the outbox in one write; if that write is lost, the next sweep republishes and JetStream drops
        the copies. An entry that cannot go out stays for the next sweep without holding back the
        others; when none could go out (NATS unreachable), the first reason is raised.
        """
        async with self._lock:
            docs = await self.collection.find({**doc_filter, "outbox.0": {"$exists": True}},
                                              {"outbox": 1}).to_list()
            entries = [entry for doc in docs for entry in doc["outbox"]]
            if not entries:
                return 0
            outcomes = await self._publish(entries)
            failed = {entry["msg_id"]: outcome for entry, outcome in zip(entries, outcomes, strict=True)
                      if outcome is not None}
            if len(failed) == len(entries):
                raise next(iter(failed.values()))
            if failed:
                log.warning("outbox_entries_not_published", count=len(failed), published=len(entries) - len(failed),
                            error=str(next(iter(failed.values()))), msg_ids=list(failed)[:10])
            pulls = [(doc["_id"], [e["msg_id"] for e in doc["outbox"] if e["msg_id"] not in failed]) for doc in docs]
            await self.collection.bulk_write([
                UpdateOne({"_id": doc_id}, {"$pull": {"outbox": {"msg_id": {"$in": stored}}}})
                for doc_id, stored in pulls if stored
            ], ordered=False)
        return len(entries) - len(failed)

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
