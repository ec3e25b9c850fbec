"""Scraper workers against a real nats-server: concurrency, in-progress acks, the ack only after
results are out, delayed redelivery on our own failures, dead letters, dropped stale jobs.

The accounts service is stood in for by a responder on its reveal subject, so each behaviour is
driven exactly; collectors are fakes that yield PDFs without browsing (each worker still opens its
browser contexts as in production)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

import services.scraper.service as scraper_service
from services.scraper.app import build as build_scraper
from services.scraper.kit import CollectContext, CollectedDocument, Found, InvoiceRef, Manifest
from shared.events import CollectionSucceeded, CollectJob, Event, utcnow
from shared.mongo import make_mongo_client
from shared.runtime import ServiceRuntime
from shared.settings import ScraperSettings
from shared.subjects import Api, collect_job
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass
class FakeCollector:
    """Yields ``documents`` PDFs per login after ``sleep_s``; counts runs and concurrent runs."""

    id: str
    sleep_s: float = 0.0
    documents: int = 3
    runs: dict[str, int] = field(default_factory=dict)
    active: int = 0
    max_active: int = 0

    def __post_init__(self) -> None:
        self.manifest = Manifest(id=self.id, name=self.id, supplier="Test", portal_url="http://127.0.0.1:9/",
                                 max_sessions=32)

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        self.runs[ctx.login] = self.runs.get(ctx.login, 0) + 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.sleep_s)
            for n in range(self.documents):
                ref = InvoiceRef(number=f"{ctx.login}-{n}", issue_date=date(2026, 3, 1), amount=Decimal("10.00"),
                                 currency="EUR", kind="invoice", download_url=f"http://127.0.0.1:9/{n}.pdf")
                yield CollectedDocument(ref=ref, content=f"%PDF-{ctx.login}-{n}".encode())
        finally:
            self.active -= 1


Reveal = Callable[[dict[str, Any]], dict[str, Any]]


class Harness:
    def __init__(self, nc: Client, settings: ScraperSettings) -> None:
        self.nc = nc
        self.settings = settings
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.reveal: Reveal = lambda req: {"login": req["account_id"], "password": "pw",
                                           "credential_version": req["credential_version"]}
        self.reveal_calls = 0

    async def start(self) -> None:
        async def on_event(msg: Msg) -> None:
            self.events.append((msg.subject, json.loads(msg.data)))

        async def on_reveal(msg: Msg) -> None:
            self.reveal_calls += 1
            await msg.respond(json.dumps(self.reveal(json.loads(msg.data))).encode())

        await self.nc.subscribe("collectors.evt.scraper.>", cb=on_event)
        await self.nc.subscribe(Api.ACCOUNTS_REVEAL_CREDENTIALS, cb=on_reveal)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [body for subject, body in self.events if f".{kind}" in subject]

    async def publish(self, collector_id: str, account_id: str, tenant: str = "pharma") -> CollectJob:
        job = CollectJob(job_id=f"{account_id}:1", tenant_id=tenant, account_id=account_id,
                         collector_id=collector_id, credential_version=1, planned_at=utcnow())
        await self.nc.jetstream().publish(collect_job(collector_id), job.model_dump_json().encode(),
                                          headers={"Nats-Msg-Id": job.msg_id()})
        return job

    async def idle(self) -> bool:
        info = await self.nc.jetstream().consumer_info("COLLECTORS_JOBS", "scraper-collect")
        stream = await self.nc.jetstream().stream_info("COLLECTORS_JOBS")
        return info.num_pending == 0 and info.num_ack_pending == 0 and stream.state.messages == 0

    async def dead_letters(self) -> list[dict[str, Any]]:
        db = make_mongo_client(self.settings.mongodb_url)[self.settings.database_name("scraper")]
        return await db["dead_letters"].find({}).to_list()  # type: ignore[no-any-return]


@pytest.fixture
async def harness(nats_url: str, mongodb_url: str | None, db_prefix: str) -> AsyncIterator[Harness]:
    nc = await nats.connect(nats_url)
    settings = ScraperSettings(nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix, concurrency=3,
                               heartbeat_s=0.3, ack_wait_s=1.5, retry_delay_s=0.3, max_deliver=3)
    h = Harness(nc, settings)
    await h.start()
    yield h
    await nc.close()


@pytest.fixture
async def worker(harness: Harness) -> AsyncIterator[Callable[..., Awaitable[ServiceRuntime]]]:
    started: list[ServiceRuntime] = []

    async def start(*collectors: FakeCollector, **overrides: Any) -> ServiceRuntime:
        settings = harness.settings.model_copy(update=overrides)
        rt = build_scraper(settings, collectors={c.id: c for c in collectors})
        await rt.start()
        started.append(rt)
        return rt

    yield start
    for rt in started:
        await rt.stop()


async def test_a_worker_runs_as_many_jobs_at_once_as_configured(harness: Harness, worker: Any) -> None:
    # Three rounds of 1 s jobs: the last ones wait longer than the 1.5 s ack wait for a free slot, and
    # must not be handed to anyone else meanwhile.
    fake = FakeCollector("fake-a", sleep_s=1.0)
    await worker(fake)
    for i in range(7):
        await harness.publish("fake-a", f"acc{i}")
    await eventually(lambda: asyncio.sleep(0, len(harness.of("collection_succeeded")) >= 7), timeout=60,
                     what="seven results")
    assert fake.max_active == 3
    assert sorted(fake.runs) == [f"acc{i}" for i in range(7)] and set(fake.runs.values()) == {1}
    assert len(harness.of("invoice_collected")) == 21
    await eventually(harness.idle, what="every job acked")


async def test_in_progress_acks_keep_a_long_job_with_its_worker(harness: Harness, worker: Any) -> None:
    fake = FakeCollector("fake-long", sleep_s=4.0)  # more than twice the 1.5 s ack wait
    await worker(fake, concurrency=1)
    await harness.publish("fake-long", "acc-long")
    await eventually(lambda: asyncio.sleep(0, harness.of("collection_succeeded")), timeout=30, what="the result")
    await eventually(harness.idle, what="the job acked")
    assert fake.runs == {"acc-long": 1}  # never handed to anyone else meanwhile
    assert len(harness.of("collection_started")) == 1


async def test_the_ack_waits_for_the_results_and_a_failure_brings_the_job_back(
        harness: Harness, worker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real_publish = scraper_service.publish_event
    refused: list[str] = []

    async def flaky_publish(broker: Any, subject: str, event: Event | CollectJob) -> Any:
        if isinstance(event, CollectionSucceeded) and not refused:
            refused.append(subject)
            raise ConnectionError("NATS went away for a moment")
        return await real_publish(broker, subject, event)

    monkeypatch.setattr(scraper_service, "publish_event", flaky_publish)
    fake = FakeCollector("fake-ack")
    await worker(fake)
    await harness.publish("fake-ack", "acc-ack")
    await eventually(lambda: asyncio.sleep(0, harness.of("collection_succeeded")), timeout=30, what="the result")
    await eventually(harness.idle, what="the job acked")
    assert refused and fake.runs == {"acc-ack": 2}  # not acked the first time: redelivered, run again
    assert len(harness.of("collection_succeeded")) == 1
    numbers = [e["number"] for e in harness.of("invoice_collected")]
    assert sorted(numbers) == [f"acc-ack-{n}" for n in range(3)]  # stored once, never published twice
    assert harness.of("collection_succeeded")[0]["total_invoices"] == 3


async def test_jobs_for_deleted_accounts_or_replaced_credentials_are_dropped(harness: Harness,
                                                                             worker: Any) -> None:
    def reveal(req: dict[str, Any]) -> dict[str, Any]:
        code = "not_found" if req["account_id"] == "deleted" else "conflict"
        return {"error": {"code": code, "message": "gone"}}

    harness.reveal = reveal
    fake = FakeCollector("fake-stale")
    await worker(fake)
    await harness.publish("fake-stale", "deleted")
    await harness.publish("fake-stale", "stale")
    await eventually(lambda: asyncio.sleep(0, harness.reveal_calls >= 2), what="both jobs looked at")
    await eventually(harness.idle, what="both jobs acked")
    assert fake.runs == {} and harness.of("collection_") == []
    assert await harness.dead_letters() == []  # nothing wrong with them: just outdated


async def test_poison_and_unknown_collectors_are_kept_aside(harness: Harness, worker: Any) -> None:
    await worker(FakeCollector("fake-p"))
    js = harness.nc.jetstream()
    await js.publish(collect_job("fake-p"), b'{"job_id": 1', headers={"Nats-Msg-Id": "poison"})
    await harness.publish("nobody-runs-this", "acc-x")
    await eventually(harness.idle, what="both terminated")
    kept = await harness.dead_letters()
    assert sorted("invalid job" if d["reason"].startswith("invalid job: ") else d["reason"] for d in kept) == [
        "invalid job", "unknown collector"]
    assert {d["subject"] for d in kept} == {collect_job("fake-p"), collect_job("nobody-runs-this")}


async def test_a_job_failing_on_our_side_every_time_is_kept_aside_after_max_deliver(
        harness: Harness, worker: Any) -> None:
    harness.reveal = lambda req: {"error": {"code": "internal_error", "message": "accounts is broken"}}
    fake = FakeCollector("fake-m")
    await worker(fake)
    await harness.publish("fake-m", "acc-m")
    await eventually(harness.idle, timeout=30, what="the job given up")
    assert harness.reveal_calls == 3  # max_deliver, each after retry_delay_s
    (kept,) = await harness.dead_letters()
    assert kept["reason"].startswith("failed 3 times") and json.loads(kept["payload"])["account_id"] == "acc-m"
    assert kept["deliveries"] == 3 and kept["kind"] == "job" and kept["consumer"] == "scraper-collect"
    assert fake.runs == {}


async def test_each_worker_announces_the_collectors_it_runs(harness: Harness, worker: Any) -> None:
    await worker(FakeCollector("fake-one"), FakeCollector("fake-two"))
    announced = await eventually(lambda: asyncio.sleep(0, harness.of("collector_announced")),
                                 what="announcements")
    await asyncio.sleep(0.2)
    assert {a["collector_id"] for a in harness.of("collector_announced")} == {"fake-one", "fake-two"}
    assert all(a["worker_id"] for a in announced)


async def test_a_stopping_worker_finishes_its_running_job_first(harness: Harness, worker: Any) -> None:
    fake = FakeCollector("fake-stop", sleep_s=1.5)
    rt = await worker(fake)
    await harness.publish("fake-stop", "acc-stop")
    await eventually(lambda: asyncio.sleep(0, fake.active == 1), what="the job running")
    await rt.stop()
    assert len(harness.of("collection_succeeded")) == 1 and fake.runs == {"acc-stop": 1}
    assert (await harness.nc.jetstream().stream_info("COLLECTORS_JOBS")).state.messages == 0


async def test_a_job_for_a_collector_this_worker_lacks_waits_for_a_worker_that_has_it(
        harness: Harness, worker: Any) -> None:
    # A rolling deploy: the old worker does not know the new collector; the new one arrives later.
    await worker(FakeCollector("fake-old"), max_deliver=10)
    await harness.publish("fake-new", "acc-new")
    await asyncio.sleep(0.8)  # handed back a few times by the old worker, not kept aside
    assert await harness.dead_letters() == []
    # Positive control: the old worker was there to keep it aside, and handed it back instead, twice
    # at least (a quiet 0.8 s alone proved nothing: one run of it saw a single delivery).
    async def handed_back_twice() -> bool:
        info = await harness.nc.jetstream().consumer_info("COLLECTORS_JOBS", "scraper-collect")
        return info.delivered.consumer_seq >= 3 and info.num_redelivered >= 1
    await eventually(handed_back_twice, timeout=10, what="the old worker handing the job back twice")
    assert await harness.dead_letters() == []
    newer = FakeCollector("fake-new")
    await worker(newer, max_deliver=10)
    await eventually(harness.idle, what="the job run by the new worker")
    assert newer.runs == {"acc-new": 1}
    assert await harness.dead_letters() == []


@dataclass
class SitesCollector:
    """A pharmacy group's login: FA-1 on sites A and B and without a site; notes what the ledger knew."""

    id: str = "fake-sites"
    seen_known: list[list[bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.manifest = Manifest(id=self.id, name=self.id, supplier="Test", portal_url="http://127.0.0.1:9/")

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        refs = [InvoiceRef(number="FA-1", issue_date=date(2026, 3, 1), amount=Decimal("10.00"), currency="EUR",
                           kind="invoice", download_url=f"http://127.0.0.1:9/{site}.pdf", site=site)
                for site in ("A", "B", None)]
        self.seen_known.append([ctx.is_known(ref) for ref in refs])
        for ref in refs:  # yielded even when known: the framework dedups
            yield CollectedDocument(ref=ref, content=f"%PDF-{ref.site}".encode())


async def test_the_same_number_on_two_sites_is_collected_once_per_site(harness: Harness, worker: Any) -> None:
    fake = SitesCollector()
    await worker(fake)
    for run in (1, 2):
        job = CollectJob(job_id=f"acc-sites:{run}", tenant_id="pharma", account_id="acc-sites",
                         collector_id=fake.id, credential_version=1, planned_at=utcnow())
        await harness.nc.jetstream().publish(collect_job(fake.id), job.model_dump_json().encode(),
                                             headers={"Nats-Msg-Id": job.msg_id()})
        await eventually(lambda n=run: asyncio.sleep(0, len(harness.of("collection_succeeded")) >= n), timeout=30,
                         what=f"result {run}")
    first, second = (e["new_invoices"] for e in harness.of("collection_succeeded"))
    assert (first, second) == (3, 0)
    assert fake.seen_known == [[False, False, False], [True, True, True]]
    collected = harness.of("invoice_collected")
    assert sorted((e["site"] or "", e["number"]) for e in collected) == [("", "FA-1"), ("A", "FA-1"), ("B", "FA-1")]
    assert len({e["invoice_id"] for e in collected}) == 3
    reply = await harness.nc.request(Api.SCRAPER_INVOICES_LIST, json.dumps({"tenant_id": "pharma"}).encode(),
                                     timeout=10)
    listed = json.loads(reply.data)["invoices"]
    assert sorted((i["site"] or "", i["number"]) for i in listed) == [("", "FA-1"), ("A", "FA-1"), ("B", "FA-1")]
    on_b = next(i for i in listed if i["site"] == "B")
    reply = await harness.nc.request(Api.SCRAPER_INVOICE_GET, json.dumps(
        {"tenant_id": "pharma", "invoice_id": on_b["id"]}).encode(), timeout=10)
    assert json.loads(reply.data)["site"] == "B"
