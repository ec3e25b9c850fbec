"""Composition root of the scheduler service."""

from __future__ import annotations

from functools import partial

from services.scheduler.repository import ScheduleRepository
from services.scheduler.service import SchedulerService
from shared import events
from shared.broker import consume, event_handler, make_broker
from shared.mongo import make_mongo_client
from shared.runtime import ServiceRuntime
from shared.settings import SchedulerSettings
from shared.subjects import Events

NAME = "scheduler"


def build(settings: SchedulerSettings) -> ServiceRuntime:
    broker = make_broker(settings.nats_url, NAME)
    repo = ScheduleRepository(make_mongo_client(settings.mongodb_url)[settings.database_name(NAME)])
    service = SchedulerService(repo, broker)
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
        (Events.COLLECTION_SUCCEEDED, "scraper", "scheduler-succeeded", events.CollectionSucceeded,
         service.collection_succeeded),
        (Events.COLLECTION_FAILED, "scraper", "scheduler-failed", events.CollectionFailed,
         service.collection_failed),
    ]
    for subject, owner, durable, model, func in consumers:
        consume(broker, subject.pattern, owner=owner, durable=durable,
                handler=event_handler(model, func, service=NAME))  # type: ignore[arg-type]
    rt = ServiceRuntime(NAME, broker)
    rt.on_connect.append(repo.create_indexes)
    rt.background.append(partial(service.run, settings.tick_s))
    return rt
