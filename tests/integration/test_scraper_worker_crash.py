"""A scraper worker killed in the middle of a job: the job comes back to another worker, finishes,
and every invoice is in the stream exactly once.

Worker A runs as its own process (``python -m services.scraper``) and is SIGKILLed with its browser
while it collects a slow portal; worker B, started afterwards, gets the redelivered job. Accounts and
scheduler run in this process, on a real nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from sandbox.data import documents_for
from sandbox.portal import SandboxPortal, start_portal
from services.accounts.app import build as build_accounts
from services.accounts.crypto import Keyring
from services.scheduler.app import build as build_scheduler
from services.scraper.app import build as build_scraper
from shared.client import ApiClient
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings
from shared.subjects import INVOICE_BUCKET, Api
from tests.integration.helpers import eventually, services_running

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TODAY = date.today()  # the worker process serves no date of its own: the portal's calendar is real
ROOT = Path(__file__).resolve().parents[2]
# Fast heartbeats and a short ack wait so the dead worker's job is handed over within seconds.
WORKER_ENV = {"COLLECTORS_CONCURRENCY": "2", "COLLECTORS_ACK_WAIT_S": "3", "COLLECTORS_HEARTBEAT_S": "0.5",
              "COLLECTORS_PAGE_TIMEOUT_S": "10"}


def slow_login_with_many_pages() -> str:
    # Three list pages at least, each taking the portal a while: the kill lands mid-collection.
    return next(login for i in range(100)
                if len(documents_for(login := f"fault-slow-crash-{i}", TODAY)) >= 28)


@pytest.fixture
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal(slow_s=0.8)
    yield p
    await p.close()


@pytest.fixture
async def platform(nats_url: str, mongodb_url: str | None, db_prefix: str, keyring: Keyring) -> AsyncIterator[
        ApiClient]:
    common: dict[str, Any] = {"nats_url": nats_url, "mongodb_url": mongodb_url, "db_prefix": db_prefix}
    runtimes: list[ServiceRuntime] = [build_accounts(AccountsSettings(**common), keyring=keyring),
                                      build_scheduler(SchedulerSettings(**common))]
    async with services_running(runtimes, nats_url) as client:
        yield client


def start_worker_process(nats_url: str, mongodb_url: str | None, db_prefix: str, portal: SandboxPortal,
                         log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **WORKER_ENV, "NATS_URL": nats_url, "COLLECTORS_DB_PREFIX": db_prefix,
           "COLLECTORS_SANDBOX_URL": portal.url, "COLLECTORS_LOG_JSON": "true"}
    if mongodb_url:
        env["MONGODB_URL"] = mongodb_url  # a real database: worker B then sees A's ledger too
    else:
        env["COLLECTORS_IN_MEMORY"] = "1"  # each worker its own ledger, as two pods without a database
    with open(log, "wb") as out:
        # Its own session: the kill takes the worker and the browser it started, like a lost pod.
        return subprocess.Popen([sys.executable, "-m", "services.scraper"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


async def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(
        platform: ApiClient, portal: SandboxPortal, nats_url: str, mongodb_url: str | None, db_prefix: str,
        tmp_path: Path) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    nc = await nats.connect(nats_url)

    async def on_event(msg: Msg) -> None:
        events.append((msg.subject, json.loads(msg.data)))

    await nc.subscribe("collectors.evt.scraper.>", cb=on_event)

    def of(kind: str) -> list[dict[str, Any]]:
        return [body for subject, body in events if f".{kind}" in subject]

    worker_a = start_worker_process(nats_url, mongodb_url, db_prefix, portal, tmp_path / "worker-a.log")
    worker_b: ServiceRuntime | None = None
    try:
        a_id = await eventually(lambda: asyncio.sleep(0, next(
            (a["worker_id"] for a in of("collector_announced") if a["worker_id"].endswith(f"-{worker_a.pid}")),
            None)), timeout=60, what="worker A announcing its collectors")

        login = slow_login_with_many_pages()
        expected = {d.number for d in documents_for(login, TODAY)}
        created = await platform.call(Api.ACCOUNTS_CREATE, {
            "tenant_id": "pharma-crash", "collector_id": "sandbox-classic", "login": login, "password": "demo"})
        await eventually(lambda: asyncio.sleep(0, of("invoice_collected")), timeout=60,
                         what="worker A's first invoices")
        os.killpg(worker_a.pid, signal.SIGKILL)
        worker_a.wait(timeout=10)
        collected_by_a = len(of("invoice_collected"))
        assert 0 < collected_by_a < len(expected), "the kill must land mid-collection"
        assert of("collection_succeeded") == [] and of("collection_failed") == []

        worker_b = build_scraper(ScraperSettings(
            nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix, sandbox_url=portal.url,
            concurrency=2, ack_wait_s=3.0, heartbeat_s=0.5, page_timeout_s=10.0))
        await worker_b.start()
        (result,) = await eventually(lambda: asyncio.sleep(0, of("collection_succeeded")), timeout=60,
                                     what="the redelivered job finished by worker B")
        # The same job, started by A, redelivered to and finished by B.
        by_a, by_b = of("collection_started")
        assert by_a["worker_id"] == a_id and by_b["worker_id"] == result["worker_id"] != a_id
        assert by_a["job_id"] == by_b["job_id"] == result["job_id"] and result["account_id"] == created["id"]
        assert result["total_invoices"] == len(expected)

        # Every invoice is in the stream exactly once, with its file in the object store.
        js = nc.jetstream()
        sub = await js.pull_subscribe("collectors.evt.scraper.invoice_collected.pharma-crash",
                                      config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
        stored: list[dict[str, Any]] = []
        while True:
            try:
                batch = await sub.fetch(100, timeout=1)
            except nats.errors.TimeoutError:
                break
            stored += [json.loads(m.data) for m in batch]
        numbers = [e["number"] for e in stored]
        assert len(numbers) == len(set(numbers)) and set(numbers) == expected
        bucket = await js.object_store(INVOICE_BUCKET)
        for event in stored:
            assert (await bucket.get(event["object_key"])).info.size == event["size"]
        jobs = await js.stream_info("COLLECTORS_JOBS")
        assert jobs.state.messages == 0  # acked by B, nothing left to redo

        listing = await platform.call(Api.SCRAPER_INVOICES_LIST, {"tenant_id": "pharma-crash", "limit": 500})
        assert sorted(i["number"] for i in listing["invoices"]) == sorted(expected)
    finally:
        if worker_a.poll() is None:
            os.killpg(worker_a.pid, signal.SIGKILL)
            worker_a.wait(timeout=10)
        if worker_b is not None:
            await worker_b.stop()
        await nc.close()
