"""Evidence of failed runs (issue 13): the run index and the evidence bucket, read through NATS and
the `collectors runs` CLI, after failed runs of the sandbox portals; the password is in none of it;
NATS expires the evidence after the retention."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus
from uuid import uuid4

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.errors import ObjectNotFoundError

from sandbox.portal import SandboxPortal, start_portal
from services.accounts.app import build as build_accounts
from services.accounts.crypto import Keyring
from services.scheduler.app import build as build_scheduler
from services.scraper.app import build as build_scraper
from services.scraper.evidence import open_bucket
from shared.client import ApiClient
from shared.mongo import make_mongo_client
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings
from shared.subjects import EVIDENCE_BUCKET, Api
from tests.integration.helpers import eventually, services_running
from tests.unit.test_deploy import LiveNats, connect, server  # noqa: F401  (deploy/nats's users, live)

COLLECTORS = str(Path(sys.executable).parent / "collectors")


def password_spellings(password: str) -> set[bytes]:
    """The password as typed, urlencoded (UTF-8, cp1252), in base64 (both) and escaped in JSON."""
    found = {password.encode(), json.dumps(password)[1:-1].encode()}
    for charset in ("utf-8", "cp1252"):
        raw = password.encode(charset)
        found |= {raw, quote(raw, safe="").encode(), quote_plus(raw).encode(), base64.b64encode(raw),
                  base64.b64encode(raw).rstrip(b"="), base64.urlsafe_b64encode(raw)}
    return found


def leaks(data: bytes, password: str) -> list[bytes]:
    return [s for s in password_spellings(password) if s in data]


@pytest.fixture
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal()
    yield p
    await p.close()


@pytest.fixture
async def platform(nats_url: str, mongodb_url: str | None, db_prefix: str, keyring: Keyring,
                   portal: SandboxPortal) -> AsyncIterator[ApiClient]:
    common: dict[str, Any] = {"nats_url": nats_url, "mongodb_url": mongodb_url, "db_prefix": db_prefix}
    runtimes: list[ServiceRuntime] = [
        build_accounts(AccountsSettings(**common), keyring=keyring),
        build_scheduler(SchedulerSettings(**common)),
        build_scraper(ScraperSettings(**common, sandbox_url=portal.url, concurrency=4, page_timeout_s=5.0)),
    ]
    async with services_running(runtimes, nats_url) as client:
        yield client


async def cli(nats_url: str, *args: str) -> Any:
    """`collectors runs ARGS --json` in another process (the services answer from this one's loop)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "COLLECTORS_NATS_URL")}
    proc = await asyncio.create_subprocess_exec(COLLECTORS, "runs", *args, "--json", "--nats-url", nats_url,
                                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (args, out, err)
    return json.loads(out)


@pytest.mark.browser
@pytest.mark.slow
async def test_failed_runs_keep_scrubbed_evidence_read_through_the_cli(
        platform: ApiClient, nats_url: str, mongodb_url: str | None, db_prefix: str, tmp_path: Path) -> None:
    secret = f"Pé-{uuid4().hex[:12]}"  # non-ASCII: spelled differently in UTF-8 and cp1252
    cases = {  # name -> (collector, login, password, expected code or None)
        "classic-wrong": ("sandbox-classic", "pharma-ev-1", secret, "login_failed"),
        "spa-wrong": ("sandbox-spa", "pharma-ev-2", secret, "login_failed"),
        "classic-layout": ("sandbox-classic", "fault-layout_changed-1", "demo", "interface_changed"),
        "spa-terms": ("sandbox-spa", "fault-terms-1", "demo", "action_required_on_site"),
        "classic-ok": ("sandbox-classic", "pharma-ev-ok", "demo", None),
    }

    async def catalog() -> bool:
        reply = await platform.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "x"})
        return {"sandbox-classic", "sandbox-spa"} <= {c["id"] for c in reply["collectors"]}

    await eventually(catalog, what="the sandbox collectors")
    results: dict[str, dict[str, Any]] = {}
    nc = await nats.connect(nats_url)

    async def on_result(msg: Msg) -> None:
        body = json.loads(msg.data)
        results.setdefault(body["account_id"], {**body, "ok": ".collection_succeeded." in msg.subject})

    await nc.subscribe("collectors.evt.scraper.collection_failed.*", cb=on_result)
    await nc.subscribe("collectors.evt.scraper.collection_succeeded.*", cb=on_result)
    try:
        account = {}
        for name, (collector, login, password, _) in cases.items():
            acc = await platform.call(Api.ACCOUNTS_CREATE, {"tenant_id": f"pharma-{name}", "collector_id": collector,
                                                            "login": login, "password": password})
            account[name] = acc["id"]

        async def all_done() -> bool:
            return len(results) >= len(cases)

        await eventually(all_done, timeout=120, every=0.3, what="a result for every account")
        got = {name: results[account[name]] for name in cases}
        assert {n: (None if r["ok"] else r["error_code"]) for n, r in got.items()} == {
            n: c[3] for n, c in cases.items()}
        assert all(r["run_id"] for r in got.values())  # every result links to its run

        # --- through the CLI: list, show, evidence
        failed = (await cli(nats_url, "list", "--status", "failed", "--since", "10m"))["runs"]
        assert {r["run_id"] for r in failed} == {got[n]["run_id"] for n in cases if cases[n][3]}
        assert all(r["status"] == "failed" and "run.har" in r["evidence"] for r in failed)
        ok = (await cli(nats_url, "list", "--status", "ok", "--collector", "sandbox-classic"))["runs"]
        assert [r["run_id"] for r in ok] == [got["classic-ok"]["run_id"]] and ok[0]["evidence"] == []
        assert ok[0]["documents"] >= 10

        shown = await cli(nats_url, "show", got["classic-ok"]["run_id"])
        assert len(shown["trail"]) >= 10 and all(t["status"] in (200, 302, 303) for t in shown["trail"])
        shown = await cli(nats_url, "show", got["classic-layout"]["run_id"])
        assert shown["error_code"] == "interface_changed" and shown["trail"]
        assert {"method", "url", "status", "ms"} <= set(shown["trail"][0])

        for name in ("classic-wrong", "spa-wrong", "classic-layout", "spa-terms"):
            out = tmp_path / name
            written = (await cli(nats_url, "evidence", got[name]["run_id"], "-o", str(out)))["files"]
            assert {"trail.json", "page.html", "run.har", "manifest.json"} <= set(written), name
            har = json.loads((out / "run.har").read_text())
            assert har["log"]["entries"], name
            assert (out / "page.html").read_text().strip(), name
            if name.startswith("spa"):  # a page was open: what it looked like
                assert (out / "screenshot.png").read_bytes().startswith(b"\x89PNG"), name
            for file in out.iterdir():
                assert not leaks(file.read_bytes(), secret), (name, file.name)
        wrong_har = (tmp_path / "classic-wrong" / "run.har").read_text()
        assert "scrubbed-password" in wrong_har  # the login was recorded, its password replaced

        # --- (a) nothing stored anywhere holds the password: every object of the bucket, every run
        store = await nc.jetstream().object_store(EVIDENCE_BUCKET)
        objects = await store.list()
        assert len(objects) >= 4 * 4
        for info in objects:
            data = (await store.get(info.name)).data or b""
            assert not leaks(data, secret), info.name
        runs = make_mongo_client(mongodb_url)[f"{db_prefix}_scraper"]["runs"]
        docs = [doc async for doc in runs.find({})]
        assert len(docs) == len(cases)
        for doc in docs:
            assert not leaks(json.dumps(doc, default=str).encode(), secret), doc["_id"]
    finally:
        await nc.close()


async def test_evidence_expires_after_the_retention(nats_url: str) -> None:
    js = (nc := await nats.connect(nats_url)).jetstream()
    try:
        store = await open_bucket(js, retention_s=1.0)
        await store.put("run-1/page.html", b"<html>evidence</html>")
        assert (await store.get("run-1/page.html")).data == b"<html>evidence</html>"

        async def gone() -> bool:
            try:
                await store.get("run-1/page.html")
            except ObjectNotFoundError:
                return True
            return False

        await eventually(gone, timeout=15, every=0.5, what="the evidence to expire")
        # A longer retention set later applies to the existing bucket.
        await open_bucket(js, retention_s=3600.0)
        info = await js.stream_info(f"OBJ_{EVIDENCE_BUCKET}")
        assert info.config.max_age == 3600.0
    finally:
        await nc.close()
    await asyncio.sleep(0)


async def test_only_operators_may_read_runs_and_nobody_else_the_evidence_bucket(server: LiveNats) -> None:  # noqa: F811
    """deploy/nats (both sources): the gateway is refused the runs API and the evidence bucket; the
    operator may call the runs API; only the scraper writes the bucket."""
    runs_api = (Api.SCRAPER_RUNS_LIST, Api.SCRAPER_RUNS_SHOW, Api.SCRAPER_RUNS_EVIDENCE)
    async with connect(server, "scraper") as scraper:
        store = await scraper.nc.jetstream().create_object_store(EVIDENCE_BUCKET)
        await store.put("run-1/page.html", b"<html></html>")
        assert not scraper.errors
    async with connect(server, "gateway") as gateway, connect(server, "operator") as operator:
        for subject in runs_api:
            await gateway.nc.publish(subject, b"{}")
            await gateway.nc.flush()
            assert await gateway.refused(subject), subject
            await operator.nc.publish(subject, b"{}")
            await operator.nc.flush()
            assert not await operator.refused(subject, timeout=0.3), subject
        for conn in (gateway, operator):
            await conn.nc.publish(f"$JS.API.STREAM.INFO.OBJ_{EVIDENCE_BUCKET}", b"")
            await conn.nc.flush()
            assert await conn.refused(f"$JS.API.STREAM.INFO.OBJ_{EVIDENCE_BUCKET}")
