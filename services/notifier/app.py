"""Composition root of the notifier service: every dependency is built here, nothing at import."""

from __future__ import annotations

from services.notifier.repository import NotifierRepository
from services.notifier.service import InAppChannel, NotifierService
from shared import api, events
from shared.broker import api_handler, consume, event_handler, make_broker, serve_api
from shared.mongo import make_mongo_client
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.subjects import Api, Events

NAME = "notifier"


def build(settings: Settings) -> ServiceRuntime:
    broker = make_broker(settings.nats_url, NAME)
    repo = NotifierRepository(make_mongo_client(settings.mongodb_url)[settings.database_name(NAME)])
    # Email (SMTP) and signed webhook channels join this list in a later issue.
    service = NotifierService(repo, [InAppChannel(broker)])

    routes = [
        (Api.NOTIFIER_PREFS_GET, api.TenantRequest, service.get_prefs),
        (Api.NOTIFIER_PREFS_SET, api.PrefsUpdate, service.set_prefs),
        (Api.NOTIFIER_HISTORY, api.TenantRequest, service.history),
    ]
    for subject, model, func in routes:
        serve_api(broker, subject, NAME, api_handler(model, func, service=NAME))  # type: ignore[arg-type]

    # One message at a time: FastStream handles a fetched batch concurrently, and telling a recovery
    # needs an account's status changes in order.
    consume(broker, Events.ACCOUNT_STATUS_CHANGED.pattern, owner="accounts", durable="notifier-status",
            handler=event_handler(events.AccountStatusChanged, service.account_status_changed,
                                  service=NAME), batch_size=1)

    rt = ServiceRuntime(NAME, broker)
    rt.on_connect.append(repo.create_indexes)
    return rt
