"""The durable embedded store (``shared.durable_store``, ``shared.journal``): what was acknowledged is
on disk, and comes back whole after a reopen, whatever path wrote it."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import Binary, Decimal128, ObjectId
from pymongo import DeleteMany, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.errors import DuplicateKeyError

from shared import durable_store, journal
from shared.journal import StoreLocked, frame, lock_file, read_frames
from shared.memory_mongo import InMemoryMongoClient
from tests.storage import open_durable_store


async def _state(client: InMemoryMongoClient, db: str = "db") -> dict[str, Any]:
    """Every collection's documents and index definitions."""
    out: dict[str, Any] = {}
    for name in sorted(await client[db].list_collection_names()):
        coll = client[db][name]
        out[name] = (await coll.find({}).to_list(), await coll.index_information())
    return out


def test_a_torn_or_corrupt_tail_is_ignored_and_what_precedes_it_kept() -> None:
    frames = [frame([bson.encode({"n": i})]) for i in range(3)]
    whole = b"".join(frames)
    assert [f[0]["n"] for f in read_frames(whole)[0]] == [0, 1, 2]
    for cut in range(1, len(frames[2])):  # the last frame torn anywhere, header included
        decoded, end = read_frames(whole[:-cut])
        assert [f[0]["n"] for f in decoded] == [0, 1] and end == len(frames[0]) + len(frames[1])
    corrupt = bytearray(whole)
    corrupt[-2] ^= 0xFF  # a flipped byte in the last frame's payload
    assert [f[0]["n"] for f in read_frames(bytes(corrupt))[0]] == [0, 1]


async def test_writes_come_back_after_reopen_whatever_path_made_them(tmp_path: Path) -> None:
    async with open_durable_store(tmp_path) as client:
        coll = client["db"]["things"]
        await coll.create_index([("k", 1)], unique=True)
        await coll.create_index([("tenant", 1), ("when", -1)])
        await coll.insert_one({"_id": "a", "k": 1, "n": 0})
        await coll.insert_many([{"_id": f"m{i}", "k": 10 + i, "tenant": "t"} for i in range(5)])
        await coll.update_one({"_id": "a"}, {"$inc": {"n": 1}, "$push": {"l": {"x": 1}}})  # fast path
        await coll.update_one({"k": 1}, {"$set": {"sub.deep": 2}})  # mongomock-ng's full path
        await coll.update_many({"tenant": "t"}, {"$set": {"seen": True}})
        await coll.update_one({"_id": "u"}, {"$setOnInsert": {"k": 99}}, upsert=True)
        await coll.replace_one({"_id": "m4"}, {"k": 14, "replaced": True})
        await coll.find_one_and_update({"_id": "m3"}, {"$set": {"f1u": 1}})
        await coll.find_one_and_delete({"_id": "m2"})
        await coll.delete_many({"k": {"$gte": 11, "$lte": 11}})
        await coll.bulk_write([UpdateOne({"_id": "m0"}, {"$set": {"bulk": 1}}),  # fast bulk
                               UpdateOne({"_id": "m3"}, {"$set": {"bulk": 1}})])
        await coll.bulk_write([InsertOne({"_id": "b", "k": 50}), ReplaceOne({"_id": "b"}, {"k": 51}),
                               UpdateMany({"seen": True}, {"$inc": {"v": 1}}), DeleteMany({"_id": "m0"})])
        other = client["db"]["other"]
        await other.insert_one({"_id": 1})
        await client["db"]["gone"].insert_one({"_id": 1})
        await client["db"].drop_collection("gone")
        await client["db"]["recreated"].insert_one({"_id": 1, "old": True})
        await client["db"]["recreated"].drop()
        await client["db"]["recreated"].insert_one({"_id": 2})
        await client["dropped_db"]["c"].insert_one({"_id": 1})
        await client.drop_database("dropped_db")
        before = await _state(client)
    async with open_durable_store(tmp_path) as again:
        assert await _state(again) == before
        assert "gone" not in before and await _state(again, "dropped_db") == {}


async def test_types_survive_as_a_tz_aware_client_reads_them(tmp_path: Path) -> None:
    when = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    doc = {"_id": ObjectId(), "when": when, "dec": Decimal128("12.34"), "raw": b"\x00\x01",
           "bin": Binary(b"x", 5), "big": 2**40, "f": 1.5, "nested": {"when": when, "l": [when, None, "s"]},
           "ordered": {"b": 1, "a": 2}}
    async with open_durable_store(tmp_path) as client:
        await client["db"]["c"].insert_one(doc)
        await client["db"]["c"].insert_one({"_id": {"tenant": "t", "n": 1}, "compound": True})
        written = await client["db"]["c"].find_one({"_id": doc["_id"]})
    async with open_durable_store(tmp_path) as again:
        read = await again["db"]["c"].find_one({"_id": doc["_id"]})
        assert read == written
        assert read is not None and read["when"] == when.replace(microsecond=123000)
        assert read["when"].tzinfo is not None and list(read["ordered"]) == ["b", "a"]
        assert await again["db"]["c"].find_one({"_id": {"tenant": "t", "n": 1}}) is not None


async def test_indexes_and_unique_constraints_hold_after_reload(tmp_path: Path) -> None:
    async with open_durable_store(tmp_path) as client:
        coll = client["db"]["ledger"]
        await coll.create_index([("tenant", 1), ("hash", 1)], unique=True, name="one_per_hash")
        await coll.create_index([("login", 1)], unique=True,
                                partialFilterExpression={"deleted": False})
        await coll.create_index("expires", expireAfterSeconds=3600)
        await coll.insert_one({"tenant": "t", "hash": "h1", "login": "x", "deleted": False})
        info = await coll.index_information()
    async with open_durable_store(tmp_path) as again:
        coll = again["db"]["ledger"]
        assert await coll.index_information() == info
        # the repositories declare their indexes again at start: same definition, no error
        await coll.create_index([("tenant", 1), ("hash", 1)], unique=True, name="one_per_hash")
        await coll.create_index([("login", 1)], unique=True, partialFilterExpression={"deleted": False})
        with pytest.raises(DuplicateKeyError):
            await coll.insert_one({"tenant": "t", "hash": "h1"})
        with pytest.raises(DuplicateKeyError):
            await coll.insert_one({"tenant": "u", "hash": "h2", "login": "x", "deleted": False})
        await coll.insert_one({"tenant": "u", "hash": "h3", "login": "x", "deleted": True})  # partial
        await coll.drop_index("one_per_hash")
        await coll.insert_one({"tenant": "t", "hash": "h1"})
    async with open_durable_store(tmp_path) as third:
        assert "one_per_hash" not in await third["db"]["ledger"].index_information()


async def test_a_write_returns_only_once_its_record_is_on_disk(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[bytes] = []
    written: list[bytes] = []
    write, fdatasync = os.write, os.fdatasync

    def recording_write(fd: int, data: Any) -> int:
        written.append(bytes(data))
        return write(fd, data)

    def recording_fdatasync(fd: int) -> None:
        fdatasync(fd)
        synced.append(b"".join(written))
        written.clear()

    monkeypatch.setattr(journal.os, "write", recording_write)
    monkeypatch.setattr(journal.os, "fdatasync", recording_fdatasync)
    async with open_durable_store(tmp_path) as client:
        coll = client["db"]["c"]
        for i in range(5):
            await coll.insert_one({"_id": i, "payload": f"value-{i}"})
            assert f"value-{i}".encode() in b"".join(synced)  # written and fsynced
        # group commit: writes completed in the same turn share flushes
        synced.clear()
        await asyncio.gather(*(coll.update_one({"_id": i % 5}, {"$set": {"g": i}}) for i in range(50)))
        assert 1 <= len(synced) < 50
        # a read waits for what was written before it, so it never returns what could be lost
        task = asyncio.ensure_future(coll.insert_one({"_id": "late", "payload": "late-value"}))
        await asyncio.sleep(0)
        assert await coll.find_one({"_id": "late"}) is not None
        assert b"late-value" in b"".join(synced)
        await task


async def test_snapshot_then_journal_and_a_crash_between_fold_steps(tmp_path: Path) -> None:
    async with open_durable_store(tmp_path) as client:
        await client["db"]["c"].insert_many([{"_id": i} for i in range(10)])
    async with open_durable_store(tmp_path) as client:  # folded into a snapshot at open
        client.get_database("db")
        assert (tmp_path / "db.snapshot").stat().st_size > 0 and (tmp_path / "db.journal").stat().st_size == 0
        await client["db"]["c"].delete_one({"_id": 3})
        await client["db"]["c"].update_one({"_id": 4}, {"$set": {"v": 1}})
        await client["db"]["c"].insert_one({"_id": 3, "back": True})
        expected = await _state(client)
        journal = (tmp_path / "db.journal").read_bytes()
    assert journal
    async with open_durable_store(tmp_path) as again:  # snapshot + journal replayed in order
        assert await _state(again) == expected
    # a crash after the new snapshot was renamed in, before the journal was emptied: replayed twice
    (tmp_path / "db.journal").write_bytes(journal)
    async with open_durable_store(tmp_path) as again:
        assert await _state(again) == expected


async def test_a_long_journal_is_folded_into_a_snapshot_while_running(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(durable_store, "COMPACT_MIN_BYTES", 4096)
    async with open_durable_store(tmp_path) as client:
        coll = client["db"]["c"]
        for i in range(200):
            await coll.update_one({"_id": i % 7}, {"$set": {"pad": "x" * 100, "i": i}}, upsert=True)
            assert (tmp_path / "db.journal").stat().st_size <= 8192
        assert (tmp_path / "db.snapshot").exists()
        expected = await _state(client)
    async with open_durable_store(tmp_path) as again:
        assert await _state(again) == expected


async def test_a_torn_journal_tail_loses_only_the_unfinished_write(tmp_path: Path) -> None:
    async with open_durable_store(tmp_path) as client:
        await client["db"]["c"].insert_one({"_id": 1})
        await client["db"]["c"].insert_one({"_id": 2, "pad": "y" * 200})
    data = (tmp_path / "db.journal").read_bytes()
    (tmp_path / "db.journal").write_bytes(data[:-50])
    async with open_durable_store(tmp_path) as again:
        assert await again["db"]["c"].find({}).to_list() == [{"_id": 1}]
        await again["db"]["c"].insert_one({"_id": 3})  # the journal goes on after the torn tail
    async with open_durable_store(tmp_path) as third:
        assert await third["db"]["c"].find({}).to_list() == [{"_id": 1}, {"_id": 3}]


async def test_one_process_at_a_time(tmp_path: Path) -> None:
    async with open_durable_store(tmp_path) as client:
        await client["db"]["c"].insert_one({"_id": 1})
        with pytest.raises(StoreLocked, match="in use by another process"):
            lock_file(tmp_path / "db.lock", "database db")  # another open file: as another process
    async with open_durable_store(tmp_path) as again:  # released
        assert await again["db"]["c"].count_documents({}) == 1


def test_database_names_must_be_file_names(tmp_path: Path) -> None:
    client = InMemoryMongoClient(durable_store.DurableServerStore(tmp_path))
    with pytest.raises(ValueError, match="cannot name a file"):
        client["../escape"]
    client.release()
    shutil.rmtree(tmp_path)
