"""The stand-in's fast paths (``shared.memory_mongo_fast``, ``shared.memory_mongo_match``) against
mongomock-ng's own code: same answers, same documents, same counts, same errors.

The storage contract (``tests/integration/test_storage_contract.py``) checks the behaviour against
MongoDB itself; these tests check that taking a fast path never changes what the stand-in does.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import mongomock_ng
import pytest
from mongomock_ng.filtering import filter_applies
from pymongo import InsertOne, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError

from shared import memory_mongo_fast as fast
from shared.memory_mongo import InMemoryMongoClient  # noqa: F401  (installs the fast paths)
from shared.memory_mongo_match import matches

NOW = datetime(2026, 6, 1, 12, 0, 0, 123000)  # as stored: naive UTC, milliseconds
BEFORE, AFTER = NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)

DOCS: list[dict[str, Any]] = [
    {},
    {"active": True, "paused": None, "v": 1, "next": BEFORE, "holder": None, "expires_at": None},
    {"active": False, "paused": "incident", "v": 2, "next": AFTER, "holder": "a1", "expires_at": BEFORE},
    {"active": 1, "paused": [None], "v": 1.0, "next": None, "holder": "a2", "expires_at": AFTER},
    {"active": "yes", "paused": {"why": None}, "v": True, "next": "soon", "holder": ["a1", "a3"]},
    {"v": float("nan"), "next": NOW, "outbox": [], "msg_id": "m1"},
    {"outbox": [{"msg_id": "m1"}], "msg_id": ["m1", "m2"], "holder": 7},
    {"outbox": {"0": "x"}, "msg_id": None},
]

FILTERS: list[dict[str, Any]] = [
    {"active": True},
    {"active": True, "paused": None, "v": 1, "next": {"$lte": NOW}},
    {"paused": None},
    {"v": 1},
    {"v": {"$gte": 1}},
    {"next": {"$lte": NOW}},
    {"next": {"$lt": NOW, "$gt": BEFORE}},
    {"next": {"$eq": NOW}},
    {"next": NOW},
    {"next": {"$lte": "soon"}},
    {"$or": [{"holder": None}, {"expires_at": {"$lte": NOW}}]},
    {"$and": [{"active": True}, {"v": {"$lte": 1}}]},
    {"holder": "a1"},
    {"holder": {"$in": ["a1", "a2"]}},
    {"msg_id": {"$in": ["m1"]}},
    {"outbox.0": {"$exists": True}},
    {"outbox.0": {"$exists": False}},
    {"active": True, "v": 1.0},  # not understood by the plain matcher: mongomock-ng decides
    {"holder": {"$ne": None}},
]


@pytest.mark.parametrize("query", FILTERS, ids=str)
def test_the_plain_matcher_agrees_with_mongomock_whenever_it_answers(query: dict[str, Any]) -> None:
    for doc in DOCS:
        answer = matches(query, doc)
        assert answer is None or answer == filter_applies(query, doc), (query, doc)


def test_the_guards_of_the_scheduler_and_the_outbox_are_answered_without_mongomock() -> None:
    claim = {"next": {"$lte": NOW}, "active": True, "paused": None, "v": 1}
    lease = {"$or": [{"holder": None}, {"expires_at": {"$lte": NOW}}]}
    pending = {"outbox.0": {"$exists": True}}
    assert matches(claim, DOCS[1]) is True
    assert matches(claim, DOCS[2]) is False
    assert matches(lease, DOCS[1]) is True
    assert matches(lease, DOCS[2]) is True
    assert matches(pending, DOCS[5]) is False
    assert matches({"msg_id": {"$in": ["m1", "m2"]}}, {"msg_id": "m2", "payload": "{}"}) is True


def _collections() -> tuple[Any, Any]:
    """Two mongomock-ng collections holding the same documents."""
    pair = []
    for name in ("fast", "full"):
        coll = mongomock_ng.MongoClient(tz_aware=True)["unit"][name]
        coll.create_index("email", unique=True)
        coll.insert_many([
            {"_id": "a", "email": "a@x", "n": 1, "when": NOW, "outbox": [{"msg_id": "m1", "p": 1}], "tags": ["t"],
             "paused": None, "sub": {"k": [1, 2]}},
            {"_id": "b", "email": "b@x", "n": 2, "outbox": [], "tags": "not-an-array"},
            {"_id": 3, "email": "c@x"},
        ])
        pair.append(coll)
    return pair[0], pair[1]


UPDATES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"_id": "a"}, {"$set": {"n": 5, "when": AFTER, "s": "é", "l": [1, {"x": 2}], "d": {"y": [3]}}}, False),
    ({"_id": "a", "n": 1, "paused": None, "when": {"$lte": NOW}},
     {"$set": {"n": 2}, "$push": {"outbox": {"msg_id": "m2"}}}, False),
    ({"_id": "a", "n": 9}, {"$set": {"n": 2}}, False),  # a guard that does not match
    ({"_id": "missing"}, {"$set": {"n": 2}}, False),
    ({"_id": "a"}, {"$set": {"n": 1}}, False),  # no change: matched, not modified
    ({"_id": "a"}, {"$push": {"outbox": {"$each": [{"msg_id": "m3"}, {"msg_id": "m4"}]}}}, False),
    ({"_id": "a"}, {"$push": {"tags": {"$each": ["u", "v"], "$slice": -2}}}, False),
    ({"_id": "a"}, {"$push": {"fresh": "x"}}, False),
    ({"_id": "b"}, {"$push": {"tags": "x"}}, False),  # not an array
    ({"_id": "a"}, {"$pull": {"outbox": {"msg_id": {"$in": ["m1", "m9"]}}}}, False),
    ({"_id": "a"}, {"$pull": {"outbox": {"msg_id": "m9"}}}, False),
    ({"_id": "a"}, {"$pull": {"tags": "t"}}, False),
    ({"_id": "a"}, {"$pull": {"none": {"msg_id": "m1"}}}, False),
    ({"_id": "b"}, {"$pull": {"tags": {"msg_id": "m1"}}}, False),
    ({"_id": "a"}, {"$inc": {"n": 2}, "$unset": {"paused": ""}, "$addToSet": {"tags": "t"}}, False),
    ({"_id": "a"}, {"$setOnInsert": {"n": 7}, "$set": {"k": 1}}, False),
    ({"_id": "a"}, {"$set": {"sub.k": 3}}, False),  # dotted: the full path
    ({"_id": "b"}, {"$set": {"email": "a@x"}}, False),  # duplicate key
    ({"_id": "b"}, {"$set": {"n": 2**70}}, False),  # not BSON
    ({"_id": {"$in": ["a", "b", 3]}}, {"$set": {"m": 1}, "$pull": {"outbox": {"msg_id": "m1"}}}, True),
    ({"_id": {"$in": ["a", "b"]}, "n": {"$gte": 2}}, {"$set": {"m": 2}}, True),
]


def _outcome(run: Any) -> tuple[str, Any]:
    try:
        return "ok", run()
    except Exception as exc:
        return "error", type(exc)


@pytest.mark.parametrize(("spec", "update", "multi"), UPDATES, ids=str)
def test_updates_by_id_end_as_mongomock_ends_them(spec: dict[str, Any], update: dict[str, Any], multi: bool) -> None:
    mine, theirs = _collections()
    spec, update = fast._naive_ms(spec), fast._naive_ms(update)
    got = _outcome(lambda: fast._update_documents(mine, copy.deepcopy(spec), copy.deepcopy(update), False, multi, None))
    want = _outcome(lambda: fast._update_by_snapshot(theirs, copy.deepcopy(spec), copy.deepcopy(update), False, multi,
                                                     None))
    if got[0] == "ok" and want[0] == "ok":
        assert (got[1]["n"], got[1]["nModified"]) == (want[1]["n"], want[1]["nModified"])
    else:
        assert got == want
    assert list(mine.find()) == list(theirs.find())


def test_a_value_set_or_pushed_on_many_documents_is_not_shared_between_them() -> None:
    coll, _ = _collections()
    coll.update_many({"_id": {"$in": ["a", "b"]}}, {"$set": {"l": [{"x": 1}]}, "$push": {"outbox": {"msg_id": "z"}}})
    store = coll._store._documents
    assert store["a"]["l"] is not store["b"]["l"]
    assert store["a"]["l"][0] is not store["b"]["l"][0]
    assert store["a"]["outbox"][-1] is not store["b"]["outbox"][-1]


BULKS: list[tuple[list[Any], bool]] = [
    ([UpdateOne({"_id": "a"}, {"$set": {"n": 3}}), UpdateOne({"_id": "b", "n": 9}, {"$set": {"n": 3}}),
      UpdateMany({"_id": {"$in": ["a", 3]}}, {"$push": {"log": 1}})], True),
    ([UpdateOne({"_id": "a"}, {"$set": {"n": 3}}), UpdateOne({"_id": "b"}, {"$set": {"email": "a@x"}}),
      UpdateOne({"_id": 3}, {"$set": {"n": 3}})], True),
    ([UpdateOne({"_id": "b"}, {"$set": {"email": "a@x"}}), UpdateOne({"_id": 3}, {"$set": {"n": 3}})], False),
    ([UpdateOne({"_id": "a"}, {"$set": {"n": 3}}), InsertOne({"_id": "c"})], True),  # not only updates
    ([UpdateOne({"_id": "z"}, {"$set": {"n": 3}}, upsert=True)], True),
    ([UpdateOne({"n": 1}, {"$set": {"n": 3}})], True),  # not by _id
]


@pytest.mark.parametrize(("requests", "ordered"), BULKS, ids=str)
def test_bulk_writes_end_as_mongomock_ends_them(requests: list[Any], ordered: bool) -> None:
    mine, theirs = _collections()

    def run(coll: Any, bulk_write: Any) -> Any:
        try:
            return bulk_write(coll, requests, ordered=ordered).bulk_api_result
        except BulkWriteError as exc:
            return exc.details

    got, want = run(mine, fast._bulk_write), run(theirs, fast._bulk_write_by_builder)
    for result in (got, want):
        for error in result["writeErrors"]:
            error.pop("errmsg")
    assert got == want
    assert list(mine.find()) == list(theirs.find())


PROJECTIONS: list[Any] = [{"n": 1}, {"n": 1, "outbox": True}, {"n": 1, "_id": 0}, {"_id": 1}, {"_id": 0}, {"n": 0},
                          {"sub.k": 1}, {"n": 1, "_id": 2}, None, {}]


@pytest.mark.parametrize("projection", PROJECTIONS, ids=str)
def test_projections_copy_as_mongomock_copies(projection: Any) -> None:
    coll, _ = _collections()
    for doc in coll._store._documents.values():
        got = fast._copy_only_fields(coll, doc, copy.deepcopy(projection), dict)
        want = fast._copy_only_fields_full(coll, doc, copy.deepcopy(projection), dict)
        assert got == want
        assert list(got) == list(want)  # the same order of fields, too


def test_datetime_conversions_are_mongomocks() -> None:
    paris = timezone(timedelta(hours=2))
    values = [datetime(2026, 1, 2, 3, 4, 5, 678901), datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=paris),
              datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=UTC)]
    for value in values:
        assert fast._naive_ms(value) == fast._naive_ms_slow(value)
        assert fast._aware_utc(fast._naive_ms(value)) == fast._aware_utc_slow(fast._naive_ms(value))
    nested = {"a": [values[1], {"b": (values[0], 1)}], "c": OrderedDict(d=values[2]), "e": "x", "f": None}
    assert fast._naive_ms(nested) == {"a": [fast._naive_ms_slow(values[1]), {"b": [fast._naive_ms_slow(values[0]), 1]}],
                                      "c": OrderedDict(d=fast._naive_ms_slow(values[2])), "e": "x", "f": None}
    assert type(fast._naive_ms(nested)["c"]) is OrderedDict
    for a, b in itertools.pairwise(values):
        assert (fast._naive_ms(a) < fast._naive_ms(b)) == (fast._naive_ms_slow(a) < fast._naive_ms_slow(b))


def _bson(value: Any) -> Any:
    """``value`` as MongoDB compares it: with its type, its fields' order, the sign of a zero."""
    if isinstance(value, dict):
        return "dict", [(key, _bson(item)) for key, item in value.items()]
    if isinstance(value, list):
        return "list", [_bson(item) for item in value]
    return type(value).__name__, repr(value)


# Updates that Python calls no-ops and MongoDB does not: it compares BSON (type and bytes), so it stores
# the new value and counts a modification.
PYTHON_EQUAL: list[tuple[Any, dict[str, Any]]] = [
    (1, {"$set": {"f": 1.0}}),
    (True, {"$set": {"f": 1}}),
    (1, {"$set": {"f": True}}),
    (0.0, {"$set": {"f": -0.0}}),
    ({"x": 1, "y": 2}, {"$set": {"f": {"y": 2, "x": 1}}}),
    ([1, {"x": True}], {"$set": {"f": [1.0, {"x": True}]}}),
    (1, {"$inc": {"f": 0.0}}),
]


@pytest.mark.parametrize(("stored", "update"), PYTHON_EQUAL, ids=str)
def test_an_update_that_only_python_calls_a_no_op_is_stored_and_counted(stored: Any, update: dict[str, Any]) -> None:
    mine, theirs = (mongomock_ng.MongoClient(tz_aware=True)["unit"][name] for name in ("fast", "full"))
    for coll in (mine, theirs):
        coll.insert_one({"_id": "a", "f": copy.deepcopy(stored), "g": 1})
    got = fast._update_documents(mine, {"_id": "a"}, copy.deepcopy(update), False, False, None)
    fast._update_by_snapshot(theirs, {"_id": "a"}, copy.deepcopy(update), False, False, None)
    assert _bson(mine._store._documents["a"]) == _bson(theirs._store._documents["a"])  # mongomock-ng stores it
    assert got["nModified"] == 1  # as MongoDB counts it (mongomock-ng counts 0)
    # the same update again changes nothing
    assert fast._update_documents(mine, {"_id": "a"}, copy.deepcopy(update), False, False, None)["nModified"] == 0


def test_a_regex_on_id_is_matched_not_looked_up() -> None:
    coll, _ = _collections()
    for query in ({"_id": re.compile("^[ab]$")}, {"_id": {"$in": [re.compile("^a"), 3]}}):
        assert list(fast._iter_documents(coll, query)) == list(fast._scan_documents(coll, query))
    result = fast._update_documents(coll, {"_id": re.compile("^[ab]$")}, {"$set": {"seen": 1}}, False, True, None)
    assert result["n"] == 2


def test_values_that_mongomock_applies_are_not_shared_between_documents_either() -> None:
    coll, _ = _collections()
    coll.update_many({"_id": {"$in": ["a", "b"]}},
                     {"$addToSet": {"set": {"x": 1}}, "$push": {"log": {"$each": [{"y": 1}], "$slice": -5}}})
    store = coll._store._documents
    assert store["a"]["set"][0] is not store["b"]["set"][0]
    assert store["a"]["log"][0] is not store["b"]["log"][0]
