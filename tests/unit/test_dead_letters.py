"""The shared dead-letter piece (shared/dead_letters.py) and the event consumers' use of it
(shared/broker.py event_handler): what is kept, when, with which delivery count; what a preview shows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from shared import api
from shared.broker import batch_event_handler, event_handler
from shared.dead_letters import DeadLetters, DeadLetterStore, preview
from shared.errors import NotFound
from shared.events import AccountStatusChanged
from shared.mongo import make_mongo_client

SUBJECT = "collectors.evt.accounts.status_changed.pharma-1"


@dataclass
class FakeMsg:
    """A JetStream message as FastStream hands it to a handler, settled by hand."""

    body: bytes
    delivered: int = 1
    settled: list[str] = field(default_factory=list)

    @property
    def raw_message(self) -> Any:
        return SimpleNamespace(subject=SUBJECT, metadata=SimpleNamespace(num_delivered=self.delivered,
                                                                         consumer="notifier-status"))

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, delay: float | None = None) -> None:
        self.settled.append("nack")

    async def reject(self) -> None:
        self.settled.append("reject")


@pytest.fixture
def letters() -> DeadLetters:
    published: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(subject: str, payload: bytes, headers: dict[str, str]) -> None:
        published.append((subject, payload, headers))

    dl = DeadLetters(DeadLetterStore(make_mongo_client(None)[f"unit-dlq-{uuid.uuid4().hex}"], "notifier"), publish)
    dl.published = published  # type: ignore[attr-defined]
    return dl


async def test_an_event_failing_its_last_delivery_is_kept_not_dropped(letters: DeadLetters) -> None:
    async def broken(_: AccountStatusChanged) -> None:
        raise RuntimeError("database down")

    handler = event_handler(AccountStatusChanged, broken, service="notifier", keep_aside=letters.keep, max_deliver=3)
    body = AccountStatusChanged(tenant_id="pharma-1", account_id="a1", collector_id="c",
                                status="ok").model_dump_json().encode()  # type: ignore[arg-type]
    early = FakeMsg(body, delivered=2)
    await handler(early)  # type: ignore[arg-type]
    assert early.settled == ["nack"] and await letters.store.list(True, 10) == []
    last = FakeMsg(body, delivered=3)
    await handler(last)  # type: ignore[arg-type]
    assert last.settled == ["reject"]
    (kept,) = await letters.store.list(False, 10)
    assert kept.reason == "failed 3 times, last: RuntimeError: database down"
    assert kept.deliveries == 3 and kept.kind == "event" and kept.consumer == "notifier-status"
    assert kept.subject == SUBJECT and kept.payload == body


async def test_the_same_message_kept_again_is_one_letter_with_its_first_and_last_failure(
        letters: DeadLetters) -> None:
    async def never(_: AccountStatusChanged) -> None:
        raise AssertionError("not called")

    handler = event_handler(AccountStatusChanged, never, service="notifier", keep_aside=letters.keep)
    await handler(FakeMsg(b'{"tenant_id": 1'))  # type: ignore[arg-type]
    (first,) = await letters.store.list(False, 10)
    assert first.reason.startswith("invalid event") and first.deliveries == 1 and first.times_kept == 1
    assert "tenant_id\": 1" not in first.reason  # pydantic's message quotes the input: not in a reason

    replayed = await letters.replay(api.DeadLetterRef(id=first.id))
    ((subject, payload, headers),) = letters.published  # type: ignore[attr-defined]
    assert (subject, payload) == (SUBJECT, b'{"tenant_id": 1')
    assert headers["Nats-Msg-Id"] == replayed.replay_msg_id and replayed.replay_msg_id.startswith("replay-")
    assert await letters.store.list(False, 10) == []  # replayed: listed with `all` only
    assert (await letters.list(api.ListDeadLetters(all=True))).dead_letters[0].status == "replayed"

    await handler(FakeMsg(b'{"tenant_id": 1', delivered=1))  # type: ignore[arg-type]  # the replay fails too
    (again,) = await letters.store.list(False, 10)
    assert again.id == first.id and again.times_kept == 2 and again.status == "kept"
    assert again.first_failed_at == first.first_failed_at and again.last_failed_at >= first.last_failed_at

    dropped = await letters.drop(api.DeadLetterRef(id=first.id))
    assert dropped.status == "dropped" and await letters.store.list(True, 10) == []
    with pytest.raises(NotFound):
        await letters.show(api.DeadLetterRef(id=first.id))


@pytest.mark.parametrize("payload", [
    b'{"tenant_id": "p", "password": "hunter2", "nested": [{"api_key": "hunter2"}], "credential_version": 4}',
    b'{"tenant_id": "p", "password": "hunter2", "cut": "short',
    b'login=me&password=hunter2&next=1',
    b'{"note": "token: hunter2"}',
])
def test_a_preview_never_shows_a_secret(payload: bytes) -> None:
    text = preview(payload)
    assert "hunter2" not in text and "[REDACTED]" in text


def test_a_preview_keeps_what_is_not_secret_and_is_cut_to_its_limit() -> None:
    assert '"credential_version": 4' in preview(b'{"credential_version": 4, "account_id": "a1"}')
    long = preview(b'{"x": "' + b"a" * 5000 + b'"}', limit=100)
    assert len(long) < 200 and long.endswith("more characters)")


@dataclass
class FakeRaw:
    """A raw JetStream message of a fetched batch (nats-py's ``Msg``), settled by hand."""

    data: bytes
    delivered: int = 1
    settled: list[str] = field(default_factory=list)
    subject: str = SUBJECT
    headers: dict[str, str] | None = None
    _ackd: bool = False

    @property
    def metadata(self) -> Any:
        return SimpleNamespace(num_delivered=self.delivered, consumer="documents-extract")

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.settled.append("nack")

    async def term(self) -> None:
        self.settled.append("reject")


def status_body(account_id: str) -> bytes:
    return AccountStatusChanged(tenant_id="pharma-1", account_id=account_id, collector_id="c",
                                status="ok").model_dump_json().encode()  # type: ignore[arg-type]


async def test_a_batch_keeps_each_message_s_policy(letters: DeadLetters) -> None:
    """batch_event_handler: the good events reach the use case together and are acked; poison is
    kept aside and terminated without reaching it; when the use case fails, the others are nacked
    and the one at its last delivery is kept aside."""
    calls: list[list[str]] = []
    fail = False

    async def use_case(events: list[AccountStatusChanged]) -> None:
        calls.append([e.account_id for e in events])
        if fail:
            raise RuntimeError("database down")

    handler = batch_event_handler(AccountStatusChanged, use_case, service="documents", keep_aside=letters.keep,
                                  max_deliver=3)
    a, poison, b = FakeRaw(status_body("a1")), FakeRaw(b'{"tenant_id": 1'), FakeRaw(status_body("a2"))
    await handler(SimpleNamespace(raw_message=[a, poison, b]))  # type: ignore[arg-type]
    assert calls == [["a1", "a2"]]
    assert (a.settled, poison.settled, b.settled) == (["ack"], ["reject"], ["ack"])
    (kept,) = await letters.store.list(False, 10)
    assert kept.reason.startswith("invalid event") and kept.consumer == "documents-extract"

    fail = True
    early, last = FakeRaw(status_body("a3"), delivered=1), FakeRaw(status_body("a4"), delivered=3)
    await handler(SimpleNamespace(raw_message=[early, last]))  # type: ignore[arg-type]
    assert calls[-1] == ["a3", "a4"]
    assert (early.settled, last.settled) == (["nack"], ["reject"])
    newest = (await letters.store.list(False, 10))[0]
    assert newest.reason == "failed 3 times, last: RuntimeError: database down"

    only_poison = FakeRaw(b"[]")
    await handler(SimpleNamespace(raw_message=[only_poison]))  # type: ignore[arg-type]
    assert only_poison.settled == ["reject"] and len(calls) == 2  # the use case is not called for nothing
