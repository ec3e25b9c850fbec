"""Composition root of the requests service: every dependency is built here, nothing at import."""

from __future__ import annotations

from services.requests.repository import RequestRepository
from services.requests.service import RequestsService
from shared import api, events
from shared.broker import api_handler, consume, event_handler, make_broker, serve_api
from shared.dead_letters import serve_dead_letters
from shared.mongo import make_mongo_client
from shared.outbox import OutboxRelay
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.subjects import Api, Events

NAME = "requests"


def build(settings: Settings) -> ServiceRuntime:
    broker = make_broker(settings.nats_url, NAME)
    db = make_mongo_client(settings.mongodb_url)[settings.database_name(NAME)]
    repo = RequestRepository(db)
    dead_letters = serve_dead_letters(broker, db, NAME)  # events kept aside, `collectors dlq`
    relay = OutboxRelay(repo.requests, broker)
    service = RequestsService(repo, relay)

    routes = [
        (Api.REQUESTS_CREATE, api.CreateRequest, service.create),
        (Api.REQUESTS_LIST, api.ListRequests, service.list),
        (Api.REQUESTS_SET_STATUS, api.SetRequestStatus, service.set_status),
        (Api.REQUESTS_LIST_ALL, api.ListAllRequests, service.list_all),
    ]
    for subject, model, func in routes:
        serve_api(broker, subject, NAME, api_handler(model, func, service=NAME))  # type: ignore[arg-type]

    consume(broker, Events.COLLECTOR_ANNOUNCED.pattern, owner="scraper", durable="requests-catalog",
            handler=event_handler(events.CollectorAnnounced, service.collector_announced, service=NAME,
                                  keep_aside=dead_letters.keep))

    rt = ServiceRuntime(NAME, broker)
    rt.on_connect.append(repo.create_indexes)
    rt.on_connect.append(dead_letters.store.create_indexes)
    rt.background.append(relay.run)
    return rt
