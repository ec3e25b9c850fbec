"""The platform as separate processes (nats-server, the sandbox portal, each service alone, as in
production), and SIGKILL of any of them at seeded random moments while accounts collect.

Each service runs ``python -m services.<name>`` in its own process group with its own data dir, so a
kill takes its browser and driver with it, as the end of a Kubernetes pod would, and a restart finds
its data again (the durable embedded store, or ``MONGODB_URL`` when it is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from sandbox.data import documents_for
from services.accounts.crypto import new_key_entry
from shared.client import inbox_prefix
from shared.natsserver import NatsServer, free_port, port_open, wait_jetstream_ready
from shared.subjects import SERVICES, STREAMS, Api, Events, health

# The services whose death the suite inflicts, and nats-server itself.
TARGETS = ("scraper", "scheduler", "accounts", "notifier", "nats")
STYLES = ("sandbox-classic", "sandbox-twostep", "sandbox-spa")
# Logins whose collection must end in a user-fixable state, with the §4 code it must carry.
FAULTS = {"password_expired": "password_expired", "terms": "action_required_on_site",
          "otp": "two_factor_required"}


@dataclass(frozen=True)
class Planned:
    """An account the suite creates, and what its collection must end with."""

    tenant_id: str
    collector_id: str
    login: str
    status: str  # final status expected
    code: str | None  # error code expected

    def expected_numbers(self, today: date) -> set[str]:
        if self.status != "ok":
            return set()
        return {d.number for d in documents_for(self.login, today)}


def plan_accounts(count: int, seed: int) -> list[Planned]:
    """``count`` accounts over every style, two per collector and tenant (the API's limit), one in
    six with a fault that must end as ``action_required``."""
    rng = random.Random(seed)
    planned: list[Planned] = []
    fault_modes = list(FAULTS)
    i = 0
    while len(planned) < count:
        tenant = f"chaos-{seed}-{i // (2 * len(STYLES))}"
        collector = STYLES[(i // 2) % len(STYLES)]
        if i % 6 == 5:
            mode = fault_modes[rng.randrange(len(fault_modes))]
            planned.append(Planned(tenant, collector, f"fault-{mode}-{i}", "action_required", FAULTS[mode]))
        else:
            planned.append(Planned(tenant, collector, f"chaos-{seed}-{i}", "ok", None))
        i += 1
    return planned


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the whole process group (the service, its Playwright driver, its browsers)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self.popen = None

    def stop(self) -> int | None:
        if self.popen is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            return self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self.popen = None


@dataclass
class Kill:
    target: str
    at: float  # seconds since the start of the chaos phase
    down_s: float
    recovered_s: float = 0.0  # from the restart until the target answered again


@dataclass
class ChaosPlatform:
    root: Path
    mongodb_url: str | None = None
    env_overrides: dict[str, str] = field(default_factory=dict)
    nats: NatsServer | None = None
    procs: dict[str, Proc] = field(default_factory=dict)
    nc: Client | None = None

    @property
    def nats_url(self) -> str:
        assert self.nats is not None
        return self.nats.url

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.nats = NatsServer(store_dir=self.root / "nats")
        self.nats.start()
        await wait_jetstream_ready(self.nats.url)
        sandbox_port = free_port()
        base = {**os.environ, "NATS_URL": self.nats.url, "PYTHONUNBUFFERED": "1"}
        base.pop("MONGODB_URL", None)
        if self.mongodb_url:
            base["MONGODB_URL"] = self.mongodb_url
            base["COLLECTORS_DB_PREFIX"] = f"chaos{os.getpid()}"
        self.procs["sandbox"] = Proc("sandbox", [sys.executable, "-m", "sandbox", "--port", str(sandbox_port)],
                                     base, self.root / "sandbox.log")
        self.procs["sandbox"].start()
        keys = new_key_entry("chaos1")
        for service in SERVICES:
            env = {**base, "COLLECTORS_DATA_DIR": str(self.root / service),
                   "COLLECTORS_CREDENTIAL_KEYS": keys,
                   "COLLECTORS_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
                   **self.env_overrides}
            (self.root / service).mkdir(exist_ok=True)
            self.procs[service] = Proc(service, [sys.executable, "-m", f"services.{service}"], env,
                                       self.root / f"{service}.log")
        for service in SERVICES:
            self.procs[service].start()
        deadline = time.monotonic() + 30
        while not port_open(sandbox_port) and time.monotonic() < deadline:  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.1)
        async def expected_outage(_: Exception) -> None:  # the suite kills nats-server on purpose
            return None

        self.nc = await nats.connect(self.nats.url, name="chaos", inbox_prefix=inbox_prefix("cli"),
                                     max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                                     error_cb=expected_outage)
        for service in SERVICES:
            await self.wait_answers(service, timeout=60)

    async def call(self, subject: str, payload: dict[str, Any], timeout: float = 5.0,
                   attempts: int = 30) -> dict[str, Any]:
        """A request that tolerates the outages the suite causes: retried until answered."""
        assert self.nc is not None
        last: Exception | None = None
        for _ in range(attempts):
            try:
                msg = await self.nc.request(subject, json.dumps(payload).encode(), timeout=timeout)
            except Exception as exc:  # no responders, timeout, reconnecting
                last = exc
                await asyncio.sleep(0.5)
                continue
            reply: dict[str, Any] = json.loads(msg.data)
            return reply
        raise AssertionError(f"no answer on {subject} after {attempts} attempts: {last!r}")

    async def answers(self, target: str) -> bool:
        assert self.nc is not None
        try:
            if target == "nats":
                await self.nc.jetstream().account_info()
            else:
                await self.nc.request(health(target), b"{}", timeout=1.0)
        except Exception:
            return False
        return True

    async def wait_answers(self, target: str, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if await self.answers(target):
                return time.monotonic() - started
            proc = self.procs.get(target)
            if proc is not None and proc.popen is not None and proc.popen.poll() is not None:
                # A supervisor restarts a process that exits (the scraper does so on purpose
                # after repeated browser failures).
                proc.popen = None
                proc.start()
            await asyncio.sleep(0.1)
        raise AssertionError(f"{target} did not answer within {timeout:.0f} s after its restart; "
                             f"log: {self.root / (target + '.log')}")

    def kill(self, target: str) -> None:
        if target == "nats":
            assert self.nats is not None
            self.nats.kill()
        else:
            self.procs[target].kill()

    def restart(self, target: str) -> None:
        if target == "nats":
            assert self.nats is not None
            self.nats.start()
        else:
            self.procs[target].start()

    async def stop(self) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
        for name in reversed(list(self.procs)):
            codes[name] = self.procs[name].stop()
        if self.nats is not None:
            self.nats.stop()
        return codes

    # --- reading the outcome ---------------------------------------------------------------------

    async def invoice_events(self) -> Counter[tuple[str, str, str]]:
        """Every `invoice collected` event in its stream, counted by (tenant, account, number)."""
        assert self.nc is not None
        js = self.nc.jetstream()
        stream = str(STREAMS["scraper"].name)
        sub = await js.pull_subscribe(Events.INVOICE_COLLECTED.pattern, durable=f"chaos-{os.getpid()}",
                                      stream=stream)
        counts: Counter[tuple[str, str, str]] = Counter()
        try:
            while True:
                try:
                    msgs = await sub.fetch(500, timeout=2.0)
                except Exception:  # nats-py's TimeoutError: nothing more
                    break
                for msg in msgs:
                    evt = json.loads(msg.data)
                    counts[evt["tenant_id"], evt["account_id"], evt["number"]] += 1
                    await msg.ack()
        finally:
            await sub.unsubscribe()
        return counts


async def create_accounts(platform: ChaosPlatform, planned: Iterable[Planned]) -> dict[str, Planned]:
    """Create each planned account over the API; its id → its plan."""
    ids: dict[str, Planned] = {}
    kinds: dict[str, str] = {}
    catalog: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while not set(STYLES) <= set(kinds):  # the accounts service learns the catalog from the scraper
        assert time.monotonic() < deadline, f"catalog incomplete: {catalog}"
        catalog = await platform.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "chaos"})
        kinds = {c["id"]: c["login_kind"] for c in catalog.get("collectors", [])}
        await asyncio.sleep(0.2)

    async def one(p: Planned) -> None:
        reply = await platform.call(Api.ACCOUNTS_CREATE, {"tenant_id": p.tenant_id, "collector_id": p.collector_id,
                                                          "login": p.login, "password": "demo"})
        if "error" in reply and reply["error"]["code"] == "duplicate_account":
            # A create answered after a kill but before the reply reached us: it exists already.
            listed = await platform.call(Api.ACCOUNTS_LIST, {"tenant_id": p.tenant_id})
            reply = next(a for a in listed["accounts"] if a["login"] == p.login)
        assert "error" not in reply, reply
        ids[reply["id"]] = p

    # A collector that asks for an email gets the same login as an address (the sandbox reads the
    # part before "@" for its fault modes and documents alike).
    planned = [p if kinds.get(p.collector_id) != "email" else replace(p, login=f"{p.login}@pharma.test")
               for p in planned]
    await asyncio.gather(*(one(p) for p in planned))
    return ids


async def account_views(platform: ChaosPlatform, tenants: Iterable[str]) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    for tenant in sorted(set(tenants)):
        reply = await platform.call(Api.ACCOUNTS_LIST, {"tenant_id": tenant})
        assert "error" not in reply, reply
        for view in reply["accounts"]:
            views[view["id"]] = view
    return views


def settled(view: dict[str, Any], plan: Planned) -> bool:
    return bool(view["status"] == plan.status and view.get("error_code") == plan.code)
