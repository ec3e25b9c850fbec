"""Composition root of the scraper service (one worker process)."""

from __future__ import annotations

import os
import socket
from typing import Any

from nats.js.object_store import ObjectStore

from services.scraper.browsers import BrowserPool
from services.scraper.collectors import builtin_collectors
from services.scraper.kit import Collector
from services.scraper.ledger import Ledger
from services.scraper.service import JobSettings, ScraperService
from shared import api
from shared.broker import api_handler, consume, jetstream, make_broker, serve_api
from shared.client import ApiClient
from shared.mongo import make_mongo_client
from shared.runtime import ServiceRuntime
from shared.settings import ScraperSettings
from shared.subjects import COLLECT_JOBS_PATTERN, INVOICE_BUCKET, Api

NAME = "scraper"


def build(settings: ScraperSettings, *, collectors: dict[str, Collector] | None = None) -> ServiceRuntime:
    broker = make_broker(settings.nats_url, NAME)
    ledger = Ledger(make_mongo_client(settings.mongodb_url)[settings.database_name(NAME)])
    browsers = BrowserPool()
    state: dict[str, Any] = {}

    def store() -> ObjectStore:
        return state["store"]  # type: ignore[no-any-return]

    def accounts_client() -> ApiClient:
        return state["client"]  # type: ignore[no-any-return]

    service = ScraperService(
        broker, ledger, collectors if collectors is not None else builtin_collectors(), browsers, store,
        JobSettings(worker_id=f"{socket.gethostname()}-{os.getpid()}", sandbox_url=settings.sandbox_url,
                    job_timeout_s=settings.job_timeout_s, heartbeat_s=settings.heartbeat_s),
        accounts_client,
    )

    serve_api(broker, Api.SCRAPER_INVOICES_LIST, NAME,
              api_handler(api.ListInvoices, service.list_invoices, service=NAME))
    serve_api(broker, Api.SCRAPER_INVOICE_GET, NAME,
              api_handler(api.InvoiceRef, service.get_invoice, service=NAME))
    # Ack wait is a minute; long jobs keep it alive with in-progress acks every heartbeat_s.
    consume(broker, COLLECT_JOBS_PATTERN, owner="jobs", durable="scraper-collect",
            handler=service.handle_job_message, max_workers=settings.concurrency, ack_wait_s=60.0,
            max_deliver=10, batch_size=settings.concurrency,
            description="Collect jobs: one browser context each")

    async def connect() -> None:
        await ledger.create_indexes()
        state["store"] = await jetstream(broker).create_object_store(INVOICE_BUCKET)
        state["client"] = ApiClient(broker.connection, timeout=settings.request_timeout_s)

    async def after_start() -> None:
        await service.announce()

    rt = ServiceRuntime(NAME, broker)
    rt.on_connect.append(connect)
    rt.after_start.append(after_start)
    rt.on_stop.append(browsers.close)
    return rt
