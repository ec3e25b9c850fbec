"""Parsing an API request body from the network, within explicit limits (§3, issue 10).

Every limit is checked on the raw bytes before ``json.loads`` builds anything: Python's JSON scanner
recurses once per nesting level, so a 2 KB body nested 1,000 deep raised ``RecursionError`` — an
exception no handler expected, hence no reply at all.
"""

from __future__ import annotations

import json
import re
from typing import Any

# An API request is a few short fields (the largest: a 2,000-character comment, a list of emails);
# NATS itself would take up to its max_payload (1 MB by default).
MAX_API_BODY_BYTES = 64 * 1024
# The deepest request of the contract nests 2 levels (a list of emails in an object).
MAX_JSON_DEPTH = 32

# A JSON string, escapes included, possessive so that it never backtracks; an unterminated one runs
# to the end (the parser refuses it anyway), so that each quote is scanned once.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")
# \uD800-\uDFFF: a surrogate escape, alone or in a pair (a pair is a valid character).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class PayloadRefused(ValueError):
    """A body that is not a JSON object within the limits; ``message`` says why without quoting it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # cannot nest deeper than it has openers: most bodies stop here
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKET):
        depth += 1 if byte in _OPENERS else -1
        if depth > limit:
            return True
    return False


def _refuse_constant(name: str) -> Any:
    raise PayloadRefused(f"payload holds {name}, which is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise PayloadRefused("payload holds a number too large for a float")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers may keep different copies of a duplicated key (the first, the last): refuse it so
    # that what a gateway checked is what the service acts on.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise PayloadRefused("payload repeats a key in an object")
    return obj


def parse_object(body: bytes, *, max_bytes: int = MAX_API_BODY_BYTES,
                 max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """The JSON object of ``body`` (UTF-8), or :class:`PayloadRefused` saying which limit it broke."""
    if len(body) > max_bytes:
        raise PayloadRefused(f"payload is larger than {max_bytes} bytes")
    if too_deep(body, max_depth):
        raise PayloadRefused(f"payload nests arrays or objects deeper than {max_depth} levels")
    try:
        text = body.decode("utf-8")  # strict: json.loads would also guess UTF-16 and UTF-32
    except UnicodeDecodeError:
        raise PayloadRefused("payload is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite,
                           object_pairs_hook=_no_duplicates)
    except PayloadRefused:
        raise
    except (ValueError, RecursionError):  # RecursionError: the depth scan above should make it moot
        raise PayloadRefused("payload is not valid JSON") from None
    if not isinstance(value, dict):
        raise PayloadRefused("payload must be a JSON object")
    if _SURROGATE_ESCAPE.search(body) and _holds_lone_surrogate(value):
        raise PayloadRefused("payload holds a lone UTF-16 surrogate, which is not a character")
    return value


def _holds_lone_surrogate(value: Any) -> bool:
    # A lone surrogate parses but cannot be encoded again: the reply (or a stored copy) would fail.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
