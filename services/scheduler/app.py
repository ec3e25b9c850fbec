"""Composition root of the scheduler service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from services.scheduler.repository import ScheduleRepository
from services.scheduler.service import SchedulerService, Tuning
from shared import events
from shared.broker import consume, event_handler, make_broker
from shared.dead_letters import serve_dead_letters
from shared.events import utcnow
from shared.mongo import make_mongo_client
from shared.outbox import OutboxRelay
from shared.runtime import ServiceRuntime
from shared.settings import SchedulerSettings
from shared.subjects import Events

NAME = "scheduler"


def build(settings: SchedulerSettings, *, clock: Callable[[], datetime] = utcnow) -> ServiceRuntime:
    broker = make_broker(settings.nats_url, NAME)
    db = make_mongo_client(settings.mongodb_url)[settings.database_name(NAME)]
    repo = ScheduleRepository(db)
    dead_letters = serve_dead_letters(broker, db, NAME)  # events kept aside, `collectors dlq`
    schedules_outbox = OutboxRelay(repo.schedules, broker)
    incidents_outbox = OutboxRelay(repo.incidents, broker)
    tuning = Tuning(
        max_dispatch_per_tick=settings.max_dispatch_per_tick, lease_ttl=timedelta(seconds=settings.lease_ttl_s),
        probe_interval=timedelta(seconds=settings.probe_interval_s),
        incident_window=timedelta(seconds=settings.incident_window_s),
        incident_min_accounts=settings.incident_min_accounts, incident_share=settings.incident_share,
        refresh_horizon=timedelta(seconds=2 * settings.refresh_s),
        start_timeout=timedelta(seconds=settings.start_timeout_s),
        run_timeout=timedelta(seconds=settings.job_timeout_s + settings.run_margin_s))
    service = SchedulerService(repo, schedules_outbox, incidents_outbox, clock=clock, tuning=tuning)
    consumers = [
        (Events.ACCOUNT_CREATED, "accounts", "scheduler-account-created", events.AccountCreated,
         service.account_created),
        (Events.ACCOUNT_CREDENTIALS_UPDATED, "accounts", "scheduler-credentials-updated",
         events.AccountCredentialsUpdated, service.credentials_updated),
        (Events.ACCOUNT_RETRY_REQUESTED, "accounts", "scheduler-retry-requested",
         events.AccountRetryRequested, service.retry_requested),
        (Events.ACCOUNT_DELETED, "accounts", "scheduler-account-deleted", events.AccountDeleted,
         service.account_deleted),
        (Events.COLLECTOR_ANNOUNCED, "scraper", "scheduler-catalog", events.CollectorAnnounced,
         service.collector_announced),
        (Events.COLLECTION_STARTED, "scraper", "scheduler-started", events.CollectionStarted,
         service.collection_started),
        (Events.COLLECTION_SUCCEEDED, "scraper", "scheduler-succeeded", events.CollectionSucceeded,
         service.collection_succeeded),
        (Events.COLLECTION_FAILED, "scraper", "scheduler-failed", events.CollectionFailed,
         service.collection_failed),
    ]
    for subject, owner, durable, model, func in consumers:
        consume(broker, subject.pattern, owner=owner, durable=durable,
                handler=event_handler(model, func, service=NAME, keep_aside=dead_letters.keep))  # type: ignore[arg-type]
    rt = ServiceRuntime(NAME, broker)
    rt.on_connect.append(repo.create_indexes)
    rt.on_connect.append(dead_letters.store.create_indexes)
    rt.background.append(partial(service.run, settings.tick_s, settings.refresh_s))
    rt.background.append(schedules_outbox.run)
    rt.background.append(incidents_outbox.run)
    rt.extras["service"] = service
    return rt
