"""What nats-server's `sync_interval: always` costs publishers (README, "Durability of NATS").

Publishes the same collect jobs to the ``COLLECTORS_JOBS`` stream of an embedded nats-server with the
policy and without it (nats-server's default: fsync every 2 minutes), three ways: one publish at a
time (an API handler's event), 50 in flight (several handlers at once), and batches of 100 through
``PipelinedPublisher`` (a scheduler tick's jobs, an outbox sweep). Run:
``python benchmarks/nats_sync.py [--messages N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from shared.broker import PipelinedPublisher, ensure_streams, jetstream, make_broker
from shared.logging import configure_logging
from shared.natsserver import NatsServer, temp_store, wait_jetstream_ready

PAYLOAD = b'{"job_id": "a1:1780300800000", "tenant_id": "t1", "account_id": "a1"}' + b" " * 200


async def measure(sync_always: bool, messages: int) -> dict[str, float]:
    server = NatsServer(store_dir=temp_store(), sync_always=sync_always)
    server.start()
    broker = make_broker(server.url, "bench")
    try:
        await wait_jetstream_ready(server.url)
        await broker.connect()
        js = jetstream(broker)
        await ensure_streams(js, ["jobs"])
        ids = iter(range(10**9))

        def headers() -> dict[str, str]:
            return {"Nats-Msg-Id": f"m{next(ids)}"}

        async def one_at_a_time() -> None:
            for _ in range(messages):
                await js.publish("collectors.jobs.collect.bench", PAYLOAD, headers=headers())

        async def fifty_in_flight() -> None:
            for _ in range(messages // 50):
                await asyncio.gather(*(js.publish("collectors.jobs.collect.bench", PAYLOAD, headers=headers())
                                       for _ in range(50)))

        publisher = PipelinedPublisher(broker)

        async def batches_of_100() -> None:
            for _ in range(messages // 100):
                await publisher.publish([("collectors.jobs.collect.bench", PAYLOAD, headers())
                                         for _ in range(100)], timeout=30)

        ways: dict[str, Callable[[], Awaitable[None]]] = {
            "one at a time": one_at_a_time, "50 in flight": fifty_in_flight, "batches of 100": batches_of_100}
        rates: dict[str, float] = {}
        for name, way in ways.items():
            t0 = time.perf_counter()
            await way()
            rates[name] = messages / (time.perf_counter() - t0)
        return rates
    finally:
        await broker.stop()
        server.stop()


async def main(messages: int, rounds: int) -> None:
    configure_logging("WARNING", json=True)
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(rounds):  # interleaved, so that a busy moment of the machine hits both alike
        for sync_always in (False, True):
            runs[sync_always].append(await measure(sync_always, messages))
    print(f"{messages} publishes of {len(PAYLOAD)} bytes to COLLECTORS_JOBS, median of {rounds} rounds (msg/s):")
    for name in runs[True][0]:
        default = statistics.median(r[name] for r in runs[False])
        always = statistics.median(r[name] for r in runs[True])
        print(f"  {name:15} default {default:9,.0f}   sync always {always:9,.0f}   ({always / default:.2f}x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.rounds))
