"""Hostile and malformed payloads on every accounts API subject (issue "Accounts and credentials"):
each gets a structured error reply, the service stays up, and nothing is stored."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client

from services.accounts.app import build
from services.accounts.crypto import Keyring, new_key_entry
from shared.events import ID_PATTERN, TENANT_PATTERN, CollectorAnnounced
from shared.mongo import make_mongo_client
from shared.natsserver import NatsServer, wait_jetstream_ready
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings
from shared.subjects import Api, Events, health
from tests.integration.helpers import LoopThread

pytestmark = pytest.mark.slow
EXAMPLES = 1000
PREFIX = "fuzz"
GHOST = "0123456789abcdef0123456789abcdef"  # a well-formed account id no account has

# -- values that are wrong for each kind of field -----------------------------------------------

hostile_objects = st.sampled_from([{"$gt": ""}, {"$ne": None}, {"$where": "sleep(1000)"}, {"$regex": ".*"},
                                   ["$or"], {"__proto__": {}}])
not_a_string = st.one_of(st.integers(), st.floats(allow_nan=True), st.none(), st.booleans(),
                         st.lists(st.integers(), max_size=3), hostile_objects)
not_an_int = st.one_of(st.text(min_size=1, max_size=10).filter(lambda s: not s.strip().lstrip("+-").isdigit()),
                       st.floats(allow_nan=True).filter(lambda f: f != int(f) if f == f and abs(f) < 1e300 else True),
                       st.none(), st.lists(st.integers(), max_size=2), hostile_objects)


def _bad_pattern(pattern: str) -> st.SearchStrategy[Any]:
    bad_text = st.one_of(st.text(max_size=80), st.sampled_from(["", "a.b", "*", ">", "a b", "../x", "a\n", "x" * 65,
                                                                "$where", "demo\u0000"]))
    return st.one_of(bad_text.filter(lambda s: re.fullmatch(pattern, s) is None), not_a_string)


bad_login = st.one_of(not_a_string, st.sampled_from(["", "   ", "a\u0000b", "tab\there", "x" * 400]))
bad_password = st.one_of(not_a_string, st.sampled_from(["", "    ", "x" * 257, "y" * 2000]))
bad_lang = st.one_of(st.text(max_size=5).filter(lambda s: s not in ("fr", "en")), not_a_string)
unknown_collector = st.from_regex(r"\A[a-z][a-z0-9-]{2,20}\Z").filter(lambda s: s != "sandbox-classic")

# For each subject: a well-formed template and, per field, what makes it wrong. Templates name an
# account no one has, so a payload that slipped through validation would still store nothing.
TEMPLATES: dict[str, tuple[dict[str, Any], dict[str, st.SearchStrategy[Any]]]] = {
    Api.ACCOUNTS_CATALOG: ({"tenant_id": "t1"}, {"tenant_id": _bad_pattern(TENANT_PATTERN), "lang": bad_lang}),
    Api.ACCOUNTS_CREATE: (
        {"tenant_id": "t1", "collector_id": "sandbox-classic", "login": "officine", "password": "demo"},
        {"tenant_id": _bad_pattern(TENANT_PATTERN),
         "collector_id": st.one_of(_bad_pattern(ID_PATTERN), unknown_collector),
         "login": bad_login, "password": bad_password, "lang": bad_lang}),
    Api.ACCOUNTS_LIST: ({"tenant_id": "t1"}, {"tenant_id": _bad_pattern(TENANT_PATTERN), "lang": bad_lang,
                                              "collector_id": not_a_string.filter(lambda v: v is not None)}),
    Api.ACCOUNTS_GET: ({"tenant_id": "t1", "account_id": GHOST},
                       {"tenant_id": _bad_pattern(TENANT_PATTERN), "account_id": _bad_pattern(ID_PATTERN),
                        "lang": bad_lang}),
    Api.ACCOUNTS_UPDATE_CREDENTIALS: (
        {"tenant_id": "t1", "account_id": GHOST, "password": "new"},
        {"tenant_id": _bad_pattern(TENANT_PATTERN), "account_id": _bad_pattern(ID_PATTERN),
         "login": bad_login.filter(lambda v: v is not None), "password": bad_password, "lang": bad_lang}),
    Api.ACCOUNTS_RETRY: ({"tenant_id": "t1", "account_id": GHOST},
                         {"tenant_id": _bad_pattern(TENANT_PATTERN), "account_id": _bad_pattern(ID_PATTERN)}),
    Api.ACCOUNTS_DELETE: ({"tenant_id": "t1", "account_id": GHOST},
                          {"tenant_id": _bad_pattern(TENANT_PATTERN), "account_id": _bad_pattern(ID_PATTERN)}),
    Api.ACCOUNTS_REVEAL_CREDENTIALS: (
        {"tenant_id": "t1", "account_id": GHOST, "credential_version": 1},
        {"tenant_id": _bad_pattern(TENANT_PATTERN), "account_id": _bad_pattern(ID_PATTERN),
         "credential_version": not_an_int}),
}

junk = st.one_of(st.binary(max_size=300), st.sampled_from([b"", b"null", b"[]", b"{", b'"x"', b"1e999999",
                                                           b"\xff\xfe", b'{"a":' * 200]),
                 st.recursive(st.none() | st.integers() | st.text(max_size=10),
                              lambda inner: st.lists(inner, max_size=3), max_leaves=8)
                 .map(lambda v: json.dumps(v).encode()))


@st.composite
def corrupted(draw: st.DrawFn, subject: str) -> bytes:
    template, bad = TEMPLATES[subject]
    payload = dict(template)
    fields = draw(st.lists(st.sampled_from(sorted(bad)), min_size=1, max_size=3, unique=True))
    for field in fields:
        payload[field] = draw(bad[field])
    if draw(st.booleans()):  # a missing required field is malformed too
        required = [k for k in template if k != "lang"]
        payload.pop(draw(st.sampled_from(required)), None)
    payload.update(draw(st.dictionaries(st.sampled_from(["$set", "extra", "__class__"]), hostile_objects,
                                        max_size=2)))
    return json.dumps(payload).encode()


class Platform:
    def __init__(self, tmp: Path) -> None:
        self.loop = LoopThread()
        self.server = NatsServer(store_dir=tmp / "nats")
        self.server.start()
        self.loop.run(wait_jetstream_ready(self.server.url))
        settings_ = AccountsSettings(nats_url=self.server.url, db_prefix=PREFIX)
        self.rt: ServiceRuntime = build(settings_, keyring=Keyring.parse(new_key_entry("k1")))
        self.loop.run(self.rt.start())
        self.nc: Client = self.loop.run(nats.connect(self.server.url))
        announced = CollectorAnnounced(collector_id="sandbox-classic", name="S", supplier="S",
                                       login_kind="identifier", portal_url="http://127.0.0.1:1/",
                                       frequency_hours=24, max_sessions=1, version="1")
        self.loop.run(self.nc.jetstream().publish(Events.COLLECTOR_ANNOUNCED.base,
                                                  announced.model_dump_json().encode()))
        self.accounts = make_mongo_client(None)[f"{PREFIX}_accounts"]["accounts"]

    def request(self, subject: str, data: bytes) -> dict[str, Any]:
        msg = self.loop.run(self.nc.request(subject, data, timeout=10))
        reply: dict[str, Any] = json.loads(msg.data)
        return reply

    def stored(self) -> tuple[int, int]:
        docs = self.loop.run(self.accounts.count_documents({}))
        info = self.loop.run(self.nc.jetstream().stream_info("COLLECTORS_ACCOUNTS"))
        return docs, info.state.messages

    def close(self) -> None:
        self.loop.run(self.nc.close())
        self.loop.run(self.rt.stop())
        self.server.stop()
        self.loop.close()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(tmp_path_factory.mktemp("fuzz"))
    yield p
    p.close()


def _assert_structured_error(reply: dict[str, Any], sent: bytes) -> None:
    assert set(reply) == {"error"}, reply
    error = reply["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "field"}
    # A refused password is never echoed back.
    for secret in (b"y" * 2000, b"x" * 257):
        if secret in sent:
            assert secret.decode() not in error["message"]


@pytest.mark.parametrize("subject", sorted(TEMPLATES))
def test_hostile_payloads_get_structured_errors_and_store_nothing(platform: Platform, subject: str) -> None:
    before = platform.stored()
    seen = 0

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.one_of(corrupted(subject), junk))
    def check(data: bytes) -> None:
        nonlocal seen
        seen += 1
        _assert_structured_error(platform.request(subject, data), data)

    check()
    assert seen >= EXAMPLES
    assert platform.stored() == before, "a malformed payload stored something or emitted an event"
    assert platform.request(health("accounts"), b"{}")["status"] == "ok"
