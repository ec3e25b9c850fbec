"""``PipelinedPublisher``: batches reach JetStream once each, failures raise and leave nothing behind; the
outbox relay it serves keeps what could not go out without holding back the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from faststream.nats import NatsBroker
from nats.errors import BadSubjectError
from nats.js.errors import NoStreamResponseError

from shared.broker import PipelinedPublisher, ensure_streams, jetstream, make_broker, nats_client
from shared.events import CollectJob
from shared.memory_mongo import InMemoryMongoClient
from shared.outbox import OutboxRelay, outbox_entry
from shared.subjects import collect_job

STREAM = "COLLECTORS_JOBS"


@pytest.fixture
async def broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    broker = make_broker(nats_url, "publisher-test")
    await broker.connect()
    await ensure_streams(jetstream(broker))
    try:
        yield broker
    finally:
        await broker.stop()


def _job(n: int) -> tuple[str, bytes, dict[str, str]]:
    return collect_job("c1"), f'{{"n": {n}}}'.encode(), {"Nats-Msg-Id": f"job-{n}"}


async def _stored(broker: NatsBroker) -> int:
    return int((await jetstream(broker).stream_info(STREAM)).state.messages)


async def test_a_batch_is_stored_once_each_and_a_retry_is_dropped_by_msg_id(broker: NatsBroker) -> None:
    publisher = PipelinedPublisher(broker)
    await publisher.publish([_job(n) for n in range(500)], timeout=5)
    assert await _stored(broker) == 500
    await publisher.publish([_job(n) for n in range(490, 510)], timeout=5)  # 10 again, as after a crash
    assert await _stored(broker) == 510
    await publisher.publish([], timeout=5)
    assert publisher._acks == {}


async def test_a_subject_no_stream_takes_fails_the_batch(broker: NatsBroker) -> None:
    publisher = PipelinedPublisher(broker)
    with pytest.raises(NoStreamResponseError):
        await publisher.publish([_job(1), ("nowhere.at.all", b"{}", {"Nats-Msg-Id": "x"})], timeout=5)
    assert publisher._acks == {}
    await publisher.publish([_job(2)], timeout=5)  # the publisher goes on working
    assert await _stored(broker) == 2


async def test_a_batch_not_acked_in_time_fails_and_its_late_acks_are_ignored(broker: NatsBroker) -> None:
    publisher = PipelinedPublisher(broker)
    with pytest.raises(TimeoutError):
        await publisher.publish([_job(n) for n in range(50)], timeout=0)
    assert publisher._acks == {}
    await publisher.publish([_job(n) for n in range(50)], timeout=5)  # the retry: stored once each
    assert await _stored(broker) == 50


async def test_a_message_nats_refuses_fails_the_batch_without_leaving_acks_behind(broker: NatsBroker) -> None:
    publisher = PipelinedPublisher(broker)
    with pytest.raises(BadSubjectError):
        await publisher.publish([_job(1), ("not a subject", b"{}", {"Nats-Msg-Id": "x"}), _job(2)], timeout=5)
    assert publisher._acks == {}
    assert nats_client(broker).is_connected


async def test_each_message_has_its_own_outcome(broker: NatsBroker) -> None:
    publisher = PipelinedPublisher(broker)
    outcomes = await publisher.publish_each(
        [_job(1), ("nowhere.at.all", b"{}", {"Nats-Msg-Id": "x"}), ("not a subject", b"{}", {}), _job(2)], timeout=5)
    assert outcomes[0] is None and outcomes[3] is None
    assert isinstance(outcomes[1], NoStreamResponseError) and isinstance(outcomes[2], BadSubjectError)
    assert await _stored(broker) == 2 and publisher._acks == {}


async def test_an_entry_that_cannot_go_out_does_not_hold_back_the_outbox(broker: NatsBroker) -> None:
    collection = InMemoryMongoClient()["outbox_test"]["docs"]
    relay = OutboxRelay(collection, broker)
    stuck = {"subject": "nowhere.at.all", "payload": "{}", "msg_id": "stuck"}
    await collection.insert_many([
        {"_id": "a", "outbox": [outbox_entry(collect_job("c1"), _event(1)), stuck]},
        {"_id": "b", "outbox": [outbox_entry(collect_job("c1"), _event(2))]},
    ])
    assert await relay.flush({}) == 2
    assert await _stored(broker) == 2
    left = {d["_id"]: [e["msg_id"] for e in d["outbox"]] async for d in collection.find({})}
    assert left == {"a": ["stuck"], "b": []}  # kept for the next sweep, the others gone
    with pytest.raises(NoStreamResponseError):  # nothing could go out: the sweep says why
        await relay.flush({})


def _event(n: int) -> CollectJob:
    return CollectJob(job_id=f"job-{n}", tenant_id="t", account_id=f"a{n}", collector_id="c1", credential_version=1,
                      planned_at=datetime(2026, 6, 1, tzinfo=UTC), reason="scheduled")
