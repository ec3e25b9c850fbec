"""A plain-Python matcher for the simplest query filters, for the in-memory stand-in (``shared.memory_mongo``).

mongomock-ng's matcher is general, and slow for the guards that most writes carry (``{"_id": ...,
"active": True, "paused": None, "next_run_at": {"$lte": now}}``): ~10 us a document. ``matches`` gives
the same answer for the filters and documents it understands, and says "unsure" (None) for the
others, which then go to mongomock-ng's matcher. "The same answer" is kept narrow on purpose: a value
is only compared with a value of the very same Python type, str, bool, int or naive datetime (so
``1`` vs ``1.0``, ``True`` vs ``1``, floats, arrays, sub-documents and nulls in range queries are all
left to mongomock-ng), and only these shapes are understood:

* ``{field: value}``, ``{field: None}``;
* ``{field: {"$lt" | "$lte" | "$gt" | "$gte" | "$eq": value, "$in": [str, ...]}}``;
* ``{"<array>.<n>": {"$exists": bool}}``, as in ``{"outbox.0": {"$exists": True}}``;
* ``$and`` / ``$or`` of these.

Filters arrive as mongomock-ng stores them: datetimes naive UTC, truncated to milliseconds, like the
stored documents.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["is_mapping", "matches"]

_MISSING: Any = object()
# Types whose values compare in MongoDB as in Python when both sides are of the same type (not floats:
# NaN equals NaN in MongoDB).
_PLAIN = (str, bool, int, dt.datetime)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "$lt": operator.lt, "$lte": operator.le, "$gt": operator.gt, "$gte": operator.ge, "$eq": operator.eq,
}


def is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)``, without the slow ABC check for the usual plain dict."""
    return type(value) is dict or isinstance(value, Mapping)


def matches(query: Mapping[str, Any], doc: Mapping[str, Any]) -> bool | None:
    """Whether ``doc`` matches ``query``; None when this matcher cannot tell."""
    unsure = False
    for key, condition in query.items():
        if key.startswith("$"):
            answer = _logical(key, condition, doc)
        else:
            answer = _field(key, condition, doc)
        if answer is False:
            return False  # one failing clause decides, whatever the unsure ones would say
        unsure = unsure or answer is None
    return None if unsure else True


def _logical(key: str, branches: Any, doc: Mapping[str, Any]) -> bool | None:
    if key not in ("$or", "$and") or type(branches) is not list or not branches:
        return None  # other operators, and malformed ones (mongomock-ng raises)
    decisive = key == "$or"  # the answer that decides at once: True for $or, False for $and
    unsure = False
    for branch in branches:
        answer = matches(branch, doc) if is_mapping(branch) else None
        if answer is decisive:
            return decisive
        unsure = unsure or answer is None
    return None if unsure else not decisive


def _plain(value: Any) -> bool:
    return type(value) in _PLAIN and not (type(value) is dt.datetime and value.tzinfo is not None)


def _field(key: str, condition: Any, doc: Mapping[str, Any]) -> bool | None:
    if "." in key:
        return _element_exists(key, condition, doc)
    value = doc.get(key, _MISSING)
    if is_mapping(condition):
        return _operators(condition, value)
    if condition is None:  # missing or null; a plain value is not null (an array may hold a null)
        if value is _MISSING or value is None:
            return True
        return False if type(value) in _PLAIN else None
    if not _plain(condition):
        return None
    if type(value) is type(condition):
        return bool(value == condition)
    return False if value is _MISSING or value is None else None


def _operators(operators: Mapping[str, Any], value: Any) -> bool | None:
    if not operators:
        return None
    unsure = False
    for op, operand in operators.items():
        answer = _operator(op, operand, value)
        if answer is False:
            return False
        unsure = unsure or answer is None
    return None if unsure else True


def _operator(op: str, operand: Any, value: Any) -> bool | None:
    compare = _COMPARISONS.get(op)
    if compare is not None:
        # Only a value of the operand's type compares (MongoDB's type bracketing); a missing field
        # never matches. Nulls and other types are left to mongomock-ng.
        if not _plain(operand):
            return None
        if type(value) is type(operand) and _plain(value):
            return bool(compare(value, operand))
        return False if value is _MISSING else None
    if op == "$in":
        if type(operand) is not list or not operand or any(type(v) is not str for v in operand):
            return None
        if type(value) is str:
            return value in operand
        return False if value is _MISSING or value is None else None
    return None


def _element_exists(key: str, condition: Any, doc: Mapping[str, Any]) -> bool | None:
    name, _, index = key.partition(".")
    if not (name and index.isdigit() and is_mapping(condition) and len(condition) == 1
            and type(condition.get("$exists")) is bool):
        return None
    value = doc.get(name, _MISSING)
    if type(value) is list:
        return (len(value) > int(index)) is condition["$exists"]
    return (not condition["$exists"]) if value is _MISSING else None
