"""Composition root of the scraper service (one worker process)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import partial
from typing import Any

from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.object_store import ObjectStore

from services.scraper import metrics
from services.scraper.browsers import BrowserPolicy, BrowserPool
from services.scraper.collectors import builtin_collectors
from services.scraper.evidence import EvidencePolicy, EvidenceStore, open_bucket, parse_sample
from services.scraper.jobs import JobConsumer, JobPolicy
from services.scraper.kit import Collector
from services.scraper.ledger import Ledger
from services.scraper.runs import RunIndex, RunKeeper, RunsApi
from services.scraper.service import JobSettings, ScraperService
from shared import api, telemetry
from shared.broker import api_handler, consume, jetstream, make_broker, serve_api
from shared.client import ApiClient
from shared.dead_letters import serve_dead_letters
from shared.mongo import make_mongo_client
from shared.runtime import ServiceRuntime
from shared.settings import ScraperSettings, StreamSettings
from shared.subjects import COLLECT_JOBS_PATTERN, INVOICE_BUCKET, Api

NAME = "scraper"
# How long a stopping worker lets its running jobs finish before handing them back to the queue.
DRAIN_GRACE_S = 20.0


@dataclass
class ScraperRuntime(ServiceRuntime):
    jobs: JobConsumer | None = None

    async def stop(self) -> None:
        # Before the broker goes: running jobs still need it to publish, ack or hand themselves back.
        if self.jobs is not None:
            await self.jobs.drain(DRAIN_GRACE_S)
        await super().stop()


def build(settings: ScraperSettings, *, collectors: dict[str, Collector] | None = None) -> ServiceRuntime:
    broker = make_broker(settings.nats_url, NAME)
    db = make_mongo_client(settings.mongodb_url)[settings.database_name(NAME)]
    ledger = Ledger(db)
    dead_letters = serve_dead_letters(broker, db, NAME)  # jobs kept aside, `collectors dlq`
    # Late-bound: the job consumer and the runtime are built below.
    browsers = BrowserPool(page_timeout_s=settings.page_timeout_s, policy=BrowserPolicy(
        check_s=settings.browser_check_s, max_failures=settings.browser_max_failures,
        failure_window_s=settings.browser_failure_window_s),
        on_lost=lambda why: jobs.hand_back_running(why), on_give_up=lambda why: rt.fail(why))
    plugins = collectors if collectors is not None else builtin_collectors()
    state: dict[str, Any] = {}

    def store() -> ObjectStore:
        return state["store"]  # type: ignore[no-any-return]

    def accounts_client() -> ApiClient:
        return state["client"]  # type: ignore[no-any-return]

    # The run index and failed runs' evidence (services/scraper/runs.py, evidence.py).
    runs_index = RunIndex(ledger.invoices.database)
    evidence_policy = EvidencePolicy(max_bytes=settings.evidence_max_bytes,
                                     retention_s=settings.evidence_retention_days * 86400,
                                     sample=parse_sample(settings.evidence_sample))

    def evidence_store() -> EvidenceStore:
        return state["evidence"]  # type: ignore[no-any-return]

    runs_api = RunsApi(runs_index, evidence_store)

    service = ScraperService(
        broker, ledger, plugins, browsers, store,
        JobSettings(worker_id=f"{socket.gethostname()}-{os.getpid()}", sandbox_url=settings.sandbox_url,
                    job_timeout_s=settings.job_timeout_s, max_document_bytes=settings.max_document_bytes,
                    browserless_start=settings.browserless_start),
        accounts_client, runs=RunKeeper(runs_index, evidence_store, evidence_policy),
    )
    jobs = JobConsumer(
        JobPolicy(concurrency=settings.concurrency, heartbeat_s=settings.heartbeat_s,
                  retry_delay_s=settings.retry_delay_s, max_deliver=settings.max_deliver),
        known_collectors=lambda: set(plugins), run=service.run_job, keep_aside=dead_letters.keep,
        available=browsers.wait_ready,
    )

    serve_api(broker, Api.SCRAPER_INVOICES_LIST, NAME,
              api_handler(api.ListInvoices, service.list_invoices, service=NAME))
    serve_api(broker, Api.SCRAPER_INVOICE_GET, NAME,
              api_handler(api.InvoiceRef, service.get_invoice, service=NAME))
    serve_api(broker, Api.SCRAPER_INVOICE_DOWNLOAD, NAME,
              api_handler(api.DownloadInvoice, service.download_invoice, service=NAME))
    serve_api(broker, Api.SCRAPER_RUNS_LIST, NAME, api_handler(api.ListRuns, runs_api.list_runs, service=NAME))
    serve_api(broker, Api.SCRAPER_RUNS_SHOW, NAME, api_handler(api.RunRef, runs_api.show_run, service=NAME))
    serve_api(broker, Api.SCRAPER_RUNS_EVIDENCE, NAME,
              api_handler(api.DownloadEvidence, runs_api.download_evidence, service=NAME))
    # One message per fetch: the JobConsumer runs `concurrency` jobs at once and keeps each alive
    # with in-progress acks every heartbeat_s; a worker that dies stops sending them and its jobs
    # go to another one after ack_wait_s.
    consume(broker, COLLECT_JOBS_PATTERN, owner="jobs", durable="scraper-collect",
            handler=jobs.receive, max_workers=1, ack_wait_s=settings.ack_wait_s,
            max_deliver=settings.max_deliver, batch_size=1,
            description="Collect jobs: one browser context each")

    async def connect() -> None:
        await ledger.create_indexes()
        await dead_letters.store.create_indexes()
        # Kept by as many servers as the streams (COLLECTORS_STREAM_REPLICAS), on disk.
        state["store"] = await jetstream(broker).create_object_store(INVOICE_BUCKET, ObjectStoreConfig(
            bucket=INVOICE_BUCKET, storage=StorageType.FILE, replicas=StreamSettings().stream_replicas))
        state["client"] = ApiClient(broker.connection, timeout=settings.request_timeout_s)
        await runs_index.create_indexes()
        # NATS expires the evidence (the bucket's TTL): COLLECTORS_EVIDENCE_RETENTION_DAYS.
        js = jetstream(broker)
        state["evidence"] = EvidenceStore(await open_bucket(js, evidence_policy.retention_s,
                                                            StreamSettings().stream_replicas), js)

    async def after_start() -> None:
        await service.announce()

    rt = ScraperRuntime(NAME, broker, jobs=jobs)
    rt.on_connect.append(connect)
    rt.on_connect.append(browsers.start)  # not ready until the browser runs
    rt.readiness.append(browsers.not_ready)
    rt.after_start.append(after_start)
    rt.on_stop.append(browsers.close)
    if telemetry.metrics_enabled():
        rt.background.append(partial(metrics.watch_dead_letters, ledger.invoices.database["dead_letters"],
                                     telemetry.lag_every_s()))
    return rt
