"""The stand-in's indexes (``shared.memory_mongo_index``): the same answers as mongomock-ng's scan, in
the same order, on both stores, and the repositories' hot operations examining only the documents
under their key, whatever the size of the collection.

The differential tests run every operation twice, on a collection answered through its indexes and on
one answered by scanning (``memory_mongo_index.ENABLED`` off while it runs), and compare results,
errors and the documents left. The cost tests count the documents a matcher or a unique check looks
at (an instrumented counter, not a clock): without the indexes each operation looks at all of them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import mongomock_ng
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mongomock_ng import collection as mm_collection
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateMany, UpdateOne
from pymongo.errors import PyMongoError

from services.accounts.repository import AccountRepository
from services.scraper.kit import CollectedDocument
from services.scraper.kit.invoice import InvoiceRef
from services.scraper.ledger import Ledger
from shared import memory_mongo_fast, memory_mongo_index
from shared.durable_store import DurableServerStore
from shared.memory_mongo import InMemoryMongoClient

NOW = dt.datetime(2026, 6, 1, 12, 0, 0, 123000)

# Values of every kind the trees key or leave "odd": equal across types (1, 1.0, True), null,
# datetimes, arrays, sub-documents, NaN.
VALUES: list[Any] = [None, 0, 1, 1.0, True, False, "a", "b", NOW, NOW + dt.timedelta(seconds=1),
                     [1, "a"], [], [None], {"x": 1}, float("nan")]
FIELDS = ["a", "b", "c", "d.e"]
INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("a", ASCENDING)], {}),
    ([("a", ASCENDING), ("b", ASCENDING)], {}),
    ([("a", ASCENDING), ("b", DESCENDING), ("c", ASCENDING)], {}),
    ([("b", ASCENDING), ("a", ASCENDING)], {"unique": True}),
    ([("a", ASCENDING), ("c", ASCENDING)], {"unique": True, "partialFilterExpression": {"c": "a"}}),
    ([("d.e", ASCENDING)], {}),
    ([("c", ASCENDING)], {"unique": True, "sparse": True}),
    ([("b", ASCENDING)], {"unique": True, "partialFilterExpression": {"a": True}}),
]



def _fresh(value: Any) -> Any:
    """A new NaN each time (two NaNs are two objects: a dict finds one by identity only)."""
    return float("nan") if value != value else value


values = st.sampled_from(VALUES).map(_fresh)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": draw(st.integers(0, 40))}
    for name in ("a", "b", "c"):
        if draw(st.booleans()):
            doc[name] = draw(values)
    shape = draw(st.integers(0, 3))
    if shape == 1:
        doc["d"] = {"e": draw(values)}
    elif shape == 2:
        doc["d"] = draw(values)
    return doc


@st.composite
def conditions(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(values)
    if kind == 4 and draw(st.booleans()):
        return draw(st.sampled_from(["a", 1, None, NOW]))
    if kind == 1:
        return {"$eq": draw(values)}
    if kind == 2:
        return {"$in": draw(st.lists(values, max_size=3))}
    if kind == 3:
        return {"$gte": draw(st.sampled_from([0, "a", NOW]))}
    return {"$ne": draw(values)}


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=4))
    if draw(st.booleans()):  # most often, the leading fields of an index first
        names = [name for name in ("a", "b", "d.e") if draw(st.booleans())] or names
    query = {name: draw(conditions()) for name in names}
    if draw(st.integers(0, 5)) == 0:
        query["$or"] = [{"a": draw(values)}, {"c": draw(values)}]
    return query


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(["a", "b", "c", "d.e", "d"]))
    if draw(st.integers(0, 3)) == 0:
        return {"$unset": {name: ""}}
    return {"$set": {name: draw(values)}}


operations = st.one_of(
    st.tuples(st.just("insert_one"), documents()),
    st.tuples(st.just("insert_one"), documents()),
    st.tuples(st.just("insert_one"), documents()),
    st.tuples(st.just("find"), filters()),
    st.tuples(st.just("find_sorted"), filters()),
    st.tuples(st.just("count_documents"), filters()),
    st.tuples(st.just("update_one"), filters(), updates()),
    st.tuples(st.just("update_many"), filters(), updates()),
    st.tuples(st.just("upsert"), filters(), updates()),
    st.tuples(st.just("replace_one"), filters(), documents()),
    st.tuples(st.just("delete_one"), filters()),
    st.tuples(st.just("delete_many"), filters()),
    st.tuples(st.just("find_one_and_update"), filters(), updates()),
    st.tuples(st.just("find_one_and_delete"), filters()),
    st.tuples(st.just("bulk_write"), filters(), updates(), filters(), updates()),
    st.tuples(st.just("create_index"), st.integers(0, len(INDEXES) - 1)),
    st.tuples(st.just("drop_index"), st.integers(0, len(INDEXES) - 1)),
)


@contextmanager
def scanning() -> Iterator[None]:
    """Answer by scanning every document, as mongomock-ng does."""
    memory_mongo_index.ENABLED = False
    try:
        yield
    finally:
        memory_mongo_index.ENABLED = True


def _canon(value: Any) -> str:
    """A comparable form (NaN equals NaN; key order and types count; upserts' new ObjectIds differ)."""
    return re.sub(r"ObjectId\('[0-9a-f]+'\)", "ObjectId", repr(value))


def _apply(coll: Any, op: tuple[Any, ...]) -> str:
    """Run one operation; its result, or its error, in comparable form."""
    name, *args = op
    try:
        if name == "insert_one":
            result: Any = coll.insert_one(dict(args[0])).inserted_id
        elif name == "find":
            result = list(coll.find(args[0]))
        elif name == "find_sorted":
            result = list(coll.find(args[0]).sort([("b", DESCENDING), ("_id", ASCENDING)]).limit(3))
        elif name == "count_documents":
            result = coll.count_documents(args[0])
        elif name in ("update_one", "update_many"):
            result = getattr(coll, name)(args[0], args[1]).raw_result
        elif name == "upsert":
            result = coll.update_one(args[0], args[1], upsert=True).raw_result
            result.pop("upserted", None)  # a new ObjectId each time
        elif name == "replace_one":
            replacement = {k: v for k, v in args[1].items() if k != "_id"}
            result = coll.replace_one(args[0], replacement).raw_result
        elif name in ("delete_one", "delete_many"):
            result = getattr(coll, name)(args[0]).raw_result
        elif name == "find_one_and_update":
            result = coll.find_one_and_update(args[0], args[1], return_document=ReturnDocument.AFTER)
        elif name == "find_one_and_delete":
            result = coll.find_one_and_delete(args[0])
        elif name == "bulk_write":
            result = coll.bulk_write([UpdateOne(args[0], args[1]), UpdateMany(args[2], args[3])],
                                     ordered=False).bulk_api_result
        elif name == "create_index":
            key, options = INDEXES[args[0]]
            result = coll.create_index(key, name=f"i{args[0]}", **options)
        else:
            result = coll.drop_index(f"i{args[0]}")
    except (PyMongoError, ValueError, TypeError) as error:
        return f"error {type(error).__name__} {getattr(error, 'code', None)}"
    if isinstance(result, dict):
        result.pop("connectionId", None)  # the client's
    return _canon(result)


def _check_trees(coll: Any) -> None:
    """The trees kept up to date write after write equal trees built from scratch."""
    store = coll._store
    documents = store._documents
    kept = documents._ix
    if kept is None or not kept.built_from(store.indexes):
        return
    fresh = memory_mongo_index._Indexes(store.indexes, documents.items())
    assert [(t.fields, t.root, t.odd) for t in kept.trees] == [(t.fields, t.root, t.odd) for t in fresh.trees]
    assert sorted(kept.meta, key=lambda i: kept.meta[i][0]) == list(documents)


def _run(indexed: Any, scanned: Any, ops: list[tuple[Any, ...]]) -> None:
    for op in ops:
        got = _apply(indexed, op)
        with scanning():
            expected = _apply(scanned, op)
        assert got == expected, op
        _check_trees(indexed)
    with scanning():
        expected = _canon(list(scanned.find({})))
    assert _canon(list(indexed.find({}))) == expected


def _collections(client_a: Any, client_b: Any) -> tuple[Any, Any]:
    return client_a.db.coll, client_b.db.coll


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.lists(st.integers(0, len(INDEXES) - 1), min_size=1, max_size=3),
       docs=st.lists(documents(), min_size=5, max_size=30), ops=st.lists(operations, min_size=5, max_size=40))
def test_indexed_answers_equal_the_scan_in_memory(initial: list[int], docs: list[dict[str, Any]],
                                                  ops: list[tuple[Any, ...]]) -> None:
    indexed, scanned = _collections(mongomock_ng.MongoClient(tz_aware=True),
                                    mongomock_ng.MongoClient(tz_aware=True))
    _run(indexed, scanned, [("create_index", i) for i in initial] + [("insert_one", d) for d in docs] + ops)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(initial=st.lists(st.integers(0, len(INDEXES) - 1), min_size=1, max_size=3),
       docs=st.lists(documents(), min_size=5, max_size=30), ops=st.lists(operations, max_size=25),
       queries=st.lists(filters(), min_size=1, max_size=8))
def test_indexed_answers_equal_the_scan_on_the_durable_store_and_after_reopening(
        tmp_path_factory: pytest.TempPathFactory, initial: list[int], docs: list[dict[str, Any]],
        ops: list[tuple[Any, ...]], queries: list[dict[str, Any]]) -> None:
    directory = tmp_path_factory.mktemp("durable")
    store = DurableServerStore(directory)
    indexed, scanned = _collections(mongomock_ng.MongoClient(tz_aware=True, _store=store),
                                    mongomock_ng.MongoClient(tz_aware=True))
    _run(indexed, scanned, [("create_index", i) for i in initial] + [("insert_one", d) for d in docs] + ops)
    asyncio.run(store.commit())
    store.close()
    reopened = DurableServerStore(directory)
    try:
        again = mongomock_ng.MongoClient(tz_aware=True, _store=reopened).db.coll
        for query in queries:
            got = _apply(again, ("find", query))
            with scanning():
                assert got == _apply(again, ("find", query)), query
        _check_trees(again)
    finally:
        reopened.close()


# --- cost: documents examined ------------------------------------------------------------------

class Examined:
    """Counts the documents that matchers and unique checks look at."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = self._counting
        monkeypatch.setattr(mm_collection, "filter_applies", wrap(mm_collection.filter_applies))
        monkeypatch.setattr(memory_mongo_fast, "_matches", wrap(memory_mongo_fast._matches))
        monkeypatch.setattr(mm_collection.Collection, "_compute_index_entries",
                            staticmethod(wrap(mm_collection.Collection._compute_index_entries)))

    def _counting(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            self.count += 1
            return function(*args)
        return counted

    @contextmanager
    def at_most(self, limit: int) -> Iterator[None]:
        self.count = 0
        yield
        assert self.count <= limit, f"{self.count} documents examined (at most {limit} expected)"


def _document(number: str) -> CollectedDocument:
    ref = InvoiceRef(number=number, issue_date=dt.date(2026, 1, 5), amount=Decimal("12.30"), currency="EUR",
                     kind="invoice", download_url=f"/d/{number}")
    return CollectedDocument(ref, number.encode())


@pytest.mark.parametrize("durable", [False, True])
async def test_ledger_operations_examine_only_the_account_s_documents(
        durable: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DurableServerStore(tmp_path / "db") if durable else None
    client = InMemoryMongoClient(store)
    try:
        ledger = Ledger(client["collectors_scraper"])
        await ledger.create_indexes()
        accounts, per_account = 200, 10  # 2,000 entries: a scan would examine all of them
        for i in range(accounts * per_account):
            await ledger.record("t1", f"acc{i % accounts}", "sandbox", _document(f"F{i}"), NOW)
        examined = Examined(monkeypatch)
        with examined.at_most(3):  # the new one, through the unique index
            assert await ledger.record("t1", "acc7", "sandbox", _document("NEW"), NOW) is not None
        with examined.at_most(3):  # a duplicate number: its one twin
            assert await ledger.record("t1", "acc7", "sandbox", _document("F7"), NOW) is None
        with examined.at_most(per_account + 2):
            assert await ledger.has_content("t1", "acc7", _document("F7").sha256)
        with examined.at_most(per_account + 2):
            assert len(await ledger.known("t1", "acc7")) == per_account + 1
        with examined.at_most(per_account + 2):
            assert await ledger.count("t1", "acc7") == per_account + 1
        with examined.at_most(per_account + 2):
            assert len(await ledger.unpublished("t1", "acc7")) == per_account + 1
    finally:
        client.release()


async def test_account_writes_check_unique_slots_against_their_twins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    client = InMemoryMongoClient()
    repo = AccountRepository(client["collectors_accounts"])
    await repo.create_indexes()
    for i in range(1000):
        await repo.insert({"_id": f"a{i}", "tenant_id": f"t{i // 2}", "collector_id": "c", "slot": 1 + i % 2,
                           "login_key": f"l{i}", "active": True, "created_at": NOW})
    examined = Examined(monkeypatch)
    with examined.at_most(8):  # two unique indexes, the new document and its twins (none)
        await repo.insert({"_id": "new", "tenant_id": "t7", "collector_id": "c", "slot": 3,
                           "login_key": "l-new", "active": True, "created_at": NOW})
    with examined.at_most(8):
        assert sorted(await repo.used_slots("t7", "c")) == [1, 2, 3]
    with examined.at_most(8):
        assert (await repo.find_login("t7", "c", "l-new") or {})["_id"] == "new"
    with examined.at_most(8):
        assert await repo.update("t7", "new", {"$set": {"login_key": "l-newer"}}) is not None
