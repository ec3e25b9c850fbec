"""A worker whose Playwright driver or browser dies says so and recovers (issue 10, bullet 2).

Driver and browser are SIGKILLed, found among the worker's child processes in /proc, while jobs run:
the running jobs go back to the queue at once (the ack wait and the retry delay are long here, so
that a job coming back after either would show), nobody is told they failed, health says not ready
until the driver and browser run again, and later jobs succeed. A worker that cannot get a browser
running, or whose driver keeps dying, exits non-zero (a standalone ``python -m services.scraper``)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout
from playwright.async_api import Browser, Playwright

from services.scraper.app import build as build_scraper
from services.scraper.browser import launch_browser
from services.scraper.kit import CollectContext, CollectedDocument, Found, InvoiceRef, Manifest
from shared.natsserver import free_port
from shared.runtime import ServiceRuntime
from shared.settings import ScraperSettings
from shared.subjects import health
from tests.integration.helpers import eventually
from tests.integration.test_scraper_workers import Harness
from tests.processes import cmdline, descendants

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# Far beyond what a prompt hand-back takes: a job redelivered after either is a failure here.
ACK_WAIT_S = 30.0
RETRY_DELAY_S = 20.0
PROMPT_S = 10.0


# --- processes -----------------------------------------------------------------------------------


def drivers(pid: int) -> set[int]:
    """Playwright's node driver processes under ``pid``."""
    return {p for p in descendants(pid) if (cmd := cmdline(p)) and cmd[0].endswith("playwright/driver/node")}


def browser_processes(driver: int) -> set[int]:
    """The main Chromium process started by ``driver`` (not its renderers or the shell wrapper)."""
    return {p for p in descendants(driver) if (cmd := cmdline(p)) and cmd[0].startswith("/usr/lib/chromium/")
            and not any("--type=" in a for a in cmd)}  # helpers rewrite their argv as one string


def kill(pid: int) -> float:
    os.kill(pid, signal.SIGKILL)
    return time.monotonic()


async def new_driver(pid: int, old: set[int]) -> int:
    (driver,) = await eventually(lambda: asyncio.sleep(0, drivers(pid) - old), timeout=30,
                                 what="a new Playwright driver")
    return driver


# --- health --------------------------------------------------------------------------------------


async def http_health(port: int) -> int:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/health",
                                                       timeout=aiohttp.ClientTimeout(total=2)) as r:
            return r.status
    except (aiohttp.ClientError, TimeoutError):
        return 0  # not listening (yet, or any more)


async def status_is(port: int, status: int) -> bool:
    return await http_health(port) == status


async def nats_health(nc: Client) -> bool:
    try:
        await nc.request(health("scraper"), b"{}", timeout=0.5)
        return True
    except NatsTimeout:
        return False


# --- in-process worker ---------------------------------------------------------------------------


@dataclass
class HangOnce:
    """The first run of each login hangs, in a page (``page-*`` logins) or in Python; later runs
    yield two PDFs. ``hanging`` holds the logins hanging now."""

    id: str = "hang-once"
    runs: dict[str, int] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)
    started: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.manifest = Manifest(id=self.id, name=self.id, supplier="Test", portal_url="http://127.0.0.1:9/",
                                 max_sessions=32)

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        login = ctx.login
        self.runs[login] = self.runs.get(login, 0) + 1
        self.started.setdefault(login, []).append(time.monotonic())
        if self.runs[login] == 1 and not login.startswith("later"):
            self.hanging.add(login)
            try:
                if login.startswith("page"):
                    page = await ctx.open_page()
                    await page.evaluate("new Promise(() => {})")  # only the browser's death ends it
                await asyncio.sleep(3600)
            finally:
                self.hanging.discard(login)
        for n in range(2):
            ref = InvoiceRef(number=f"{login}-{n}", issue_date=date(2026, 3, 1), amount=Decimal("10.00"),
                             currency="EUR", kind="invoice", download_url=f"http://127.0.0.1:9/{n}.pdf")
            yield CollectedDocument(ref=ref, content=f"%PDF-{login}-{n}".encode())


@dataclass
class Worker:
    rt: ServiceRuntime
    health_port: int
    collector: HangOnce
    others: set[int]  # Playwright drivers of this process not the worker's

    async def driver(self) -> int:
        return await new_driver(os.getpid(), self.others)


@pytest.fixture
async def harness(nats_url: str, mongodb_url: str | None, db_prefix: str) -> AsyncIterator[Harness]:
    nc = await nats.connect(nats_url)
    settings = ScraperSettings(nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix, concurrency=2,
                               heartbeat_s=0.5, ack_wait_s=ACK_WAIT_S, retry_delay_s=RETRY_DELAY_S, max_deliver=5,
                               browser_check_s=0.5, browser_max_failures=5)
    h = Harness(nc, settings)
    await h.start()
    yield h
    await nc.close()


@pytest.fixture
async def worker(harness: Harness) -> AsyncIterator[Worker]:
    collector = HangOnce()
    rt = build_scraper(harness.settings, collectors={collector.id: collector})
    port = free_port()
    others = drivers(os.getpid())
    await rt.start(health_port=port)
    try:
        await eventually(lambda: status_is(port, 200), timeout=30, what="the worker ready")
        yield Worker(rt, port, collector, others)
    finally:
        await rt.stop()


@pytest.fixture
def slow_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every browser start after the first takes 2 s more: an outage long enough to watch."""
    launches: list[float] = []
    real = launch_browser

    async def slow_launch(playwright: Playwright) -> Browser:
        launches.append(time.monotonic())
        if len(launches) > 1:
            await asyncio.sleep(2.0)
        return await real(playwright)

    monkeypatch.setattr("services.scraper.browsers.launch_browser", slow_launch)


async def _jobs_hanging(harness: Harness, w: Worker, *logins: str) -> None:
    for login in logins:
        await harness.publish(w.collector.id, login)
    await eventually(lambda: asyncio.sleep(0, w.collector.hanging == set(logins)), timeout=30,
                     what=f"{logins} running")


async def _rerun_and_succeed(harness: Harness, w: Worker, killed_at: float, *logins: str) -> list[float]:
    """Each job runs again and succeeds; how long after the kill each one started again."""
    async def finished() -> list[dict[str, Any]]:
        done = harness.of("collection_succeeded")
        return done if len(done) >= len(logins) else []

    done = await eventually(finished, timeout=60, what="the handed-back jobs finished")
    assert sorted(e["account_id"] for e in done) == sorted(logins)
    assert w.collector.runs == {login: 2 for login in logins}
    assert harness.of("collection_failed") == []  # not the portal's fault, nor the collector's
    assert await harness.dead_letters() == []
    return [w.collector.started[login][1] - killed_at for login in logins]


async def test_a_killed_driver_hands_running_jobs_back_at_once_and_the_worker_recovers(
        harness: Harness, slow_restarts: None, worker: Worker) -> None:
    # Positive controls: ready before the kill, on HTTP and on NATS.
    assert await http_health(worker.health_port) == 200 and await nats_health(harness.nc)
    await _jobs_hanging(harness, worker, "page-1", "python-1")
    driver = await worker.driver()
    # A second worker, to show the jobs are free for another one at once (the first one may hold
    # one of them while it restarts).
    other = build_scraper(harness.settings, collectors={worker.collector.id: worker.collector})
    await other.start()
    try:
        await eventually(lambda: asyncio.sleep(0, not other.not_ready()), timeout=30, what="worker B ready")

        killed_at = kill(driver)
        # Not ready while its driver and browser start again (NATS health: worker B answers for
        # the service; the next test has a worker alone).
        await eventually(lambda: status_is(worker.health_port, 503), timeout=5, every=0.05, what="/health 503")

        delays = await _rerun_and_succeed(harness, worker, killed_at, "page-1", "python-1")
        assert max(delays) < PROMPT_S < RETRY_DELAY_S < ACK_WAIT_S
    finally:
        await other.stop()
    await eventually(lambda: status_is(worker.health_port, 200), timeout=30, what="ready again")
    assert await nats_health(harness.nc)
    assert drivers(os.getpid()) - worker.others - {driver}, "a new driver runs"

    await harness.publish(worker.collector.id, "later-1")  # later jobs run on the new browser
    await eventually(lambda: asyncio.sleep(0, len(harness.of("collection_succeeded")) == 3), timeout=30,
                     what="a later job")
    await eventually(harness.idle, what="every job acked")
    print(f"\ndriver killed: jobs started again after {', '.join(f'{d:.2f} s' for d in delays)}")


async def test_a_killed_browser_or_a_driver_dead_while_idle_is_noticed_and_replaced(
        harness: Harness, slow_restarts: None, worker: Worker) -> None:
    assert await http_health(worker.health_port) == 200 and await nats_health(harness.nc)
    await _jobs_hanging(harness, worker, "page-2")
    first_driver = await worker.driver()
    (chromium,) = browser_processes(first_driver)
    killed_at = kill(chromium)
    await eventually(lambda: status_is(worker.health_port, 503), timeout=5, every=0.05, what="/health 503")
    (delay,) = await _rerun_and_succeed(harness, worker, killed_at, "page-2")
    assert delay < PROMPT_S
    await eventually(lambda: status_is(worker.health_port, 200), timeout=30, what="ready again")
    recovered_s = time.monotonic() - killed_at
    await eventually(harness.idle, what="the job acked")

    # No job runs: only the periodic probe can notice the driver is gone.
    driver = await new_driver(os.getpid(), worker.others | {first_driver})
    assert await nats_health(harness.nc)
    killed_at = kill(driver)
    await eventually(lambda: status_is(worker.health_port, 503), timeout=5, every=0.05, what="/health 503")
    noticed_s = time.monotonic() - killed_at
    assert not await nats_health(harness.nc)  # silent while not ready
    await eventually(lambda: status_is(worker.health_port, 200), timeout=30, what="ready again")
    assert await nats_health(harness.nc)
    await harness.publish(worker.collector.id, "later-2")
    await eventually(lambda: asyncio.sleep(0, len(harness.of("collection_succeeded")) == 2), timeout=30,
                     what="a later job")
    assert harness.of("collection_failed") == []
    print(f"\nbrowser killed: job started again after {delay:.2f} s, ready again after {recovered_s:.2f} s "
          f"(2 s of it the test's slowed restart); idle driver death noticed after {noticed_s:.2f} s")


# --- a standalone worker process ----------------------------------------------------------------


def start_worker_process(nats_url: str, mongodb_url: str | None, db_prefix: str, health_port: int,
                         log: Path, **env: str) -> subprocess.Popen[bytes]:
    full = {**os.environ, "NATS_URL": nats_url, "COLLECTORS_DB_PREFIX": db_prefix, "COLLECTORS_IN_MEMORY": "1",
            "COLLECTORS_HEALTH_PORT": str(health_port), "COLLECTORS_HEALTH_HOST": "127.0.0.1",
            "COLLECTORS_BROWSER_CHECK_S": "0.5", **env}
    if mongodb_url:
        full["MONGODB_URL"] = mongodb_url
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "services.scraper"], cwd=ROOT, env=full, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


async def exited(proc: subprocess.Popen[bytes], timeout: float) -> int:
    code = await eventually(lambda: asyncio.sleep(0, proc.poll() is not None), timeout=timeout,
                            what="the worker process exiting")
    assert code
    return proc.returncode


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


async def test_a_worker_whose_browser_cannot_start_exits_non_zero(
        nats_url: str, mongodb_url: str | None, db_prefix: str, tmp_path: Path,
        processes: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    # A browser that exits at once: every start fails.
    proc = start_worker_process(nats_url, mongodb_url, db_prefix, port, tmp_path / "worker.log",
                                COLLECTORS_CHROMIUM_PATH="/bin/false", COLLECTORS_BROWSER_MAX_FAILURES="3")
    processes.append(proc)
    await eventually(lambda: status_is(port, 503), timeout=30, every=0.05, what="/health 503 (up, not ready)")
    assert await exited(proc, timeout=30) == 1
    log = (tmp_path / "worker.log").read_text()
    assert "browser_given_up" in log and "service_failed" in log


async def test_a_worker_whose_driver_keeps_dying_exits_non_zero(
        nats_url: str, mongodb_url: str | None, db_prefix: str, tmp_path: Path,
        processes: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    proc = start_worker_process(nats_url, mongodb_url, db_prefix, port, tmp_path / "worker.log",
                                COLLECTORS_BROWSER_MAX_FAILURES="2")
    processes.append(proc)
    await eventually(lambda: status_is(port, 200), timeout=60, what="the worker ready")
    first = await new_driver(proc.pid, set())
    first_killed_at = kill(first)  # one death: restarted, the process stays (the positive control of the exit)
    second = await new_driver(proc.pid, {first})
    await eventually(lambda: status_is(port, 503), timeout=5, every=0.05, what="/health 503")
    await eventually(lambda: status_is(port, 200), timeout=30, every=0.05, what="ready again")
    recovered_s = time.monotonic() - first_killed_at
    assert proc.poll() is None
    killed_at = kill(second)  # the second within the window: the process gives up
    assert await exited(proc, timeout=30) == 1
    print(f"\nidle driver killed: ready again after {recovered_s:.2f} s; second death: process exited 1 "
          f"after {time.monotonic() - killed_at:.2f} s")
