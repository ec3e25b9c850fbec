"""The durable embedded store: mongomock-ng's in-memory stores, with every change journaled to disk.

mongomock-ng keeps a collection's documents in one dict keyed by ``_id`` (``CollectionStore``); every
write of every path ends as a set or a delete on it (its own code, ``shared.memory_mongo_fast``'s fast
paths, TTL expiry), and a collection's indexes and options change only through its store's methods.
So the stores below note what changed (ids, index definitions, drops) and, when an operation of the
async facade (``shared.memory_mongo``) completes, ``DurableServerStore.commit`` journals the *state*
that each noted id has now (the document, or its absence) and waits until the journal is on disk.
Records are states, not operations: replaying one twice, or on a snapshot that already holds it, is
harmless, which is what makes the snapshot + truncate sequence below crash-safe.

Files, one set per database in the store's directory: ``<db>.snapshot`` (everything, written
atomically), ``<db>.journal`` (changes since, appended), ``<db>.lock``. Opening a database loads the
snapshot, replays the journal up to its first torn frame and, if the journal held anything, writes a
new snapshot and empties the journal. While running, a journal that grows past
``max(COMPACT_MIN_BYTES, snapshot size)`` is folded into a new snapshot the same way.
"""

from __future__ import annotations

import gc
import os
import re
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bson
from mongomock_ng import helpers as _mm_helpers
from mongomock_ng.store import CollectionStore, DatabaseStore, ServerStore

from shared.journal import Journal, frame, iter_frames, lock_file, write_atomically
from shared.memory_mongo_index import IndexedDocuments

__all__ = ["COMPACT_MIN_BYTES", "DurableServerStore"]

Document = dict[str, Any]

COMPACT_MIN_BYTES = 64 << 20
# Documents per snapshot frame are cut at about this many bytes.
_SNAPSHOT_FRAME_BYTES = 4 << 20
_DB_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,120}$")
_OPS = bson.encode({"k": "ops"})

_hashdict: Any = _mm_helpers.hashdict
_set = OrderedDict.__setitem__
_pop = OrderedDict.pop


def _key(doc_id: Any) -> Any:
    """The key mongomock-ng stores a document under: its ``_id``, hashable."""
    return _hashdict(doc_id) if isinstance(doc_id, dict) else doc_id


class _Documents(IndexedDocuments):
    """A collection's documents (indexed), telling their collection which ids a write touched."""

    def __init__(self, owner: DurableCollectionStore) -> None:
        super().__init__()
        self._owner = owner

    def __setitem__(self, key: Any, value: Document) -> None:
        IndexedDocuments.__setitem__(self, key, value)
        self._owner.changed(key)

    def __delitem__(self, key: Any) -> None:
        IndexedDocuments.__delitem__(self, key)
        self._owner.changed(key)

    # Nothing in mongomock-ng changes the documents otherwise; refuse rather than miss a change.
    def _untracked(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("durable store: change documents by item only")

    pop = popitem = clear = update = setdefault = move_to_end = _untracked

    def __deepcopy__(self, memo: dict[int, Any]) -> IndexedDocuments:
        raise NotImplementedError("durable store: no copies of the documents")


class DurableCollectionStore(CollectionStore):
    def __init__(self, name: str, database: DurableDatabaseStore) -> None:
        self._database = database
        self.dirty: dict[Any, None] = {}
        self.meta_changed = False
        self.dropped = False
        super().__init__(name)  # type: ignore[no-untyped-call]
        self._documents = _Documents(self)
        self.meta_changed = False

    # -- noting changes
    def changed(self, key: Any) -> None:
        self.dirty[key] = None
        self._database.touch(self)

    def _meta_change(self) -> None:
        self.meta_changed = True
        self._database.touch(self)

    @property
    def indexes(self) -> dict[str, Any]:
        indexes: dict[str, Any] = self.__dict__["indexes"]
        return indexes

    @indexes.setter
    def indexes(self, value: dict[str, Any]) -> None:  # drop_indexes() assigns {}
        self.__dict__["indexes"] = value
        self._meta_change()

    def create(self, **options: Any) -> None:
        super().create(**options)  # type: ignore[no-untyped-call]
        self._meta_change()

    def create_index(self, index_name: str, index_dict: dict[str, Any]) -> None:
        super().create_index(index_name, index_dict)  # type: ignore[no-untyped-call]
        self._meta_change()

    def drop_index(self, index_name: str) -> None:
        super().drop_index(index_name)  # type: ignore[no-untyped-call]
        self._meta_change()

    def drop(self) -> None:
        super().drop()  # type: ignore[no-untyped-call]
        self._documents = _Documents(self)
        self.dirty.clear()
        self.dropped = True
        self._meta_change()

    # -- journal records
    def meta(self) -> Document:
        return {"indexes": [[name, index] for name, index in self.indexes.items()],
                "options": self.options, "forced": self._is_force_created}

    def apply_meta(self, meta: Document) -> None:
        indexes = {}
        for name, index in meta["indexes"]:
            index["key"] = [tuple(part) for part in index["key"]]  # BSON has no tuples
            indexes[name] = index
        self.__dict__["indexes"] = indexes
        self._ttl_indexes = {name: index for name, index in indexes.items()
                             if index.get("expireAfterSeconds") is not None}
        self.options = meta["options"]
        self._is_force_created = meta["forced"]

    def reset(self) -> None:
        """Empty, as dropped, without noting it (replay)."""
        CollectionStore.drop(self)  # type: ignore[no-untyped-call]
        self.__dict__["indexes"] = {}
        self._documents = _Documents(self)

    def records(self) -> Iterator[bytes]:
        """The records of what changed since the last call: states, in the order of the changes."""
        name = self.name
        if self.dropped:
            yield bson.encode({"c": name, "drop": True})
        if self.meta_changed:
            yield bson.encode({"c": name, "meta": self.meta()})
        documents = self._documents
        for key in self.dirty:
            doc = documents.get(key)
            yield bson.encode({"c": name, "del": key} if doc is None else {"c": name, "put": doc})
        self.dirty.clear()
        self.meta_changed = self.dropped = False

    def snapshot_frames(self) -> Iterator[bytes]:
        yield frame([_OPS, bson.encode({"c": self.name, "meta": self.meta()})])
        header = bson.encode({"k": "docs", "c": self.name})
        chunk, size = [header], 0
        for doc in self._documents.values():
            encoded = bson.encode(doc)
            chunk.append(encoded)
            size += len(encoded)
            if size >= _SNAPSHOT_FRAME_BYTES:
                yield frame(chunk)
                chunk, size = [header], 0
        if len(chunk) > 1:
            yield frame(chunk)


class DurableDatabaseStore(DatabaseStore):
    def __init__(self, name: str, directory: Path, server: DurableServerStore) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not _DB_NAME.match(name):
            raise ValueError(f"durable store: database name {name!r} cannot name a file")
        self.name = name
        self._server = server
        self._touched: dict[DurableCollectionStore, None] = {}
        self._snapshot_path = directory / f"{name}.snapshot"
        self._lock = lock_file(directory / f"{name}.lock", f"database {name} in {directory}")
        self.snapshot_size = 0
        self._load()
        self.journal = Journal(directory / f"{name}.journal", server.executor)
        if self.journal.size:
            self.fold_journal()

    def __getitem__(self, col_name: str) -> DurableCollectionStore:
        collections: dict[str, DurableCollectionStore] = self._collections
        col = collections.get(col_name)
        if col is None:
            col = collections[col_name] = DurableCollectionStore(col_name, self)
        return col

    def rename(self, name: str, new_name: str) -> None:
        # Journaled as the old collection dropped and the new one written whole.
        old = self[name]
        col = self._collections[new_name] = DurableCollectionStore(new_name, self)
        col.apply_meta(old.meta())
        for key, doc in old._documents.items():
            col._documents[key] = doc
        col.dropped = True
        col._meta_change()
        old.drop()
        del self._collections[name]

    def touch(self, col: DurableCollectionStore) -> None:
        self._touched[col] = None
        self._server.touch(self)

    def stage(self) -> None:
        """Queue in the journal, as one frame, the changes noted since the last call."""
        touched, self._touched = self._touched, {}
        records = [record for col in touched for record in col.records()]
        if records:
            self.journal.append(frame([_OPS, *records]))

    # -- files
    def _load(self) -> None:
        # Millions of new dicts would set off the cyclic GC over and over (all of them survive it):
        # off while loading, as it costs about half the load time otherwise.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._load_files()
        finally:
            if enabled:
                gc.enable()

    def _load_files(self) -> None:
        for path in (self._snapshot_path, self._snapshot_path.with_suffix(".journal")):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            for records in iter_frames(data):  # stops at a torn journal tail
                self._apply(records)
            if path == self._snapshot_path:
                self.snapshot_size = len(data)
        for col in self._collections.values():
            col._documents.invalidate()  # written directly, behind the indexes
            col.dirty.clear()
            col.meta_changed = col.dropped = False
        self._touched.clear()

    def _apply(self, records: list[Document]) -> None:
        header, *rest = records
        if header["k"] == "docs":
            documents = self[header["c"]]._documents
            for doc in rest:
                _set(documents, _key(doc["_id"]), doc)
            return
        for record in rest:
            col = self[record["c"]]
            if "put" in record:
                doc = record["put"]
                _set(col._documents, _key(doc["_id"]), doc)
            elif "del" in record:
                _pop(col._documents, _key(record["del"]), None)
            elif "meta" in record:
                col.apply_meta(record["meta"])
            elif "drop" in record:
                col.reset()

    def write_snapshot(self) -> None:
        def frames() -> Iterator[bytes]:
            for col in list(self._collections.values()):
                if col.is_created:
                    yield from col.snapshot_frames()

        self.snapshot_size = write_atomically(self._snapshot_path, frames())

    def fold_journal(self) -> None:
        """A new snapshot holding everything, then an empty journal (a crash in between replays the
        journal on the new snapshot: same result)."""
        self.write_snapshot()
        self.journal.truncate()

    def maybe_compact(self) -> None:
        if self.journal.size > max(COMPACT_MIN_BYTES, self.snapshot_size) and self.journal.idle:
            self.fold_journal()

    def close(self) -> None:
        self.journal.close()
        os.close(self._lock)


class DurableServerStore(ServerStore):
    """mongomock-ng's server store, its databases kept in ``directory`` (opened on first use)."""

    def __init__(self, directory: Path) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="journal")
        self._touched: dict[DurableDatabaseStore, None] = {}

    def __getitem__(self, db_name: str) -> DurableDatabaseStore:
        databases: dict[str, DurableDatabaseStore] = self._databases
        db = databases.get(db_name)
        if db is None:
            db = databases[db_name] = DurableDatabaseStore(db_name, self.directory, self)
        return db

    def touch(self, db: DurableDatabaseStore) -> None:
        self._touched[db] = None

    async def commit(self) -> None:
        """Journal what the operation that just completed changed, and return once it is on disk,
        along with every change made before (so that nothing read here can be lost either)."""
        if self._touched:
            touched, self._touched = self._touched, {}
            for db in touched:
                db.stage()
        databases: dict[str, DurableDatabaseStore] = self._databases
        for db in list(databases.values()):
            if db.journal.pending:
                await db.journal.durable()
                db.maybe_compact()

    def close(self) -> None:
        """Release the files (everything acknowledged is already on disk)."""
        databases: dict[str, DurableDatabaseStore] = self._databases
        for db in databases.values():
            db.close()
        databases.clear()
        self.executor.shutdown(wait=True)
