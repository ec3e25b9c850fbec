"""Activation → first ``invoice collected`` event latency on the sandbox (issue "Scheduler", §9).

Runs the five services in one process against a real nats-server and the sandbox portal, activates
accounts through the API and times, for each, the first invoice event seen on NATS. Two runs:
activations one after another (a pharmacy at a time) and all at once (a burst). Target: p95 <= 10 s.
Run: ``python benchmarks/activation_latency.py [--accounts 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from typing import Any

import nats
from nats.aio.msg import Msg

from sandbox.portal import start_portal
from services.accounts.app import build as build_accounts
from services.accounts.crypto import Keyring, new_key_entry
from services.notifier.app import build as build_notifier
from services.requests.app import build as build_requests
from services.scheduler.app import build as build_scheduler
from services.scraper.app import build as build_scraper
from shared.client import ApiClient
from shared.logging import configure_logging
from shared.natsserver import NatsServer, temp_store, wait_jetstream_ready
from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings, Settings
from shared.subjects import Api, Events


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def main(accounts: int) -> None:
    configure_logging("WARNING", json=True)
    server = NatsServer(store_dir=temp_store())
    server.start()
    await wait_jetstream_ready(server.url)
    portal = await start_portal()
    common: dict[str, Any] = {"nats_url": server.url, "db_prefix": "bench"}
    runtimes = [
        build_accounts(AccountsSettings(**common), keyring=Keyring.parse(new_key_entry("k1"))),
        build_scheduler(SchedulerSettings(**common)),
        build_scraper(ScraperSettings(**common, sandbox_url=portal.url)),
        build_notifier(Settings(**common)),
        build_requests(Settings(**common)),
    ]
    for rt in runtimes:
        await rt.start()
    client = await ApiClient.connect(server.url)
    for _ in range(600):  # the catalog is the scraper's announcement, a moment after start
        if (await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "bench"}))["collectors"]:
            break
        await asyncio.sleep(0.05)

    first_invoice: dict[str, float] = {}
    arrived = asyncio.Event()

    async def on_invoice(msg: Msg) -> None:
        first_invoice.setdefault(json.loads(msg.data)["account_id"], time.perf_counter())
        arrived.set()

    watcher = await nats.connect(server.url)
    await watcher.subscribe(Events.INVOICE_COLLECTED.pattern, cb=on_invoice)

    async def activate(tenant: str, login: str) -> tuple[str, float]:
        started = time.perf_counter()
        created = await client.call(Api.ACCOUNTS_CREATE, {"tenant_id": tenant, "collector_id": "sandbox-classic",
                                                           "login": login, "password": "demo"})
        return created["id"], started

    async def wait_all(ids: dict[str, float], timeout: float = 120) -> list[float]:
        async def every_first_invoice() -> None:
            while not all(i in first_invoice for i in ids):
                arrived.clear()
                await arrived.wait()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(every_first_invoice(), timeout)
        return [first_invoice[i] - t for i, t in ids.items() if i in first_invoice]

    await wait_all(dict([await activate("warmup", "warmup")]))  # the browser's first start is not an activation

    sequential: dict[str, float] = {}
    for n in range(accounts):
        account_id, started = await activate(f"seq-{n}", f"officine-{n}")
        sequential[account_id] = started
        await asyncio.sleep(0.5)
    seq = await wait_all(sequential)
    burst = dict(await asyncio.gather(*(activate(f"burst-{n}", f"officine-{n}") for n in range(accounts))))
    bur = await wait_all(burst)

    for name, values, total in (("one after another", seq, len(sequential)), ("all at once", bur, len(burst))):
        print(f"{name:>18}: {len(values)}/{total} activations reached their first invoice; "
              f"p50 {statistics.median(values):.2f} s, p95 {percentile(values, 95):.2f} s, "
              f"max {max(values):.2f} s (target p95 <= 10 s)")
    await watcher.close()
    await client.close()
    for rt in reversed(runtimes):
        await rt.stop()
    await portal.close()
    server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20)
    asyncio.run(main(parser.parse_args().accounts))
