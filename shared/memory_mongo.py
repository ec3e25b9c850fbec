"""In-memory stand-in for ``pymongo.AsyncMongoClient``, an async facade over the sync ``mongomock-ng``.

Used when no MongoDB URL is configured (local runs, the sandbox, tests without a server), so that the
repositories run the same code as against a real server. Only the subset of PyMongo's async API that
the repositories use is offered; everything runs synchronously in memory underneath (no threads), but
every operation suspends at least once before it is applied (and a cursor before each batch), as a driver
waiting on its socket does, so two tasks interleave inside a read-modify-write as against a server; one
operation, once applied, is still atomic. ``shared.standin_timing`` does the suspending, adds seeded random
delays when asked (``COLLECTORS_STANDIN_JITTER``) and records who applied what for race tests.

Faithfulness notes:

* Results and errors are PyMongo's own classes (mongomock-ng builds ``pymongo.results.*`` and raises
  ``pymongo.errors.*`` when PyMongo is installed).
* Datetimes come back aware, in ``timezone.utc``, truncated to milliseconds, as from a real client
  created with ``tz_aware=True, tzinfo=timezone.utc``.
* ``session=`` is accepted everywhere and ignored; transactions do NOT roll back (see ``InMemorySession``).
* ``close()`` keeps the data and the client usable: the stand-in *is* the database, and services running
  in one process share one client (see ``shared.mongo``).
* mongomock-ng 7.11 checks a unique index's ``partialFilterExpression`` against the stored documents
  only, not against the one being written; ``_ensure_uniques`` below corrects that.
* Reads and writes by ``_id`` (most of what repositories do) take fast paths that keep mongomock-ng's
  results and errors (``shared.memory_mongo_fast``); so does reading a cursor (``_cursor_next``).

Given a ``DurableServerStore`` (``shared.durable_store``), the same client is the durable embedded
store: each operation, once applied in memory, journals what it changed and returns only when that is
on disk (so an operation then suspends while the journal is fsynced, and others may run meanwhile).
Without one, nothing is kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, overload

import mongomock_ng
from mongomock_ng import filtering as _mm_filtering
from mongomock_ng import helpers as _mm_helpers
from mongomock_ng.collection import Collection as _MockCollection
from mongomock_ng.collection import Cursor as _MockCursor
from mongomock_ng.collection import _cast_document_class
from pymongo.errors import DuplicateKeyError, InvalidOperation
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from shared import memory_mongo_fast, standin_timing
from shared.durable_store import DurableServerStore

__all__ = [
    "InMemoryCollection",
    "InMemoryCursor",
    "InMemoryDatabase",
    "InMemoryMongoClient",
    "InMemorySession",
]

Document = dict[str, Any]
_R = TypeVar("_R")
_T = TypeVar("_T")

# mongomock-ng's helpers are untyped
_filter_applies: Callable[[Mapping[str, Any], Mapping[str, Any]], bool] = _mm_filtering.filter_applies
_get_value_by_dot: Callable[[Mapping[str, Any], str], Any] = _mm_helpers.get_value_by_dot

# Values ``_aware`` returns as they are.
_SCALARS = memory_mongo_fast.SCALARS


def _aware(value: Any) -> Any:
    """Copy of ``value`` with every datetime aware UTC and every mapping a plain dict, as PyMongo reads."""
    kind = type(value)
    if kind in _SCALARS:  # the bulk of a document: skip the isinstance checks (Mapping's is slow)
        return value
    if kind is dict:
        return {key: item if type(item) in _SCALARS else _aware(item) for key, item in value.items()}
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    if isinstance(value, Mapping):
        return {key: _aware(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_aware(item) for item in value]
    return value


def _ensure_uniques(self: Any, new_data: Mapping[str, Any]) -> None:
    """mongomock-ng's unique check, but skipping partial indexes whose filter the new document fails,
    and comparing the new document only with those whose key may equal its own (not all of them)."""
    for index in self._store.indexes.values():
        if not index.get("unique"):
            continue
        keys = index.get("key")
        partial = index.get("partialFilterExpression")
        if partial is not None and not _filter_applies(partial, new_data):
            continue
        new_entries = self._compute_index_entries(new_data, keys, index.get("sparse"))
        if new_entries is None:
            continue
        # Only the documents the index holds under the new one's key (see memory_mongo_index).
        found = memory_mongo_fast.unique_candidates(self._store, keys, new_entries)
        for doc in self._store.documents if found is None else found:
            if doc["_id"] == new_data.get("_id"):
                continue
            if partial is not None and not _filter_applies(partial, doc):
                continue
            entries = self._compute_index_entries(doc, keys, index.get("sparse"))
            if entries is not None and self._entries_overlap(new_entries, entries):
                raise DuplicateKeyError(
                    "E11000 duplicate key error",
                    11000,
                    {
                        "keyPattern": dict(keys),
                        "keyValue": {k: _get_value_by_dot(new_data, k) for k, _ in keys},
                    },
                )


_MockCollection._ensure_uniques = _ensure_uniques  # type: ignore[method-assign]
memory_mongo_fast.install()


def _cursor_next(self: Any) -> Any:
    """mongomock-ng slices the whole result list again for every document it yields, which makes
    reading a cursor quadratic (minutes for a million schedules); index into it instead."""
    results = self._compute_results()
    if self._limit and self._emitted >= abs(self._limit):
        raise StopIteration
    position = self._skip + self._emitted
    if position >= len(results):
        raise StopIteration
    self._emitted += 1
    document_class = self.collection.codec_options.document_class
    return _cast_document_class(results[position], document_class)  # type: ignore[no-untyped-call]


_MockCursor.__next__ = _cursor_next  # type: ignore[method-assign]
_MockCursor.next = _cursor_next


class _Wrapper:
    """Holds the mongomock-ng object that a facade class forwards to, and the durable store if any."""

    def __init__(self, sync: Any, durable: DurableServerStore | None = None) -> None:
        self._sync = sync
        self._durable = durable

    async def _commit(self) -> None:
        """On the durable store: return once what was just done (and everything before) is on disk."""
        if self._durable is not None:
            await self._durable.commit()

    def _namespace(self) -> str:
        """What a trace names this object by (``db.collection`` for a collection)."""
        return str(getattr(self._sync, "full_name", None) or getattr(self._sync, "name", ""))

    async def _applying(self, name: str) -> None:
        """Suspend as a driver does before operation ``name`` is applied, and trace it."""
        await standin_timing.before()
        if standin_timing.tracing_active():
            standin_timing.applied(self._namespace(), name)


class _Forward(Generic[_R]):
    """Descriptor: an ``async`` method forwarding to the mongomock-ng method of the same name.

    Drops ``session=`` and returns the result through ``_aware``; ``_R`` is PyMongo's return type.
    """

    _name: str

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(
        self, instance: _Wrapper, owner: type | None = None
    ) -> Callable[..., Coroutine[Any, Any, _R]]: ...

    def __get__(
        self, instance: _Wrapper | None, owner: type | None = None
    ) -> Self | Callable[..., Coroutine[Any, Any, _R]]:
        if instance is None:
            return self
        method = getattr(instance._sync, self._name)
        durable = instance._durable
        name = self._name

        async def forward(*args: Any, **kwargs: Any) -> _R:
            kwargs.pop("session", None)
            await standin_timing.before()  # the request on its way
            if standin_timing.tracing_active():
                standin_timing.applied(instance._namespace(), name)
            if durable is None:
                result: _R = _aware(method(*args, **kwargs))
            else:
                try:
                    result = _aware(method(*args, **kwargs))
                finally:  # a write that failed part way (a bulk's duplicate key) keeps what it did
                    await durable.commit()  # acknowledged only once on disk, as before
            await standin_timing.after()  # the reply on its way
            return result

        forward.__name__ = forward.__qualname__ = self._name
        return forward


class InMemoryCursor(_Wrapper):
    """Async cursor over a mongomock-ng cursor (``find``) or command cursor (``aggregate``...)."""

    def __init__(self, sync: Any, durable: DurableServerStore | None = None, namespace: str = "",
                 name: str = "find") -> None:
        super().__init__(sync, durable)
        self._started = False
        self._name = name
        self._ns = namespace
        self._left_in_batch = 0  # documents to read before the next batch (a suspension)

    def _namespace(self) -> str:
        return self._ns

    def _option(self, name: str, *args: Any) -> Self:
        if self._started:
            raise InvalidOperation("cannot set options after executing query")
        getattr(self._sync, name)(*args)
        return self

    def sort(self, key_or_list: Any, direction: int | str | None = None) -> Self:
        return self._option("sort", key_or_list, direction)

    def skip(self, skip: int) -> Self:
        return self._option("skip", skip)

    def limit(self, limit: int) -> Self:
        return self._option("limit", limit)

    def _iter(self) -> Iterator[Document]:
        self._started = True
        return (_aware(doc) for doc in self._sync)

    def __aiter__(self) -> Self:
        return self

    async def _next_batch(self, first: bool) -> None:
        await self._applying(self._name if first else "getMore")
        self._left_in_batch = standin_timing.BATCH_SIZE

    async def __anext__(self) -> Document:
        first = not self._started
        self._started = True
        if first or self._left_in_batch <= 0:
            await self._next_batch(first)
        self._left_in_batch -= 1
        try:
            doc: Document = _aware(next(self._sync))
        except StopIteration:
            raise StopAsyncIteration from None
        finally:
            if first:  # a read expires TTL documents, and must not return what could still be lost
                await self._commit()
        return doc

    async def next(self) -> Document:
        return await self.__anext__()

    async def to_list(self, length: int | None = None) -> list[Document]:
        if length is not None and length < 1:
            raise ValueError("to_list() length must be greater than 0")
        first = not self._started
        self._started = True
        docs: list[Document] = []
        if first or self._left_in_batch <= 0:
            await self._next_batch(first)
        for doc in self._iter():
            docs.append(doc)
            if length is not None and len(docs) >= length:
                break
            self._left_in_batch -= 1
            if self._left_in_batch <= 0:
                await self._next_batch(False)
        await self._commit()
        await standin_timing.after()
        return docs

    async def close(self) -> None:
        self._sync.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class InMemoryCollection(_Wrapper):
    """The ``AsyncCollection`` subset; same arguments and PyMongo result types."""

    insert_one = _Forward[InsertOneResult]()
    insert_many = _Forward[InsertManyResult]()
    find_one = _Forward[Document | None]()
    update_one = _Forward[UpdateResult]()
    update_many = _Forward[UpdateResult]()
    replace_one = _Forward[UpdateResult]()
    delete_one = _Forward[DeleteResult]()
    delete_many = _Forward[DeleteResult]()
    count_documents = _Forward[int]()
    estimated_document_count = _Forward[int]()
    find_one_and_update = _Forward[Document | None]()
    find_one_and_delete = _Forward[Document | None]()
    find_one_and_replace = _Forward[Document | None]()
    create_index = _Forward[str]()
    create_indexes = _Forward[list[str]]()
    drop_index = _Forward[None]()
    drop_indexes = _Forward[None]()
    index_information = _Forward[dict[str, Any]]()
    bulk_write = _Forward[BulkWriteResult]()
    distinct = _Forward[list[Any]]()
    drop = _Forward[None]()

    def __init__(self, sync: Any, database: InMemoryDatabase) -> None:
        super().__init__(sync, database._durable)
        self._database = database

    @property
    def name(self) -> str:
        name: str = self._sync.name
        return name

    @property
    def full_name(self) -> str:
        return f"{self._database.name}.{self.name}"

    @property
    def database(self) -> InMemoryDatabase:
        return self._database

    def find(self, *args: Any, session: Any = None, **kwargs: Any) -> InMemoryCursor:
        return InMemoryCursor(self._sync.find(*args, **kwargs), self._durable, self.full_name)

    async def aggregate(self, pipeline: list[Mapping[str, Any]], **kwargs: Any) -> InMemoryCursor:
        kwargs.pop("session", None)
        await self._applying("aggregate")
        try:
            return InMemoryCursor(self._sync.aggregate(pipeline, **kwargs), self._durable, self.full_name,
                                  "aggregate.getMore")
        finally:  # $out, $merge
            await self._commit()

    async def list_indexes(self, session: Any = None, **kwargs: Any) -> InMemoryCursor:
        await self._applying("list_indexes")
        return InMemoryCursor(self._sync.list_indexes(), self._durable, self.full_name, "list_indexes.getMore")

    def _namespace(self) -> str:
        return self.full_name


class InMemoryDatabase(_Wrapper):
    """The ``AsyncDatabase`` subset: collections by item, attribute or ``get_collection``."""

    command = _Forward[dict[str, Any]]()
    list_collection_names = _Forward[list[str]]()

    def __init__(self, sync: Any, client: InMemoryMongoClient) -> None:
        super().__init__(sync, client._durable)
        self._client = client

    @property
    def name(self) -> str:
        name: str = self._sync.name
        return name

    @property
    def client(self) -> InMemoryMongoClient:
        return self._client

    def get_collection(self, name: str, **options: Any) -> InMemoryCollection:
        """``codec_options``, ``write_concern``... are accepted and ignored."""
        return InMemoryCollection(self._sync.get_collection(name), self)

    def __getitem__(self, name: str) -> InMemoryCollection:
        return self.get_collection(name)

    def __getattr__(self, name: str) -> InMemoryCollection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get_collection(name)

    async def create_collection(self, name: str, session: Any = None, **kwargs: Any) -> InMemoryCollection:
        await self._applying("create_collection")
        try:
            return InMemoryCollection(self._sync.create_collection(name, **kwargs), self)
        finally:
            await self._commit()

    async def drop_collection(
        self, name_or_collection: str | InMemoryCollection, session: Any = None
    ) -> None:
        name = name_or_collection if isinstance(name_or_collection, str) else name_or_collection.name
        await self._applying("drop_collection")
        self._sync.drop_collection(name)
        await self._commit()


class InMemorySession:
    """No-op-ish ``AsyncClientSession``.

    Operations ignore the session, and a transaction does NOT roll back: writes made inside it stay even
    when it aborts. (mongomock-ng's own rollback snapshots whole collections, so aborting would also undo
    the writes that other tasks made meanwhile, which is worse than not rolling back.) Code that relies
    on rollback must be tested against a real replica set.
    """

    def __init__(self, client: InMemoryMongoClient) -> None:
        self._client = client
        self._in_transaction = False
        self._ended = False

    @property
    def client(self) -> InMemoryMongoClient:
        return self._client

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    @property
    def has_ended(self) -> bool:
        return self._ended

    async def start_transaction(self, *args: Any, **kwargs: Any) -> AbstractAsyncContextManager[Self]:
        if self._ended:
            raise InvalidOperation("Cannot use ended session")
        if self._in_transaction:
            raise InvalidOperation("Transaction already in progress")
        self._in_transaction = True
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Self]:
        try:
            yield self
        except BaseException:
            if self._in_transaction:
                await self.abort_transaction()
            raise
        if self._in_transaction:
            await self.commit_transaction()

    async def commit_transaction(self) -> None:
        if not self._in_transaction:
            raise InvalidOperation("No transaction started")
        self._in_transaction = False

    async def abort_transaction(self) -> None:
        if not self._in_transaction:
            raise InvalidOperation("No transaction started")
        self._in_transaction = False

    async def with_transaction(
        self, callback: Callable[[Self], Awaitable[_T]], *args: Any, **kwargs: Any
    ) -> _T:
        async with await self.start_transaction():
            return await callback(self)

    async def end_session(self) -> None:
        self._in_transaction = False
        self._ended = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.end_session()


class InMemoryMongoClient(_Wrapper):
    """The ``AsyncMongoClient`` subset, holding its data in memory for its whole lifetime; with a
    ``DurableServerStore``, also on disk (the durable embedded store)."""

    list_database_names = _Forward[list[str]]()

    def __init__(self, durable: DurableServerStore | None = None) -> None:
        super().__init__(mongomock_ng.MongoClient(tz_aware=True, _store=durable), durable)

    @property
    def durable(self) -> bool:
        return self._durable is not None

    def release(self) -> None:
        """Close the durable store's files (everything acknowledged is on disk already); the client
        must not be used afterwards. Nothing to do in memory."""
        if self._durable is not None:
            self._durable.close()

    def get_database(self, name: str | None = None, **options: Any) -> InMemoryDatabase:
        """``codec_options``, ``write_concern``... are accepted and ignored."""
        return InMemoryDatabase(self._sync.get_database(name), self)

    def __getitem__(self, name: str) -> InMemoryDatabase:
        return self.get_database(name)

    def __getattr__(self, name: str) -> InMemoryDatabase:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get_database(name)

    async def drop_database(self, name_or_database: str | InMemoryDatabase, session: Any = None) -> None:
        name = name_or_database if isinstance(name_or_database, str) else name_or_database.name
        await self._applying("drop_database")
        self._sync.drop_database(name)
        await self._commit()

    def start_session(self, *args: Any, **kwargs: Any) -> Any:
        """An ``InMemorySession``, typed ``Any`` so that code typed against ``MongoClientLike`` can pass it
        as ``session=`` where PyMongo's signatures expect an ``AsyncClientSession``."""
        return InMemorySession(self)

    async def close(self) -> None:
        """Keep the data: it lives nowhere else, and in-process services share this client."""
