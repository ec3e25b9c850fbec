"""The stand-in's indexes (``shared/memory_mongo_index.py``): cost per operation of the repositories'
hot operations as the collections grow, and collections per second end to end.

    python benchmarks/standin_index_bench.py [--sizes 1000,10000,100000] [--per-account 10] [--scan-up-to 10000]
    python benchmarks/standin_index_bench.py --e2e [--accounts 100]

Per operation: an in-memory stand-in (the async facade the services use) holding N accounts and
N x per-account ledger entries (documents shaped as the repositories write them, put straight into
the collections, then the indexes built once); each operation is then timed through the repository
code itself, on random accounts, and printed in microseconds per call. With ``--scan-up-to``, the
same operations answered by scanning (the indexes off: mongomock-ng's own way, what the stand-in did
before) for the sizes up to that one, in the same run.

End to end (``--e2e``): ``collectors up --demo`` on a fresh data dir (the durable embedded store),
then N new sandbox-classic accounts created at once over NATS; timed until every one is ``ok``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOW = dt.datetime(2026, 1, 5, 8, 30)


def _account(i: int) -> dict[str, Any]:
    return {"_id": f"acc{i:08d}", "tenant_id": f"pharma-{i // 2:06d}", "collector_id": "sandbox-classic",
            "slot": 1 + i % 2, "login": f"officine-{i}", "login_key": f"officine-{i}",
            "secret": {"kid": "k20260101-1a2b", "nonce": b"n" * 12, "ct": b"c" * 32},
            "credential_version": 1, "status": "ok", "error_code": None, "invoice_count": 10,
            "created_at": NOW, "updated_at": NOW, "active": True, "outbox": []}


def _invoice(i: int, accounts: int) -> dict[str, Any]:
    account = i % accounts
    number = f"F{i:09d}"
    tenant, account_id = f"pharma-{account // 2:06d}", f"acc{account:08d}"
    from services.scraper.ledger import invoice_id

    return {"_id": invoice_id(tenant, account_id, number), "tenant_id": tenant, "account_id": account_id,
            "collector_id": "sandbox-classic", "number": number, "issue_date": "2025-12-01", "amount": "123.45",
            "currency": "EUR", "kind": "invoice", "sha256": f"{i:064x}", "size": 20480,
            "object_key": f"{tenant}/{account_id}/{i:064x}", "collected_at": NOW, "event": "{" + "x" * 300 + "}",
            "published": True}


def _fill(collection: Any, docs: Any) -> None:
    """Documents straight into the collection's dict, as stored (no per-document insert path)."""
    store = collection._sync._store
    store.create()
    documents = store._documents
    for doc in docs:
        documents[doc["_id"]] = doc


async def _per_call(work: Callable[[int], Awaitable[Any]], calls: int) -> float:
    started = time.perf_counter()
    for n in range(calls):
        await work(n)
    return (time.perf_counter() - started) / calls * 1e6


async def _measure(ledger: Any, accounts: Any, relay: Any, size: int, mode: str, n_calls: int) -> list[str]:
    from services.scraper.kit import CollectedDocument
    from services.scraper.kit.invoice import InvoiceRef
    from shared.outbox import push_outbox

    rng = random.Random(7)
    picks = [rng.randrange(size) for _ in range(n_calls)]

    def who(n: int) -> tuple[str, str]:
        i = picks[n]
        return f"pharma-{i // 2:06d}", f"acc{i:08d}"

    def document(n: int, number: str) -> CollectedDocument:
        ref = InvoiceRef(number=number, issue_date=dt.date(2026, 1, 5), amount=Decimal(1), currency="EUR",
                         kind="invoice", download_url="/d")
        return CollectedDocument(ref, f"{mode}-{size}-{number}-{n}".encode())

    async def record(n: int) -> None:
        await ledger.record(*who(n), "sandbox-classic", document(n, f"N-{mode}-{n}"), NOW)

    async def record_dup(n: int) -> None:
        tenant, account = who(n)
        number = f"F{picks[n]:09d}"  # the account's first entry
        assert await ledger.record(tenant, account, "sandbox-classic", document(n, number), NOW) is None

    async def has_content(n: int) -> None:
        await ledger.has_content(*who(n), f"{picks[n]:064x}")

    async def known(n: int) -> None:
        await ledger.known(*who(n))

    async def count(n: int) -> None:
        await ledger.count(*who(n))

    async def get(n: int) -> None:
        assert await accounts.get(*who(n)) is not None

    async def update(n: int) -> None:
        await accounts.update(*who(n), {"$set": {"status": "collecting", "updated_at": NOW}})

    async def insert(n: int) -> None:
        await accounts.insert({**_account(size + n), "_id": f"new-{mode}-{n}",
                               "tenant_id": f"pharma-new-{mode}-{n}", "login_key": f"new-{mode}-{n}"})

    async def used(n: int) -> None:
        await accounts.used_slots(who(n)[0], "sandbox-classic")

    async def flush(n: int) -> None:
        tenant, account = who(n)
        await accounts.accounts.update_one({"_id": account}, {"$push": push_outbox(
            {"msg_id": f"m{n}", "subject": "s", "payload": "{}"})})
        await relay.flush({"tenant_id": tenant, "_id": account})

    async def sweep(n: int) -> None:
        await relay.flush({})

    row = []
    for work in (record, record_dup, has_content, known, count, get, update, insert, used, flush):
        row.append(f"{await _per_call(work, n_calls):.0f}")
    row.append(f"{await _per_call(sweep, 3):.0f}")
    return row


async def ops(sizes: list[int], per_account: int, calls: int, scan_up_to: int) -> None:
    from services.accounts.repository import AccountRepository
    from services.scraper.ledger import Ledger
    from shared import memory_mongo_index
    from shared.memory_mongo import InMemoryMongoClient
    from shared.outbox import OutboxRelay

    print(f"cost per call in microseconds; {per_account} ledger entries per account; {calls} calls each")
    header = ("accounts", "ledger", "mode", "build s", "record", "rec.dup", "has_content", "known_nrs",
              "count", "acc.get", "acc.update", "acc.insert", "used_slots", "outbox.flush", "sweep(all)")
    print(" | ".join(header))
    for size in sizes:
        entries = size * per_account
        started = time.perf_counter()
        client = InMemoryMongoClient()
        ledger = Ledger(client["collectors_scraper"])
        accounts = AccountRepository(client["collectors_accounts"])
        _fill(ledger.invoices, (_invoice(i, size) for i in range(entries)))
        _fill(accounts.accounts, (_account(i) for i in range(size)))
        await ledger.create_indexes()
        await accounts.create_indexes()
        await ledger.count("pharma-000000", "acc00000000")  # builds the trees
        await accounts.used_slots("pharma-000000", "sandbox-classic")
        built = time.perf_counter() - started
        relay = OutboxRelay(accounts.accounts, broker=None)  # type: ignore[arg-type]

        async def published(entries: list[dict[str, Any]]) -> list[BaseException | None]:
            return [None] * len(entries)

        relay._publish = published  # type: ignore[method-assign]
        for mode in ["index"] + (["scan"] if size <= scan_up_to else []):
            memory_mongo_index.ENABLED = mode == "index"
            n_calls = calls if mode == "index" else max(10, calls // 100)  # a scan is slow: fewer calls
            row = await _measure(ledger, accounts, relay, size, mode, n_calls)
            print(" | ".join([f"{size:,}", f"{entries:,}", mode, f"{built:.1f}", *row]), flush=True)
        memory_mongo_index.ENABLED = True
        client.release()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def e2e(accounts: int, url: str) -> None:
    import nats
    from nats.aio.msg import Msg

    from shared.client import ApiClient
    from shared.subjects import Api, Events

    client = None
    deadline = time.monotonic() + 180
    while client is None:
        try:
            client = await ApiClient.connect(url)
            catalog = await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "bench"})
            if not any(c["id"] == "sandbox-classic" for c in catalog["collectors"]):
                raise RuntimeError("no catalog yet")
        except Exception:
            if client is not None:
                await client.close()
                client = None
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    tenants = [f"bench-{n:03d}" for n in range(accounts)]
    ok_at: dict[str, float] = {}
    all_ok = asyncio.Event()
    ids: set[str] = set()
    started = time.perf_counter()

    async def on_status(msg: Msg) -> None:  # the accounts service's own event: no polling load
        event = json.loads(msg.data)
        if event.get("status") == "ok" and event["account_id"] not in ok_at:
            ok_at[event["account_id"]] = time.perf_counter() - started
            if ids and ids <= ok_at.keys():
                all_ok.set()

    watcher = await nats.connect(url)
    await watcher.subscribe(Events.ACCOUNT_STATUS_CHANGED.pattern, cb=on_status)
    started = time.perf_counter()
    created = await asyncio.gather(*(client.call(Api.ACCOUNTS_CREATE, {
        "tenant_id": t, "collector_id": "sandbox-classic", "login": f"officine-{t}", "password": "demo"})
        for t in tenants))
    ids.update(c["id"] for c in created)
    created_s = time.perf_counter() - started
    if not ids <= ok_at.keys():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_ok.wait(), 900)
    mine = [ok_at[i] for i in ids if i in ok_at]
    total = max(mine) if mine else float("nan")
    listed = [a for t in tenants for a in (await client.call(Api.ACCOUNTS_LIST, {"tenant_id": t}))["accounts"]]
    print(json.dumps({"accounts": accounts, "ok": len(mine), "listed_ok": sum(a["status"] == "ok" for a in listed),
                      "created_s": round(created_s, 2), "all_ok_s": round(total, 2),
                      "collections_per_s": round(len(mine) / total, 2),
                      "invoices": sum(a.get("invoice_count") or 0 for a in listed)}))
    await watcher.close()
    await client.close()


def run_e2e(accounts: int) -> None:
    """``collectors up --demo`` in its own process group on a fresh data dir, then ``e2e``."""
    work = Path(tempfile.mkdtemp(prefix="standin-e2e-"))
    port = _free_port()
    repo = Path(__file__).resolve().parent.parent  # the platform runs this tree's code (a worktree's, too)
    env = {**os.environ, "PYTHONPATH": str(repo)}
    with open(work / "up.log", "wb") as log:
        up = subprocess.Popen([sys.executable, "-m", "collectors", "up", "--demo", "--data-dir", str(work / "data"),
                               "--nats-port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True, env=env, cwd=repo)
        try:
            asyncio.run(e2e(accounts, f"nats://127.0.0.1:{port}"))
        finally:
            os.killpg(up.pid, signal.SIGINT)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--per-account", type=int, default=10)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--scan-up-to", type=int, default=10000)
    parser.add_argument("--e2e", action="store_true")
    parser.add_argument("--accounts", type=int, default=100)
    args = parser.parse_args()
    if args.e2e:
        run_e2e(args.accounts)
        return
    from shared.logging import configure_logging

    configure_logging("ERROR", json=True)
    asyncio.run(ops([int(s) for s in args.sizes.split(",")], args.per_account, args.calls, args.scan_up_to))


if __name__ == "__main__":
    main()
