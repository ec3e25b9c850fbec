"""Hostile request bodies (issue 10, bullet 4): the parser guard's explicit limits, the API handler's
structured error for each, poison events terminated, control characters refused in names and texts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared import api
from shared.broker import api_handler, event_handler
from shared.events import AccountStatusChanged, CollectJob
from shared.payload import MAX_API_BODY_BYTES, MAX_JSON_DEPTH, PayloadRefused, parse_object, too_deep


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def nested_lists(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE: dict[str, tuple[bytes, str]] = {
    "object nested 1,000 deep": (nested(1000), "deeper than"),
    "array nested 100,000 deep (200 KB)": (nested_lists(100_000), "larger than"),
    "array nested 20,000 deep (40 KB)": (nested_lists(20_000), "deeper than"),
    "2 MB body": (b'{"tenant_id": "' + b"a" * 2_000_000 + b'"}', "larger than"),
    "invalid UTF-8": (b'{"tenant_id": "\xff\xfe"}', "not UTF-8"),
    "UTF-16 (json.loads would guess it)": ('{"tenant_id": "t1"}'.encode("utf-16"), "not UTF-8"),
    "NaN": (b'{"tenant_id": "t1", "x": NaN}', "NaN"),
    "Infinity": (b'{"tenant_id": "t1", "x": Infinity}', "Infinity"),
    "-Infinity": (b'{"x": -Infinity}', "-Infinity"),
    "a float overflowing to infinity": (b'{"x": 1e999}', "too large"),
    "duplicate key": (b'{"tenant_id": "t1", "tenant_id": "t2"}', "repeats a key"),
    "array at the top": (b"[]", "JSON object"),
    "string at the top": (b'"x"', "JSON object"),
    "null at the top": (b"null", "JSON object"),
    "number at the top": (b"1", "JSON object"),
    "not JSON": (b"{", "not valid JSON"),
    "an int of 5,000 digits": (b'{"x": ' + b"1" * 5000 + b"}", "not valid JSON"),
    "lone surrogate": (b'{"tenant_id": "\\ud800"}', "surrogate"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_parser_refuses_each_hostile_body_with_its_reason(name: str) -> None:
    body, reason = HOSTILE[name]
    with pytest.raises(PayloadRefused) as refused:
        parse_object(body)
    assert reason in refused.value.message
    assert len(refused.value.message) < 120  # says why, never quotes the body


def test_limits_are_the_documented_ones() -> None:
    assert (MAX_API_BODY_BYTES, MAX_JSON_DEPTH) == (64 * 1024, 32)
    assert parse_object(nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(PayloadRefused, match="deeper"):
        parse_object(nested(MAX_JSON_DEPTH + 1))
    body = b'{"x": "' + b"a" * (MAX_API_BODY_BYTES - 9) + b'"}'
    assert len(body) == MAX_API_BODY_BYTES and parse_object(body)
    with pytest.raises(PayloadRefused, match="larger"):
        parse_object(body[:-2] + b'a"}')


def test_what_is_valid_still_parses() -> None:
    assert parse_object(b'{"emails": ["a@b.fr"], "n": 1.5, "ok": true, "none": null}') == {
        "emails": ["a@b.fr"], "n": 1.5, "ok": True, "none": None}
    # Brackets inside strings do not nest, escaped quotes do not end a string.
    text = '{"comment": "' + "[{" * 5000 + '\\"]]", "x": [[1]]}'
    assert parse_object(text.encode())["x"] == [[1]]
    assert parse_object('{"s": "\\ud83d\\ude00 é"}'.encode())["s"] == "\U0001f600 é"  # a surrogate pair is a character


def test_depth_scan_is_linear_on_a_hostile_string() -> None:
    # Thousands of escaped quotes and no closing one: a backtracking scan would take minutes.
    body = b'{"a": "' + b'\\"[' * 20_000
    started = time.perf_counter()
    assert not too_deep(body)
    assert time.perf_counter() - started < 0.5
    with pytest.raises(PayloadRefused, match="not valid JSON"):
        parse_object(body)


def test_python_json_and_pydantic_on_deep_bodies() -> None:
    """Why the guard scans before ``json.loads``: the C scanner raises RecursionError, which is not a
    ValueError; pydantic's own parser stops at its recursion limit with a ValidationError (what the
    event handlers and the job consumer rely on)."""
    for body in (nested(1000), nested_lists(100_000)):
        with pytest.raises(RecursionError):
            json.loads(body)
        with pytest.raises(ValidationError):
            AccountStatusChanged.model_validate_json(body)
        with pytest.raises(ValidationError):
            CollectJob.model_validate_json(body)


# --- the API handler: a structured error for each, never an exception -------------------------


@dataclass
class _Raw:
    subject: str = "collectors.api.requests.create"


@dataclass
class FakeMessage:
    """What the handlers read of FastStream's NatsMessage, and how they settle it."""

    body: bytes
    raw_message: _Raw = field(default_factory=_Raw)
    settled: list[str] = field(default_factory=list)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, delay: float | None = None) -> None:
        self.settled.append("nack")

    async def reject(self) -> None:
        self.settled.append("reject")


async def _created(req: api.CreateRequest) -> dict[str, Any]:
    return {"supplier": req.supplier, "comment": req.comment}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_api_handler_replies_a_structured_error_to_each_hostile_body(name: str) -> None:
    handler = api_handler(api.CreateRequest, _created, service="requests")
    reply = await handler(FakeMessage(HOSTILE[name][0]))  # type: ignore[arg-type]
    assert set(reply) == {"error"}
    assert reply["error"]["code"] == "validation_error"
    assert HOSTILE[name][1] in reply["error"]["message"]


async def test_api_handler_still_answers_a_valid_request() -> None:
    handler = api_handler(api.CreateRequest, _created, service="requests")
    reply = await handler(FakeMessage(b'{"tenant_id": "t1", "supplier": "Labo X", "comment": "a\\r\\nb"}'))  # type: ignore[arg-type]
    assert reply == {"supplier": "Labo X", "comment": "a\nb"}


# --- events: hostile bodies are poison, terminated without reaching the consumer -------------


@pytest.mark.parametrize("body", [nested(1000), nested_lists(100_000), b"\xff\xfe", b"[]", b"",
                                  b'{"x": NaN}', b'{"tenant_id": "\\ud800"}', b"{" * 900_000])
async def test_event_handler_terminates_hostile_events(body: bytes) -> None:
    seen: list[AccountStatusChanged] = []

    async def consume(evt: AccountStatusChanged) -> None:
        seen.append(evt)

    msg = FakeMessage(body, _Raw("collectors.evt.accounts.status_changed.t1"))
    await event_handler(AccountStatusChanged, consume, service="notifier")(msg)  # type: ignore[arg-type]
    assert msg.settled == ["reject"] and not seen


# --- names and texts at the API ------------------------------------------------------------------

HIDDEN = ["\x1b[31m", "\x1b]0;title\x07", "\x00", "\x7f", "\x9b", "\u202e", "\u2066", "\u200b", "\u2028",
          "\r"]


@pytest.mark.parametrize("bad", HIDDEN)
def test_names_refuse_control_and_invisible_characters(bad: str) -> None:
    payloads: list[tuple[type[BaseModel], dict[str, Any], str]] = [
        (api.CreateRequest, {"tenant_id": "t1", "supplier": f"Labo{bad}X"}, "supplier"),
        (api.CreateRequest, {"tenant_id": "t1", "supplier": "L", "portal_url": f"https://x.fr/{bad}"}, "portal_url"),
        (api.CreateAccount, {"tenant_id": "t1", "collector_id": "c", "login": f"a{bad}", "password": "p"}, "login"),
        (api.UpdateCredentials, {"tenant_id": "t1", "account_id": "a", "login": f"a{bad}", "password": "p"},
         "login"),
        (api.PrefsUpdate, {"tenant_id": "t1", "emails": [f"a{bad}@b.fr"]}, "emails"),
        (api.PrefsUpdate, {"tenant_id": "t1", "webhook_url": f"https://h.fr/{bad}"}, "webhook_url"),
        (api.SetRequestStatus, {"request_id": "r", "status": "available", "collector_id": f"c{bad}"},
         "collector_id"),
        (api.ListAccounts, {"tenant_id": "t1", "collector_id": f"c{bad}"}, "collector_id"),
        (api.ListInvoices, {"tenant_id": "t1", "account_id": f"a{bad}"}, "account_id"),
    ]
    for model, payload, where in payloads:
        with pytest.raises(ValidationError) as refused:
            model.model_validate(payload)
        error = refused.value.errors()[0]
        assert error["loc"][0] == where
        assert "control or invisible" in error["msg"] and "U+" in error["msg"]


@pytest.mark.parametrize("bad", [c for c in HIDDEN if c != "\r"])
def test_texts_refuse_them_too_but_keep_line_feeds_and_tabs(bad: str) -> None:
    with pytest.raises(ValidationError):
        api.CreateRequest.model_validate({"tenant_id": "t1", "supplier": "L", "comment": f"a{bad}b"})
    with pytest.raises(ValidationError):
        api.SetRequestStatus.model_validate({"request_id": "r", "status": "rejected", "reason": f"a{bad}b"})
    ok = api.CreateRequest.model_validate({"tenant_id": "t1", "supplier": "L", "comment": "l1\r\nl2\n\tl3"})
    assert ok.comment == "l1\nl2\n\tl3"


def test_visible_text_is_accepted() -> None:
    # French typography: non-breaking spaces, accents, ligatures; and a password is never checked.
    req = api.CreateRequest.model_validate({"tenant_id": "t1", "supplier": "Labo\u00a0Œnologie\u202fé: 1 €"})
    assert req.supplier == "Labo\u00a0Œnologie\u202fé: 1 €"
    acc = api.CreateAccount.model_validate({"tenant_id": "t1", "collector_id": "c", "login": "o",
                                            "password": "p\tw\x1bd"})
    assert acc.password == "p\tw\x1bd"
