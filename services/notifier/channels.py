"""The ways to reach a pharmacy: in-app event, email over SMTP, signed webhook.

A channel delivers one stored notification (a document of the notification log) and raises on
failure; :mod:`services.notifier.delivery` retries it. Every message is built from the stored
notification only, so a retry sends the same message.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import aiohttp
import aiosmtplib
from aiohttp.abc import AbstractResolver, ResolveResult
from faststream.nats import NatsBroker

from services.notifier import signing
from shared import api
from shared.broker import publish_event
from shared.events import NotificationSent
from shared.settings import NotifierSettings
from shared.subjects import Events

WEBHOOK_SCHEMA_VERSION = 1
USER_AGENT = "collectors-notifier/1"


class PermanentDeliveryError(Exception):
    """Retrying cannot help (the channel is not configured): the failure is final at once."""


class Channel(Protocol):
    name: str

    def wants(self, prefs: api.Prefs) -> bool:
        """Whether this tenant's preferences ask for this channel."""

    def recipient(self, prefs: api.Prefs) -> str | None:
        """Where the notification goes, as shown in the history."""

    async def deliver(self, notification: dict[str, Any], prefs: api.Prefs) -> None:
        """Deliver one notification; raise on failure."""


class InAppChannel:
    """The event the web gateway shows; every tenant gets it."""

    name = "in_app"

    def __init__(self, broker: NatsBroker) -> None:
        self.broker = broker

    def wants(self, prefs: api.Prefs) -> bool:
        return True

    def recipient(self, prefs: api.Prefs) -> str | None:
        return Events.NOTIFICATION_SENT.for_tenant(prefs.tenant_id)

    async def deliver(self, notification: dict[str, Any], prefs: api.Prefs) -> None:
        # The notification id is the event id: a retried publish is dropped by JetStream's dedup.
        evt = NotificationSent(
            event_id=notification["_id"], occurred_at=notification["created_at"],
            tenant_id=notification["tenant_id"], notification_id=notification["_id"],
            kind=notification["kind"], subject=notification["subject"], body=notification["body"],
            language=notification["language"], account_id=notification.get("account_id"),
            collector_id=notification.get("collector_id"), error_code=notification.get("error_code"),
            request_id=notification.get("request_id"), incident_id=notification.get("incident_id"),
        )
        await publish_event(self.broker, Events.NOTIFICATION_SENT.for_tenant(evt.tenant_id), evt)


@dataclass(frozen=True)
class SmtpConfig:
    host: str | None
    port: int = 587
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = "Collecteurs <notifications@collectors.invalid>"
    validate_certs: bool = True
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, s: NotifierSettings) -> SmtpConfig:
        return cls(host=s.smtp_host, port=s.smtp_port, security=s.smtp_security, username=s.smtp_username,
                   password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                   sender=s.smtp_sender, validate_certs=s.smtp_validate_certs, timeout_s=s.delivery_timeout_s)


def email_message(notification: dict[str, Any], sender: str, to: list[str]) -> EmailMessage:
    msg = EmailMessage()
    # Content first: set_content() drops every Content-* header set before it.
    msg.set_content(notification["body"] + "\n", charset="utf-8")
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = notification["subject"]
    created: datetime = notification["created_at"]
    msg["Date"] = format_datetime(created)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "collectors.invalid"
    # Stable per notification: a retry after a lost SMTP reply is recognisably the same message.
    msg["Message-ID"] = f"<{notification['_id']}@{domain}>"
    msg["Content-Language"] = notification["language"]
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Collectors-Notification"] = notification["_id"]
    msg["X-Collectors-Kind"] = notification["kind"]
    return msg


class EmailChannel:
    """One message per notification to every address of the tenant's preferences."""

    name = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def wants(self, prefs: api.Prefs) -> bool:
        return bool(prefs.emails)

    def recipient(self, prefs: api.Prefs) -> str | None:
        return ", ".join(prefs.emails) or None

    async def deliver(self, notification: dict[str, Any], prefs: api.Prefs) -> None:
        c = self.config
        if not c.host:
            raise PermanentDeliveryError("no SMTP server configured (COLLECTORS_SMTP_HOST)")
        if not prefs.emails:
            raise PermanentDeliveryError("no email address in the preferences any more")
        await aiosmtplib.send(
            email_message(notification, c.sender, prefs.emails), hostname=c.host, port=c.port,
            username=c.username, password=c.password, use_tls=c.security == "tls",
            start_tls=c.security == "starttls", validate_certs=c.validate_certs, timeout=c.timeout_s,
        )


def webhook_body(notification: dict[str, Any]) -> bytes:
    created: datetime = notification["created_at"]
    payload = {
        "schema_version": WEBHOOK_SCHEMA_VERSION, "id": notification["_id"], "type": notification["kind"],
        "tenant_id": notification["tenant_id"], "created_at": created.isoformat(),
        "language": notification["language"], "subject": notification["subject"], "body": notification["body"],
        **{k: notification.get(k) for k in ("account_id", "collector_id", "error_code", "request_id",
                                            "incident_id")},
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookRejected(Exception):
    """The receiver answered, but not with a 2xx."""


class PrivateAddress(OSError):
    """The webhook's host is (or resolves to) an address of a private network."""


def _refuse_private(host: str, address: str) -> None:
    if not ipaddress.ip_address(address.split("%", 1)[0]).is_global:
        # errno + strerror: aiohttp shows strerror when the resolver's refusal ends a connection.
        raise PrivateAddress(errno.EACCES, f"webhook host {host} is not a public address ({address}): refused")


class PublicOnlyResolver(AbstractResolver):
    """Resolves as usual but refuses non-public addresses, at connection time: a webhook URL whose
    name is later pointed at our own network (DNS rebinding) cannot be used to reach it."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            _refuse_private(host, result["host"])
        return results

    async def close(self) -> None:
        await self._inner.close()


class WebhookChannel:
    """A POST of the notification as JSON, signed with the tenant's secret (see ``signing``)."""

    name = "webhook"

    def __init__(self, timeout_s: float = 10.0, wall_clock: Callable[[], float] = time.time,
                 allow_private_networks: bool = False) -> None:
        self.timeout_s = timeout_s
        self.allow_private_networks = allow_private_networks
        # The receiver checks the signed timestamp against its own clock: always real time.
        self.wall_clock = wall_clock
        self._session: aiohttp.ClientSession | None = None

    def wants(self, prefs: api.Prefs) -> bool:
        return bool(prefs.webhook_url)

    def recipient(self, prefs: api.Prefs) -> str | None:
        return prefs.webhook_url

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = None if self.allow_private_networks else aiohttp.TCPConnector(resolver=PublicOnlyResolver())
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}, connector=connector)
        return self._session

    async def deliver(self, notification: dict[str, Any], prefs: api.Prefs) -> None:
        if not prefs.webhook_url:
            raise PermanentDeliveryError("no webhook URL in the preferences any more")
        if not prefs.webhook_secret:
            raise PermanentDeliveryError("the webhook has no signing secret")
        if not self.allow_private_networks:
            # An address written in the URL is never resolved, so the resolver cannot see it.
            host = (urlsplit(prefs.webhook_url).hostname or "").strip("[]")
            try:
                ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                pass  # a name: PublicOnlyResolver checks what it resolves to
            else:
                try:
                    _refuse_private(host, host)
                except PrivateAddress as exc:
                    raise PermanentDeliveryError(str(exc)) from exc
        body = webhook_body(notification)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            signing.SIGNATURE_HEADER: signing.signature_header(prefs.webhook_secret, body, int(self.wall_clock())),
            "X-Collectors-Event": notification["kind"],
            # Receivers dedup on it: a retry after a lost response carries the same id.
            "X-Collectors-Delivery": notification["_id"],
        }
        # No redirects: the signature vouches for this URL only, and a redirect could aim anywhere.
        async with self._http().post(prefs.webhook_url, data=body, headers=headers, allow_redirects=False,
                                     timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
            if not 200 <= resp.status < 300:
                raise WebhookRejected(f"HTTP {resp.status} from the webhook")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
