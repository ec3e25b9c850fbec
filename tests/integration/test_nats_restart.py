"""Issue 10, bullet 3 and "no account stays collecting": nothing acknowledged is lost when
nats-server dies, a job that never started goes out again, a run that never finished is closed as
internal_error and retried, and every loop keeps working across a NATS restart."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from nats.js.api import ConsumerConfig

from services.scheduler.app import build as build_scheduler
from shared.broker import ensure_streams
from shared.errors import CollectionErrorCode
from shared.events import AccountCreated, CollectionStarted, CollectionSucceeded, CollectionTimedOut, CollectJob
from shared.natsserver import NatsServer, free_port, nats_server_binary, port_open, wait_jetstream_ready
from shared.settings import SchedulerSettings
from shared.subjects import COLLECT_JOBS_PATTERN, Api, Events, collect_job
from tests.integration.helpers import eventually
from tests.integration.test_accounts import Accounts, accounts, publish  # noqa: F401  (fixture)
from tests.integration.test_scheduler import START, Clock, Harness, running_harness

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0  # the scheduler's start bound in these tests (its default)
RUN_LIMIT = 420.0  # the scraper's job_timeout_s (300) plus the margin (120)


# --- the sync policy -------------------------------------------------------------------------------


@contextmanager
def monitored(command: list[str], env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """Run a nats-server command with a monitoring port; yield its JetStream configuration (/varz)."""
    port, monitor = free_port(), free_port()
    proc = subprocess.Popen([*command, "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor)],
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            assert proc.poll() is None, "nats-server exited"
            if port_open(monitor):
                break
            time.sleep(0.02)
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/varz", timeout=5) as reply:
            yield json.loads(reply.read())["jetstream"]["config"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_every_nats_server_we_run_fsyncs_each_write_before_acking(tmp_path: Path) -> None:
    # As `collectors up` and the fixtures start it; the control is nats-server's default (every 2 min).
    default, control = NatsServer(store_dir=tmp_path / "up"), NatsServer(store_dir=tmp_path / "c", sync_always=False)
    for embedded, sync_always in ((default, True), (control, False)):
        embedded.start()  # writes its configuration
        embedded.stop()
        with monitored(embedded.command()) as js:  # the flags given last (ports) win
            assert bool(js.get("sync_always")) is sync_always
            assert sync_always or js["sync_interval"] == 120 * 10**9

    conf = ROOT / "deploy" / "nats" / "nats.conf"
    # Every user's password variable the configuration names (one per service and client user).
    passwords = dict.fromkeys(re.findall(r"\$([A-Z_]+_PASSWORD)", conf.read_text()), "x")
    assert {"DOCUMENTS_PASSWORD", "WEB_PASSWORD"} <= set(passwords)
    with monitored([nats_server_binary(), "-c", str(conf),
                    "-sd", str(tmp_path / "compose")], passwords) as js:
        assert js["sync_always"] is True
    # The Kubernetes cluster survives a host's loss by replication instead (every stream and the
    # invoice bucket on 3 servers, each write acked once a majority has it), with nats-server's
    # default sync: fsyncing each write on each node would cost the scheduler's tick its target.
    values = yaml.safe_load((ROOT / "deploy" / "k8s" / "nats-values.yaml").read_text())
    assert "sync_interval" not in values["config"]["jetstream"].get("merge", {})
    assert values["config"]["cluster"]["replicas"] == 3
    configmap = yaml.safe_load((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())
    assert configmap["data"]["COLLECTORS_STREAM_REPLICAS"] == "3"


async def test_acknowledged_jobs_survive_kill_9_of_nats_server(tmp_path: Path) -> None:
    """Every job JetStream acked is there after `kill -9` and a restart on the same store. (The process
    alone dying keeps the page cache, so this holds without the sync policy too: the policy is for the
    host dying, proven above by the server's configuration and in the README by counting fsyncs.)"""
    server = NatsServer(store_dir=tmp_path / "nats")
    server.start()
    try:
        await wait_jetstream_ready(server.url)
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await ensure_streams(js)
        for i in range(300):
            await js.publish(collect_job("c"), b"{}", headers={"Nats-Msg-Id": f"job-{i}"})
        await nc.close()
        server.kill()
        server.start()
        await wait_jetstream_ready(server.url)
        nc = await nats.connect(server.url)
        info = await nc.jetstream().stream_info("COLLECTORS_JOBS")
        assert info.state.messages == 300
        await nc.close()
    finally:
        server.stop()


# --- the scheduler's watch of runs in flight ------------------------------------------------------------


@pytest.fixture
async def harness(nats_url: str, mongodb_url: str | None, db_prefix: str) -> AsyncIterator[Harness]:
    clock = Clock()
    # The watch is driven by the tests through the controllable clock.
    settings = SchedulerSettings(nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix, tick_s=3600,
                                 refresh_s=3600, start_timeout_s=TIMEOUT)
    async with running_harness(nats_url, settings, clock) as h:
        yield h


async def watch(h: Harness) -> int:
    await asyncio.sleep(0.3)  # let the events published so far reach the scheduler
    return int(sum([await rt.extras["service"].watch() for rt in h.replicas]))


async def run_watch(h: Harness, job_id: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await h.replicas[0].extras["service"].repo.runs.find_one({"_id": job_id})
    return doc


async def started(h: Harness, job: dict[str, Any]) -> None:
    """The scraper starts the job; return once the scheduler knows (before the clock moves on)."""
    common = {k: job[k] for k in ("tenant_id", "account_id", "collector_id", "job_id", "credential_version")}
    await h.publish(Events.COLLECTION_STARTED.for_tenant(job["tenant_id"]),
                    CollectionStarted(**common, started_at=h.clock(), worker_id="w1"))

    async def known() -> bool:
        return bool((await run_watch(h, job["job_id"]) or {}).get("started_at"))
    await eventually(known, timeout=10, what=f"{job['job_id']} seen started")


async def test_a_job_that_never_started_goes_out_again_without_waiting_for_the_lease(harness: Harness) -> None:
    await harness.activate("lost")
    await harness.activate("running")
    jobs = {j["account_id"]: j for j in await harness.drain_jobs()}
    # The fake scraper drops the first job of "lost" (taken, acked, never run) and runs the other.
    await started(harness, jobs["running"])
    harness.clock.advance(seconds=TIMEOUT - 1)
    assert await watch(harness) == 0
    harness.clock.advance(seconds=2)
    assert await watch(harness) == 1
    [again] = await harness.drain_jobs()
    assert again["account_id"] == "lost" and again["job_id"] != jobs["lost"]["job_id"]
    assert again["reason"] == "activation"
    assert await watch(harness) == 0  # once: the replaced job is not sent a third time meanwhile
    # The new job is watched in turn, after twice as long, until it starts.
    harness.clock.advance(seconds=2 * TIMEOUT - 1)
    assert await watch(harness) == 0
    await started(harness, again)
    harness.clock.advance(seconds=10)
    assert await watch(harness) == 0
    assert await harness.drain_jobs() == []


async def test_a_run_that_never_finishes_is_closed_as_internal_error_and_retried(harness: Harness) -> None:
    await harness.activate("hung")
    await harness.activate("done")
    jobs = {j["account_id"]: j for j in await harness.drain_jobs()}
    await started(harness, jobs["hung"])
    await started(harness, jobs["done"])
    await harness.result(jobs["done"])  # positive control: a run that reports back is never closed

    async def forgotten() -> bool:
        return await run_watch(harness, jobs["done"]["job_id"]) is None
    await eventually(forgotten, timeout=10, what="the finished run forgotten")
    harness.clock.advance(seconds=RUN_LIMIT - 1)
    assert await watch(harness) == 0
    harness.clock.advance(seconds=2)
    assert await watch(harness) == 1
    [closed] = await harness.stream_events(Events.COLLECTION_TIMED_OUT.pattern)
    assert (closed["account_id"], closed["job_id"], closed["error_code"]) == \
        ("hung", jobs["hung"]["job_id"], "internal_error")
    assert closed["worker_id"] == "w1"
    # Retried as an internal error: after the first backoff step (15 min), not before.
    harness.clock.advance(minutes=14)
    assert await harness.tick() == 0
    harness.clock.advance(minutes=2)
    assert await harness.tick() == 1
    [retry] = await harness.drain_jobs()
    assert retry["account_id"] == "hung" and retry["attempt"] == 1
    # The hung run's real result, come late, is not a second failure: the retry's attempt stays 1.
    await harness.result(jobs["hung"], CollectionErrorCode.SUPPLIER_UNAVAILABLE)
    await asyncio.sleep(0.3)
    doc = await harness.replicas[0].extras["service"].repo.get("hung")
    assert doc["failures"] == 1
    # Positive control: the results consumer was there to count it, and counts the retry's failure.
    await harness.result(retry, CollectionErrorCode.SUPPLIER_UNAVAILABLE)

    async def counted() -> bool:
        return (await harness.replicas[0].extras["service"].repo.get("hung"))["failures"] == 2
    await eventually(counted, timeout=10, what="the retry's failure counted")


# --- accounts: the timeout as a status --------------------------------------------------------------


async def test_accounts_show_a_timed_out_run_as_internal_error_and_never_let_it_hide_a_real_result(
        accounts: Accounts) -> None:  # noqa: F811
    created = await accounts.create("p1", "hung")
    account_id = created["id"]
    job = {"tenant_id": "p1", "account_id": account_id, "collector_id": "sandbox-classic",
           "credential_version": 1}
    start = START.replace(year=2030)

    async def status() -> tuple[str, str | None]:
        view = await accounts.call(Api.ACCOUNTS_GET, tenant_id="p1", account_id=account_id)
        return view["status"], view.get("error_code")

    async def becomes(expected: tuple[str, str | None]) -> None:
        async def probe() -> bool:
            return await status() == expected
        await eventually(probe, timeout=10, what=f"status {expected}")

    first = CollectionStarted(**job, job_id="j1", started_at=start)
    await publish(accounts.nc, Events.COLLECTION_STARTED.for_tenant("p1"), first)
    await becomes(("collecting", None))
    timed_out = CollectionTimedOut(**job, job_id="j1", started_at=start, detail="no result")
    await publish(accounts.nc, Events.COLLECTION_TIMED_OUT.for_tenant("p1"), timed_out)
    await becomes(("retrying", "internal_error"))
    # A late copy of the run's start does not show it collecting again (positive control below: a new
    # attempt's start does).
    # (Another Nats-Msg-Id: a redelivery after the stream's dedup window, or another worker's start.)
    await accounts.nc.jetstream().publish(Events.COLLECTION_STARTED.for_tenant("p1"), first.model_dump_json().encode(),
                                          headers={"Nats-Msg-Id": "late-copy"})
    await asyncio.sleep(0.5)
    assert await status() == ("retrying", "internal_error")
    # The run's real result, come late, is what really happened: it replaces the guess.
    await publish(accounts.nc, Events.COLLECTION_SUCCEEDED.for_tenant("p1"),
                  CollectionSucceeded(**job, job_id="j1", started_at=start, total_invoices=3))
    await becomes(("ok", None))
    # The other order (the scheduler's close delivered after the real result): the result stands.
    await accounts.nc.jetstream().publish(Events.COLLECTION_TIMED_OUT.for_tenant("p1"),
                                          timed_out.model_dump_json().encode(), headers={"Nats-Msg-Id": "again"})
    await asyncio.sleep(0.5)
    assert await status() == ("ok", None)
    # A later attempt that hangs is closed; the closing of an earlier attempt then changes nothing.
    await publish(accounts.nc, Events.COLLECTION_STARTED.for_tenant("p1"),
                  CollectionStarted(**job, job_id="j2", started_at=start + timedelta(hours=1)))
    await becomes(("collecting", None))
    await publish(accounts.nc, Events.COLLECTION_TIMED_OUT.for_tenant("p1"),
                  CollectionTimedOut(**job, job_id="j0", started_at=start - timedelta(hours=1)))
    await asyncio.sleep(0.5)
    assert await status() == ("collecting", None)
    # Positive control for both quiet periods above: the timed-out consumer applies the current
    # attempt's close.
    await publish(accounts.nc, Events.COLLECTION_TIMED_OUT.for_tenant("p1"),
                  CollectionTimedOut(**job, job_id="j2", started_at=start + timedelta(hours=1)))
    await becomes(("retrying", "internal_error"))


# --- every loop across a NATS restart ------------------------------------------------------------------


class Platform:
    """A scheduler with its real loops, a nats-server the test kills, and a fake scraper."""

    def __init__(self, server: NatsServer, settings: SchedulerSettings) -> None:
        self.server = server
        self.settings = settings
        self.rt = build_scheduler(settings)

    async def jobs_for(self, account_id: str, timeout: float = 30.0) -> dict[str, Any]:
        async def fetch() -> dict[str, Any] | None:
            try:
                nc = await nats.connect(self.server.url, max_reconnect_attempts=0)
            except (OSError, nats.errors.Error):
                return None
            try:
                sub = await nc.jetstream().pull_subscribe(COLLECT_JOBS_PATTERN, durable="scraper-collect",
                                                          stream="COLLECTORS_JOBS",
                                                          config=ConsumerConfig(ack_wait=60))
                for m in await sub.fetch(50, timeout=0.5):
                    await m.ack()
                    if json.loads(m.data)["account_id"] == account_id:
                        return dict(json.loads(m.data))
            except (nats.errors.Error, TimeoutError):
                return None
            finally:
                await nc.close()
            return None
        return await eventually(fetch, timeout=timeout, every=0.2, what=f"a job for {account_id}")

    async def activate(self, account_id: str) -> None:
        async def published() -> bool:
            try:
                nc = await nats.connect(self.server.url, max_reconnect_attempts=0)
            except (OSError, nats.errors.Error):
                return False
            try:
                evt = AccountCreated(tenant_id="t1", account_id=account_id, collector_id="portal-a",
                                     login=account_id, slot=1)
                await nc.jetstream().publish(Events.ACCOUNT_CREATED.for_tenant("t1"), evt.model_dump_json().encode(),
                                             headers={"Nats-Msg-Id": evt.msg_id()})
                return True
            except (nats.errors.Error, TimeoutError):
                return False  # no stream yet: the services declare them again once reconnected
            finally:
                await nc.close()
        await eventually(published, timeout=30, every=0.2, what=f"{account_id}'s activation published")


@pytest.fixture
async def platform(tmp_path: Path, mongodb_url: str | None, db_prefix: str) -> AsyncIterator[Platform]:
    server = NatsServer(store_dir=tmp_path / "nats")
    server.start()
    await wait_jetstream_ready(server.url)
    settings = SchedulerSettings(nats_url=server.url, mongodb_url=mongodb_url, db_prefix=db_prefix, tick_s=0.2,
                                 refresh_s=1)
    p = Platform(server, settings)
    await p.rt.start()
    try:
        yield p
    finally:
        await p.rt.stop()
        server.stop()


@pytest.mark.parametrize("store", ["kept", "lost"])
async def test_the_schedulers_loops_and_consumers_work_again_after_nats_is_killed(platform: Platform,
                                                                                    store: str) -> None:
    await platform.activate("before")
    assert (await platform.jobs_for("before"))["reason"] == "activation"
    platform.server.kill()
    if store == "lost":  # a volume lost or restored from an old backup: no stream, no consumer
        shutil.rmtree(platform.server.store_dir / "jetstream")
    await asyncio.sleep(2.0)  # the services notice the outage (ticks, sweeps and fetches fail meanwhile)
    platform.server.start()
    # Positive control: an account activated after the restart gets its job, through the consumer of
    # account events, the tick and the outbox relay.
    await platform.activate("after")
    job = await platform.jobs_for("after")
    assert CollectJob.model_validate(job).reason == "activation"
    tasks = [t for t in platform.rt._tasks if not t.done()]
    assert len(tasks) == len(platform.rt._tasks)
