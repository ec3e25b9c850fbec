"""Composition root of the notifier service: every dependency is built here, nothing at import."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from services.notifier import rules
from services.notifier.channels import Channel, EmailChannel, InAppChannel, SmtpConfig, WebhookChannel
from services.notifier.delivery import DeliveryPolicy, Dispatcher
from services.notifier.repository import NotifierRepository
from services.notifier.service import NotifierService
from shared import api, events
from shared.broker import api_handler, consume, event_handler, make_broker, serve_api
from shared.dead_letters import serve_dead_letters
from shared.events import utcnow
from shared.mongo import make_mongo_client
from shared.runtime import ServiceRuntime
from shared.settings import NotifierSettings, Settings
from shared.subjects import Api, Events

NAME = "notifier"


def notifier_settings(settings: Settings) -> NotifierSettings:
    """The notifier's own settings; plain ``Settings`` (as ``collectors up`` passes) are completed
    from the environment (``COLLECTORS_SMTP_HOST``...)."""
    if isinstance(settings, NotifierSettings):
        return settings
    return NotifierSettings(**settings.model_dump())


def rule_policy(s: NotifierSettings) -> rules.Policy:
    return rules.Policy(transient_after=timedelta(hours=s.transient_alert_after_h),
                        reminders=tuple(timedelta(days=d) for d in sorted(s.reminder_days)))


def build(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> ServiceRuntime:
    """``clock`` drives the time-based rules and delivery retries (tests move it forward)."""
    s = notifier_settings(settings)
    broker = make_broker(s.nats_url, NAME)
    db = make_mongo_client(s.mongodb_url)[s.database_name(NAME)]
    repo = NotifierRepository(db)
    dead_letters = serve_dead_letters(broker, db, NAME)  # events kept aside, `collectors dlq`
    webhook = WebhookChannel(timeout_s=s.delivery_timeout_s, allow_private_networks=s.webhook_allow_private_networks)
    channels: list[Channel] = [InAppChannel(broker), EmailChannel(SmtpConfig.from_settings(s)), webhook]
    dispatcher = Dispatcher(repo, channels, DeliveryPolicy.from_settings(s), clock)
    service = NotifierService(repo, channels, dispatcher, clock=clock, policy=rule_policy(s))

    routes = [
        (Api.NOTIFIER_PREFS_GET, api.TenantRequest, service.get_prefs),
        (Api.NOTIFIER_PREFS_SET, api.PrefsUpdate, service.set_prefs),
        (Api.NOTIFIER_HISTORY, api.TenantRequest, service.history),
    ]
    for subject, model, func in routes:
        serve_api(broker, subject, NAME, api_handler(model, func, service=NAME))  # type: ignore[arg-type]

    # One message at a time: FastStream handles a fetched batch concurrently, and the rules need an
    # account's status changes in order. Handlers only record; delivery happens in the dispatcher.
    consume(broker, Events.ACCOUNT_STATUS_CHANGED.pattern, owner="accounts", durable="notifier-status",
            handler=event_handler(events.AccountStatusChanged, service.account_status_changed,
                                  service=NAME, keep_aside=dead_letters.keep), batch_size=1)
    consume(broker, Events.INCIDENT_DECLARED.pattern, owner="scheduler", durable="notifier-incident-declared",
            handler=event_handler(events.IncidentDeclared, service.incident_declared, service=NAME,
                                  keep_aside=dead_letters.keep))
    consume(broker, Events.INCIDENT_RESOLVED.pattern, owner="scheduler", durable="notifier-incident-resolved",
            handler=event_handler(events.IncidentResolved, service.incident_resolved, service=NAME,
                                  keep_aside=dead_letters.keep))
    consume(broker, Events.REQUEST_STATUS_CHANGED.pattern, owner="requests", durable="notifier-requests",
            handler=event_handler(events.RequestStatusChanged, service.request_status_changed, service=NAME,
                                  keep_aside=dead_letters.keep))

    rt = ServiceRuntime(NAME, broker)
    rt.on_connect.append(repo.create_indexes)
    rt.on_connect.append(dead_letters.store.create_indexes)
    rt.background.append(dispatcher.run)
    rt.background.append(partial(service.run_sweeps, s.sweep_s))
    rt.on_stop.append(webhook.close)
    return rt
