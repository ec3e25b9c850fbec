"""Writes to the durable embedded store without end, printing each write once acknowledged (its await
returned): ``python -m tests.integration.durable_writer DIR SEED``. Killed by
``test_durable_store_crash``, which then checks that every acknowledged write is on disk."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from pymongo import ReturnDocument

from shared.durable_store import DurableServerStore
from shared.memory_mongo import InMemoryMongoClient


async def main(directory: Path, seed: int) -> None:
    client = InMemoryMongoClient(DurableServerStore(directory))
    docs, counter = client["crash"]["docs"], client["crash"]["counter"]
    await docs.create_index("k", unique=True)
    rng = random.Random(seed)
    inserted: list[str] = []

    async def insert(doc_id: str) -> None:
        await docs.insert_one({"_id": doc_id, "k": doc_id, "pad": "p" * rng.randrange(2000)})
        print("ins", doc_id, flush=True)
        inserted.append(doc_id)

    for i in range(10**9):
        roll = rng.random()
        if roll < 0.4:
            await insert(f"{seed}-{i}")
        elif roll < 0.6:  # concurrent writes: they share fsyncs
            await asyncio.gather(*(insert(f"{seed}-{i}-{j}") for j in range(rng.randrange(2, 12))))
        elif roll < 0.85:
            after = await counter.find_one_and_update({"_id": "c"}, {"$inc": {"n": 1}}, upsert=True,
                                                      return_document=ReturnDocument.AFTER)
            print("ctr", after["n"], flush=True)
        elif inserted:
            victim = inserted.pop(rng.randrange(len(inserted)))
            print("del?", victim, flush=True)
            await docs.delete_one({"_id": victim})
            print("del", victim, flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
