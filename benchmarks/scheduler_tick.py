"""Scheduler tick over 1,000,000 schedules (issue "Scheduler", design §9).

Prints the time of ticks that dispatch N due runs (N = 0, 30, 300, 1000) among 1,000,000 schedules,
each job really published to JetStream through the outbox, and the evenness of a simulated day
(max over mean jobs per minute). Run: ``python benchmarks/scheduler_tick.py [--schedules N] [--samples 10]``.

The scheduler is tuned as production builds it (``services/scheduler/app.py`` from ``SchedulerSettings``'
defaults): at most ``max_dispatch_per_tick`` (100) jobs per tick, so N due runs above that take several
ticks, one a second; each sample is the time to dispatch all N (the sum of those ticks' times, the
seconds between them left out) and the slowest tick among them. Every sample is printed.
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
from shared.settings import SchedulerSettings

NOW = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
COLLECTORS = 20


def production_tuning(settings: SchedulerSettings) -> Tuning:
    """The same Tuning services/scheduler/app.py builds from the settings."""
    return Tuning(
        max_dispatch_per_tick=settings.max_dispatch_per_tick, lease_ttl=timedelta(seconds=settings.lease_ttl_s),
        probe_interval=timedelta(seconds=settings.probe_interval_s),
        incident_window=timedelta(seconds=settings.incident_window_s),
        incident_min_accounts=settings.incident_min_accounts, incident_share=settings.incident_share,
        refresh_horizon=timedelta(seconds=2 * settings.refresh_s),
        start_timeout=timedelta(seconds=settings.start_timeout_s),
        run_timeout=timedelta(seconds=settings.job_timeout_s + settings.run_margin_s))


def _spread(values: list[float]) -> str:
    return (f"min {min(values) * 1000:.1f} / median {statistics.median(values) * 1000:.1f} / "
            f"max {max(values) * 1000:.1f} ms")


async def main(total: int, sync: str, samples_per_size: int) -> None:
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
    settings = SchedulerSettings()
    tuning = production_tuning(settings)
    changed = {k: v for k, v in settings.model_dump().items()
               if k in type(settings).model_fields and v != type(settings).model_fields[k].default}
    print(f"scheduler tuning: production defaults (max_dispatch_per_tick {tuning.max_dispatch_per_tick}, "
          f"tick every {settings.tick_s:g} s){'; from the environment: ' + str(changed) if changed else ''}")
    service = SchedulerService(repo, OutboxRelay(repo.schedules, broker), OutboxRelay(repo.incidents, broker),
                               clock=lambda: clock[0], tuning=tuning)

    # 1,000,000 accounts over 20 collectors of uneven sizes, each at its own slot of the day.
    t0 = time.perf_counter()
    sizes = [total * (i + 1) // sum(range(1, COLLECTORS + 1)) for i in range(COLLECTORS)]
    sizes[-1] += total - sum(sizes)
    batch: list[dict[str, object]] = []
    n = 0
    for c, size in enumerate(sizes):
        cid = f"collector-{c}"
        # Session slots: held by every run dispatched here (none ends), so room for all the samples.
        await repo.save_collector(cid, 24, max_sessions=2000, version="1", run_window=None)
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

    # Ticks that dispatch N due runs: make N accounts due now, tick until all went out, measure.
    js = jetstream(broker)
    results: dict[int, list[float]] = {}
    offset = 0
    for due in (0, 30, 300, 1000):
        samples, slowest, ticks = [], [], 0
        for _ in range(samples_per_size):
            ids = [f"a{(offset + i) * 997 % n}" for i in range(due)]
            offset += due
            for account_id in ids:
                await repo.schedules.update_one({"_id": account_id}, {"$set": {"next_run_at": NOW}})
                service.index.set(account_id, NOW)
            before = (await js.stream_info("COLLECTORS_JOBS")).state.messages
            dispatched, spent, worst, ticks = 0, 0.0, 0.0, 0
            while True:
                t0 = time.perf_counter()
                out = await service.tick()
                took = time.perf_counter() - t0
                spent, worst, ticks, dispatched = spent + took, max(worst, took), ticks + 1, dispatched + out
                if dispatched >= due or out == 0:
                    break
            samples.append(spent)
            slowest.append(worst)
            after = (await js.stream_info("COLLECTORS_JOBS")).state.messages
            assert dispatched == due == after - before, (dispatched, due, after - before)
        results[due] = samples
        target = "  (target: a tick < 50 ms)" if due == 300 else ""
        print(f"{due:>5} due of {n:,} ({ticks} tick{'s' if ticks > 1 else ''} each, all of them): {_spread(samples)}"
              + ("" if ticks > 1 else target))
        print(f"      samples: {', '.join(f'{x * 1000:.1f}' for x in samples)} ms")
        if ticks > 1:
            print(f"      slowest tick: {_spread(slowest)}{target}")
            print(f"      samples: {', '.join(f'{x * 1000:.1f}' for x in slowest)} ms")
    per_job = statistics.median(results[1000]) / 1000 * 1000
    print(f"cost per dispatched job: {per_job:.3f} ms; an empty tick: {statistics.median(results[0]) * 1e6:.0f} us")
    await broker.stop()
    server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1_000_000)
    parser.add_argument("--sync", choices=("default", "always"), default="default",
                        help="nats-server's sync policy: deploy/'s cluster (default) or collectors up's (always)")
    parser.add_argument("--samples", type=int, default=10, help="measurements per number of due runs")
    args = parser.parse_args()
    asyncio.run(main(args.schedules, args.sync, args.samples))
