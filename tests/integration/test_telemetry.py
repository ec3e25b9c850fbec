"""Metrics and traces of a demo-like run: the five services in one process, the sandbox portal, two
accounts collected; ``/metrics`` scraped on a service's HTTP port, spans kept in memory."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from sandbox.data import documents_for
from sandbox.portal import SandboxPortal, start_portal
from services.accounts.app import build as build_accounts
from services.accounts.crypto import Keyring
from services.notifier.app import build as build_notifier
from services.requests.app import build as build_requests
from services.scheduler.app import build as build_scheduler
from services.scraper.app import build as build_scraper
from shared import telemetry
from shared.client import ApiClient
from shared.natsserver import free_port
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings, Settings
from shared.subjects import Api
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOGINS = ("pharmacie-centrale", "pharmacie-du-marche")
TENANT = "telemetry"


@pytest.fixture
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal()
    yield p
    await p.close()


@pytest.fixture(autouse=True)
def fresh_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(telemetry.LAG_EVERY_ENV, "0.2")
    yield
    telemetry.configure_metrics(None)
    telemetry.configure_tracing()


@dataclass
class Run:
    accounts: dict[str, dict[str, Any]]  # login -> account as the API shows it
    invoices: int
    metrics_status: int
    metrics_text: str


async def _collect_two(nats_url: str, mongodb_url: str | None, db_prefix: str, keyring: Keyring,
                       portal: SandboxPortal) -> Run:
    """Start every service (the scraper's HTTP port open), create two sandbox-classic accounts, wait
    until both are collected, scrape ``/metrics``."""
    common: dict[str, Any] = {"nats_url": nats_url, "mongodb_url": mongodb_url, "db_prefix": db_prefix}
    runtimes: list[ServiceRuntime] = [
        build_accounts(AccountsSettings(**common), keyring=keyring),
        build_scheduler(SchedulerSettings(**common)),
        build_scraper(ScraperSettings(**common, sandbox_url=portal.url, concurrency=2)),
        build_notifier(Settings(**common)),
        build_requests(Settings(**common)),
    ]
    port = free_port()
    started: list[ServiceRuntime] = []
    client: ApiClient | None = None
    try:
        for rt in runtimes:
            await rt.start(port if rt.name == "scraper" else 0)
            started.append(rt)
        client = await ApiClient.connect(nats_url)

        async def catalog_ready() -> bool:
            reply = await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": TENANT})
            return any(c["id"] == "sandbox-classic" for c in reply["collectors"])

        await eventually(catalog_ready, what="the sandbox collector in the catalog")
        ids = {}
        for login in LOGINS:
            created = await client.call(Api.ACCOUNTS_CREATE, {
                "tenant_id": TENANT, "collector_id": "sandbox-classic", "login": login, "password": "demo"})
            ids[login] = created["id"]

        async def settled() -> dict[str, dict[str, Any]] | None:
            got = {login: await client.call(Api.ACCOUNTS_GET, {"tenant_id": TENANT, "account_id": id_})
                   for login, id_ in ids.items()}
            return got if all(a["status"] in ("ok", "action_required") for a in got.values()) else None

        accounts = await eventually(settled, timeout=60, what="both accounts collected")
        listing = await client.call(Api.SCRAPER_INVOICES_LIST, {"tenant_id": TENANT, "limit": 10000})
        await asyncio.sleep(0.5)  # a lag reading after the last messages (every 0.2 s)
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
            status = resp.status
        return Run(accounts, len(listing["invoices"]), status, text)
    finally:
        if client is not None:
            await client.close()
        for rt in reversed(started):
            await rt.stop()


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name].append((sample.labels, sample.value))
    return found


def _value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items()))


def _expected_behaviour(run: Run) -> None:
    """What the platform does, metrics or not: both accounts ok, every invoice of theirs collected."""
    assert {login: a["status"] for login, a in run.accounts.items()} == dict.fromkeys(LOGINS, "ok")
    for login, account in run.accounts.items():
        assert account["invoice_count"] == len(documents_for(login, date.today()))
    assert run.invoices == sum(len(documents_for(login, date.today())) for login in LOGINS)


async def test_metrics_of_a_demo_like_run(nats_url: str, mongodb_url: str | None, db_prefix: str,
                                          keyring: Keyring, portal: SandboxPortal) -> None:
    telemetry.configure_metrics(True)
    run = await _collect_two(nats_url, mongodb_url, db_prefix, keyring, portal)
    _expected_behaviour(run)
    assert run.metrics_status == 200
    s = _samples(run.metrics_text)
    classic = {"collector": "sandbox-classic"}
    # Per collector: runs by outcome and code, their duration, what they brought.
    assert _value(s, "collectors_scraper_runs_total", **classic, outcome="succeeded", code="ok") == 2
    assert _value(s, "collectors_scraper_run_duration_seconds_count", **classic) == 2
    buckets = [(labels["le"], v) for labels, v in s["collectors_scraper_run_duration_seconds_bucket"]
               if labels["collector"] == "sandbox-classic"]
    assert len(buckets) > 5 and dict(buckets)["+Inf"] == 2
    assert _value(s, "collectors_scraper_documents_total", **classic) == run.invoices
    assert _value(s, "collectors_scraper_document_bytes_total", **classic) > 1000 * run.invoices
    # FastStream's message metrics, per service in the one registry.
    for service, handler in (("scheduler", "accounts.created"), ("scraper", "jobs.collect"),
                             ("accounts", "collection_succeeded")):
        assert _value(s, "faststream_received_processed_messages_total", service=service) > 0, service
        assert any(labels.get("service") == service and handler in labels.get("handler", "")
                   for labels, _ in s["faststream_received_processed_messages_total"]), (service, handler)
    # Consumer lag read from JetStream, per durable consumer; the scheduler's dispatches.
    assert ({"consumer": "scraper-collect", "service": "scraper"}.items()
            <= next(labels for labels, _ in s["collectors_consumer_pending_messages"]
                    if labels["consumer"] == "scraper-collect").items())
    assert _value(s, "collectors_consumer_pending_messages", consumer="scheduler-account-created") == 0
    assert _value(s, "collectors_scheduler_due_total") >= 2
    assert _value(s, "collectors_scheduler_dispatched_total", collector="sandbox-classic", reason="activation") == 2
    assert _value(s, "collectors_scheduler_late_total") == 0
    assert _value(s, "collectors_dead_letters", service="scraper") == 0
    assert "collectors_dead_letters" in s


async def test_one_trace_from_the_api_to_the_notifier(nats_url: str, mongodb_url: str | None, db_prefix: str,
                                                     keyring: Keyring, portal: SandboxPortal) -> None:
    exporter = InMemorySpanExporter()
    telemetry.configure_tracing(SimpleSpanProcessor(exporter))
    run = await _collect_two(nats_url, mongodb_url, db_prefix, keyring, portal)
    _expected_behaviour(run)

    def traces() -> dict[int, set[str]]:
        by_trace: dict[int, set[str]] = defaultdict(set)
        for span in exporter.get_finished_spans():
            assert span.context is not None
            by_trace[span.context.trace_id].add(str(span.resource.attributes["service.name"]))
        return by_trace

    async def whole() -> list[int] | None:
        found = [t for t, services in traces().items()
                 if {"accounts", "scheduler", "scraper", "notifier"} <= services]
        return found or None

    try:
        whole_traces = await eventually(whole, timeout=5, what="a trace through four services")
    except AssertionError:
        raise AssertionError(f"services per trace: {sorted(map(sorted, traces().values()))}") from None
    assert whole_traces
    # The creation's trace: its first span answers the API request that created the account.
    spans = [s for s in exporter.get_finished_spans() if s.context and s.context.trace_id == whole_traces[0]]
    names = {s.name for s in spans}
    assert any("accounts.create" in n for n in names), names
    assert any("jobs.collect" in n for n in names), names
    # The scraper's request for the credentials (ApiClient, outside FastStream) carries the trace too.
    assert any("reveal_credentials" in n for n in names), names


async def test_metrics_off_change_nothing(nats_url: str, mongodb_url: str | None, db_prefix: str,
                                          keyring: Keyring, portal: SandboxPortal) -> None:
    telemetry.configure_metrics(False)
    run = await _collect_two(nats_url, mongodb_url, db_prefix, keyring, portal)
    _expected_behaviour(run)  # the very checks the metrics-on run passes
    assert run.metrics_status == 404  # not served
    s = _samples(telemetry.exposition().decode())
    assert not [name for name in s if name.startswith(("collectors_", "faststream_"))]
