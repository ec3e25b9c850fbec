"""The JSON API (``/api/v1``): each route is one or two calls of the NATS API, for the caller's tenant.

The tenant is the verified token's (services/web/auth.py), never the URL's or the body's: request
bodies here have no tenant field and refuse unknown ones. The NATS API checks everything else
(ownership, limits, validation) and its errors come back in the same shape, with an HTTP status.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from services.web.auth import Caller, Verifier, authenticate, require_operator, require_pharmacy
from shared import api as contract
from shared.errors import RemoteApiError
from shared.events import RequestStatus
from shared.invoice_data import Check, DataSource, DataWarning, EInvoice
from shared.subjects import Api

Lang = Literal["fr", "en"]
Unsubscribe = Callable[[], Awaitable[None]]


class Backend(Protocol):
    """What the web service needs of NATS: the request/reply API and core subscriptions (for SSE)."""

    async def call(self, subject: str, payload: dict[str, Any] | None = None,
                   timeout: float | None = None) -> dict[str, Any]: ...

    async def subscribe(self, subject: str, handler: Callable[[str, bytes], Awaitable[None]]) -> Unsubscribe: ...

    async def close(self) -> None: ...


class WebError(Exception):
    """An error answered as ``{"error": {code, message, field}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}


# The NATS API's error codes as HTTP statuses (anything else: 500).
STATUS_OF_CODE = {
    "validation_error": 400, "unknown_collector": 400,
    "unauthorized": 401, "forbidden": 403, "not_found": 404,
    "conflict": 409, "too_many_accounts": 409, "duplicate_account": 409,
    "payload_too_large": 413, "rate_limited": 429,
    "internal_error": 500, "integrity_error": 502, "unavailable": 503,
}


class RateLimiter:
    """At most ``limit`` actions per tenant in any ``window_s`` (a sliding window of timestamps)."""

    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._seen: dict[str, deque[float]] = {}

    def check(self, tenant: str) -> float | None:
        """Record one action; ``None`` when allowed, else the seconds to wait."""
        now = self.clock()
        seen = self._seen.setdefault(tenant, deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        if len(seen) >= self.limit:
            return seen[0] + self.window_s - now
        seen.append(now)
        # Forget idle tenants now and then, so that memory follows the active ones only.
        if len(self._seen) > 10_000:
            self._seen = {t: s for t, s in self._seen.items() if s and s[-1] > now - self.window_s}
        return None


@dataclass
class WebState:
    backend: Backend
    verifier: Verifier
    secret: bytes
    limiter: RateLimiter
    keepalive_s: float = 15.0
    client_queue: int = 256
    secure_cookies: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


def state(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def lang_of(request: Request) -> Lang:
    """``?lang=`` first, then Accept-Language; French by default."""
    asked = request.query_params.get("lang")
    if asked == "en":
        return "en"
    if asked == "fr":
        return "fr"
    accepted = request.headers.get("accept-language", "").strip().lower()
    return "en" if accepted.startswith("en") else "fr"


def lang(request: Request, lang: Annotated[Lang | None, Query(description="Language of messages")] = None) -> Lang:
    return lang or lang_of(request)


async def caller(request: Request) -> Caller:
    web = state(request)
    return await authenticate(request, web.verifier, web.secret)


def tenant(who: Annotated[Caller, Depends(caller)]) -> str:
    return require_pharmacy(who)


def operator(who: Annotated[Caller, Depends(caller)]) -> Caller:
    require_operator(who)
    return who


State = Annotated[WebState, Depends(state)]
TenantId = Annotated[str, Depends(tenant)]
Operator = Annotated[Caller, Depends(operator)]
LangDep = Annotated[Lang, Depends(lang)]

RATE_MESSAGES = {"fr": "Trop de tentatives d'activation : réessayez dans une minute.",
                 "en": "Too many activation attempts: try again in a minute."}


def limit_activations(web: WebState, tenant_id: str, language: Lang) -> None:
    wait = web.limiter.check(tenant_id)
    if wait is not None:
        raise WebError(429, "rate_limited", RATE_MESSAGES[language],
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})


# --- bodies (no tenant: it is the token's) ----------------------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewAccount(Body):
    collector_id: str
    login: str
    password: str = Field(repr=False)


class NewCredentials(Body):
    login: str | None = None
    password: str = Field(repr=False)


class NewRequest(Body):
    supplier: str
    portal_url: str | None = None
    comment: str | None = None


class NewPrefs(Body):
    emails: list[str] | None = None
    webhook_url: str | None = None
    language: Lang | None = None
    rotate_webhook_secret: bool = False


class NewStatus(Body):
    status: RequestStatus
    collector_id: str | None = None
    reason: str | None = None


class InvoiceDetail(contract.InvoiceView):
    """The ledger's view of an invoice and what the documents service read from it (null until read)."""

    source: DataSource | None = None
    attachment: str | None = None
    data: EInvoice | None = None
    warnings: list[DataWarning] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)


# --- routes -------------------------------------------------------------------------------------------

router = APIRouter(prefix="/api/v1")


def _ask(tenant_id: str, language: Lang, **fields: Any) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "lang": language, **{k: v for k, v in fields.items() if v is not None}}


@router.get("/catalog", response_model=contract.CatalogReply, tags=["accounts"])
async def catalog(web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    return await web.backend.call(Api.ACCOUNTS_CATALOG, _ask(tenant_id, language))


@router.get("/accounts", response_model=contract.AccountListReply, tags=["accounts"])
async def accounts(web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    return await web.backend.call(Api.ACCOUNTS_LIST, _ask(tenant_id, language))


@router.post("/accounts", response_model=contract.AccountView, status_code=201, tags=["accounts"])
async def activate(body: NewAccount, web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    limit_activations(web, tenant_id, language)
    return await web.backend.call(Api.ACCOUNTS_CREATE, _ask(tenant_id, language, **body.model_dump()))


@router.get("/accounts/{account_id}", response_model=contract.AccountView, tags=["accounts"])
async def account(account_id: str, web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    return await web.backend.call(Api.ACCOUNTS_GET, _ask(tenant_id, language, account_id=account_id))


@router.put("/accounts/{account_id}/credentials", response_model=contract.AccountView, tags=["accounts"])
async def update_credentials(account_id: str, body: NewCredentials, web: State, tenant_id: TenantId,
                             language: LangDep) -> dict[str, Any]:
    limit_activations(web, tenant_id, language)
    return await web.backend.call(Api.ACCOUNTS_UPDATE_CREDENTIALS,
                                  _ask(tenant_id, language, account_id=account_id, **body.model_dump()))


@router.post("/accounts/{account_id}/retry", response_model=contract.AccountView, tags=["accounts"])
async def retry(account_id: str, web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    return await web.backend.call(Api.ACCOUNTS_RETRY, _ask(tenant_id, language, account_id=account_id))


@router.delete("/accounts/{account_id}", status_code=204, response_class=Response, tags=["accounts"])
async def delete(account_id: str, web: State, tenant_id: TenantId, language: LangDep) -> Response:
    await web.backend.call(Api.ACCOUNTS_DELETE, _ask(tenant_id, language, account_id=account_id))
    return Response(status_code=204)


@router.get("/invoices", response_model=contract.InvoiceListReply, tags=["invoices"])
async def invoices(web: State, tenant_id: TenantId, language: LangDep,
                   account_id: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict[str, Any]:
    return await web.backend.call(Api.SCRAPER_INVOICES_LIST,
                                  _ask(tenant_id, language, account_id=account_id, limit=limit))


@router.get("/invoices/{invoice_id}", response_model=InvoiceDetail, tags=["invoices"])
async def invoice(invoice_id: str, web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    ref = _ask(tenant_id, language, invoice_id=invoice_id)
    view = await web.backend.call(Api.SCRAPER_INVOICE_GET, ref)
    try:
        data = await web.backend.call(Api.DOCUMENTS_INVOICE_DATA, ref)
    except RemoteApiError as exc:  # not read yet (or collected before the documents service): ledger only
        if exc.remote_code != "not_found":
            raise
        return view
    return {**view, **{k: data.get(k) for k in ("source", "attachment", "data")},
            "warnings": data.get("warnings") or [], "checks": data.get("checks") or []}


def _file_name(number: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in number)[:100].strip("._")
    return f"{safe or 'facture'}.pdf"


@router.get("/invoices/{invoice_id}/pdf", tags=["invoices"],
            responses={200: {"content": {"application/pdf": {}}, "description": "The invoice's file"}},
            response_class=StreamingResponse)
async def invoice_pdf(invoice_id: str, web: State, tenant_id: TenantId, language: LangDep) -> StreamingResponse:
    ref = _ask(tenant_id, language, invoice_id=invoice_id)
    meta = await web.backend.call(Api.SCRAPER_INVOICE_GET, ref)  # not_found before anything is sent
    first = await web.backend.call(Api.SCRAPER_INVOICE_DOWNLOAD, {**ref, "offset": 0})

    async def chunks() -> AsyncIterator[bytes]:
        # Headers are out by the time a later chunk fails: the body then ends short of Content-Length
        # (the connection is broken), which every HTTP client reports, rather than a wrong file.
        digest, written, chunk = hashlib.sha256(), 0, first
        while True:
            data = base64.b64decode(chunk["data"], validate=True)
            if chunk["offset"] != written or chunk["next_offset"] != written + len(data):
                raise RuntimeError("the download went out of order")
            digest.update(data)
            written += len(data)
            last = chunk["cursor"] is None
            if last and (written != chunk["size"] or digest.hexdigest() != chunk["sha256"]):
                raise RuntimeError("the downloaded file does not match its SHA-256")
            yield data
            if last:
                return
            if not data:
                raise RuntimeError("the download stopped moving forward")
            chunk = await web.backend.call(Api.SCRAPER_INVOICE_DOWNLOAD,
                                           {**ref, "offset": written, "cursor": chunk["cursor"]})

    headers = {"Content-Disposition": f'attachment; filename="{_file_name(str(meta.get("number", "")))}"',
               "Content-Length": str(first["size"]), "X-Content-SHA256": str(first["sha256"])}
    return StreamingResponse(chunks(), media_type="application/pdf", headers=headers)


@router.get("/requests", response_model=contract.RequestListReply, tags=["requests"])
async def requests(web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    return await web.backend.call(Api.REQUESTS_LIST, _ask(tenant_id, language))


@router.post("/requests", response_model=contract.CollectorRequestView, status_code=201, tags=["requests"])
async def new_request(body: NewRequest, web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    return await web.backend.call(Api.REQUESTS_CREATE, _ask(tenant_id, language, **body.model_dump()))


@router.get("/notifications", response_model=contract.NotificationListReply, tags=["notifications"])
async def notifications(web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    reply = await web.backend.call(Api.NOTIFIER_HISTORY, _ask(tenant_id, language))
    # The page shows the in-app ones; emails and webhooks went elsewhere already.
    return {"notifications": [n for n in reply.get("notifications", []) if n.get("channel") == "in_app"]}


@router.get("/notifications/preferences", response_model=contract.Prefs, tags=["notifications"])
async def preferences(web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    return await web.backend.call(Api.NOTIFIER_PREFS_GET, _ask(tenant_id, language))


@router.put("/notifications/preferences", response_model=contract.Prefs, tags=["notifications"])
async def set_preferences(body: NewPrefs, web: State, tenant_id: TenantId, language: LangDep) -> dict[str, Any]:
    return await web.backend.call(Api.NOTIFIER_PREFS_SET,
                                  _ask(tenant_id, language, **body.model_dump(exclude_unset=True)))


@router.get("/operator/requests", response_model=contract.RequestListReply, tags=["operator"])
async def all_requests(web: State, who: Operator, status: RequestStatus | None = None) -> dict[str, Any]:
    return await web.backend.call(Api.REQUESTS_LIST_ALL, {"status": status} if status else {})


@router.post("/operator/requests/{request_id}/status", response_model=contract.CollectorRequestView,
             tags=["operator"])
async def set_request_status(request_id: str, body: NewStatus, web: State, who: Operator) -> dict[str, Any]:
    payload = {"request_id": request_id, **body.model_dump(exclude_none=True)}
    return await web.backend.call(Api.REQUESTS_SET_STATUS, payload)
