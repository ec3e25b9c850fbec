"""Hostile payloads over a real nats-server (issue 10, bullet 4): every API subject the five services
register answers each unparseable body with a structured error, quickly and without a traceback in
the log; the CLI prints stored control characters escaped, and a closed port as one clean line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import nats
import pytest

from services.accounts.app import build as build_accounts
from services.accounts.crypto import Keyring
from services.notifier.app import build as build_notifier
from services.requests.app import build as build_requests
from services.scheduler.app import build as build_scheduler
from services.scraper.app import build as build_scraper
from shared.events import CollectorAnnounced
from shared.logging import configure_logging
from shared.mongo import make_mongo_client
from shared.natsserver import free_port
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings, Settings
from shared.subjects import PREFIX, STREAMS, Api, Events, health
from tests.integration.helpers import eventually, services_running

pytestmark = pytest.mark.slow
COLLECTORS = str(Path(sys.executable).parent / "collectors")
REPLY_WITHIN_S = 5.0


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


JSON = {"content-type": "application/json"}
# One of each limit and encoding; the first three, the integer and the content-type ones went
# unanswered before (FastStream's decoder raised before any handler ran).
HOSTILE: dict[str, tuple[bytes, dict[str, str] | None]] = {
    "object nested 1,000 deep": (nested(1000), None),
    "array nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, None),
    "array nested 20,000 deep": (b"[" * 20_000 + b"]" * 20_000, None),
    "an integer of 5,000 digits": (b'{"limit": ' + b"1" * 5000 + b"}", None),
    "not JSON, said to be JSON": (b"{", JSON),
    "invalid UTF-8, said to be text": (b'{"tenant_id": "\xff"}', {"content-type": "text/plain"}),
    "900 KB body": (b'{"tenant_id": "' + b"a" * 900_000 + b'"}', None),
    "invalid UTF-8": (b'{"tenant_id": "\xff"}', None),
    "NaN": (b'{"tenant_id": "t1", "limit": NaN}', JSON),
    "duplicate key": (b'{"tenant_id": "t1", "tenant_id": "t2"}', None),
    "not an object": (b"[1, 2]", None),
    "lone surrogate": (b'{"tenant_id": "t1", "supplier": "\\udfff"}', None),
}


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """The services' log, as the platform writes it (structlog JSON, stdlib lines included)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging("INFO", json=True, stream=out)
    try:
        yield out
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def _runtimes(nats_url: str, mongodb_url: str | None, db_prefix: str, keyring: Keyring) -> list[ServiceRuntime]:
    common: dict[str, Any] = {"nats_url": nats_url, "mongodb_url": mongodb_url, "db_prefix": db_prefix}
    return [build_accounts(AccountsSettings(**common), keyring=keyring), build_scheduler(SchedulerSettings(**common)),
            build_scraper(ScraperSettings(**common)), build_notifier(Settings(**common)),
            build_requests(Settings(**common))]


def api_subjects(runtimes: list[ServiceRuntime]) -> set[str]:
    """Every request/reply subject the services subscribe to, from the brokers themselves."""
    subjects = {str(sub.subject.broker_address) for rt in runtimes  # type: ignore[attr-defined]
                for sub in rt.broker.subscribers}
    return {s for s in subjects if s.startswith(f"{PREFIX}.api.")}


async def test_every_api_subject_answers_each_hostile_body_with_a_structured_error(
        nats_url: str, mongodb_url: str | None, db_prefix: str, keyring: Keyring, log_text: io.StringIO) -> None:
    runtimes = _runtimes(nats_url, mongodb_url, db_prefix, keyring)
    subjects = api_subjects(runtimes)
    assert {Api.ACCOUNTS_CREATE, Api.SCRAPER_INVOICES_LIST, Api.NOTIFIER_PREFS_SET, Api.REQUESTS_CREATE,
            health("scraper")} <= subjects
    async with services_running(runtimes, nats_url) as client:
        nc = await nats.connect(nats_url)

        async def ready(service: str) -> bool:
            try:
                await nc.request(health(service), b"{}", timeout=1.0)
            except Exception:
                return False
            return True

        try:
            # The scraper answers health only once its browser runs: wait for every service to be
            # ready, so that silence below can only mean a body went unanswered.
            for rt in runtimes:
                await eventually(partial(ready, rt.name), timeout=30, what=f"{rt.name} ready")
            for subject in sorted(subjects):
                for name, (body, headers) in HOSTILE.items():
                    loop = asyncio.get_running_loop()
                    started = loop.time()
                    msg = await nc.request(subject, body, timeout=REPLY_WITHIN_S, headers=headers)  # none: timeout
                    reply = json.loads(msg.data)
                    if subject.endswith(".health"):  # reads no payload: answers as ever
                        assert reply.get("status") == "ok", (subject, name, reply)
                        continue
                    assert set(reply) == {"error"}, (subject, name, reply)
                    assert reply["error"]["code"] == "validation_error", (subject, name, reply)
                    assert set(reply["error"]) <= {"code", "message", "field"}
                    assert loop.time() - started < REPLY_WITHIN_S
            # Positive control: a valid request on the same connection is answered with its result.
            msg = await nc.request(Api.REQUESTS_CREATE, json.dumps(
                {"tenant_id": "t1", "supplier": "Laboratoire Hostile"}).encode(), timeout=REPLY_WITHIN_S)
            assert json.loads(msg.data)["supplier"] == "Laboratoire Hostile"
        finally:
            await nc.close()
        assert (await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "t1"}))["collectors"] is not None
    log = log_text.getvalue()
    assert "Traceback" not in log and "RecursionError" not in log and "api_handler_failed" not in log


async def test_requests_list_prints_stored_control_characters_escaped(
        nats_url: str, mongodb_url: str | None, db_prefix: str) -> None:
    """A request stored before the API refused control characters (inserted as it was then) is listed
    by the CLI with them escaped, in its table and in its JSON."""
    settings = Settings(nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix)
    hostile = "Evil\x1b]0;pwned\x07\x1b[2J\x1b[31mRed\x9b1m\u202eLabo [/]"
    now = datetime.now(UTC)
    requests = make_mongo_client(mongodb_url)[settings.database_name("requests")]["requests"]
    await requests.insert_one({
        "_id": "r" * 32, "supplier": hostile, "supplier_key": "evil", "portal_url": None, "portal_domain": None,
        "status": "submitted", "open": True, "requesters": ["t1"], "votes": 1, "comments": [],
        "collector_id": None, "reason": "line 1\nline 2\x1b[8m", "created_at": now, "updated_at": now,
        "outbox": []})
    async with services_running([build_requests(settings)], nats_url):
        for extra in ([], ["--json"]):
            proc = await asyncio.create_subprocess_exec(
                COLLECTORS, "requests", "list", "--tenant", "t1", "--nats-url", nats_url, *extra,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
            text = out.decode()
            assert proc.returncode == 0, err.decode()
            for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
                assert raw not in text, f"{raw!r} printed raw with {extra}: {text!r}"
            if extra:
                assert json.loads(text)["requests"][0]["supplier"] == hostile  # the same data, escaped
            else:
                assert "Evil\\x1b]0;pwned\\x07" in text and "\\u202eLabo [/]" in text


def test_health_on_a_closed_port_prints_one_clean_line_and_exits_3() -> None:
    import subprocess

    url = f"nats://127.0.0.1:{free_port()}"
    for extra in ([], ["--json"]):
        proc = subprocess.run([COLLECTORS, "health", "--nats-url", url, *extra], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 3
        assert "Traceback" not in proc.stderr and "encountered error" not in proc.stderr, proc.stderr
        if extra:
            assert proc.stderr == ""
            assert json.loads(proc.stdout)["error"]["code"] == "unavailable"
        else:
            assert proc.stderr.splitlines() == [f"Error (unavailable): cannot reach NATS at {url}: nats: no "
                                                "servers available for connection"]


async def test_hostile_events_are_terminated_as_poison_once(
        nats_url: str, mongodb_url: str | None, db_prefix: str, log_text: io.StringIO) -> None:
    """Through FastStream and JetStream, not a stub: each hostile event is rejected at its first
    delivery (kept in the stream, never redelivered), and the consumer goes on with the next one."""
    settings = Settings(nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix)
    hostile = [(nested(1000), None), (b"[" * 100_000 + b"]" * 100_000, None),
               (b'{"version": ' + b"1" * 5000 + b"}", None), (b"{", JSON), (b"\xff", {"content-type": "text/plain"})]
    async with services_running([build_requests(settings)], nats_url):
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            for body, headers in hostile:
                await js.publish(Events.COLLECTOR_ANNOUNCED.base, body, headers=headers)
            announced = CollectorAnnounced(collector_id="after-poison", name="N", supplier="S",
                                           login_kind="identifier", portal_url="https://n.example/",
                                           frequency_hours=24, max_sessions=1, version="1")
            await js.publish(Events.COLLECTOR_ANNOUNCED.base, announced.model_dump_json().encode())

            async def all_settled() -> bool:
                info = await js.consumer_info(str(STREAMS["scraper"].name), "requests-catalog")
                return bool(info.delivered.stream_seq == len(hostile) + 1 and info.num_ack_pending == 0)

            await eventually(all_settled, timeout=20, what="every event settled")
            info = await js.consumer_info(str(STREAMS["scraper"].name), "requests-catalog")
            assert info.num_redelivered == 0
        finally:
            await nc.close()
    log = log_text.getvalue()
    assert log.count("poison_event_terminated") == len(hostile)
    assert "Traceback" not in log and "RecursionError" not in log
