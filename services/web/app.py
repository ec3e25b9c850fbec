"""Composition root of the web service: the FastAPI app, built from its settings and a NATS client.

``create_app(settings, client_factory)``: ``client_factory`` opens what the routes call (a
:class:`services.web.api.Backend`; :func:`nats_backend` in production, a fake in unit tests). It is
called when the app starts and closed when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import nats
import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from nats.aio.msg import Msg
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.web import api, events
from services.web.api import STATUS_OF_CODE, Backend, RateLimiter, Unsubscribe, WebError, WebState, lang_of
from services.web.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    UNSAFE_METHODS,
    AuthError,
    Verifier,
    csrf_value,
    new_secret,
)
from services.web.page import router as page_router
from shared.client import ApiClient, ServiceUnavailable, inbox_prefix, servers, url_user
from shared.errors import RemoteApiError
from shared.settings import WebSettings

STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY_BYTES = 64 * 1024
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
ClientFactory = Callable[[], Awaitable[Backend]]
UNAVAILABLE = {"fr": "Service momentanément indisponible : réessayez dans quelques instants.",
               "en": "Service temporarily unavailable: try again in a moment."}
# The NATS user of the web service (deploy/nats/permissions.py), whose inbox its replies go to.
WEB_NATS_USER = "web"


@runtime_checkable
class Connected(Protocol):
    """A backend that can say whether its NATS connection is up (what ``GET /health`` answers)."""

    @property
    def connected(self) -> bool: ...


class NatsBackend:
    """The NATS side of the web service: the API client, and core subscriptions on its connection."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    @property
    def connected(self) -> bool:
        """nats-py's own view: False before the first connection, while reconnecting, once closed."""
        return self.client.nc.is_connected

    async def call(self, subject: str, payload: dict[str, Any] | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
        return await self.client.call(subject, payload, timeout)

    async def subscribe(self, subject: str, handler: Callable[[str, bytes], Awaitable[None]]) -> Unsubscribe:
        async def on_message(msg: Msg) -> None:
            await handler(msg.subject, msg.data)

        sub = await self.client.nc.subscribe(subject, cb=on_message)
        return sub.unsubscribe

    async def close(self) -> None:
        await self.client.close()


def nats_backend(settings: WebSettings) -> ClientFactory:
    """Connects as the NATS user its URL names (deploy: ``web``), replies in that user's inbox."""

    async def connect() -> Backend:
        # Not ApiClient.connect: a long-lived service reconnects, where the CLI gives up at once.
        nc = await nats.connect(servers(settings.nats_url), name="collectors-web", connect_timeout=3,
                                max_reconnect_attempts=-1, reconnect_time_wait=1,
                                inbox_prefix=inbox_prefix(url_user(settings.nats_url) or WEB_NATS_USER))
        return NatsBackend(ApiClient(nc, timeout=settings.request_timeout_s))

    return connect


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


class Guard:
    """Pure ASGI (so that SSE and downloads stream through untouched): the security headers on every
    response, and request bodies over ``MAX_BODY_BYTES`` refused with 413, whether announced by
    Content-Length or streamed without one."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                message["headers"] = [*(h for h in message.get("headers", []) if h[0].lower() not in names),
                                      *SECURITY_HEADERS]
            await send(message)

        async def too_large() -> None:
            lang = "en" if b"lang=en" in scope.get("query_string", b"") else "fr"
            text = {"fr": "Requête trop grande (64 Kio au plus).", "en": "Request too large (64 KiB at most)."}
            await JSONResponse(error_body("payload_too_large", text[lang]), status_code=413)(scope, receive,
                                                                                          send_guarded)

        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                await too_large()
                return
        if scope.get("method") not in UNSAFE_METHODS:
            await self.app(scope, receive, send_guarded)
            return
        # Read (at most max_body) before the app does: a body streamed without Content-Length is
        # counted here, since FastAPI would turn any error raised while it reads into a 400.
        buffered: list[Message] = []
        received = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_body:
                await too_large()
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send_guarded)


def create_app(settings: WebSettings, client_factory: ClientFactory, *,
               clock: Callable[[], float] | None = None, verifier: Verifier | None = None) -> FastAPI:
    secret = (settings.web_session_secret.get_secret_value().encode() if settings.web_session_secret
              else new_secret())
    limiter = RateLimiter(settings.web_activation_limit, 60.0, **({"clock": clock} if clock else {}))
    verifier = verifier or Verifier.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = await client_factory()
        app.state.web = WebState(backend=backend, verifier=verifier, secret=secret, limiter=limiter,
                                 keepalive_s=settings.web_keepalive_s, client_queue=settings.web_client_queue,
                                 secure_cookies=settings.web_secure_cookies)
        try:
            yield
        finally:
            for stream in list(app.state.web.extras.get("streams", ())):
                await stream.close()
            await backend.close()

    # No /docs or /redoc: their pages load scripts from a CDN, which the CSP (script-src 'self') refuses.
    app = FastAPI(title="Collectors web API", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="The HTTP API of the web gateway over the NATS API (issue 15). Callers "
                              "authenticate with a bearer JWT (or the page's session cookie and CSRF header).")
    app.add_middleware(Guard)

    @app.exception_handler(WebError)
    async def on_web_error(request: Request, exc: WebError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.field), status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(AuthError)
    async def on_auth_error(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return JSONResponse(error_body(exc.code, exc.messages[lang_of(request)]), status_code=exc.status,
                            headers=headers)

    @app.exception_handler(RemoteApiError)
    async def on_remote_error(request: Request, exc: RemoteApiError) -> JSONResponse:
        status = STATUS_OF_CODE.get(exc.remote_code, 500)
        message = exc.message
        if isinstance(exc, ServiceUnavailable):  # the client's own words name a NATS subject: not for a page
            message = UNAVAILABLE[lang_of(request)]
        return JSONResponse(error_body(exc.remote_code, message, exc.field), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        text = {"fr": "Requête invalide", "en": "Invalid request"}[lang_of(request)]
        detail = first.get("msg", "")
        return JSONResponse(error_body("validation_error", f"{text} : {detail}" if detail else text,
                                       ".".join(where) or None), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    class Health(BaseModel):
        status: Literal["ok", "unavailable"]
        nats: bool

    class Alive(BaseModel):
        status: Literal["ok"]

    @app.get("/health", response_model=Health, tags=["health"],
             responses={503: {"model": Health, "description": "Not connected to NATS: every API call would fail."}})
    async def health(request: Request) -> Any:
        """Ready to serve: 200 while the NATS client is connected, else 503 (never connected yet,
        reconnecting, closed). The readiness probe: a pod cut off from NATS gets no traffic."""
        backend = request.app.state.web.backend
        # A backend that cannot say is not known to be connected.
        if isinstance(backend, Connected) and backend.connected:
            return {"status": "ok", "nats": True}
        return JSONResponse({"status": "unavailable", "nats": False}, status_code=503)

    @app.get("/live", response_model=Alive, tags=["health"])
    async def live() -> dict[str, str]:
        """The process answers: 200 whatever NATS's state (the client reconnects by itself), so that a
        liveness probe does not restart a pod for NATS's absence."""
        return {"status": "ok"}

    @app.get("/signin", tags=["session"], response_class=RedirectResponse, status_code=303)
    async def signin(request: Request, token: str = Query(max_length=8192)) -> Response:
        """The dev/demo sign-in link: the token is verified, then kept in the session cookie."""
        await verifier.verify(token)
        response = RedirectResponse("/", status_code=303)
        secure = settings.web_secure_cookies
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/", secure=secure)
        response.set_cookie(CSRF_COOKIE, csrf_value(secret, token), httponly=False, samesite="strict", path="/",
                            secure=secure)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/signout", tags=["session"], status_code=204, response_class=Response)
    async def signout() -> Response:
        response = Response(status_code=204)
        for name in (SESSION_COOKIE, CSRF_COOKIE):
            response.delete_cookie(name, path="/", samesite="strict", secure=settings.web_secure_cookies)
        return response

    app.include_router(api.router)
    app.include_router(events.router)
    app.include_router(page_router)
    # The page's assets, once the page's helper has written them.
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.settings = settings
    return app


# --- serving ----------------------------------------------------------------------------------------


class _QuietServer(uvicorn.Server):
    """Inside `collectors up` the platform owns SIGINT/SIGTERM: uvicorn must not take them over."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """The app served by uvicorn in this event loop (`collectors up`, integration tests)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on",
                                timeout_graceful_shutdown=2)
        self.server = _QuietServer(config)
        self.host = host
        self.port = port
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="web-server")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise OSError(f"the web server did not start on {self.host}:{self.port}")
            await asyncio.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        except SystemExit as exc:  # uvicorn's answer to a failed startup (the port, NATS)
            raise OSError(f"the web server could not start (exit {exc.code})") from None

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await self._task
        self._task = None


def main() -> None:
    """``python -m services.web``."""
    from shared.logging import configure_logging

    settings = WebSettings()
    configure_logging(settings.log_level, json=settings.log_json)
    if not (settings.web_jwks_url or settings.web_jwt_public_key or "data_dir" in settings.model_fields_set):
        # Never a development key made up on a server: whose tokens to trust must be said.
        sys.exit("collectors web: set COLLECTORS_WEB_JWKS_URL or COLLECTORS_WEB_JWT_PUBLIC_KEY (or "
                 "COLLECTORS_DATA_DIR to trust the development key web-signing-key.pem kept there)")
    app = create_app(settings, nats_backend(settings))
    uvicorn.run(app, host=settings.web_host, port=settings.web_port, log_config=None, access_log=False)
