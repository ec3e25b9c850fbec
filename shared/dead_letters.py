"""Dead letters: the jobs and events a service could not handle, kept where operators can act on them.

Design. A job or event that can never be handled (it does not parse, names an unknown collector) or
failed on every delivery JetStream allows is terminated, so that JetStream stops redelivering it, and
kept here first. Each service that consumes keeps its own in its own database (collection
``dead_letters``) and answers for them on ``collectors.api.<service>.dlq_list|dlq_show|dlq_replay|
dlq_drop`` (``shared.subjects.DLQ_API``, operators only); ``collectors dlq`` asks every service and
merges. A dead letter's id, ``<service>-<16 hex digits>``, names the service that holds it, and is a
hash of (service, consumer, subject, payload): the same message failing again (after a replay that
did not fix it) updates the one letter (``times_kept``, last failure, reason) instead of adding one.

Replay re-publishes the payload, byte for byte, to the subject it came from under a fresh
``Nats-Msg-Id`` (the original id would fall in JetStream's dedup window and be dropped), from the
service that kept it: its NATS user may publish on the subjects it consumes, for this only
(deploy/nats/permissions.py). An event replayed reaches every consumer of its subject again, as a
redelivery would; consumers are idempotent. The letter is then marked replayed: kept for audit, listed
with ``all`` only. Drop deletes it.

Nothing of a payload leaves the service but a preview, with anything that looks like a secret (a key
such as ``password`` or ``token``) replaced: a job carries no password, but a malformed payload might.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import BaseModel, ConfigDict, Field
from pymongo import DESCENDING

from shared import api
from shared.broker import api_handler, jetstream, serve_api
from shared.errors import NotFound
from shared.events import utcnow
from shared.logging import REDACTED, get_logger
from shared.payload import PayloadRefused, parse_object
from shared.subjects import dead_letters as dlq_subject

log = get_logger("collectors.dead_letters")

Kind = Literal["job", "event"]
# Keys whose values a preview never shows (as shared.logging redacts log fields).
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential|authorization|cookie", re.I)
# The same in text that is not JSON: `"password": "x"`, `password=x`, `token: x`.
_SECRET_PAIR = re.compile(
    r"""((?:pass(?:word)?|secret|token|api[_-]?key|credentials?|authorization|cookie)[\w-]*"?\s*[:=]\s*)"""
    r"""("(?:[^"\\]|\\.)*"?|[^\s,;&}]+)""", re.I)
# A credential_version is a number, not a secret.
_NOT_SECRET = frozenset({"credential_version"})


class DeadLetter(BaseModel):
    """A dead letter as stored (collection ``dead_letters`` of the service's database)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str = Field(alias="_id")
    service: str
    kind: Kind
    subject: str
    consumer: str | None = None
    payload: bytes
    reason: str
    deliveries: int
    times_kept: int = 1
    first_failed_at: datetime
    last_failed_at: datetime
    status: Literal["kept", "replayed"] = "kept"
    replayed_at: datetime | None = None
    replay_msg_id: str | None = None


def letter_id(service: str, consumer: str | None, subject: str, payload: bytes) -> str:
    digest = hashlib.sha256(json.dumps([service, consumer or "", subject]).encode() + b"\x00" + payload)
    return f"{service}-{digest.hexdigest()[:16]}"


def preview(payload: bytes, limit: int = api.DEAD_LETTER_PREVIEW_CHARS) -> str:
    """The payload as text for operators, secrets replaced, at most ``limit`` characters."""
    try:
        text = json.dumps(_scrub(parse_object(payload, max_bytes=1024 * 1024)), ensure_ascii=False)
    except PayloadRefused:  # not a JSON object within limits: its text, pairs that look secret replaced
        text = _SECRET_PAIR.sub(lambda m: m.group(1) + REDACTED, payload.decode(errors="replace"))
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_KEY.search(k) and k not in _NOT_SECRET else _scrub(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return _SECRET_PAIR.sub(lambda m: m.group(1) + REDACTED, value)
    return value


def _deliveries(msg: NatsMessage) -> tuple[int, str | None]:
    """(deliveries so far, durable consumer) from the JetStream metadata; (1, None) without it."""
    try:
        meta = msg.raw_message.metadata
        return int(meta.num_delivered or 1), meta.consumer
    except Exception:  # not a JetStream message (a handler driven directly)
        return 1, None


class DeadLetterStore:
    def __init__(self, db: Any, service: str) -> None:
        self.letters = db["dead_letters"]
        self.service = service

    async def create_indexes(self) -> None:
        await self.letters.create_index([("last_failed_at", DESCENDING)])

    async def keep(self, subject: str, payload: bytes, reason: str, *, kind: Kind, deliveries: int,
                   consumer: str | None, at: datetime | None = None) -> str:
        """Keep (or keep again) a message aside; its id."""
        at = at or utcnow()
        id_ = letter_id(self.service, consumer, subject, payload)
        await self.letters.update_one({"_id": id_}, {
            "$set": {"reason": reason[:1000], "deliveries": deliveries, "last_failed_at": at, "status": "kept"},
            "$inc": {"times_kept": 1},
            "$setOnInsert": {"service": self.service, "kind": kind, "subject": subject, "consumer": consumer,
                             "payload": payload, "first_failed_at": at},
        }, upsert=True)
        return id_

    async def keep_message(self, msg: NatsMessage, reason: str, kind: Kind) -> str:
        """Keep a JetStream message aside with its delivery count and consumer (from its metadata)."""
        deliveries, consumer = _deliveries(msg)
        id_ = await self.keep(msg.raw_message.subject, bytes(msg.body), reason, kind=kind,
                              deliveries=deliveries, consumer=consumer)
        log.error("dead_letter_kept", service=self.service, id=id_, kind=kind,
                  subject=msg.raw_message.subject, deliveries=deliveries, reason=reason[:300])
        return id_

    async def list(self, include_replayed: bool, limit: int) -> list[DeadLetter]:
        query: dict[str, Any] = {} if include_replayed else {"status": "kept"}
        cursor = self.letters.find(query).sort("last_failed_at", DESCENDING).limit(limit)
        return [DeadLetter.model_validate(d) async for d in cursor]

    async def get(self, id_: str) -> DeadLetter | None:
        doc = await self.letters.find_one({"_id": id_})
        return None if doc is None else DeadLetter.model_validate(doc)

    async def mark_replayed(self, id_: str, msg_id: str, at: datetime) -> None:
        await self.letters.update_one({"_id": id_}, {"$set": {"status": "replayed", "replayed_at": at,
                                                              "replay_msg_id": msg_id}})

    async def drop(self, id_: str) -> bool:
        return bool((await self.letters.delete_one({"_id": id_})).deleted_count)


Publish = Callable[[str, bytes, dict[str, str]], Awaitable[object]]


class DeadLetters:
    """A service's dead letters: what its consumers keep aside, and the operators' API over them."""

    def __init__(self, store: DeadLetterStore, publish: Publish) -> None:
        self.store = store
        self.service = store.service
        self._publish = publish
        # What the service's consumers call to keep a message aside (shared.broker.KeepAside).
        self.keep = store.keep_message

    @staticmethod
    def view(letter: DeadLetter, status: Literal["kept", "replayed", "dropped"] | None = None) -> api.DeadLetterView:
        return api.DeadLetterView(
            id=letter.id, service=letter.service, kind=letter.kind, subject=letter.subject,
            consumer=letter.consumer, reason=letter.reason, deliveries=letter.deliveries,
            times_kept=letter.times_kept, first_failed_at=letter.first_failed_at,
            last_failed_at=letter.last_failed_at, status=status or letter.status, replayed_at=letter.replayed_at,
            replay_msg_id=letter.replay_msg_id, size=len(letter.payload), preview=preview(letter.payload))

    async def _letter(self, req: api.DeadLetterRef) -> DeadLetter:
        letter = await self.store.get(req.id)
        if letter is None:
            raise NotFound(f"no dead letter {req.id} in {self.service}", field="id")
        return letter

    async def list(self, req: api.ListDeadLetters) -> api.DeadLetterListReply:
        """The dead letters this service kept (replayed ones too with ``all``), newest failure first."""
        letters = await self.store.list(req.all, req.limit)
        return api.DeadLetterListReply(dead_letters=[self.view(d) for d in letters])

    async def show(self, req: api.DeadLetterRef) -> api.DeadLetterView:
        """One dead letter, with a scrubbed preview of its payload."""
        return self.view(await self._letter(req))

    async def replay(self, req: api.DeadLetterRef) -> api.DeadLetterView:
        """Publish a dead letter's payload again on its subject, under a fresh Nats-Msg-Id."""
        letter = await self._letter(req)
        msg_id = f"replay-{letter.id}-{uuid.uuid4().hex[:12]}"
        await self._publish(letter.subject, letter.payload, {"Nats-Msg-Id": msg_id, "Collectors-Replay-Of": letter.id})
        at = utcnow()
        await self.store.mark_replayed(letter.id, msg_id, at)
        log.warning("dead_letter_replayed", service=self.service, id=letter.id, subject=letter.subject,
                    msg_id=msg_id)
        return self.view(letter.model_copy(update={"status": "replayed", "replayed_at": at,
                                                    "replay_msg_id": msg_id}))

    async def drop(self, req: api.DeadLetterRef) -> api.DeadLetterView:
        """Delete a dead letter for good."""
        letter = await self._letter(req)
        await self.store.drop(letter.id)
        log.warning("dead_letter_dropped", service=self.service, id=letter.id, subject=letter.subject)
        return self.view(letter, status="dropped")


def serve_dead_letters(broker: NatsBroker, db: Any, service: str) -> DeadLetters:
    """Build a service's dead letters on its database and answer the operators' ``dlq_*`` subjects.
    Its runtime creates the index on connect (``rt.on_connect.append(dlq.store.create_indexes)``)."""
    async def publish(subject: str, payload: bytes, headers: dict[str, str]) -> object:
        return await jetstream(broker).publish(subject, payload, headers=headers)

    letters = DeadLetters(DeadLetterStore(db, service), publish)
    routes: list[tuple[str, type[BaseModel], Callable[[Any], Awaitable[BaseModel]]]] = [
        ("dlq_list", api.ListDeadLetters, letters.list),
        ("dlq_show", api.DeadLetterRef, letters.show),
        ("dlq_replay", api.DeadLetterRef, letters.replay),
        ("dlq_drop", api.DeadLetterRef, letters.drop),
    ]
    for verb, model, func in routes:
        serve_api(broker, dlq_subject(service, verb), service, api_handler(model, func, service=service))
    return letters
