"""Use cases of the notifier: preferences, the notification log and the rules that fill it (§8)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from faststream.nats import NatsBroker

from services.notifier import messages
from services.notifier.repository import NotifierRepository
from shared import api
from shared.broker import publish_event
from shared.errors import ValidationFailed
from shared.events import AccountStatus, AccountStatusChanged, NotificationSent, new_id, utcnow
from shared.logging import get_logger
from shared.subjects import Events

log = get_logger("collectors.notifier")

MAX_EMAILS = 5
MAX_URL_LENGTH = 2000
HISTORY_LIMIT = 200
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}$")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Statuses whose end (a change to ``ok``) is a recovery worth telling.
PROBLEMS = frozenset({AccountStatus.ACTION_REQUIRED, AccountStatus.RETRYING})
DEFAULT_PREFS: dict[str, Any] = {"emails": [], "webhook_url": None, "language": "fr"}


# --- validation of preferences ------------------------------------------------------------------


def valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return all(_HOST_LABEL.match(label) for label in ascii_host.split("."))


def validate_emails(emails: list[str], lang: str) -> list[str]:
    """Plausible addresses, at most :data:`MAX_EMAILS`, duplicates (ignoring case) dropped."""
    cleaned: list[str] = []
    for raw in emails:
        value = raw.strip()
        if not value:
            raise ValidationFailed(messages.api_message("email_empty", lang), field="emails")
        if len(value) > 254 or not EMAIL.match(value):
            raise ValidationFailed(messages.api_message("email_invalid", lang, value=value[:100]),
                                   field="emails")
        if value.casefold() not in {e.casefold() for e in cleaned}:
            cleaned.append(value)
    if len(cleaned) > MAX_EMAILS:
        raise ValidationFailed(messages.api_message("emails_too_many", lang, max=MAX_EMAILS),
                               field="emails")
    return cleaned


def validate_webhook_url(url: str, lang: str) -> str | None:
    """An http(s) URL with a host and no credentials; an empty string removes the webhook."""
    value = url.strip()
    if not value:
        return None
    if len(value) > MAX_URL_LENGTH:
        raise ValidationFailed(messages.api_message("webhook_too_long", lang), field="webhook_url")
    invalid = ValidationFailed(messages.api_message("webhook_invalid", lang), field="webhook_url")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise invalid
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise invalid from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise invalid
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed(messages.api_message("webhook_credentials", lang), field="webhook_url")
    if not valid_host(parts.hostname.rstrip(".")):
        raise invalid
    return value


def to_prefs(tenant_id: str, doc: dict[str, Any] | None) -> api.Prefs:
    doc = doc or {}
    return api.Prefs(tenant_id=tenant_id, emails=doc.get("emails") or [],
                     webhook_url=doc.get("webhook_url"), language=doc.get("language") or "fr")


def to_view(doc: dict[str, Any]) -> api.NotificationView:
    return api.NotificationView(
        id=doc["_id"], tenant_id=doc["tenant_id"], kind=doc["kind"], channel=doc["channel"],
        subject=doc["subject"], body=doc["body"], created_at=doc["created_at"],
        delivered=doc["delivered"], delivered_at=doc.get("delivered_at"), error=doc.get("error"),
    )


# --- channels ------------------------------------------------------------------------------------


class Channel(Protocol):
    """A way to reach the pharmacy. Email and webhook channels plug in here (one record each)."""

    name: str

    def wants(self, prefs: api.Prefs) -> bool:
        """Whether this tenant's preferences ask for this channel."""

    async def deliver(self, notification: dict[str, Any], prefs: api.Prefs) -> None:
        """Deliver one notification; raise on failure (it is retried, then kept as an error)."""


class InAppChannel:
    """The in-app event the web gateway shows; every tenant gets it."""

    name = "in_app"

    def __init__(self, broker: NatsBroker) -> None:
        self.broker = broker

    def wants(self, prefs: api.Prefs) -> bool:
        return True

    async def deliver(self, notification: dict[str, Any], prefs: api.Prefs) -> None:
        # Built from the stored notification only, so a retried delivery is the same message.
        evt = NotificationSent(
            event_id=notification["_id"], occurred_at=notification["created_at"],
            tenant_id=notification["tenant_id"], notification_id=notification["_id"],
            kind=notification["kind"], subject=notification["subject"], body=notification["body"],
            language=notification["language"], account_id=notification.get("account_id"),
            collector_id=notification.get("collector_id"), error_code=notification.get("error_code"),
        )
        await publish_event(self.broker, Events.NOTIFICATION_SENT.for_tenant(evt.tenant_id), evt)


class DeliveryFailed(Exception):
    """Some channel failed: the source event is redelivered and the undelivered ones retried."""


# --- use cases -----------------------------------------------------------------------------------


class NotifierService:
    def __init__(self, repo: NotifierRepository, channels: Sequence[Channel]) -> None:
        self.repo = repo
        self.channels = list(channels)

    # --- preferences -------------------------------------------------------------------------

    async def get_prefs(self, req: api.TenantRequest) -> api.Prefs:
        return to_prefs(req.tenant_id, await self.repo.get_prefs(req.tenant_id))

    async def set_prefs(self, req: api.PrefsUpdate) -> api.Prefs:
        changes: dict[str, Any] = {}
        if req.emails is not None:
            changes["emails"] = validate_emails(req.emails, req.lang)
        if req.webhook_url is not None:
            changes["webhook_url"] = validate_webhook_url(req.webhook_url, req.lang)
        if req.language is not None:
            changes["language"] = req.language
        doc = await self.repo.set_prefs(req.tenant_id, changes, DEFAULT_PREFS, utcnow())
        log.info("prefs_updated", tenant_id=req.tenant_id, fields=sorted(changes))
        return to_prefs(req.tenant_id, doc)

    async def history(self, req: api.TenantRequest) -> api.NotificationListReply:
        docs = await self.repo.history(req.tenant_id, HISTORY_LIMIT)
        return api.NotificationListReply(notifications=[to_view(d) for d in docs])

    # --- rules -------------------------------------------------------------------------------

    async def account_status_changed(self, evt: AccountStatusChanged) -> None:
        """Tell a change into ``action_required`` at once, and the recovery after a problem."""
        collector = evt.collector_name or evt.collector_id
        at = evt.occurred_at
        if evt.status == AccountStatus.ACTION_REQUIRED:
            if evt.previous_status != AccountStatus.ACTION_REQUIRED:
                await self._notify(evt.tenant_id, evt.event_id, "action_required", lambda lang:
                                   messages.action_required(evt.error_code, evt.login, collector, lang),
                                   account_id=evt.account_id, collector_id=evt.collector_id,
                                   error_code=evt.error_code)
            await self.repo.set_problem(evt.tenant_id, evt.account_id, evt.status.value, at)
        elif evt.status == AccountStatus.RETRYING:
            await self.repo.set_problem(evt.tenant_id, evt.account_id, evt.status.value, at)
        elif evt.status == AccountStatus.OK:
            # The account usually passes through pending/collecting on its way back to ok, so the
            # problem it recovers from is the one remembered, not only the previous status.
            state = await self.repo.account_state(evt.tenant_id, evt.account_id) or {}
            remembered = state.get("problem") is not None and state["event_at"] <= at
            if remembered or evt.previous_status in PROBLEMS:
                await self._notify(evt.tenant_id, evt.event_id, "recovered", lambda lang:
                                   messages.recovered(evt.login, collector, lang),
                                   account_id=evt.account_id, collector_id=evt.collector_id)
            await self.repo.set_problem(evt.tenant_id, evt.account_id, None, at)
        elif evt.status == AccountStatus.DELETED:
            await self.repo.set_problem(evt.tenant_id, evt.account_id, None, at)

    async def _notify(self, tenant_id: str, source_event_id: str, kind: str,
                      render: Callable[[str], messages.Rendered], **context: Any) -> None:
        """Record one notification per wanted channel for a source event, then deliver them.

        The unique (tenant, source event, channel) index makes a redelivered event insert nothing;
        delivering whatever is still undelivered makes the redelivery finish an interrupted run.
        """
        prefs = to_prefs(tenant_id, await self.repo.get_prefs(tenant_id))
        rendered = render(prefs.language)
        now = utcnow()
        for channel in self.channels:
            if not channel.wants(prefs):
                continue
            created = await self.repo.record({
                "_id": new_id(), "tenant_id": tenant_id, "source_event_id": source_event_id,
                "kind": kind, "channel": channel.name, "language": prefs.language,
                "subject": rendered.subject, "body": rendered.body, "created_at": now,
                "delivered": False, "delivered_at": None, "error": None, "attempts": 0,
                **{k: v for k, v in context.items() if v is not None},
            })
            if created:
                log.info("notification_recorded", tenant_id=tenant_id, kind=kind, channel=channel.name,
                         source_event_id=source_event_id)
        failed: list[str] = []
        by_name = {c.name: c for c in self.channels}
        for doc in await self.repo.undelivered(tenant_id, source_event_id):
            sender = by_name.get(doc["channel"])
            if sender is None:  # a channel this instance no longer runs
                continue
            try:
                await sender.deliver(doc, prefs)
            except Exception as exc:
                log.warning("notification_delivery_failed", tenant_id=tenant_id, channel=sender.name,
                            notification_id=doc["_id"], error=str(exc)[:300])
                await self.repo.mark_failed(tenant_id, doc["_id"], f"{type(exc).__name__}: {exc}")
                failed.append(sender.name)
                continue
            await self.repo.mark_delivered(tenant_id, doc["_id"], utcnow())
        if failed:
            raise DeliveryFailed(f"delivery failed on {', '.join(failed)}")
