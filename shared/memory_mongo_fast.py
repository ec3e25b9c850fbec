"""Fast paths of the in-memory stand-in (``shared.memory_mongo``) for what repositories do most: read
and write documents by ``_id``.

mongomock-ng is general and slow: it scans every document for every query, deep-copies a document
before updating it, runs every filter and operator through its general machinery, and converts
datetimes with chains of isinstance checks; a guarded update by ``_id`` cost ~50 us, so a scheduler
tick of a few hundred jobs spent most of its time there. The paths below take the common shapes and
hand everything else to mongomock-ng's own code, so that results and errors stay the same:

* an exact ``_id`` (or ``_id: {$in: [...]}``) is looked up directly, like MongoDB's ``_id`` index,
  and the rest of the filter goes to a plain matcher first (``memory_mongo_match``);
* an update by ``_id`` that only touches top-level fields builds a new version of the document
  instead of updating a deep copy in place; ``$set``, plain ``$push`` and ``$pull`` of sub-documents
  by their fields are applied here, other operators by mongomock-ng on copies of their fields.
  Like MongoDB, it is a no-op only if the document's BSON is unchanged (``1`` -> ``1.0`` is a change);
* every document an update reaches gets its own copy of the update's values (mongomock-ng would share
  them between the documents of an update of many);
* ``bulk_write`` of such updates runs them directly, without mongomock-ng's bulk builder;
* a projection that includes top-level fields copies just those;
* datetime conversions of documents and filters take plain dicts, lists and scalars first.

``install()`` patches mongomock-ng's ``Collection`` (done once by ``shared.memory_mongo``).
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from mongomock_ng import filtering as _mm_filtering
from mongomock_ng import helpers as _mm_helpers
from mongomock_ng.collection import Collection as _MockCollection
from mongomock_ng.collection import _copy_field as _mm_copy_field
from mongomock_ng.collection import _set_updater as _mm_set_updater
from pymongo.errors import BulkWriteError, WriteError
from pymongo.results import BulkWriteResult

from shared import memory_mongo_index
from shared.memory_mongo_index import unique_candidates
from shared.memory_mongo_match import is_mapping, matches

__all__ = ["SCALARS", "install", "unique_candidates"]

Document = dict[str, Any]

# mongomock-ng's helpers are untyped
_filter_applies: Callable[[Mapping[str, Any], Mapping[str, Any]], bool] = _mm_filtering.filter_applies
_clone_document: Callable[[Any], Any] = _mm_helpers._clone_document
_set_updater: Callable[..., None] = _mm_set_updater
_copy_field: Callable[[Any, type], Any] = _mm_copy_field

# Values that every conversion below returns as they are.
SCALARS = frozenset({str, int, float, bool, type(None), bytes})

# --- datetimes ----------------------------------------------------------------------------------
# mongomock-ng converts every document written or read, and every filter, with two recursive helpers.
# The versions below take the common types first and hand anything else to the original, which
# recurses back into them (it looks itself up in its module): same results.
_naive_ms_slow: Callable[[Any], Any] = _mm_helpers.patch_datetime_awareness_in_document
_aware_utc_slow: Callable[[Any], Any] = _mm_helpers.make_datetime_timezone_aware_in_document


def _naive_ms(value: Any) -> Any:
    """What MongoDB stores: datetimes naive UTC, truncated to milliseconds (copies dicts and lists)."""
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind is dict:  # scalars inline: most values are, and a call for each costs more than the copy
        return {key: item if type(item) in SCALARS else _naive_ms(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in SCALARS else _naive_ms(item) for item in value]
    if kind is dt.datetime:  # as mongomock-ng does
        mongo_us = (value.microsecond // 1000) * 1000
        if value.tzinfo:
            return (value - value.utcoffset()).replace(tzinfo=None, microsecond=mongo_us)
        return value.replace(microsecond=mongo_us)
    return _naive_ms_slow(value)


def _aware_utc(value: Any) -> Any:
    """What a ``tz_aware`` client reads: stored datetimes with UTC attached (copies dicts and lists)."""
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind is dict:
        return {key: item if type(item) in SCALARS else _aware_utc(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) in SCALARS else _aware_utc(item) for item in value]
    return _aware_utc_slow(value)


# --- lookups by _id -----------------------------------------------------------------------------
_scan_documents: Callable[[Any, Any], Any] = _MockCollection._iter_documents


def _ids_of(filter: Any) -> list[Any] | None:
    """The ids an exact ``_id`` (or ``_id: {$in: [...]}``) in ``filter`` names; None if it names none."""
    wanted = filter.get("_id") if is_mapping(filter) else None
    if wanted is None:
        return None
    if is_mapping(wanted):
        values = wanted.get("$in") if len(wanted) == 1 else None
        if not isinstance(values, list | tuple) or not all(_is_id(v) for v in values):
            return None
        return list(values)
    return [wanted] if _is_id(wanted) else None


def _is_id(value: Any) -> bool:
    """Whether documents can be looked up by ``value`` as their ``_id`` (not a sub-document, nor an
    array: those match by their content; nor a regular expression: it matches the ids it fits)."""
    return type(value) is str or (isinstance(value, Hashable) and not isinstance(value, Mapping | list | re.Pattern))


def _iter_documents(self: Any, filter: Any) -> Any:
    """mongomock-ng scans every document for every query; like MongoDB's ``_id`` index, an exact
    ``_id`` (or ``_id: {$in: [...]}``) looks documents up directly, so lookups by id stay O(1); a
    filter that fixes the leading fields of a declared index matches only the documents under those
    values (``memory_mongo_index``)."""
    ids = _ids_of(filter)
    if ids is not None:
        return _lookup(self, filter, ids)
    store = self._store
    store._remove_expired_documents()
    found = memory_mongo_index.candidates(store, filter)
    if found is None:
        return _scan_documents(self, filter)
    if not found:
        _filter_applies(filter, {})  # what the scan of an empty collection does: a bad filter raises
    return (doc for doc in found if _matches(filter, doc))


def _lookup(self: Any, filter: Mapping[str, Any], ids: list[Any]) -> Any:
    store = self._store
    store._remove_expired_documents()  # what the store's own accessors do first
    # Read the store's dict directly: its accessors take a reader lock on every call, for threads the
    # stand-in never runs (and a single dict read is atomic under the GIL anyway).
    documents = store._documents
    found = [documents[i] for i in dict.fromkeys(ids) if i in documents]
    rest = {key: value for key, value in filter.items() if key != "_id"}  # _id is satisfied by the lookup
    return (doc for doc in found if not rest or _matches(rest, doc))


def _matches(filter: Mapping[str, Any], doc: Document) -> bool:
    """Whether ``doc`` matches ``filter``: the plain matcher's answer, else mongomock-ng's."""
    answer = matches(filter, doc)
    return _filter_applies(filter, doc) if answer is None else answer


# --- projections --------------------------------------------------------------------------------
_copy_only_fields_full: Callable[..., Any] = _MockCollection._copy_only_fields


def _copy_only_fields(self: Any, doc: Document, fields: Any, container: type, filter: Any = None) -> Any:
    """mongomock-ng parses the projection again for every document it copies; a projection that only
    includes top-level fields (``{"outbox": 1}``) copies them directly. Like mongomock-ng, ``_id``
    comes last."""
    included = _included_fields(fields) if container is dict else None
    if included is None:
        return _copy_only_fields_full(self, doc, fields, container, filter)
    names, with_id = included
    copy = {key: _copy_value(value) for key, value in doc.items() if key in names}
    if with_id and "_id" in doc:
        copy["_id"] = doc["_id"]
    return copy


def _included_fields(fields: Any) -> tuple[frozenset[str], bool] | None:
    """(fields, with ``_id``) of an inclusion of top-level fields, None for any other projection."""
    if type(fields) is not dict or not fields:
        return None
    with_id = fields.get("_id", 1)
    names = [name for name in fields if name != "_id"]
    if not _flag(with_id) or not (names or with_id == 1):  # {"_id": 0} excludes: all but the id
        return None
    if any("." in name or name.startswith("$") or not _flag(fields[name]) or fields[name] != 1 for name in names):
        return None
    return frozenset(names), with_id == 1


def _flag(value: Any) -> bool:
    return type(value) in (int, bool) and value in (0, 1)


def _copy_value(value: Any) -> Any:
    """A copy of a field's value as mongomock-ng makes it (immutable values are returned as they are)."""
    if type(value) in SCALARS or type(value) is dt.datetime:
        return value
    return _copy_field(value, dict)


# --- updates by _id -----------------------------------------------------------------------------
# Update operators that change nothing but the top-level fields they name (when no name has a dot).
_FIELD_OPERATORS = frozenset({"$set", "$unset", "$inc", "$push", "$pull", "$addToSet", "$setOnInsert"})
# Characters of a dotted or positional path (and the one BSON forbids in names).
_PATH_CHARS = frozenset(".$\0")
# Values BSON always encodes (what mongomock-ng's $set checks by encoding them); other values are
# checked as mongomock-ng does.
_BSON_SAFE = (type(None), bool, float, dt.datetime)
_INT64 = range(-(2**63), 2**63)


def _fields_touched(update: Any) -> list[str] | None:
    """The top-level fields an update document changes; None when it may reach any further (dotted
    or positional paths, ``_id``, ``$rename``, a replacement, a pipeline...), names a field twice (a
    conflict MongoDB rejects) or has an empty operator: mongomock-ng's full path decides those."""
    if not is_mapping(update) or not update:
        return None
    fields: list[str] = []
    for operator, changes in update.items():
        if operator not in _FIELD_OPERATORS or not is_mapping(changes) or not changes:
            return None
        for name in changes:
            if not isinstance(name, str) or not name or name == "_id" or not _PATH_CHARS.isdisjoint(name):
                return None
            fields.append(name)
    return fields if len(set(fields)) == len(fields) else None


def _by_id(self: Any, spec: Any, document: Any, multi: bool) -> list[Any] | None:
    """The ids an update takes the fast path for (see ``_update_documents``); None: the full path."""
    if _fields_touched(document) is None or self._store.options.get("validator"):
        return None
    ids = _ids_of(spec)
    return ids if ids is not None and (multi or len(ids) == 1) else None


_update_by_snapshot: Callable[..., dict[str, Any]] = _MockCollection._update_documents


def _update_documents(
    self: Any, spec: Any, document: Any, upsert: bool, multi: bool, sort: Any, session: Any = None,
    validate: bool = True,
) -> dict[str, Any]:
    """mongomock-ng deep-copies every matched document before updating it in place (to tell whether it
    changed and to restore it if the write fails). An update by ``_id`` that only touches top-level
    fields builds a new version of the document instead, sharing what it does not change; a write
    that fails (duplicate key) leaves the stored document as it was. Upserts that insert, sorts,
    validators and other updates take the full path."""
    ids = None if sort else _by_id(self, spec, document, multi)
    if ids is None:
        return _update_by_snapshot(self, spec, document, upsert, multi, sort, session, validate)
    matched = list(_lookup(self, spec, ids))
    if not matched and upsert:
        return _update_by_snapshot(self, spec, document, upsert, multi, sort, session, validate)
    modified = sum(_update_by_copy(self, doc, spec, document) for doc in matched)
    return {"connectionId": self.database.client._id, "err": None, "n": len(matched), "nModified": modified,
            "ok": 1, "upserted": None, "updatedExisting": bool(matched)}


def _update_by_copy(self: Any, stored: Document, spec: Any, document: Mapping[str, Mapping[str, Any]]) -> bool:
    """Apply ``document`` to a new version of ``stored``; store it if anything changed."""
    new = dict(stored)
    for operator, changes in document.items():
        native = _NATIVE_OPERATORS.get(operator)
        if native is None or not native(self, new, changes):
            for name in changes:  # mongomock-ng changes these fields in place: give it copies
                if name in new:
                    new[name] = _clone_document(new[name])
            self._apply_update_document(new, spec, {operator: changes}, False)
    if new == stored and _same_bson(new, stored):
        return False
    self._ensure_uniques(new)
    self._store._documents[new["_id"]] = new  # atomic under the GIL, see _lookup
    return True


_apply_update_shared: Callable[..., None] = _MockCollection._apply_update_document


def _apply_update_document(self: Any, existing: Document, spec: Any, document: Any, was_insert: bool) -> None:
    """mongomock-ng stores an update's values as they are (a sub-document ``$set``, ``$addToSet``,
    ``$push`` with modifiers...): the documents of an update of many would share them, and a later
    update of one of them in place would change the others. Each document gets its own copy."""
    _apply_update_shared(self, existing, spec, _clone_document(document), was_insert)


def _same_bson(a: Any, b: Any) -> bool:
    """Whether values that Python calls equal are the same to MongoDB, which tells an update from a
    no-op by comparing BSON bytes: 1 and 1.0, True and 1, 0.0 and -0.0, ``{a, b}`` and ``{b, a}`` are
    equal in Python, but setting one where the other is stored changes the document (and counts as
    modified; mongomock-ng stores the change and counts none)."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict or isinstance(a, Mapping):
        return list(a) == list(b) and all(_same_bson(a[key], b[key]) for key in a)
    if kind is list:
        return len(a) == len(b) and all(map(_same_bson, a, b))
    if kind is float:
        return struct.pack("<d", a) == struct.pack("<d", b)
    return bool(a == b)


# Each applies an operator to the new version of a document and says True, or declines (False,
# the document untouched) and mongomock-ng's own code applies it.

def _native_set(self: Any, doc: Document, changes: Mapping[str, Any]) -> bool:
    for name, value in changes.items():
        doc[name] = _set_value(self, name, value)
    return True


def _set_value(self: Any, name: str, value: Any) -> Any:
    """What ``$set`` stores: the value, checked to be BSON by mongomock-ng's own ``$set`` (which
    encodes it: skipped for values that always encode), and copied (a value set on many documents
    is not shared)."""
    if type(value) in _BSON_SAFE or (type(value) is int and value in _INT64) or (
            type(value) is str and value.isascii()):
        return value
    checked: Document = {}
    _set_updater(checked, name, value, codec_options=self.codec_options)
    return _clone_document(checked[name])


def _native_push(self: Any, doc: Document, changes: Mapping[str, Any]) -> bool:
    """Appends a value, or ``{"$each": [...]}`` alone, to an array or a missing field; modifiers and
    a field that is not an array (an error) are mongomock-ng's."""
    appended: dict[str, list[Any]] = {}
    for name, value in changes.items():
        current = doc.get(name, [])
        if not isinstance(current, list):
            return False
        if is_mapping(value) and "$each" in value:
            if set(value) != {"$each"} or not isinstance(value["$each"], list):
                return False
            appended[name] = current + [_clone_document(v) for v in value["$each"]]
        else:
            appended[name] = [*current, _clone_document(value)]
    doc.update(appended)
    return True


def _native_pull(self: Any, doc: Document, changes: Mapping[str, Any]) -> bool:
    """Removes the sub-documents that match a condition on their fields, as in ``{"$pull": {"outbox":
    {"msg_id": {"$in": [...]}}}}``. mongomock-ng removes an element that matches the condition as a
    filter, or equals it; any other condition or element, or an element the plain matcher cannot
    tell about, is mongomock-ng's."""
    kept: dict[str, list[Any]] = {}
    for name, condition in changes.items():
        if name not in doc:
            continue  # nothing to pull from
        current = doc[name]
        if not _field_conditions(condition) or type(current) is not list:
            return False
        kept[name] = []
        for element in current:
            answer = matches(condition, element) if type(element) is dict else None
            if answer is None:
                return False
            if not (answer or element == condition):
                kept[name].append(element)
    doc.update(kept)
    return True


def _field_conditions(condition: Any) -> bool:
    return is_mapping(condition) and bool(condition) and not any(k.startswith("$") for k in condition)


_NATIVE_OPERATORS: dict[str, Callable[[Any, Document, Mapping[str, Any]], bool]] = {
    "$set": _native_set, "$push": _native_push, "$pull": _native_pull,
}


# --- bulk writes --------------------------------------------------------------------------------
class _Updates:
    """Takes the place of mongomock-ng's bulk builder while PyMongo's write models describe themselves
    to it (``_add_to_bulk``): keeps the updates, and notes anything else (then mongomock-ng runs it all)."""

    def __init__(self) -> None:
        self.updates: list[tuple[Any, Any, bool]] = []
        self.only_plain_updates = True

    def add_update(self, selector: Any, document: Any, multi: bool, upsert: bool, collation: Any = None,
                   array_filters: Any = None, hint: Any = None, sort: Any = None) -> None:
        self.updates.append((selector, document, multi))
        if upsert or collation or array_filters or hint or sort:
            self.only_plain_updates = False

    def add_insert(self, *args: Any, **kwargs: Any) -> None:
        self.only_plain_updates = False

    add_replace = add_delete = add_insert


_bulk_write_by_builder: Callable[..., Any] = _MockCollection.bulk_write


def _bulk_write(self: Any, requests: Iterable[Any], ordered: bool = True, bypass_document_validation: bool = False,
                session: Any = None, comment: Any = None) -> Any:
    """A bulk of updates by ``_id`` that all take the fast path runs them one after the other, as
    mongomock-ng's builder would (same counts, same write errors, an ordered bulk stops at the first);
    any other bulk is mongomock-ng's."""
    requests = list(requests)
    updates = _plain_updates(self, requests)
    if updates is None or bypass_document_validation or session is not None or comment:
        return _bulk_write_by_builder(self, requests, ordered, bypass_document_validation, session, comment)
    result: dict[str, Any] = {"nModified": 0, "nUpserted": 0, "nMatched": 0, "writeErrors": [], "upserted": [],
                              "writeConcernErrors": [], "nRemoved": 0, "nInserted": 0}
    for index, (spec, document, ids) in enumerate(updates):
        try:
            matched = list(_lookup(self, spec, ids))
            result["nModified"] += sum(_update_by_copy(self, doc, spec, document) for doc in matched)
            result["nMatched"] += len(matched)
        except WriteError as error:
            result["writeErrors"].append({"index": index, "code": error.code, "errmsg": str(error)})
            if ordered:
                break
    if result["writeErrors"]:
        raise BulkWriteError(result)
    return BulkWriteResult(result, True)


def _plain_updates(self: Any, requests: list[Any]) -> list[tuple[Any, Any, list[Any]]] | None:
    """(filter, update, ids) of each request, with datetimes as stored, if they are all updates that
    take the fast path; else None."""
    bulk = _Updates()
    try:
        for request in requests:
            request._add_to_bulk(bulk)
    except Exception:
        return None  # not a write model: mongomock-ng raises its error
    if not bulk.only_plain_updates or not bulk.updates:
        return None
    plain = []
    for spec, document, multi in bulk.updates:
        if not is_mapping(spec):
            return None
        spec, document = _naive_ms(spec), _naive_ms(document)
        ids = _by_id(self, spec, document, multi)
        if ids is None:
            return None
        plain.append((spec, document, ids))
    return plain


def install() -> None:
    memory_mongo_index.install()
    _mm_helpers.patch_datetime_awareness_in_document = _naive_ms
    _mm_helpers.make_datetime_timezone_aware_in_document = _aware_utc
    _MockCollection._iter_documents = _iter_documents  # type: ignore[method-assign]
    _MockCollection._copy_only_fields = _copy_only_fields  # type: ignore[method-assign]
    _MockCollection._update_documents = _update_documents  # type: ignore[method-assign]
    _MockCollection._apply_update_document = _apply_update_document  # type: ignore[method-assign]
    _MockCollection.bulk_write = _bulk_write  # type: ignore[method-assign]
