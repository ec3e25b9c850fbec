"""Scheduler tick over 1,000,000 schedules (issue "Scheduler", design §9).

Prints the time of ticks that dispatch N due runs (N = 0, 30, 300, 1000) among 1,000,000 schedules,
each job really published to JetStream through the outbox, and the evenness of a simulated day
(max over mean jobs per minute). Run: ``python benchmarks/scheduler_tick.py [--schedules N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from services.scheduler import policy
from services.scheduler.repository import ScheduleRepository
from services.scheduler.service import SchedulerService, Tuning
from shared.broker import ensure_streams, jetstream, make_broker
from shared.logging import configure_logging
from shared.memory_mongo import InMemoryMongoClient
from shared.natsserver import NatsServer, temp_store, wait_jetstream_ready
from shared.outbox import OutboxRelay

NOW = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
COLLECTORS = 20


async def main(total: int, sync: str) -> None:
    configure_logging("WARNING", json=True)  # one log line per job would dominate the timing
    # Production's write path by default: deploy/'s Kubernetes NATS keeps nats-server's default sync
    # (a host's loss is covered by 3 replicas); `--sync always` is `collectors up`'s single server.
    server = NatsServer(store_dir=temp_store(), sync_always=sync == "always")
    print(f"nats-server sync: {sync}")
    server.start()
    await wait_jetstream_ready(server.url)
    broker = make_broker(server.url, "bench")
    await broker.connect()
    await ensure_streams(jetstream(broker))
    repo = ScheduleRepository(InMemoryMongoClient()["bench_scheduler"])
    await repo.create_indexes()
    clock = [NOW]
    service = SchedulerService(repo, OutboxRelay(repo.schedules, broker), OutboxRelay(repo.incidents, broker),
                               clock=lambda: clock[0], tuning=Tuning(max_dispatch_per_tick=100_000))

    # 1,000,000 accounts over 20 collectors of uneven sizes, each at its own slot of the day.
    t0 = time.perf_counter()
    sizes = [total * (i + 1) // sum(range(1, COLLECTORS + 1)) for i in range(COLLECTORS)]
    sizes[-1] += total - sum(sizes)
    batch: list[dict[str, object]] = []
    n = 0
    for c, size in enumerate(sizes):
        cid = f"collector-{c}"
        await repo.save_collector(cid, 24, max_sessions=1000, version="1", run_window=None)
        for seq in range(1, size + 1):
            fraction = policy.slot_fraction(seq, cid)
            batch.append({"_id": f"a{n}", "tenant_id": f"t{n % 5000}", "collector_id": cid,
                          "credential_version": 1, "seq": seq, "fraction": fraction,
                          "next_run_at": policy.next_slot(NOW + timedelta(minutes=10), fraction, policy.Cadence()),
                          "paused": None, "failures": 0, "active": True, "deleted": False, "outbox": []})
            n += 1
            if len(batch) == 50_000:
                await repo.schedules.insert_many(batch)
                batch = []
    if batch:
        await repo.schedules.insert_many(batch)
    print(f"schedules stored: {n:,} in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    loaded = await service.load()
    print(f"due index loaded: {loaded:,} schedules in {time.perf_counter() - t0:.2f} s")

    # Evenness of a simulated day: the minute each run falls in, as the ticks will dispatch them.
    per_minute = Counter(int((when - NOW).total_seconds() // 60) % 1440 for when in service.index._when.values())
    mean = n / 1440
    print(f"simulated day: {len(per_minute)} minutes with runs, mean {mean:.1f} jobs/min, "
          f"max {max(per_minute.values())}, min {min(per_minute.values())}, "
          f"max/mean = {max(per_minute.values()) / mean:.3f} (target <= 1.2)")

    # Ticks that dispatch N due runs: make N accounts due now, tick, measure.
    js = jetstream(broker)
    results: dict[int, list[float]] = {}
    offset = 0
    for due in (0, 30, 300, 1000):
        samples = []
        for _ in range(3):
            ids = [f"a{(offset + i) * 997 % n}" for i in range(due)]
            offset += due
            for account_id in ids:
                doc = await repo.get(account_id)
                assert doc is not None
                await repo.schedules.update_one({"_id": account_id}, {"$set": {"next_run_at": NOW}})
                service.index.set(account_id, NOW)
            before = (await js.stream_info("COLLECTORS_JOBS")).state.messages
            t0 = time.perf_counter()
            dispatched = await service.tick()
            samples.append(time.perf_counter() - t0)
            after = (await js.stream_info("COLLECTORS_JOBS")).state.messages
            assert dispatched == due == after - before, (dispatched, due, after - before)
        results[due] = samples
        print(f"tick dispatching {due:>5} due of {n:,}: median {statistics.median(samples) * 1000:.1f} ms "
              f"(runs: {', '.join(f'{s * 1000:.1f}' for s in samples)} ms)"
              + ("  (target < 50 ms)" if due == 300 else ""))
    per_job = statistics.median(results[1000]) / 1000 * 1000
    print(f"cost per dispatched job: {per_job:.3f} ms; an empty tick: {statistics.median(results[0]) * 1e6:.0f} us")
    await broker.stop()
    server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1_000_000)
    parser.add_argument("--sync", choices=("default", "always"), default="default",
                        help="nats-server's sync policy: deploy/'s cluster (default) or collectors up's (always)")
    args = parser.parse_args()
    asyncio.run(main(args.schedules, args.sync))
