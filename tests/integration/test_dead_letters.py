"""Dead letters you can act on (issue 13, bullet 4), over a real nats-server and the CLI: a job kept
aside is listed with its reason and delivery count, replayed under a fresh message id and run once its
cause is fixed, then dropped; a malformed event to another service is kept and listed too, its
payload previewed without its secrets and with its control characters escaped."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from services.notifier.app import build as build_notifier
from shared.settings import Settings
from shared.subjects import Events, collect_job
from tests.integration.helpers import eventually, services_running
from tests.integration.test_scraper_workers import FakeCollector, Harness, harness, worker

pytestmark = pytest.mark.slow
__all__ = ["harness", "worker"]  # fixtures of the scraper's worker tests
COLLECTORS = str(Path(sys.executable).parent / "collectors")


async def run_cli(nats_url: str, *args: str) -> tuple[int, str]:
    """`collectors ...` as operators run it, in its own process (the services log on this one's
    stdout): (exit code, stdout and stderr)."""
    proc = await asyncio.create_subprocess_exec(COLLECTORS, *args, "--nats-url", nats_url,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode() + err.decode()


async def listed(nats_url: str, *args: str) -> list[dict[str, Any]]:
    code, out = await run_cli(nats_url, "dlq", "list", "--json", *args)
    assert code == 0, out
    return list(json.loads(out)["dead_letters"])


@pytest.mark.browser
async def test_a_job_kept_aside_is_listed_replayed_with_a_fresh_id_runs_once_fixed_and_dropped(
        harness: Harness, worker: Any) -> None:
    url = harness.settings.nats_url
    old = await worker(FakeCollector("fake-have"), max_deliver=2)
    job = await harness.publish("fake-late", "acc-late")
    await eventually(harness.idle, what="the job for an unknown collector kept aside")

    (letter,) = await listed(url, "--service", "scraper")
    assert letter["id"].startswith("scraper-") and letter["kind"] == "job"
    assert letter["reason"] == "unknown collector" and letter["deliveries"] == 2
    assert letter["subject"] == collect_job("fake-late") and letter["consumer"] == "scraper-collect"
    assert letter["status"] == "kept" and letter["first_failed_at"] and letter["last_failed_at"]
    assert json.loads(letter["preview"])["account_id"] == "acc-late" and "pw" not in letter["preview"]
    code, out = await run_cli(url, "dlq", "show", letter["id"])
    assert code == 0 and "unknown collector" in out and "acc-late" in out

    # The cause fixed: a worker that runs the collector.
    await old.stop()
    late = FakeCollector("fake-late")
    await worker(late)
    seen: list[Msg] = []

    async def on_job(msg: Msg) -> None:
        seen.append(msg)

    spy = await nats.connect(url)
    await spy.subscribe(collect_job("fake-late"), cb=on_job)
    await spy.flush()
    try:
        code, out = await run_cli(url, "dlq", "replay", letter["id"], "--json")
        assert code == 0, out
        replayed = json.loads(out)
        await eventually(lambda: asyncio.sleep(0, seen), what="the replayed job on its subject")
        (msg,) = seen
        assert msg.data == job.model_dump_json().encode()  # the original payload, byte for byte
        assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == replayed["replay_msg_id"]
        assert replayed["replay_msg_id"] != job.msg_id()  # else the dedup window would swallow it
    finally:
        await spy.close()
    await eventually(lambda: asyncio.sleep(0, late.runs == {"acc-late": 1}), what="the replayed job run")
    await eventually(harness.idle, what="the replayed job acked")
    assert len(harness.of("collection_succeeded")) == 1

    assert await listed(url, "--service", "scraper") == []  # replayed: not listed by default, kept for audit
    (audit,) = await listed(url, "--service", "scraper", "--all")
    assert audit["status"] == "replayed" and audit["replay_msg_id"] == replayed["replay_msg_id"]

    code, out = await run_cli(url, "dlq", "drop", letter["id"])
    assert code == 0 and letter["id"] in out
    assert await listed(url, "--service", "scraper", "--all") == []
    code, out = await run_cli(url, "dlq", "show", letter["id"])
    assert code == 1 and "not_found" in out


async def test_a_malformed_event_to_the_notifier_is_kept_listed_and_previewed_safely(
        nats_url: str, mongodb_url: str | None, db_prefix: str) -> None:
    settings = Settings(nats_url=nats_url, mongodb_url=mongodb_url, db_prefix=db_prefix)
    async with services_running([build_notifier(settings)], nats_url):
        nc = await nats.connect(nats_url)
        try:
            subject = Events.ACCOUNT_STATUS_CHANGED.for_tenant("pharma-1")
            # Not JSON (cut short), a password in it, and raw control characters that would retitle
            # and clear the operator's terminal.
            body = b'{"tenant_id": "pharma-1", "password": "hunter2-secret", "note": "\x1b]0;pwned\x07\x1b[2J'
            await nc.jetstream().publish(subject, body, headers={"Nats-Msg-Id": "bad-status-1"})
            letters = await eventually(lambda: listed(nats_url, "--service", "notifier"),
                                       what="the malformed event kept aside")
        finally:
            await nc.close()
        (letter,) = letters
        assert letter["id"].startswith("notifier-") and letter["kind"] == "event"
        assert letter["subject"] == subject and letter["consumer"] == "notifier-status"
        assert letter["reason"].startswith("invalid event") and letter["deliveries"] == 1
        assert "hunter2" not in letter["preview"] and "[REDACTED]" in letter["preview"]
        # every service is asked: the others answer nothing, and the notifier's letter is merged in
        code, out = await run_cli(nats_url, "dlq", "list", "--json")
        assert code == 1 and [d["id"] for d in json.loads(out)["dead_letters"]] == [letter["id"]]
        assert set(json.loads(out)["unanswered"]) == {"accounts", "scheduler", "scraper", "requests", "documents"}
        for args in (("dlq", "list", "--service", "notifier"), ("dlq", "show", letter["id"])):
            code, out = await run_cli(nats_url, *args)
            assert code == 0, out
            assert "hunter2" not in out
            assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;pwned\\x07" in out
