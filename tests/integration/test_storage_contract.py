"""Storage contract: the MongoDB behaviour the repositories rely on.

Runs against whatever ``mongo_client`` gives: the in-memory stand-in here, a real MongoDB when
``MONGODB_URL`` is set or a Docker engine answers; and, in every case, against the durable embedded
store (``shared.durable_store``). All must pass the same assertions.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pymongo import (
    ASCENDING,
    DESCENDING,
    DeleteOne,
    IndexModel,
    InsertOne,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
)
from pymongo.errors import BulkWriteError, DuplicateKeyError, InvalidOperation, OperationFailure
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from shared.mongo import MongoClientLike, is_in_memory
from tests.storage import open_durable_store, open_test_mongo


@pytest.fixture(params=["default", "durable"])
async def mongo_client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MongoClientLike]:
    """The test run's database (see ``tests.storage``), then the durable embedded store."""
    if request.param == "durable":
        async with open_durable_store(tmp_path / "db") as durable:
            yield durable
        return
    async with open_test_mongo() as (client, _kind):
        yield client


@pytest.fixture
async def db_name(mongo_client: MongoClientLike) -> AsyncIterator[str]:
    name = f"contract_{uuid.uuid4().hex[:12]}"
    yield name
    await mongo_client.drop_database(name)


@pytest.fixture
def db(mongo_client: MongoClientLike, db_name: str) -> Any:
    return mongo_client[db_name]


@pytest.fixture
def coll(db: Any) -> Any:
    return db["items"]


async def _ids(cursor: Any) -> list[Any]:
    return [doc["_id"] async for doc in cursor]


# --- client, databases, collections -------------------------------------------------------------


async def test_ping(mongo_client: MongoClientLike) -> None:
    reply = await mongo_client.admin.command("ping")
    assert reply["ok"] == 1.0


async def test_database_and_collection_access_paths_reach_the_same_data(
    mongo_client: MongoClientLike, db_name: str
) -> None:
    await mongo_client[db_name]["things"].insert_one({"_id": 1})
    db = mongo_client.get_database(db_name)
    assert db.name == db_name
    assert (await db.get_collection("things").find_one({"_id": 1})) == {"_id": 1}
    assert (await db.things.find_one({"_id": 1})) == {"_id": 1}
    assert db["things"].name == "things"
    assert db["things"].full_name == f"{db_name}.things"


async def test_list_and_drop_collections_and_databases(mongo_client: MongoClientLike, db_name: str) -> None:
    db = mongo_client[db_name]
    await db["a"].insert_one({"x": 1})
    await db["b"].insert_one({"x": 1})
    assert db_name in await mongo_client.list_database_names()
    assert sorted(await db.list_collection_names()) == ["a", "b"]
    await db.drop_collection("a")
    assert await db.list_collection_names() == ["b"]
    assert await db["a"].find_one() is None
    await mongo_client.drop_database(db_name)
    assert db_name not in await mongo_client.list_database_names()
    assert await db["b"].find_one() is None


# --- inserts and reads --------------------------------------------------------------------------


async def test_insert_one_and_many_return_pymongo_results(coll: Any) -> None:
    doc: dict[str, Any] = {"name": "a"}
    result = await coll.insert_one(doc)
    assert isinstance(result, InsertOneResult)
    assert result.acknowledged
    assert doc["_id"] == result.inserted_id
    many = await coll.insert_many([{"_id": "x", "name": "b"}, {"_id": "y", "name": "c"}])
    assert isinstance(many, InsertManyResult)
    assert many.inserted_ids == ["x", "y"]
    assert await coll.find_one({"_id": "y"}) == {"_id": "y", "name": "c"}
    assert await coll.find_one({"_id": "nope"}) is None
    assert await coll.find_one({"name": "a"}, {"_id": 0}) == {"name": "a"}


async def test_find_cursor_sort_two_keys_skip_limit_and_iteration(coll: Any) -> None:
    await coll.insert_many(
        [
            {"_id": 1, "group": "b", "rank": 1},
            {"_id": 2, "group": "a", "rank": 2},
            {"_id": 3, "group": "a", "rank": 1},
            {"_id": 4, "group": "b", "rank": 3},
            {"_id": 5, "group": "a", "rank": 3},
        ]
    )
    ordered = [("group", ASCENDING), ("rank", DESCENDING)]
    assert await _ids(coll.find().sort(ordered)) == [5, 2, 3, 4, 1]
    assert await _ids(coll.find({}, sort=ordered)) == [5, 2, 3, 4, 1]
    assert await _ids(coll.find().sort(ordered).skip(1).limit(3)) == [2, 3, 4]
    assert await _ids(coll.find().sort("rank", DESCENDING).limit(1)) in ([4], [5])
    docs = await coll.find({"group": "a"}).sort("_id").to_list(length=None)
    assert [d["_id"] for d in docs] == [2, 3, 5]
    assert [d["_id"] for d in await coll.find().sort("_id").to_list(2)] == [1, 2]
    assert await coll.find({"group": "zzz"}).to_list() == []


async def test_cursor_rejects_options_after_iteration_and_empty_to_list(coll: Any) -> None:
    await coll.insert_many([{"_id": 1}, {"_id": 2}])
    cursor = coll.find().sort("_id")
    assert (await cursor.next())["_id"] == 1
    with pytest.raises(InvalidOperation):
        cursor.limit(1)
    with pytest.raises(ValueError):
        await coll.find().to_list(0)


async def test_filters_or_in_lt_ne_exists(coll: Any) -> None:
    await coll.insert_many(
        [
            {"_id": 1, "n": 1, "kind": "x"},
            {"_id": 2, "n": 5, "kind": "y"},
            {"_id": 3, "n": 10, "kind": "z"},
            {"_id": 4, "n": 20, "kind": "x", "flag": True},
        ]
    )
    assert await _ids(coll.find({"n": {"$lt": 10}}).sort("_id")) == [1, 2]
    assert await _ids(coll.find({"kind": {"$in": ["y", "z"]}}).sort("_id")) == [2, 3]
    query = {"$or": [{"n": {"$gte": 20}}, {"kind": "y"}]}
    assert await _ids(coll.find(query).sort("_id")) == [2, 4]
    assert await _ids(coll.find({"kind": {"$ne": "x"}, "n": {"$lte": 10}}).sort("_id")) == [2, 3]
    assert await _ids(coll.find({"flag": {"$exists": True}})) == [4]


async def test_filters_on_nested_fields_and_array_elements(coll: Any) -> None:
    await coll.insert_many(
        [
            {
                "_id": 1,
                "account": {"supplier": "cerp", "login": {"user": "u1"}},
                "tags": ["new", "urgent"],
                "lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 5}],
            },
            {
                "_id": 2,
                "account": {"supplier": "ocp", "login": {"user": "u2"}},
                "tags": ["old"],
                "lines": [{"sku": "A", "qty": 7}],
            },
        ]
    )
    assert await _ids(coll.find({"account.supplier": "ocp"})) == [2]
    assert await _ids(coll.find({"account.login.user": "u1"})) == [1]
    assert await _ids(coll.find({"tags": "urgent"})) == [1]
    assert await _ids(coll.find({"tags": {"$in": ["old", "nope"]}})) == [2]
    assert await _ids(coll.find({"lines.sku": "A"}).sort("_id")) == [1, 2]
    assert await _ids(coll.find({"lines": {"$elemMatch": {"sku": "A", "qty": {"$gt": 3}}}})) == [2]
    assert await coll.count_documents({"lines.qty": {"$gte": 5}}) == 2


# --- updates --------------------------------------------------------------------------------------


async def test_update_one_operators_and_counts(coll: Any) -> None:
    await coll.insert_one({"_id": 1, "n": 1, "tags": ["a", "b", "a"], "tmp": "x", "nested": {"v": 1}})
    result = await coll.update_one(
        {"_id": 1},
        {
            "$set": {"nested.v": 2, "s": "new"},
            "$inc": {"n": 2},
            "$unset": {"tmp": ""},
            "$push": {"log": "e1"},
        },
    )
    assert isinstance(result, UpdateResult)
    assert (result.matched_count, result.modified_count, result.upserted_id) == (1, 1, None)
    await coll.update_one({"_id": 1}, {"$pull": {"tags": "a"}, "$push": {"log": {"$each": ["e2", "e3"]}}})
    await coll.update_one({"_id": 1}, {"$addToSet": {"tags": "b"}})
    assert await coll.find_one({"_id": 1}) == {
        "_id": 1,
        "n": 3,
        "tags": ["b"],
        "nested": {"v": 2},
        "s": "new",
        "log": ["e1", "e2", "e3"],
    }
    unchanged = await coll.update_one({"_id": 1}, {"$set": {"s": "new"}})
    assert (unchanged.matched_count, unchanged.modified_count) == (1, 0)
    missing = await coll.update_one({"_id": 404}, {"$set": {"s": "x"}})
    assert (missing.matched_count, missing.modified_count, missing.upserted_id) == (0, 0, None)


async def test_pull_with_condition_from_array_of_subdocuments(coll: Any) -> None:
    await coll.insert_one({"_id": 1, "jobs": [{"id": "j1", "state": "done"}, {"id": "j2", "state": "run"}]})
    result = await coll.update_one({"_id": 1}, {"$pull": {"jobs": {"state": "done"}}})
    assert result.modified_count == 1
    assert (await coll.find_one({"_id": 1}))["jobs"] == [{"id": "j2", "state": "run"}]


async def test_update_with_array_filters(coll: Any) -> None:
    await coll.insert_one({"_id": 1, "jobs": [{"id": "j1", "state": "run"}, {"id": "j2", "state": "run"}]})
    await coll.update_one(
        {"_id": 1}, {"$set": {"jobs.$[job].state": "done"}}, array_filters=[{"job.id": "j2"}]
    )
    assert (await coll.find_one({"_id": 1}))["jobs"] == [
        {"id": "j1", "state": "run"},
        {"id": "j2", "state": "done"},
    ]


async def test_update_one_upsert_and_set_on_insert(coll: Any) -> None:
    first = await coll.update_one(
        {"key": "k"}, {"$setOnInsert": {"created": 1}, "$set": {"seen": 1}}, upsert=True
    )
    assert first.matched_count == 0
    assert first.upserted_id is not None
    second = await coll.update_one(
        {"key": "k"}, {"$setOnInsert": {"created": 2}, "$set": {"seen": 2}}, upsert=True
    )
    assert (second.matched_count, second.upserted_id) == (1, None)
    assert await coll.find_one({"key": "k"}, {"_id": 0}) == {"key": "k", "created": 1, "seen": 2}


async def test_update_many_and_replace_one(coll: Any) -> None:
    await coll.insert_many([{"_id": i, "state": "new"} for i in range(4)])
    many = await coll.update_many({"_id": {"$lt": 3}}, {"$set": {"state": "done"}})
    assert (many.matched_count, many.modified_count) == (3, 3)
    assert await coll.count_documents({"state": "done"}) == 3
    replaced = await coll.replace_one({"_id": 3}, {"state": "replaced", "extra": True})
    assert (replaced.matched_count, replaced.modified_count) == (1, 1)
    assert await coll.find_one({"_id": 3}) == {"_id": 3, "state": "replaced", "extra": True}
    upserted = await coll.replace_one({"_id": 9}, {"state": "fresh"}, upsert=True)
    assert upserted.upserted_id == 9
    assert await coll.find_one({"_id": 9}) == {"_id": 9, "state": "fresh"}


async def test_delete_one_delete_many_and_counts(coll: Any) -> None:
    await coll.insert_many([{"_id": i, "even": i % 2 == 0} for i in range(6)])
    assert await coll.count_documents({}) == 6
    assert await coll.count_documents({"even": True}) == 3
    assert await coll.estimated_document_count() == 6
    one = await coll.delete_one({"even": True})
    assert isinstance(one, DeleteResult)
    assert one.deleted_count == 1
    many = await coll.delete_many({"even": False})
    assert many.deleted_count == 3
    assert (await coll.delete_one({"_id": 404})).deleted_count == 0
    assert await coll.count_documents({}) == 2


# --- find-and-modify ----------------------------------------------------------------------------


async def test_find_one_and_update_upsert_set_on_insert_return_after(coll: Any) -> None:
    created = await coll.find_one_and_update(
        {"_id": "acc-1"},
        {"$setOnInsert": {"created_by": "first"}, "$inc": {"runs": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert created == {"_id": "acc-1", "created_by": "first", "runs": 1}
    again = await coll.find_one_and_update(
        {"_id": "acc-1"},
        {"$setOnInsert": {"created_by": "second"}, "$inc": {"runs": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        projection={"_id": 0, "runs": 1, "created_by": 1},
    )
    assert again == {"created_by": "first", "runs": 2}
    before = await coll.find_one_and_update({"_id": "acc-1"}, {"$set": {"runs": 10}})
    assert before is not None
    assert before["runs"] == 2
    inserted_before = await coll.find_one_and_update({"_id": "acc-2"}, {"$set": {"runs": 0}}, upsert=True)
    assert inserted_before is None
    assert await coll.find_one_and_update({"_id": "none"}, {"$set": {"x": 1}}) is None


async def test_find_one_and_update_with_sort_picks_the_first(coll: Any) -> None:
    await coll.insert_many(
        [
            {"_id": 1, "state": "queued", "prio": 1, "at": 3},
            {"_id": 2, "state": "queued", "prio": 2, "at": 5},
            {"_id": 3, "state": "queued", "prio": 2, "at": 4},
            {"_id": 4, "state": "running", "prio": 9, "at": 1},
        ]
    )
    claimed = await coll.find_one_and_update(
        {"state": "queued"},
        {"$set": {"state": "running"}},
        sort=[("prio", DESCENDING), ("at", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )
    assert claimed == {"_id": 3, "state": "running", "prio": 2, "at": 4}


async def test_find_one_and_delete_and_replace(coll: Any) -> None:
    await coll.insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": 2}])
    deleted = await coll.find_one_and_delete({}, sort=[("v", DESCENDING)])
    assert deleted == {"_id": 2, "v": 2}
    assert await coll.count_documents({}) == 1
    old = await coll.find_one_and_replace({"_id": 1}, {"v": 100})
    assert old == {"_id": 1, "v": 1}
    new = await coll.find_one_and_replace(
        {"_id": 3}, {"v": 3}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert new == {"_id": 3, "v": 3}
    assert await coll.find_one({"_id": 1}) == {"_id": 1, "v": 100}


async def test_inc_is_atomic_across_sequential_and_concurrent_calls(coll: Any) -> None:
    seen = []
    for _ in range(10):
        doc = await coll.find_one_and_update(
            {"_id": "seq"}, {"$inc": {"n": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        seen.append(doc["n"])
    assert seen == list(range(1, 11))

    async def bump() -> int:
        doc = await coll.find_one_and_update(
            {"_id": "seq"}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER
        )
        value: int = doc["n"]
        return value

    values = await asyncio.gather(*(bump() for _ in range(20)))
    assert sorted(values) == list(range(11, 31))
    assert (await coll.find_one({"_id": "seq"}))["n"] == 30


# --- indexes --------------------------------------------------------------------------------------


async def test_unique_index_rejects_duplicates_on_insert_update_and_upsert(coll: Any) -> None:
    name = await coll.create_index([("email", ASCENDING)], unique=True, name="uniq_email")
    assert name == "uniq_email"
    await coll.insert_one({"_id": 1, "email": "a@x"})
    await coll.insert_one({"_id": 2, "email": "b@x"})
    with pytest.raises(DuplicateKeyError) as caught:
        await coll.insert_one({"_id": 3, "email": "a@x"})
    assert caught.value.code == 11000
    with pytest.raises(DuplicateKeyError):
        await coll.update_one({"_id": 2}, {"$set": {"email": "a@x"}})
    with pytest.raises(DuplicateKeyError):
        await coll.update_one({"_id": 9}, {"$set": {"email": "b@x"}}, upsert=True)
    with pytest.raises(DuplicateKeyError):
        await coll.find_one_and_update({"_id": 9}, {"$set": {"email": "b@x"}}, upsert=True)
    with pytest.raises(DuplicateKeyError):
        await coll.insert_one({"_id": 1, "email": "c@x"})
    assert await coll.count_documents({}) == 2
    assert (await coll.find_one({"_id": 2}))["email"] == "b@x"


async def test_partial_unique_index_only_constrains_matching_documents(coll: Any) -> None:
    await coll.create_index(
        [("pharmacy", ASCENDING), ("login", ASCENDING)],
        unique=True,
        partialFilterExpression={"active": True},
        name="uniq_active_login",
    )
    await coll.insert_one({"pharmacy": "p", "login": "l", "active": True})
    # outside the filter: neither collides with the active one nor with each other
    await coll.insert_one({"pharmacy": "p", "login": "l", "active": False})
    await coll.insert_one({"pharmacy": "p", "login": "l", "active": False})
    await coll.insert_one({"pharmacy": "p", "login": "other", "active": True})
    with pytest.raises(DuplicateKeyError):
        await coll.insert_one({"pharmacy": "p", "login": "l", "active": True})
    with pytest.raises(DuplicateKeyError):
        await coll.update_one({"login": "other"}, {"$set": {"login": "l"}})
    with pytest.raises(DuplicateKeyError):
        await coll.update_one(
            {"pharmacy": "p", "login": "l", "active": False, "n": 1},
            {"$set": {"active": True}},
            upsert=True,
        )
    # deactivating frees the key
    await coll.update_one({"login": "l", "active": True}, {"$set": {"active": False}})
    await coll.insert_one({"pharmacy": "p", "login": "l", "active": True})
    assert await coll.count_documents({"login": "l"}) == 4


async def test_create_indexes_and_index_information(coll: Any) -> None:
    names = await coll.create_indexes(
        [
            IndexModel([("a", ASCENDING)], name="a_idx"),
            IndexModel([("b", ASCENDING), ("c", DESCENDING)], name="bc_uniq", unique=True),
        ]
    )
    assert names == ["a_idx", "bc_uniq"]
    info = await coll.index_information()
    assert set(info) == {"_id_", "a_idx", "bc_uniq"}
    assert info["bc_uniq"]["unique"] is True
    assert list(info["bc_uniq"]["key"]) == [("b", 1), ("c", -1)]
    assert await coll.create_index([("a", ASCENDING)], name="a_idx") == "a_idx"  # idempotent


# --- bulk writes ---------------------------------------------------------------------------------


async def test_bulk_write_counts_and_upserts(coll: Any) -> None:
    await coll.insert_many([{"_id": 1, "v": 0}, {"_id": 2, "v": 0}])
    result = await coll.bulk_write(
        [
            InsertOne({"_id": 3, "v": 0}),
            UpdateOne({"_id": 1}, {"$inc": {"v": 1}}),
            UpdateOne({"_id": 10}, {"$set": {"v": 5}}, upsert=True),
            UpdateMany({"_id": {"$in": [1, 2]}}, {"$set": {"touched": True}}),
            ReplaceOne({"_id": 11}, {"v": 7}, upsert=True),
            DeleteOne({"_id": 3}),
        ],
        ordered=True,
    )
    assert isinstance(result, BulkWriteResult)
    assert result.inserted_count == 1
    assert result.matched_count == 3
    assert result.modified_count == 3
    assert result.upserted_count == 2
    assert result.upserted_ids == {2: 10, 4: 11}
    assert result.deleted_count == 1
    docs = await coll.find().sort("_id").to_list()
    assert docs == [
        {"_id": 1, "v": 1, "touched": True},
        {"_id": 2, "v": 0, "touched": True},
        {"_id": 10, "v": 5},
        {"_id": 11, "v": 7},
    ]


async def test_ordered_bulk_write_stops_at_the_first_duplicate(coll: Any) -> None:
    await coll.create_index("key", unique=True)
    with pytest.raises(BulkWriteError) as caught:
        await coll.bulk_write(
            [
                InsertOne({"_id": 1, "key": "a"}),
                UpdateOne({"key": "b"}, {"$set": {"x": 1}}, upsert=True),
                InsertOne({"_id": 3, "key": "a"}),
                InsertOne({"_id": 4, "key": "c"}),
            ]
        )
    details = caught.value.details
    assert details["nInserted"] == 1
    assert details["nUpserted"] == 1
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(2, 11000)]
    assert await coll.count_documents({}) == 2
    assert await coll.find_one({"_id": 4}) is None


async def test_insert_many_duplicate_raises_bulk_write_error(coll: Any) -> None:
    with pytest.raises(BulkWriteError) as caught:
        await coll.insert_many([{"_id": 1}, {"_id": 1}, {"_id": 2}])
    assert caught.value.details["writeErrors"][0]["code"] == 11000
    assert await _ids(coll.find()) == [1]


# --- aggregation and distinct --------------------------------------------------------------------


async def test_aggregate_match_group_sort(coll: Any) -> None:
    await coll.insert_many(
        [
            {"supplier": "cerp", "state": "ok", "amount": 10},
            {"supplier": "cerp", "state": "ok", "amount": 5},
            {"supplier": "ocp", "state": "ok", "amount": 7},
            {"supplier": "ocp", "state": "failed", "amount": 100},
            {"supplier": "alliance", "state": "failed", "amount": 1},
        ]
    )
    pipeline: list[dict[str, Any]] = [
        {"$match": {"state": "ok"}},
        {"$group": {"_id": "$supplier", "total": {"$sum": "$amount"}, "count": {"$sum": 1}}},
        {"$sort": {"total": -1}},
    ]
    cursor = await coll.aggregate(pipeline)
    rows = [row async for row in cursor]
    assert rows == [{"_id": "cerp", "total": 15, "count": 2}, {"_id": "ocp", "total": 7, "count": 1}]
    counted = await (await coll.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])).to_list()
    assert sorted((r["_id"], r["n"]) for r in counted) == [("failed", 2), ("ok", 3)]


async def test_distinct_with_filter(coll: Any) -> None:
    await coll.insert_many(
        [{"s": "a", "t": 1}, {"s": "b", "t": 1}, {"s": "a", "t": 2}, {"s": "c", "t": 2}, {"t": 1}]
    )
    assert sorted(await coll.distinct("s")) == ["a", "b", "c"]
    assert sorted(await coll.distinct("s", {"t": 2})) == ["a", "c"]


# --- datetimes -----------------------------------------------------------------------------------


async def test_aware_datetimes_round_trip_as_utc_milliseconds(coll: Any) -> None:
    at = datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=UTC)
    paris = datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    await coll.insert_one({"_id": 1, "at": at, "local": paris, "hist": [{"at": at}]})
    doc = await coll.find_one({"_id": 1})
    truncated = at.replace(microsecond=123000)
    assert doc["at"] == truncated
    assert doc["at"].tzinfo is UTC  # as from a client made with tz_aware=True, tzinfo=UTC
    assert doc["local"] == paris
    assert doc["local"].utcoffset() == timedelta(0)
    assert doc["local"].hour == 10
    assert doc["hist"][0]["at"] == truncated
    assert doc["hist"][0]["at"].tzinfo is not None


async def test_datetimes_in_filters_updates_and_every_read_path(coll: Any) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    await coll.insert_many([{"_id": i, "at": base + timedelta(days=i)} for i in range(5)])
    window = {"at": {"$gte": base + timedelta(days=1), "$lt": base + timedelta(days=3)}}
    assert await _ids(coll.find(window).sort("at")) == [1, 2]
    assert await coll.count_documents(window) == 2
    later = base + timedelta(days=30)
    after = await coll.find_one_and_update(
        {"at": base}, {"$set": {"done_at": later}}, return_document=ReturnDocument.AFTER
    )
    assert after["done_at"] == later
    assert after["done_at"].utcoffset() == timedelta(0)
    await coll.update_one({"_id": 9}, {"$setOnInsert": {"created": later}}, upsert=True)
    created = (await coll.find_one({"_id": 9}))["created"]
    assert created == later
    assert created.utcoffset() == timedelta(0)
    rows = await (await coll.aggregate([{"$match": {"_id": 0}}, {"$project": {"at": 1}}])).to_list()
    assert rows == [{"_id": 0, "at": base}]
    assert rows[0]["at"].tzinfo is UTC
    dates = await coll.distinct("at", {"_id": {"$lt": 2}})
    assert sorted(dates) == [base, base + timedelta(days=1)]
    assert all(d.tzinfo is UTC for d in dates)
    assert (await coll.delete_many({"at": {"$lt": base + timedelta(days=2)}})).deleted_count == 2


# --- sessions -------------------------------------------------------------------------------------


async def test_session_kwarg_is_accepted_everywhere(mongo_client: MongoClientLike, coll: Any) -> None:
    async with mongo_client.start_session() as s:
        await coll.insert_one({"_id": 1, "n": 0}, session=s)
        await coll.insert_many([{"_id": 2, "n": 0}], session=s)
        await coll.update_one({"_id": 1}, {"$inc": {"n": 1}}, session=s)
        await coll.update_many({}, {"$inc": {"n": 1}}, session=s)
        await coll.replace_one({"_id": 2}, {"n": 5}, session=s)
        await coll.find_one_and_update({"_id": 1}, {"$inc": {"n": 1}}, session=s)
        await coll.bulk_write([InsertOne({"_id": 3, "n": 0})], session=s)
        await coll.create_index("n", session=s)
        assert await coll.find_one({"_id": 1}, session=s) == {"_id": 1, "n": 3}
        assert await _ids(coll.find({}, session=s).sort("_id")) == [1, 2, 3]
        assert await coll.count_documents({}, session=s) == 3
        assert sorted(await coll.distinct("n", session=s)) == [0, 3, 5]
        assert await (await coll.aggregate([{"$count": "c"}], session=s)).to_list() == [{"c": 3}]
        await coll.find_one_and_delete({"_id": 3}, session=s)
        await coll.delete_one({"_id": 2}, session=s)
        await coll.delete_many({}, session=s)
    assert await coll.count_documents({}) == 0


async def test_transaction_commits(mongo_client: MongoClientLike, coll: Any) -> None:
    await coll.insert_one({"_id": 0})  # collections cannot be created inside a transaction
    async with mongo_client.start_session() as s:
        try:
            async with await s.start_transaction():
                await coll.insert_one({"_id": 1}, session=s)
                await coll.update_one({"_id": 0}, {"$set": {"x": 1}}, session=s)
        except OperationFailure as exc:  # a standalone server has no transactions
            if is_in_memory(mongo_client) or exc.code != 20:
                raise
            pytest.skip("the MongoDB under test is not a replica set")
        assert not s.in_transaction
    assert await _ids(coll.find().sort("_id")) == [0, 1]
    assert await coll.find_one({"_id": 0}) == {"_id": 0, "x": 1}


async def test_lookups_by_id_still_apply_the_rest_of_the_filter(mongo_client: MongoClientLike) -> None:
    coll = mongo_client[f"contract_{uuid.uuid4().hex[:8]}"]["by_id"]
    await coll.insert_many([{"_id": "a", "n": 1}, {"_id": "b", "n": 2}, {"_id": 3, "n": 3}])
    assert await coll.find_one({"_id": "a", "n": 2}) is None
    assert (await coll.find_one({"_id": "b", "n": 2}) or {}).get("n") == 2
    assert await coll.find_one({"_id": "missing"}) is None
    got = await coll.find({"_id": {"$in": ["a", 3, "missing", "a"]}}).sort("n", 1).to_list()
    assert [d["_id"] for d in got] == ["a", 3]
    assert await coll.count_documents({"_id": {"$in": ["a", "b"]}, "n": {"$gt": 1}}) == 1
    res = await coll.update_one({"_id": "b", "n": 1}, {"$set": {"n": 9}})
    assert res.matched_count == 0


# --- guarded writes by _id (the scheduler's tick; fast paths of the stand-in) -----------------------

_NOW = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _ms(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


async def test_guarded_claims_by_id_modify_only_what_still_matches(coll: Any) -> None:
    due = _NOW - timedelta(minutes=1)
    await coll.insert_many([
        {"_id": "due", "next": due, "active": True, "paused": None, "v": 1, "outbox": []},
        {"_id": "later", "next": _NOW + timedelta(hours=1), "active": True, "paused": None, "v": 1, "outbox": []},
        {"_id": "paused", "next": due, "active": True, "paused": "incident", "v": 1, "outbox": []},
        {"_id": "newer", "next": due, "active": True, "paused": None, "v": 2, "outbox": []},
        {"_id": "inactive", "next": due, "active": False, "paused": None, "v": 1, "outbox": []},
        {"_id": "bare", "next": due, "active": True, "v": 1},  # no "paused": null matches it; no outbox yet
    ])
    # The guard's bound in another time zone: compared as the same instant.
    now_elsewhere = _NOW.astimezone(timezone(timedelta(hours=2)))
    nxt = _NOW + timedelta(days=1)

    def claim(account_id: str) -> UpdateOne:
        return UpdateOne({"_id": account_id, "next": {"$lte": now_elsewhere}, "active": True, "paused": None, "v": 1},
                         {"$set": {"next": nxt}, "$push": {"outbox": {"msg_id": f"job-{account_id}", "by": "t"}}})

    ids = ["due", "later", "paused", "newer", "inactive", "bare", "missing"]
    result = await coll.bulk_write([claim(a) for a in ids], ordered=False)
    assert (result.matched_count, result.modified_count, result.upserted_count) == (2, 2, 0)
    docs = {d["_id"]: d async for d in coll.find()}
    for claimed in ("due", "bare"):
        assert docs[claimed]["next"] == _ms(nxt)
        assert docs[claimed]["outbox"] == [{"msg_id": f"job-{claimed}", "by": "t"}]
    for untouched in ("later", "paused", "newer", "inactive"):
        assert docs[untouched]["outbox"] == []
        assert docs[untouched]["next"] != _ms(nxt)
    assert "missing" not in docs
    # The run moved forward: a replica claiming it again matches nothing, whichever call it makes.
    again = await coll.bulk_write([claim("due")], ordered=False)
    assert (again.matched_count, again.modified_count) == (0, 0)
    assert await coll.find_one_and_update({"_id": "due", "next": {"$lte": _NOW}}, {"$set": {"v": 9}}) is None
    assert (await coll.update_one({"_id": "due", "next": {"$lte": _NOW}}, {"$set": {"v": 9}})).matched_count == 0
    assert (await coll.find_one({"_id": "due"}))["v"] == 1


async def test_lease_guard_takes_free_or_expired_slots_only(coll: Any) -> None:
    await coll.insert_many([
        {"_id": "s0", "holder": None, "expires_at": None},
        {"_id": "s1", "holder": "x", "expires_at": _NOW - timedelta(seconds=1)},  # its holder never came back
        {"_id": "s2", "holder": "y", "expires_at": _NOW + timedelta(minutes=5)},
        {"_id": "s3"},  # missing fields are null
    ])
    free = {"$or": [{"holder": None}, {"expires_at": {"$lte": _NOW}}]}
    window = await coll.find({"_id": {"$in": ["s0", "s1", "s2", "s3", "s9"]}, **free}, {"_id": 1}).to_list()
    assert sorted(d["_id"] for d in window) == ["s0", "s1", "s3"]
    assert all(set(d) == {"_id"} for d in window)
    result = await coll.bulk_write([
        UpdateOne({"_id": s, **free}, {"$set": {"holder": f"a-{s}", "token": "t", "expires_at": _NOW}})
        for s in ("s0", "s1", "s2", "s3")], ordered=False)
    assert (result.matched_count, result.modified_count) == (3, 3)
    assert {d["_id"]: d["holder"] async for d in coll.find({"token": "t"})} == {"s0": "a-s0", "s1": "a-s1",
                                                                               "s3": "a-s3"}
    assert (await coll.find_one({"_id": "s2"}))["holder"] == "y"


async def test_outbox_entries_are_read_then_pulled_by_msg_id(coll: Any) -> None:
    await coll.insert_many([
        {"_id": "a", "n": 1, "outbox": [{"msg_id": "m1", "p": "x"}, {"msg_id": "m2", "p": "y"}]},
        {"_id": "b", "n": 2, "outbox": []},
        {"_id": "c", "n": 3, "outbox": [{"msg_id": "m3", "p": "z"}]},
        {"_id": "d", "n": 4},
    ])
    pending = await coll.find({"_id": {"$in": ["a", "b", "c", "d"]}, "outbox.0": {"$exists": True}},
                              {"outbox": 1}).to_list()
    assert sorted(pending, key=lambda d: d["_id"]) == [
        {"_id": "a", "outbox": [{"msg_id": "m1", "p": "x"}, {"msg_id": "m2", "p": "y"}]},
        {"_id": "c", "outbox": [{"msg_id": "m3", "p": "z"}]},
    ]
    assert await _ids(coll.find({"_id": {"$in": ["a", "b", "d"]}, "outbox.0": {"$exists": False}}).sort("_id")) \
        == ["b", "d"]
    result = await coll.bulk_write([
        UpdateOne({"_id": doc_id}, {"$pull": {"outbox": {"msg_id": {"$in": msg_ids}}}})
        for doc_id, msg_ids in [("a", ["m1"]), ("c", ["m3", "m9"]), ("b", ["m1"]), ("d", ["m1"])]], ordered=False)
    assert (result.matched_count, result.modified_count) == (4, 2)
    docs = {d["_id"]: d async for d in coll.find()}
    assert docs["a"]["outbox"] == [{"msg_id": "m2", "p": "y"}]
    assert docs["c"]["outbox"] == docs["b"]["outbox"] == []
    assert "outbox" not in docs["d"]  # pulling from a missing array creates nothing
    many = await coll.update_many({"_id": {"$in": ["a", "c"]}}, {"$pull": {"outbox": {"msg_id": {"$in": ["m2"]}}}})
    assert (many.matched_count, many.modified_count) == (2, 1)
    assert (await coll.find_one({"_id": "a"}))["outbox"] == []


async def test_guards_by_id_follow_mongodb_comparison_rules(coll: Any) -> None:
    await coll.insert_one({"_id": "x", "n": 1.0, "tags": ["a", "b"], "v": None, "at": _NOW})
    assert (await coll.update_one({"_id": "x", "n": 1}, {"$set": {"seen": 1}})).modified_count == 1  # 1 == 1.0
    assert (await coll.update_one({"_id": "x", "tags": "b"}, {"$set": {"seen": 2}})).modified_count == 1  # an element
    assert (await coll.update_one({"_id": "x", "v": {"$lte": _NOW}}, {"$set": {"seen": 3}})).matched_count == 0
    assert (await coll.update_one({"_id": "x", "gone": {"$lte": _NOW}}, {"$set": {"seen": 3}})).matched_count == 0
    assert (await coll.update_one({"_id": "x", "at": {"$lt": _NOW}}, {"$set": {"seen": 3}})).matched_count == 0
    assert (await coll.update_one({"_id": "x", "at": _ms(_NOW)}, {"$set": {"seen": 4}})).modified_count == 1
    assert (await coll.find_one({"_id": "x"}))["seen"] == 4


async def test_a_duplicate_key_in_a_bulk_of_updates_by_id_leaves_that_document_as_it_was(coll: Any) -> None:
    await coll.create_index("email", unique=True)
    await coll.insert_many([{"_id": i, "email": f"{i}@x", "n": 0} for i in range(3)])
    ops = [UpdateOne({"_id": 0}, {"$set": {"n": 1}}),
           UpdateOne({"_id": 1}, {"$set": {"email": "0@x", "n": 1}, "$push": {"log": "e"}}),
           UpdateOne({"_id": 2}, {"$set": {"n": 1}})]
    with pytest.raises(BulkWriteError) as ordered:
        await coll.bulk_write(ops, ordered=True)
    details = ordered.value.details
    assert (details["nMatched"], details["nModified"]) == (1, 1)
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(1, 11000)]
    assert await coll.find_one({"_id": 1}) == {"_id": 1, "email": "1@x", "n": 0}
    assert (await coll.find_one({"_id": 2}))["n"] == 0  # an ordered bulk stops at the error
    with pytest.raises(BulkWriteError) as unordered:
        await coll.bulk_write(ops[1:], ordered=False)
    assert [(e["index"], e["code"]) for e in unordered.value.details["writeErrors"]] == [(0, 11000)]
    assert (await coll.find_one({"_id": 2}))["n"] == 1  # an unordered one goes on
    assert await coll.find_one({"_id": 1}) == {"_id": 1, "email": "1@x", "n": 0}


async def test_a_set_that_changes_only_a_type_or_a_field_order_is_a_modification(coll: Any) -> None:
    """MongoDB compares BSON, not Python values: 1 and 1.0, True and 1, {a, b} and {b, a} differ."""
    await coll.insert_one({"_id": "x", "n": 1, "flag": True, "d": {"a": 1, "b": 2}, "s": "same"})
    for field, value in (("n", 1.0), ("flag", 1), ("d", {"b": 2, "a": 1})):
        res = await coll.update_one({"_id": "x"}, {"$set": {field: value}})
        assert (res.matched_count, res.modified_count) == (1, 1), field
    doc = await coll.find_one({"_id": "x"})
    assert (type(doc["n"]), type(doc["flag"]), list(doc["d"])) == (float, int, ["b", "a"])
    res = await coll.update_one({"_id": "x"}, {"$set": {"n": 1.0, "s": "same", "d": {"b": 2, "a": 1}}})
    assert (res.matched_count, res.modified_count) == (1, 0)  # the very same values: no modification
    bulk = await coll.bulk_write([UpdateOne({"_id": "x"}, {"$inc": {"flag": 0.0}})], ordered=False)
    assert bulk.modified_count == 1  # int 1 + 0.0 is the double 1.0
    assert type((await coll.find_one({"_id": "x"}))["flag"]) is float


async def test_a_regex_on_id_matches_ids_like_any_other_field(coll: Any) -> None:
    await coll.insert_many([{"_id": "acc-1"}, {"_id": "acc-2"}, {"_id": "other"}])
    assert await _ids(coll.find({"_id": re.compile("^acc-")}).sort("_id")) == ["acc-1", "acc-2"]
    assert await coll.count_documents({"_id": {"$in": [re.compile("^acc-1$"), "other"]}}) == 2
    res = await coll.update_many({"_id": re.compile("^acc-")}, {"$set": {"seen": True}})
    assert (res.matched_count, res.modified_count) == (2, 2)


@pytest.mark.parametrize("which", [{"_id": {"$in": ["a", "b"]}}, {"kind": "k"}], ids=["by_id", "by_field"])
async def test_a_value_added_to_many_documents_is_each_ones_own(coll: Any, which: dict[str, Any]) -> None:
    await coll.insert_many([{"_id": "a", "kind": "k"}, {"_id": "b", "kind": "k"}])
    await coll.update_many(which, {"$set": {"d": {"k": 1}}, "$addToSet": {"tags": {"k": 1}},
                                   "$push": {"log": {"$each": [{"n": 1}], "$slice": -10}}})
    await coll.update_one({"_id": "a"}, {"$set": {"d.k": 2, "tags.0.k": 2, "log.0.n": 2}})
    assert await coll.find_one({"_id": "b"}, {"kind": 0}) == {"_id": "b", "d": {"k": 1}, "tags": [{"k": 1}],
                                                             "log": [{"n": 1}]}
    assert await coll.find_one({"_id": "a"}, {"kind": 0}) == {"_id": "a", "d": {"k": 2}, "tags": [{"k": 2}],
                                                             "log": [{"n": 2}]}
