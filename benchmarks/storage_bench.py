"""The durable embedded store: start-up time with many documents on disk, and write/read throughput
next to the in-memory stand-in, measured in the same run.

    python benchmarks/storage_bench.py [--accounts 100000] [--ledger 1000000] [--ops 3000]

Start-up: accounts and ledger documents shaped as the repositories write them, in the accounts and
scraper databases' snapshot files; opening both databases is timed with an empty journal (a clean
stop, or a crash right after a fold) and with 10,000 writes in the journal (a crash: the journal is
replayed, then folded into a new snapshot). Throughput: single awaited writes one after another (each
waits for its own fsync), 100 concurrent writers (group commit), reads by _id.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.durable_store import DurableServerStore
from shared.memory_mongo import InMemoryMongoClient

NOW = dt.datetime(2026, 1, 5, 8, 30)


def _account(i: int) -> dict[str, Any]:
    tenant = f"pharma-{i // 2:06d}"
    return {"_id": f"acc{i:08d}", "tenant_id": tenant, "collector_id": "sandbox-classic", "slot": 1 + i % 2,
            "login": f"officine-{i}", "login_key": f"officine-{i}",
            "secret": {"kid": "k20260101-1a2b", "nonce": os.urandom(12), "ct": os.urandom(32)},
            "credential_version": 1, "status": "ok", "error_code": None, "invoice_count": 10,
            "created_at": NOW, "updated_at": NOW, "active": True, "outbox": []}


def _invoice(i: int, accounts: int) -> dict[str, Any]:
    account = i % accounts
    number = f"F{i:09d}"
    return {"_id": f"inv-{account}-{number}", "tenant_id": f"pharma-{account // 2:06d}",
            "account_id": f"acc{account:08d}", "collector_id": "sandbox-classic", "number": number,
            "issue_date": "2025-12-01", "amount": "123.45", "currency": "EUR", "kind": "invoice",
            "sha256": f"{i:064x}", "size": 20480, "object_key": f"pharma/acc{account}/{i:064x}",
            "collected_at": NOW, "event": "{" + "x" * 300 + "}", "published": True}


def build(directory: Path, accounts: int, ledger: int) -> float:
    """Snapshot files holding the documents (written as a fold writes them); returns seconds."""
    started = time.perf_counter()
    store = DurableServerStore(directory)
    for db_name, coll_name, docs in (
            ("collectors_accounts", "accounts", (_account(i) for i in range(accounts))),
            ("collectors_scraper", "invoices", (_invoice(i, accounts) for i in range(ledger)))):
        db = store[db_name]
        coll = db[coll_name]
        coll.create_index("tenant_1", {"key": [("tenant_id", 1)]})
        documents = coll._documents
        for doc in docs:
            OrderedDict.__setitem__(documents, doc["_id"], doc)
        db.write_snapshot()
    store.close()
    return time.perf_counter() - started


def open_all(directory: Path) -> tuple[float, DurableServerStore]:
    started = time.perf_counter()
    store = DurableServerStore(directory)
    store["collectors_accounts"]
    store["collectors_scraper"]
    return time.perf_counter() - started, store


async def journal_writes(directory: Path, count: int) -> None:
    client = InMemoryMongoClient(DurableServerStore(directory))
    coll = client["collectors_accounts"]["accounts"]
    await asyncio.gather(*(coll.update_one({"_id": f"acc{i:08d}"}, {"$set": {"status": "retrying", "n": i}})
                           for i in range(count)))
    client.release()


async def throughput(client: InMemoryMongoClient, ops: int) -> dict[str, float]:
    coll = client["bench"]["docs"]
    rates: dict[str, float] = {}
    started = time.perf_counter()
    for i in range(ops):
        await coll.insert_one({"_id": i, "tenant_id": "t", "status": "pending", "at": NOW, "pad": "p" * 200})
    rates["insert_one, one after another"] = ops / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(ops):
        await coll.update_one({"_id": i}, {"$set": {"status": "ok", "n": i}})
    rates["update_one by _id, one after another"] = ops / (time.perf_counter() - started)

    async def writer(w: int) -> None:
        for i in range(w, ops * 3, 100):
            await coll.update_one({"_id": i % ops}, {"$set": {"status": "retrying", "n": i}})

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(100)))
    rates["update_one by _id, 100 concurrent writers"] = ops * 3 / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(ops * 3):
        await coll.find_one({"_id": i % ops})
    rates["find_one by _id"] = ops * 3 / (time.perf_counter() - started)
    return rates


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--ledger", type=int, default=1_000_000)
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: a temp dir)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="storage-bench-"))
    directory = root / "db"
    try:
        print(f"building {args.accounts:,} accounts and {args.ledger:,} ledger entries in {directory} ...")
        built = build(directory, args.accounts, args.ledger)
        size = sum(p.stat().st_size for p in directory.glob("*.snapshot"))
        print(f"  built in {built:.1f} s, snapshots {size / 2**20:.0f} MiB")
        seconds, store = open_all(directory)
        count = sum(len(store[name][coll]._documents) for name, coll in
                    (("collectors_accounts", "accounts"), ("collectors_scraper", "invoices")))
        store.close()
        print(f"start-up, empty journal: {seconds:.2f} s to load {count:,} documents")
        await journal_writes(directory, 10_000)
        journal = (directory / "collectors_accounts.journal").stat().st_size
        seconds, store = open_all(directory)
        store.close()
        print(f"start-up after a crash, 10,000 writes ({journal / 2**20:.1f} MiB) in the journal: {seconds:.2f} s "
              "(replay, then a new snapshot of the accounts database)")

        print(f"\nthroughput ({args.ops:,} documents; ops/s), durable vs in-memory, same run:")
        memory = await throughput(InMemoryMongoClient(), args.ops)
        bench_dir = root / "bench"
        durable_client = InMemoryMongoClient(DurableServerStore(bench_dir))
        durable = await throughput(durable_client, args.ops)
        durable_client.release()
        print(f"  {'operation':45} {'durable':>10} {'in-memory':>10}")
        for name in memory:
            print(f"  {name:45} {durable[name]:>10,.0f} {memory[name]:>10,.0f}")
        sync = 1e6 / durable["update_one by _id, one after another"] - 1e6 / memory[
            "update_one by _id, one after another"]
        print(f"\ncost of durability for a lone write: ~{sync:.0f} us (write + fdatasync in the journal thread)")
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
