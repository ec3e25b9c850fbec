"""``collectors up`` and ``collectors demo``: start the platform, show it live, stop it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from collectors.feed import follow
from collectors.output import console, err_console
from collectors.platform import DEMO_TENANT, Platform, PlatformError, PlatformOptions, seed_demo, wait_healthy
from shared.client import ApiClient
from shared.errors import RemoteApiError
from shared.logging import configure_logging
from shared.natsserver import NatsServerError
from shared.runtime import first_of
from shared.subjects import Api

FINISHED = {"ok", "action_required", "retrying", "maintenance"}


def _say_to(out: Any) -> Any:
    def say(line: str) -> None:
        # soft_wrap: a long line (the demo's sign-in link) is left whole for the terminal to wrap,
        # not folded with line breaks that a copy would keep.
        out.print(f"[dim]{datetime.now():%H:%M:%S}[/] {line}", highlight=False, soft_wrap=True)

    return say


def _open_log(data_dir: Path, verbose: bool) -> TextIO:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = (data_dir / "collectors.log").open("a", encoding="utf-8")
    configure_logging("INFO", json=True, stream=sys.stderr if verbose else log_file)
    return log_file


@contextlib.asynccontextmanager
async def _platform(data_dir: Path, say: Any, *, demo: bool, nats_port: int, verbose: bool,
                    client_name: str) -> AsyncIterator[tuple[Platform, ApiClient]]:
    """The platform started, with a client connected to it; everything stopped on the way out."""
    log_file = _open_log(data_dir, verbose)
    platform = Platform(PlatformOptions(data_dir=data_dir, demo=demo, nats_port=nats_port), say)
    client: ApiClient | None = None
    try:
        await platform.start()
        client = await ApiClient.connect(platform.nats_url, name=client_name)
        yield platform, client
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
        await platform.stop()
        log_file.close()


async def run_up(data_dir: Path, *, demo: bool, nats_port: int, verbose: bool) -> int:
    say = _say_to(console)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with _platform(data_dir, say, demo=demo, nats_port=nats_port, verbose=verbose,
                             client_name="collectors-up") as (platform, client):
            await follow(client.nc, say)
            if demo:
                await seed_demo(client, say)
            say(f"Ready. In another terminal: [bold]collectors accounts list --tenant {DEMO_TENANT}[/]  "
                f"(logs: {data_dir / 'collectors.log'}; Ctrl-C to stop)")
            await first_of(stop.wait(), *(rt.failed() for rt in platform.runtimes))
            failed = [f"{rt.name}: {rt.failure}" for rt in platform.runtimes if rt.failure]
            say("Stopping…")
        if failed:
            # Nothing here restarts a service: stopping loudly beats a platform that only half works.
            err_console.print(f"[red]collectors up stopped: a service could not recover:[/] {'; '.join(failed)}")
            return 1
        return 0
    except (PlatformError, NatsServerError, RemoteApiError) as exc:
        err_console.print(f"[red]collectors up failed:[/] {exc}")
        return 1
    finally:
        say("Stopped.")


async def run_demo(data_dir: Path, *, as_json: bool, timeout: float, nats_port: int) -> int:
    say = _say_to(err_console)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout), _platform(data_dir, say, demo=True, nats_port=nats_port,
                                                       verbose=False, client_name="collectors-demo") as (_, client):
            missing = await wait_healthy(client, 30)
            if missing:
                raise PlatformError(f"services not answering: {', '.join(missing)}")
            ids = await seed_demo(client, say)
            accounts = await _wait_first_round(client, set(ids), say)
            invoices = await client.call(Api.SCRAPER_INVOICES_LIST, {"tenant_id": DEMO_TENANT, "limit": 10000})
            read, with_data = await _wait_invoice_data(client, {i["id"] for i in invoices["invoices"]}, say)
    except TimeoutError:
        err_console.print(f"[red]demo did not finish within {timeout:.0f} s[/]")
        return 1
    except (PlatformError, NatsServerError, RemoteApiError) as exc:
        err_console.print(f"[red]demo failed:[/] {exc}")
        return 1
    elapsed = time.monotonic() - started
    count = len(invoices["invoices"])
    if as_json:
        sys.stdout.write(json.dumps({"accounts": accounts, "invoices": count, "invoices_read": read,
                                     "invoices_with_data": with_data, "elapsed_s": round(elapsed, 2)},
                                    ensure_ascii=False) + "\n")
    else:
        for a in accounts:
            console.print(f"{a['collector_id']:<20} {a['login']:<24} {a['status']:<16} "
                          f"{a['invoice_count']:>4} invoices  {a['message']}")
        console.print(f"{count} invoices collected for tenant '{DEMO_TENANT}' in {elapsed:.1f} s; "
                      f"{with_data} carry structured data (e-invoice), {read} read by the documents service")
    return 0 if accounts and all(a["status"] == "ok" for a in accounts) else 1


# How long the demo waits, after the first round, for the documents service to read what was collected.
DATA_CATCH_UP_S = 30.0


async def _wait_invoice_data(client: ApiClient, ids: set[str], say: Any,
                             wait_s: float = DATA_CATCH_UP_S) -> tuple[int, int]:
    """(invoices the documents service has read, those with structured data, i.e. source != none),
    once it has read every one of ``ids`` or after ``wait_s``: extraction trails collection."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        sources: dict[str, str] = {}
        request: dict[str, Any] = {"tenant_id": DEMO_TENANT}
        while True:
            reply = await client.call(Api.DOCUMENTS_EXPORT, request)
            sources.update({r["invoice_id"]: r["source"] for r in reply["rows"]})
            if not reply.get("next"):
                break
            request = {"tenant_id": DEMO_TENANT, "after": reply["next"]}
        read = ids & set(sources)
        if read == ids or asyncio.get_running_loop().time() >= deadline:
            if read != ids:
                say(f"documents: {len(read)}/{len(ids)} invoices read after {wait_s:.0f} s")
            return len(read), sum(1 for i in read if sources[i] != "none")
        await asyncio.sleep(0.5)


async def _wait_first_round(client: ApiClient, ids: set[str], say: Any) -> list[dict[str, Any]]:
    last = ""
    while True:
        listing = await client.call(Api.ACCOUNTS_LIST, {"tenant_id": DEMO_TENANT})
        accounts = [a for a in listing["accounts"] if a["id"] in ids]
        done = [a for a in accounts if a["status"] in FINISHED and a.get("last_attempt_at")]
        progress = f"first collection: {len(done)}/{len(ids)} accounts done"
        if progress != last:
            say(progress)
            last = progress
        if len(done) == len(ids):
            return accounts
        await asyncio.sleep(0.2)
