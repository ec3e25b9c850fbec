"""Hash indexes for the in-memory stand-in (``shared.memory_mongo``) and the durable store built on it.

mongomock-ng answers every query, and checks every unique index on every write, by scanning all the
documents of the collection: a ledger of a million invoices cost a million comparisons for each
invoice recorded. Here the indexes that the repositories declare (``create_index``) are kept, per
collection, as trees of dicts: one level per indexed field, the leaves the ids of the documents
holding those values. They are used

* by the unique check (``unique_candidates``): only the documents whose key equals the new one's
  are compared, under mongomock-ng's own rules (partial filter, sparse, arrays);
* by reads, updates, deletes and counts whose filter fixes an index's leading fields by equality or
  ``$in`` (``candidates``): only the documents under those values are matched against the filter.

An index is only a pre-filter: every candidate still goes through the full matcher, so the answer
is the scan's as long as the candidates include every document the scan would match. They do
because mongomock-ng compares values with Python's ``==`` and the trees are keyed by the values
themselves (``==`` and ``hash`` agree for the types kept: ``1``, ``1.0`` and ``True`` share a key,
and the matcher then decides). A document whose indexed value is of any other kind (an array, a
sub-document, NaN, a path through a non-document...) is "odd": it is a candidate of every query on
that index. A missing field is keyed as ``None``, as ``{"f": None}`` matches it. Candidates come
back in the order the scan would give (the order of first insertion into the collection's dict).

The trees live in the collection's document dict (``IndexedDocuments``), which every write of
mongomock-ng, of the fast paths and of the durable store goes through (set or delete of an item).
They are built from the documents on first use, and again whenever the collection's index
definitions are no longer the very ones they were built from (created, dropped, reloaded).
"""

from __future__ import annotations

import datetime as dt
import gc
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from operator import itemgetter
from typing import Any

from bson import ObjectId
from mongomock_ng.store import CollectionStore

__all__ = ["ENABLED", "IndexedDocuments", "candidates", "install", "stats", "unique_candidates"]

Document = dict[str, Any]

# Tests compare the indexed answers with the scan's by turning this off.
ENABLED = True


class _Stats:
    """How many documents the indexes handed out as candidates (tests and benchmarks read it)."""

    def __init__(self) -> None:
        self.candidates = 0
        self.builds = 0


stats = _Stats()

_MISSING: Any = object()
_ODD: Any = object()  # a value the trees cannot key: the document is a candidate of every query
# Types whose ``==`` and ``hash`` agree, and which mongomock-ng compares with ``==``.
_KEYED = frozenset({str, int, bool, float, type(None), dt.datetime, ObjectId})
# Index directions whose index can answer equality (not text, 2dsphere...).
_ORDERED = (1, -1)
# Past this many combinations of ``$in`` values, a filter is not worth walking a tree for.
_MAX_COMBINATIONS = 1024


class _Bucket(dict[Any, None]):
    """A leaf holding more than one id (a leaf holding one holds the id itself)."""


def _keyed(value: Any) -> Any:
    """``value`` as a tree key, or ``_ODD``."""
    kind = type(value)
    if kind not in _KEYED or (kind is float and value != value):
        return _ODD
    return value


def _value(doc: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    """The key of ``doc`` at a (dotted) field: a missing field is ``None``; a path through anything
    but documents, or a value of another type than ``_KEYED``, is ``_ODD``."""
    value: Any = doc
    for part in parts:
        if type(value) is not dict:
            return _ODD
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return None
    return _keyed(value)


class _Tree:
    """One index: nested dicts, one level per field, leaves of ids; plus the odd documents."""

    def __init__(self, fields: tuple[str, ...], positions: tuple[int, ...]) -> None:
        self.fields = fields
        self.positions = positions  # where each field's value is in a document's values
        # the tree's key of a document's values
        self.key: Callable[[tuple[Any, ...]], tuple[Any, ...]] = (
            itemgetter(*positions) if len(positions) > 1 else lambda values: (values[positions[0]],))
        self.root: dict[Any, Any] = {}
        self.odd: dict[Any, None] = {}

    def add(self, doc_id: Any, values: tuple[Any, ...], odd: bool = True) -> None:
        """File ``doc_id`` under its values; ``odd``: whether any of them may be ``_ODD``."""
        key = self.key(values)
        if odd and _ODD in key:
            self.odd[doc_id] = None
            return
        node = self.root
        for value in key[:-1]:
            child = node.get(value)
            if child is None:
                child = node[value] = {}
            node = child
        last = key[-1]
        leaf = node.get(last, _MISSING)
        if leaf is _MISSING:
            node[last] = doc_id
        elif type(leaf) is _Bucket:
            leaf[doc_id] = None
        else:
            node[last] = _Bucket({leaf: None, doc_id: None})

    def remove(self, doc_id: Any, values: tuple[Any, ...]) -> None:
        key = self.key(values)
        if _ODD in key:
            del self.odd[doc_id]
            return
        path = [self.root]
        for value in key[:-1]:
            path.append(path[-1][value])
        node, last = path[-1], key[-1]
        leaf = node[last]
        if type(leaf) is _Bucket:
            del leaf[doc_id]
            if len(leaf) > 1:
                return
            if leaf:
                node[last] = next(iter(leaf))
                return
        del node[last]
        for depth in range(len(path) - 1, 0, -1):  # prune the levels left empty
            if path[depth]:
                break
            del path[depth - 1][key[depth - 1]]

    def ids(self, fixed: list[list[Any]]) -> list[Any]:
        """Ids of the documents whose leading fields take one of the given values each (plus the odd)."""
        nodes: list[Any] = [self.root]
        for values in fixed:
            nodes = [node[value] for node in nodes for value in values if value in node]
        found: list[Any] = []
        depth = len(self.fields) - len(fixed)
        for node in nodes:
            _collect(node, depth, found)
        found.extend(self.odd)
        return found


def _collect(node: Any, depth: int, found: list[Any]) -> None:
    if depth == 0:
        if type(node) is _Bucket:
            found.extend(node)
        else:
            found.append(node)
        return
    for child in node.values():
        _collect(child, depth - 1, found)


def _fields(definition: Mapping[str, Any]) -> tuple[str, ...] | None:
    key = definition.get("key")
    if not key or any(direction not in _ORDERED for _, direction in key):
        return None
    return tuple(name for name, _ in key)


class _Indexes:
    """The trees of one collection's indexes, built from one set of definitions."""

    def __init__(self, definitions: Mapping[str, Any], documents: Iterable[tuple[Any, Document]]) -> None:
        stats.builds += 1
        self.definitions = list(definitions.values())  # held, so that identities stay unique
        wanted: dict[tuple[str, ...], None] = {}
        for definition in self.definitions:
            fields = _fields(definition)
            if fields is not None:
                wanted[fields] = None
        # An index that is a prefix of another is answered by the longer one's tree.
        kept = [f for f in wanted if not any(len(g) > len(f) and g[:len(f)] == f for g in wanted)]
        paths: dict[str, int] = {}
        for fields in kept:
            for name in fields:
                paths.setdefault(name, len(paths))
        # (name, None) for a top-level field, (name, parts) for a dotted one
        self.paths = [(name, tuple(name.split(".")) if "." in name else None) for name in paths]
        self.trees = [_Tree(fields, tuple(1 + paths[name] for name in fields)) for fields in kept]
        # id -> (seq, value of each path): the order of first insertion, and what the trees hold
        self.meta: dict[Any, tuple[Any, ...]] = {}
        self.counter = 0
        # Millions of new tuples and dicts, all kept: the cyclic GC would run over and over for nothing.
        enabled = gc.isenabled()
        gc.disable()
        try:
            for doc_id, doc in documents:
                self.put(doc_id, doc)
        finally:
            if enabled:
                gc.enable()

    def built_from(self, definitions: Mapping[str, Any]) -> bool:
        held = self.definitions
        return len(definitions) == len(held) and all(a is b for a, b in zip(definitions.values(), held, strict=True))

    def put(self, doc_id: Any, doc: Document) -> None:
        old = self.meta.get(doc_id)
        if old is None:
            self.counter += 1
            seq = self.counter
        else:
            seq = old[0]
        values = self._values(seq, doc)
        if old is not None:
            if old == values and all(type(a) is type(b) for a, b in zip(old, values, strict=True)):
                return
            for tree in self.trees:
                tree.remove(doc_id, old)
        odd = _ODD in values
        for tree in self.trees:
            tree.add(doc_id, values, odd)
        self.meta[doc_id] = values

    def _values(self, seq: int, doc: Document) -> tuple[Any, ...]:
        """``seq`` and the document's key at each path (see ``_value``)."""
        values: list[Any] = [seq]
        for name, parts in self.paths:
            # a missing top-level field is None, as a null one: both are keyed None
            value = doc.get(name) if parts is None else _value(doc, parts)
            kind = type(value)
            values.append(value if kind is str or (kind in _KEYED and not (kind is float and value != value))
                          else _ODD)
        return tuple(values)

    def remove(self, doc_id: Any) -> None:
        old = self.meta.pop(doc_id, None)
        if old is not None:
            for tree in self.trees:
                tree.remove(doc_id, old)

    def ordered(self, ids: list[Any]) -> list[Any]:
        """``ids`` once each, in the order of the collection (the scan's)."""
        meta = self.meta
        unique = dict.fromkeys(ids)
        if len(unique) < 2:
            return list(unique)
        return sorted(unique, key=lambda i: meta[i][0])

    def for_filter(self, filter: Mapping[str, Any]) -> list[Any] | None:
        """Candidate ids for ``filter`` through the tree whose leading fields it fixes most; None if
        it fixes none."""
        best: tuple[_Tree, list[list[Any]]] | None = None
        for tree in self.trees:
            fixed: list[list[Any]] = []
            combinations = 1
            for name in tree.fields:
                values = _wanted(filter.get(name, _MISSING))
                if values is None:
                    break
                combinations *= max(1, len(values))
                if combinations > _MAX_COMBINATIONS:
                    break
                fixed.append(values)
            if fixed and (best is None or len(fixed) > len(best[1])):
                best = (tree, fixed)
        if best is None:
            return None
        return self.ordered(best[0].ids(best[1]))

    def for_entries(self, fields: tuple[str, ...], entries: list[tuple[Any, ...]]) -> list[Any] | None:
        """Candidate ids of the documents whose key on ``fields`` may equal one of ``entries``."""
        tree = next((t for t in self.trees if t.fields[:len(fields)] == fields), None)
        if tree is None:
            return None
        found: list[Any] = []
        for entry in entries:
            if any(_keyed(value) is _ODD for value in entry):
                return None
            found.extend(tree.ids([[value] for value in entry]))
        return self.ordered(found)


def _wanted(condition: Any) -> list[Any] | None:
    """The values a filter's condition on one field allows when it is an equality (``v``,
    ``{"$eq": v}``, ``{"$in": [...]}``) on keyable values; None for any other condition."""
    if condition is _MISSING:
        return None
    if type(condition) is dict:
        if len(condition) != 1:
            return None
        operator, operand = next(iter(condition.items()))
        if operator == "$eq":
            return None if _keyed(operand) is _ODD else [operand]
        if operator == "$in" and type(operand) in (list, tuple):
            if any(_keyed(value) is _ODD for value in operand):
                return None
            return list(operand)
        return None
    return None if _keyed(condition) is _ODD else [condition]


def _untracked(name: str) -> Any:
    """``OrderedDict``'s method ``name``, which changes the documents behind the trees: forget them."""
    method = getattr(OrderedDict, name)

    def untracked(self: IndexedDocuments, *args: Any, **kwargs: Any) -> Any:
        self._ix = None
        return method(self, *args, **kwargs)

    untracked.__name__ = name
    return untracked


class IndexedDocuments(OrderedDict[Any, Document]):
    """A collection's documents by ``_id`` (mongomock-ng's ``CollectionStore._documents``), keeping
    the collection's index trees up to date on every set and delete."""

    _ix: _Indexes | None = None

    def __setitem__(self, key: Any, value: Document) -> None:
        OrderedDict.__setitem__(self, key, value)
        if self._ix is not None:
            self._ix.put(key, value)

    def __delitem__(self, key: Any) -> None:
        OrderedDict.__delitem__(self, key)
        if self._ix is not None:
            self._ix.remove(key)

    def invalidate(self) -> None:
        """Forget the trees (documents changed behind them); the next use builds them again."""
        self._ix = None

    pop = _untracked("pop")
    popitem = _untracked("popitem")
    clear = _untracked("clear")
    update = _untracked("update")
    setdefault = _untracked("setdefault")
    move_to_end = _untracked("move_to_end")

    def __deepcopy__(self, memo: dict[int, Any]) -> IndexedDocuments:
        import copy

        twin = IndexedDocuments()
        for key, value in self.items():
            OrderedDict.__setitem__(twin, copy.deepcopy(key, memo), copy.deepcopy(value, memo))
        return twin

    def indexes(self, definitions: Mapping[str, Any]) -> _Indexes:
        ix = self._ix
        if ix is None or not ix.built_from(definitions):
            ix = self._ix = _Indexes(definitions, self.items())
        return ix


def _indexes_of(store: Any) -> _Indexes | None:
    documents = store._documents
    if not ENABLED or not isinstance(documents, IndexedDocuments):
        return None
    return documents.indexes(store.indexes)


def candidates(store: Any, filter: Any) -> list[Document] | None:
    """The documents of ``store`` that may match ``filter``, in the scan's order, when an index
    narrows them down; None when the filter fixes no index's leading field (then scan)."""
    if type(filter) is not dict or not filter:
        return None
    ix = _indexes_of(store)
    if ix is None or not ix.trees:
        return None
    ids = ix.for_filter(filter)
    if ids is None:
        return None
    stats.candidates += len(ids)
    documents = store._documents
    return [documents[i] for i in ids]


def unique_candidates(
    store: Any, key: list[tuple[str, Any]], entries: list[tuple[Any, ...]]
) -> Iterator[Document] | None:
    """The documents of ``store`` whose entries in the index on ``key`` may overlap ``entries``
    (mongomock-ng's ``_compute_index_entries`` of a document being written); None: scan them all."""
    ix = _indexes_of(store)
    if ix is None:
        return None
    ids = ix.for_entries(tuple(name for name, _ in key), entries)
    if ids is None:
        return None
    stats.candidates += len(ids)
    documents = store._documents
    return (documents[i] for i in ids if i in documents)


_init_store: Any = CollectionStore.__init__
_drop_store: Any = CollectionStore.drop


def _store_init(self: Any, name: str) -> None:
    _init_store(self, name)
    self._documents = IndexedDocuments()


def _store_drop(self: Any) -> None:
    _drop_store(self)
    self._documents = IndexedDocuments()


def install() -> None:
    """Give every collection store (mongomock-ng's, and the durable store's through them) indexed documents."""
    CollectionStore.__init__ = _store_init  # type: ignore[method-assign]
    CollectionStore.drop = _store_drop  # type: ignore[method-assign]
