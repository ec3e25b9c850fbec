"""``kill -9`` of a process writing to the durable embedded store, at random moments right after
acknowledged writes: after a restart, every acknowledged write is there."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from pathlib import Path

from tests.storage import open_durable_store

ROUNDS = 6


def _run_and_kill(directory: Path, seed: int, acks_before_kill: int) -> list[list[str]]:
    """The lines the writer printed (its acknowledged writes), killed after ``acks_before_kill``."""
    with subprocess.Popen([sys.executable, "-m", "tests.integration.durable_writer", str(directory), str(seed)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines: list[list[str]] = []
        try:
            while len(lines) < acks_before_kill:
                line = proc.stdout.readline()
                assert line, proc.stderr.read() or "the writer exited"
                lines.append(line.split())
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        # what it printed before it died was acknowledged too (a line cut short was not printed)
        lines += [line.split() for line in proc.stdout.read().split("\n")[:-1]]
    return lines


async def test_every_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    rng = random.Random()
    seed = rng.randrange(10**6)
    present: set[str] = set()
    deleted: set[str] = set()
    unsure: set[str] = set()
    counted = 0
    for round_ in range(ROUNDS):
        acks = rng.randrange(5, 400)
        lines = await asyncio.to_thread(_run_and_kill, tmp_path, seed + round_, acks)
        for kind, value in lines:
            if kind == "ins":
                present.add(value)
            elif kind == "del?":
                unsure.add(value)
            elif kind == "del":
                deleted.add(value)
            elif kind == "ctr":
                counted = max(counted, int(value))
        async with open_durable_store(tmp_path) as client:
            ids = {doc["_id"] async for doc in client["crash"]["docs"].find({}, {"_id": 1})}
            counter = await client["crash"]["counter"].find_one({"_id": "c"})
            indexes = await client["crash"]["docs"].index_information()
        context = f"seed {seed}, round {round_}, killed after {acks} acks"
        assert present - unsure <= ids, (context, sorted(present - unsure - ids)[:5])
        assert not (deleted & ids), (context, sorted(deleted & ids)[:5])
        assert counted == 0 or (counter is not None and counter["n"] >= counted), (context, counter, counted)
        assert indexes["k_1"]["unique"], context
