"""Composition root of the accounts service: every dependency is built here, nothing at import."""

from __future__ import annotations

from services.accounts.crypto import Keyring
from services.accounts.fleet import FleetService, IncidentRepository, RunStatsRepository
from services.accounts.repository import AccountRepository, CatalogRepository
from services.accounts.service import AccountsService
from shared import api, events
from shared.broker import api_handler, consume, event_handler, make_broker, serve_api
from shared.dead_letters import serve_dead_letters
from shared.mongo import make_mongo_client
from shared.outbox import OutboxRelay
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings
from shared.subjects import Api, Events

NAME = "accounts"


def build(settings: AccountsSettings, *, keyring: Keyring | None = None) -> ServiceRuntime:
    broker = make_broker(settings.nats_url, NAME)
    db = make_mongo_client(settings.mongodb_url)[settings.database_name(NAME)]
    accounts = AccountRepository(db)
    catalog = CatalogRepository(db)
    relay = OutboxRelay(accounts.accounts, broker)
    dead_letters = serve_dead_letters(broker, db, NAME)  # events kept aside, `collectors dlq`
    def load_keys() -> Keyring:
        return Keyring.load(settings.credential_keys, settings.credential_keys_file)

    keys = keyring or load_keys()
    # A keyring handed in by the caller (tests, `collectors up`) is kept; else the source is re-read.
    service = AccountsService(accounts, catalog, keys, relay, reload_keys=None if keyring else load_keys)

    async def catalog_reply(_: api.TenantRequest) -> api.CatalogReply:
        """The collectors a pharmacy can activate."""
        return await service.catalog_entries()

    routes = [
        (Api.ACCOUNTS_CATALOG, api.TenantRequest, catalog_reply),
        (Api.ACCOUNTS_CREATE, api.CreateAccount, service.create),
        (Api.ACCOUNTS_LIST, api.ListAccounts, service.list),
        (Api.ACCOUNTS_GET, api.AccountRef, service.get),
        (Api.ACCOUNTS_UPDATE_CREDENTIALS, api.UpdateCredentials, service.update_credentials),
        (Api.ACCOUNTS_RETRY, api.AccountRef, service.retry),
        (Api.ACCOUNTS_DELETE, api.AccountRef, service.delete),
        (Api.ACCOUNTS_REVEAL_CREDENTIALS, api.RevealCredentials, service.reveal),
        (Api.ACCOUNTS_ROTATE_KEYS, api.RotateKeys, service.rotate_keys),
    ]
    for subject, model, func in routes:
        serve_api(broker, subject, NAME, api_handler(model, func, service=NAME))  # type: ignore[arg-type]

    consumers = [
        (Events.COLLECTOR_ANNOUNCED.pattern, "accounts-catalog", events.CollectorAnnounced,
         service.record_collector),
        (Events.COLLECTION_STARTED.pattern, "accounts-started", events.CollectionStarted,
         service.collection_started),
        (Events.COLLECTION_SUCCEEDED.pattern, "accounts-succeeded", events.CollectionSucceeded,
         service.collection_succeeded),
        (Events.COLLECTION_FAILED.pattern, "accounts-failed", events.CollectionFailed,
         service.collection_failed),
    ]
    for subject, durable, model, func in consumers:
        consume(broker, subject, owner="scraper", durable=durable,
                handler=event_handler(model, func, service=NAME, keep_aside=dead_letters.keep))  # type: ignore[arg-type]
    scheduler_consumers = [
        (Events.SCHEDULE_CHANGED.pattern, "accounts-schedule", events.ScheduleChanged, service.schedule_changed),
        (Events.INCIDENT_DECLARED.pattern, "accounts-incident-declared", events.IncidentDeclared,
         service.incident_declared),
        (Events.INCIDENT_RESOLVED.pattern, "accounts-incident-resolved", events.IncidentResolved,
         service.incident_resolved),
        (Events.COLLECTION_TIMED_OUT.pattern, "accounts-timed-out", events.CollectionTimedOut,
         service.collection_timed_out),
    ]
    for subject, durable, model, func in scheduler_consumers:
        consume(broker, subject, owner="scheduler", durable=durable,
                handler=event_handler(model, func, service=NAME, keep_aside=dead_letters.keep))  # type: ignore[arg-type]

    # The operators' fleet view (services/accounts/fleet.py): its own consumers of the results and of
    # the incidents, so a failure there never holds back the statuses.
    fleet = FleetService(accounts, catalog, RunStatsRepository(db), IncidentRepository(db))
    serve_api(broker, Api.ACCOUNTS_FLEET, NAME, api_handler(api.FleetRequest, fleet.fleet, service=NAME))
    consume(broker, Events.COLLECTION_SUCCEEDED.pattern, owner="scraper", durable="accounts-fleet-succeeded",
            handler=event_handler(events.CollectionSucceeded, fleet.run_ended, service=NAME,
                                  keep_aside=dead_letters.keep))
    consume(broker, Events.COLLECTION_FAILED.pattern, owner="scraper", durable="accounts-fleet-failed",
            handler=event_handler(events.CollectionFailed, fleet.run_ended, service=NAME,
                                  keep_aside=dead_letters.keep))
    consume(broker, Events.INCIDENT_DECLARED.pattern, owner="scheduler", durable="accounts-fleet-incident-declared",
            handler=event_handler(events.IncidentDeclared, fleet.incident_declared, service=NAME,
                                  keep_aside=dead_letters.keep))
    consume(broker, Events.INCIDENT_RESOLVED.pattern, owner="scheduler", durable="accounts-fleet-incident-resolved",
            handler=event_handler(events.IncidentResolved, fleet.incident_resolved, service=NAME,
                                  keep_aside=dead_letters.keep))

    rt = ServiceRuntime(NAME, broker)
    rt.on_connect.append(accounts.create_indexes)
    rt.on_connect.append(dead_letters.store.create_indexes)
    rt.on_connect.append(fleet.create_indexes)
    rt.background.append(fleet.sweep_forever)
    rt.background.append(relay.run)
    return rt
