"""A fake NATS API for the web service's unit tests, and tokens signed as an identity provider would.

Tokens are made with PyJWT directly (not with services.web.auth.mint_token), so the verifier is checked
against an independent issuer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.web.api import Unsubscribe
from services.web.app import create_app
from services.web.auth import Verifier
from shared.errors import RemoteApiError
from shared.settings import WebSettings

ISSUER, AUDIENCE = "https://idp.test", "collectors-web-test"
KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()


def token(tenant: str | None = "pharma-1", role: str = "pharmacy", *, key: Any = KEY, minutes: float = 10,
          iss: str = ISSUER, aud: str = AUDIENCE, algorithm: str = "EdDSA", **extra: Any) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {"sub": "user-1", "role": role, "iss": iss, "aud": aud, "iat": now,
                              "exp": now + timedelta(minutes=minutes), **extra}
    if tenant is not None:
        claims["tenant"] = tenant
    return jwt.encode(claims, key, algorithm=algorithm)


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


class FakeBackend:
    """Answers each subject with ``replies[subject]`` (a dict, an exception, or a function of the
    payload) and records every call; subscriptions are kept to be fed by the test."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.replies: dict[str, Any] = {}
        self.subscriptions: dict[str, list[Callable[[str, bytes], Awaitable[None]]]] = {}
        self.closed = False

    async def call(self, subject: str, payload: dict[str, Any] | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
        payload = payload or {}
        self.calls.append((subject, payload))
        reply = self.replies.get(subject)
        if reply is None:
            raise RemoteApiError("unavailable", f"no answer on {subject}")
        if callable(reply):
            reply = reply(payload)
        if isinstance(reply, Exception):
            raise reply
        return dict(reply)

    async def subscribe(self, subject: str, handler: Callable[[str, bytes], Awaitable[None]]) -> Unsubscribe:
        self.subscriptions.setdefault(subject, []).append(handler)

        async def unsubscribe() -> None:
            self.subscriptions[subject].remove(handler)
            if not self.subscriptions[subject]:
                del self.subscriptions[subject]

        return unsubscribe

    async def close(self) -> None:
        self.closed = True


def settings(tmp: Any, **kw: Any) -> WebSettings:
    return WebSettings(data_dir=tmp, web_jwt_issuer=ISSUER, web_jwt_audience=AUDIENCE,
                       web_session_secret="test-secret", **kw)


@contextlib.asynccontextmanager
async def serve(backend: FakeBackend, tmp: Any, clock: Callable[[], float] | None = None,
                **kw: Any) -> AsyncIterator[httpx.AsyncClient]:
    async def factory() -> FakeBackend:
        return backend

    app = create_app(settings(tmp, **kw), factory, clock=clock,
                     verifier=Verifier(public_key=KEY.public_key(), issuer=ISSUER, audience=AUDIENCE))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://web.test") as client:
            yield client
