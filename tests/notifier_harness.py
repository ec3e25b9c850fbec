"""What the notifier's tests share: real receivers for its channels (an SMTP server with aiosmtpd and a
webhook endpoint with aiohttp, on 127.0.0.1, free ports, in the test's own event loop), a clock tests
move forward, and the notifier and requests services running against a real nats-server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session
from faststream.nats import NatsBroker
from nats.js import JetStreamContext

from services.notifier.app import build as build_notifier
from services.requests.app import build as build_requests
from shared.broker import ensure_streams, jetstream, make_broker, publish_event
from shared.client import ApiClient
from shared.errors import CollectionErrorCode, RemoteApiError
from shared.events import AccountStatus, AccountStatusChanged
from shared.runtime import ServiceRuntime
from shared.settings import NotifierSettings, Settings
from shared.subjects import STREAMS, Api, Events
from tests.integration.helpers import eventually


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())  # type: ignore[attr-defined]


@dataclass
class SmtpInbox:
    host: str = "127.0.0.1"
    port: int = 0
    mails: list[ReceivedMail] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[ReceivedMail]:
        return [m for m in self.mails if address in m.recipients]


@asynccontextmanager
async def smtp_inbox(port: int = 0) -> AsyncIterator[SmtpInbox]:
    inbox = SmtpInbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox, hostname="inbox.test"), "127.0.0.1", port)
    inbox.port = server.sockets[0].getsockname()[1]
    try:
        yield inbox
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class WebhookCall:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    received_at: float


@dataclass
class WebhookReceiver:
    url: str = ""
    calls: list[WebhookCall] = field(default_factory=list)
    # The status to answer to the n-th call (0-based); 200 by default.
    answer: Callable[[int], int] = lambda _n: 200

    def fail_first(self, times: int, status: int = 500) -> None:
        self.answer = lambda n: status if n < times else 200

    def always(self, status: int) -> None:
        self.answer = lambda _n: status

    def delivered(self) -> list[WebhookCall]:
        return [c for c in self.calls if 200 <= c.status < 300]


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        status = receiver.answer(len(receiver.calls))
        receiver.calls.append(WebhookCall(request.path, dict(request.headers), body, status,
                                          asyncio.get_running_loop().time()))
        return web.json_response({"ok": status < 300}, status=status)

    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hooks/collectors"
    try:
        yield receiver
    finally:
        await runner.cleanup()


class FakeClock:
    """Real time shifted by what the test moved it forward: short real delays still elapse."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


def fast_delivery(**overrides: Any) -> dict[str, Any]:
    """Notifier settings that make retries and sweeps take milliseconds."""
    return {"delivery_backoff_s": 0.01, "delivery_backoff_max_s": 0.02, "delivery_round_delay_s": 0.05,
            "delivery_round_delay_max_s": 0.1, "delivery_rounds": 3, "delivery_attempts": 3,
            "delivery_poll_s": 0.05, "delivery_timeout_s": 3.0, "sweep_s": 0.05,
            "webhook_allow_private_networks": True,  # the test receivers listen on loopback
            **overrides}


# --- the services under test --------------------------------------------------------------------


@dataclass
class Platform:
    client: ApiClient
    broker: NatsBroker
    clock: FakeClock
    inbox: SmtpInbox | None = None
    hook: WebhookReceiver | None = None

    @property
    def js(self) -> JetStreamContext:
        return jetstream(self.broker)

    async def call(self, subject: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.client.call(subject, payload)

    async def error(self, subject: str, payload: dict[str, Any]) -> RemoteApiError:
        with pytest.raises(RemoteApiError) as err:
            await self.client.call(subject, payload)
        return err.value

    async def raw(self, subject: str, data: bytes) -> dict[str, Any]:
        msg = await self.client.nc.request(subject, data, timeout=5)
        reply: dict[str, Any] = json.loads(msg.data)
        return reply

    async def consumed(self, owner: str, durable: str) -> None:
        """Wait until a durable consumer has handled everything in its stream's subjects so far."""
        stream = STREAMS[owner].name
        assert stream

        async def done() -> bool:
            info = await self.js.consumer_info(stream, durable)
            return bool(info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq)
        await eventually(done, what=f"{durable} to catch up")

    async def messages(self, owner: str, subject: str) -> list[dict[str, Any]]:
        """Every message stored on ``subject`` in an owner's stream, oldest first."""
        stream = STREAMS[owner].name
        assert stream
        found: list[dict[str, Any]] = []
        info = await self.js.stream_info(stream)
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await self.js.get_msg(stream, seq)
            except Exception:
                continue
            if msg.subject == subject and msg.data:
                found.append(json.loads(msg.data))
        return found

    async def history(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's notification log, newest first."""
        reply = await self.call(Api.NOTIFIER_HISTORY, {"tenant_id": tenant})
        notes: list[dict[str, Any]] = reply["notifications"]
        return notes

    async def settled(self, tenant: str, count: int) -> list[dict[str, Any]]:
        """The history once it has ``count`` (> 0) entries, none of them still pending."""
        async def probe() -> list[dict[str, Any]] | None:
            notes = await self.history(tenant)
            done = len(notes) == count and all(n["status"] != "pending" for n in notes)
            return notes if done else None
        return await eventually(probe, what=f"{count} settled notifications for {tenant}", timeout=20)

    async def alive(self) -> None:
        """Positive control after a quiet period: the notifier was listening and sweeping all along,
        at the clock's current time. A control pharmacy's account in a transient failure that began
        25 h ago must be told (the status consumer records it, then the sweep owes its 24 h alert); a
        notifier whose consumer or sweep had stopped leaves it untold, and this fails."""
        tenant = f"control-{next(_controls)}"
        evt = AccountStatusChanged(
            tenant_id=tenant, account_id="control", collector_id="ocp-classic", collector_name="OCP",
            login="control", status=AccountStatus.RETRYING, previous_status=AccountStatus.OK, credential_version=1,
            error_code=CollectionErrorCode.SUPPLIER_UNAVAILABLE, occurred_at=self.clock() - timedelta(hours=25))
        await publish_event(self.broker, Events.ACCOUNT_STATUS_CHANGED.for_tenant(tenant), evt)

        async def told() -> bool:
            return any(n["kind"] == "transient_failure" for n in await self.history(tenant))
        await eventually(told, timeout=20, what=f"the positive control: {tenant}'s 24 h alert")


_controls = itertools.count()


@asynccontextmanager
async def running_platform(nats_url: str, mongodb_url: str | None, db_prefix: str, *,
                           inbox: SmtpInbox | None = None, hook: WebhookReceiver | None = None,
                           **notifier: Any) -> AsyncIterator[Platform]:
    """The notifier (with fast retries, SMTP to ``inbox``, a movable clock) and the requests service."""
    clock = FakeClock()
    common = {"nats_url": nats_url, "mongodb_url": mongodb_url, "db_prefix": db_prefix}
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": inbox.port, "smtp_security": "none"} if inbox else {}
    settings = NotifierSettings(**common, **fast_delivery(**smtp, **notifier))
    runtimes: list[ServiceRuntime] = [build_notifier(settings, clock=clock), build_requests(Settings(**common))]
    for rt in runtimes:
        await rt.start()
    broker = make_broker(nats_url, "test-publisher")
    await broker.connect()
    await ensure_streams(jetstream(broker))
    client = await ApiClient.connect(nats_url)
    try:
        yield Platform(client, broker, clock, inbox, hook)
    finally:
        await client.close()
        await broker.stop()
        for rt in reversed(runtimes):
            await rt.stop()


# --- the whole platform, for end-to-end tests -----------------------------------------------------


@dataclass
class FullPlatform:
    client: ApiClient
    inbox: SmtpInbox
    settings: dict[str, Any]
    runtimes: list[ServiceRuntime] = field(default_factory=list)

    async def call(self, subject: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.client.call(subject, payload)

    async def history(self, tenant: str) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = (await self.call(Api.NOTIFIER_HISTORY, {"tenant_id": tenant}))["notifications"]
        return notes

    async def alive(self) -> None:
        """Positive control after a quiet period: the whole chain that tells a pharmacy was working
        all along. A control pharmacy's account with a wrong password goes through accounts,
        scheduler, scraper (on the sandbox) and back, and its action-required notice must be told."""
        tenant = f"control-{next(_controls)}"
        await self.call(Api.ACCOUNTS_CREATE, {"tenant_id": tenant, "collector_id": "sandbox-classic",
                                              "login": "officine-control", "password": "not-demo"})

        async def told() -> bool:
            return any(n["kind"] == "action_required" for n in await self.history(tenant))
        await eventually(told, timeout=60, what=f"the positive control: {tenant}'s action-required notice")

    async def start(self, rt: ServiceRuntime) -> ServiceRuntime:
        """Start one more service (a new scraper worker...), stopped with the rest."""
        await rt.start()
        self.runtimes.append(rt)
        return rt

    async def stop(self, rt: ServiceRuntime) -> None:
        self.runtimes.remove(rt)
        await rt.stop()


@asynccontextmanager
async def full_platform(nats_url: str, mongodb_url: str | None, db_prefix: str, keyring: Any,
                        sandbox_url: str) -> AsyncIterator[FullPlatform]:
    """accounts, scheduler, scraper (on the sandbox portal), notifier (SMTP to a local inbox), requests."""
    from services.accounts.app import build as build_accounts
    from services.scheduler.app import build as build_scheduler
    from services.scraper.app import build as build_scraper
    from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings

    common: dict[str, Any] = {"nats_url": nats_url, "mongodb_url": mongodb_url, "db_prefix": db_prefix}
    async with smtp_inbox() as inbox:
        platform = FullPlatform(await ApiClient.connect(nats_url), inbox, common)
        notifier = NotifierSettings(**common, **fast_delivery(smtp_host="127.0.0.1", smtp_port=inbox.port,
                                                              smtp_security="none"))
        try:
            for rt in [build_accounts(AccountsSettings(**common), keyring=keyring),
                       build_scheduler(SchedulerSettings(**common)),
                       build_scraper(ScraperSettings(**common, sandbox_url=sandbox_url, concurrency=2)),
                       build_notifier(notifier), build_requests(Settings(**common))]:
                await platform.start(rt)

            async def catalog_ready() -> bool:
                reply = await platform.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "x"})
                return any(c["id"] == "sandbox-classic" for c in reply["collectors"])

            await eventually(catalog_ready, what="the sandbox collector in the catalog")
            yield platform
        finally:
            await platform.client.close()
            for rt in reversed(platform.runtimes):
                await rt.stop()
