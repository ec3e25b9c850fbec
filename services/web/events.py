"""``GET /api/v1/events``: the caller's tenant's changes as Server-Sent Events, live from NATS.

Each connection has its own core NATS subscriptions (no JetStream consumer: a page that reconnects
reloads the lists, so nothing is replayed) on the tenant's subjects, removed when the client goes.
Handlers only put into a bounded queue: a client that does not keep up is dropped (its stream ends,
EventSource reconnects), and never slows the NATS connection the other clients share.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from services.web.api import Backend, LangDep, State, TenantId, Unsubscribe
from shared.errors import RemoteApiError
from shared.subjects import PREFIX, Api, Events

router = APIRouter(prefix="/api/v1")
# What a dropped client's stream says last, so that the page knows it should reload.
DROPPED = b"event: dropped\ndata: {}\n\n"


def subjects_for(tenant_id: str) -> list[str]:
    """Every subject the tenant's stream listens to; requests' events name no tenant (their
    requesters are read from the payload)."""
    return [f"{PREFIX}.evt.accounts.*.{tenant_id}", Events.INVOICE_COLLECTED.for_tenant(tenant_id),
            Events.NOTIFICATION_SENT.for_tenant(tenant_id), Events.REQUEST_STATUS_CHANGED.base]


def frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n".encode()


async def to_frame(backend: Backend, tenant_id: str, language: str, subject: str, raw: bytes) -> bytes | None:
    """The SSE frame of one NATS event for ``tenant_id``, or None when it is not the tenant's."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    if subject.startswith(f"{PREFIX}.evt.accounts."):
        if payload.get("tenant_id") != tenant_id or not payload.get("account_id"):
            return None
        try:  # the account as it is now, localized: what the page shows
            view = await backend.call(Api.ACCOUNTS_GET, {"tenant_id": tenant_id, "lang": language,
                                                         "account_id": payload["account_id"]})
        except RemoteApiError as exc:
            if exc.remote_code != "not_found":
                return None
            return frame("account_deleted", {"id": payload["account_id"]})
        return frame("account", view)
    if subject.startswith(Events.INVOICE_COLLECTED.base):
        if payload.get("tenant_id") != tenant_id:
            return None
        return frame("invoice", {"id": payload.get("invoice_id"), **{k: payload.get(k) for k in (
            "account_id", "collector_id", "number", "site", "issue_date", "amount", "currency", "kind")}})
    if subject.startswith(Events.NOTIFICATION_SENT.base):
        if payload.get("tenant_id") != tenant_id:
            return None
        return frame("notification", {"id": payload.get("notification_id"), **{k: payload.get(k) for k in (
            "kind", "subject", "body", "account_id", "collector_id", "occurred_at")}})
    if subject == Events.REQUEST_STATUS_CHANGED.base:
        if tenant_id not in (payload.get("requesters") or []):
            return None
        # Another pharmacy's id is none of this one's business: only the request's own fields.
        return frame("request", {"id": payload.get("request_id"), **{k: payload.get(k) for k in (
            "supplier", "status", "previous_status", "collector_id", "reason", "collector_name",
            "collector_supplier", "login_kind")}})
    return None


class Stream:
    """One client's events: subscriptions feeding a bounded queue, drained by the response."""

    def __init__(self, backend: Backend, tenant_id: str, language: str, size: int) -> None:
        self.backend, self.tenant_id, self.language = backend, tenant_id, language
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=size)
        self.dropped = asyncio.Event()
        self._unsubscribe: list[Unsubscribe] = []

    async def open(self) -> None:
        for subject in subjects_for(self.tenant_id):
            self._unsubscribe.append(await self.backend.subscribe(subject, self._handle))

    async def _handle(self, subject: str, data: bytes) -> None:
        if self.dropped.is_set():
            return
        framed = await to_frame(self.backend, self.tenant_id, self.language, subject, data)
        if framed is None:
            return
        try:
            self.queue.put_nowait(framed)
        except asyncio.QueueFull:
            self.dropped.set()

    async def close(self) -> None:
        subs, self._unsubscribe = self._unsubscribe, []
        for unsubscribe in subs:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await unsubscribe()

    async def frames(self, request: Request, keepalive_s: float) -> AsyncIterator[bytes]:
        try:
            yield b": connected\n\n"
            while not self.dropped.is_set():
                if await request.is_disconnected():
                    return
                try:
                    yield await asyncio.wait_for(self.queue.get(), keepalive_s)
                except TimeoutError:
                    yield b": keepalive\n\n"
            yield DROPPED
        finally:
            await self.close()


@router.get("/events", tags=["events"], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "account, account_deleted, invoice, request, notification events"}})
async def events(request: Request, web: State, tenant_id: TenantId, language: LangDep) -> StreamingResponse:
    stream = Stream(web.backend, tenant_id, language, web.client_queue)
    await stream.open()
    web.extras.setdefault("streams", set()).add(stream)
    frames = stream.frames(request, web.keepalive_s)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in frames:
                yield chunk
        finally:
            await stream.close()
            web.extras["streams"].discard(stream)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
