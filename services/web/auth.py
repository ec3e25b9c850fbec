"""Who is calling: a JWT verified here (never a tenant from the URL or the body), the session cookie
that carries it for the page, its CSRF check, and the development signing key.

A bearer token is the platform's web gateway calling; the cookie ``collectors_session`` holds the same
JWT for the reference page. Cookie-authenticated unsafe methods also need ``X-CSRF-Token`` equal to
the ``collectors_csrf`` cookie, whose value is an HMAC of the session token under the server's secret:
a page of another site cannot read it, and a forged cookie pair does not match the session.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from fastapi import Request

from shared.events import TENANT_PATTERN
from shared.settings import WebSettings

SESSION_COOKIE = "collectors_session"
CSRF_COOKIE = "collectors_csrf"
CSRF_HEADER = "X-CSRF-Token"
SIGNING_KEY_FILE = "web-signing-key.pem"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Role = Literal["pharmacy", "operator"]
# Asymmetric algorithms only, and only those of the key's type: with a public key as the only secret,
# HS256 would let anyone holding it sign (the key-confusion attack); "none" is never accepted.
RSA_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
EC_ALGORITHMS = ["ES256", "ES384", "ES512"]
_TENANT = re.compile(TENANT_PATTERN)


class AuthError(Exception):
    """A refused caller: 401 (who is it?) or 403 (known, not allowed)."""

    def __init__(self, status: int, code: str, message_fr: str, message_en: str) -> None:
        super().__init__(message_en)
        self.status, self.code = status, code
        self.messages = {"fr": message_fr, "en": message_en}


def unauthorized(why_en: str = "a valid token is required",
                 why_fr: str = "un jeton valide est nécessaire") -> AuthError:
    return AuthError(401, "unauthorized", f"Non authentifié : {why_fr}.", f"Not authenticated: {why_en}.")


def forbidden(why_en: str, why_fr: str) -> AuthError:
    return AuthError(403, "forbidden", f"Interdit : {why_fr}.", f"Forbidden: {why_en}.")


@dataclass(frozen=True)
class Caller:
    sub: str
    role: Role
    tenant: str | None  # None for an operator: it acts for no pharmacy
    via_cookie: bool = False


# --- the development key --------------------------------------------------------------------------


def ensure_signing_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The Ed25519 key in ``path``, written (mode 0600) when missing; ``True`` when it was created."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return key, False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key, True


def public_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def mint_token(key: Ed25519PrivateKey, *, tenant: str | None, role: Role = "pharmacy", minutes: float = 60,
               issuer: str = "collectors-dev", audience: str = "collectors-web", sub: str | None = None,
               now: datetime | None = None) -> str:
    """A development token, as the platform's identity provider would issue one."""
    now = now or datetime.now(UTC)
    claims: dict[str, Any] = {"sub": sub or (f"dev:{tenant}" if tenant else "dev:operator"), "role": role,
                              "iss": issuer, "aud": audience, "iat": now, "exp": now + timedelta(minutes=minutes)}
    if tenant is not None:
        claims["tenant"] = tenant
    return jwt.encode(claims, key, algorithm="EdDSA")


# --- verification ---------------------------------------------------------------------------------


PublicKey = Ed25519PublicKey | RSAPublicKey | EllipticCurvePublicKey


class Verifier:
    """Checks a token's signature, expiry, issuer and audience, and reads the caller from its claims."""

    def __init__(self, *, issuer: str, audience: str, public_key: PublicKey | None = None,
                 jwks_url: str | None = None) -> None:
        if (public_key is None) == (jwks_url is None):
            raise ValueError("a verifier needs exactly one of a public key and a JWKS URL")
        self.issuer, self.audience, self.public_key = issuer, audience, public_key
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=600) if jwks_url else None

    @classmethod
    def from_settings(cls, settings: WebSettings) -> Verifier:
        issuer, audience = settings.web_jwt_issuer, settings.web_jwt_audience
        if settings.web_jwks_url:
            return cls(jwks_url=settings.web_jwks_url, issuer=issuer, audience=audience)
        if settings.web_jwt_public_key:
            key = serialization.load_pem_public_key(settings.web_jwt_public_key.encode())
            if not isinstance(key, Ed25519PublicKey | RSAPublicKey | EllipticCurvePublicKey):
                raise ValueError("COLLECTORS_WEB_JWT_PUBLIC_KEY: not an Ed25519, RSA or EC public key")
            return cls(public_key=key, issuer=issuer, audience=audience)
        private, _ = ensure_signing_key(settings.data_dir / SIGNING_KEY_FILE)
        return cls(public_key=private.public_key(), issuer=issuer, audience=audience)

    async def _key(self, token: str) -> tuple[Any, list[str]]:
        """The key to check ``token`` with, and the algorithms that key may sign with."""
        if self.public_key is not None:
            return self.public_key, algorithms_of(self.public_key)
        assert self.jwks is not None
        try:  # PyJWKClient fetches over urllib: off the event loop
            found = await asyncio.to_thread(self.jwks.get_signing_key_from_jwt, token)
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise unauthorized("the token's key is unknown", "la clé du jeton est inconnue") from exc
        return found.key, [a for a in [found.algorithm_name] if a in ("EdDSA", *RSA_ALGORITHMS, *EC_ALGORITHMS)]

    async def verify(self, token: str, *, via_cookie: bool = False) -> Caller:
        try:
            key, algorithms = await self._key(token)
            claims = jwt.decode(token, key, algorithms=algorithms, audience=self.audience, issuer=self.issuer,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("the token has expired", "le jeton a expiré") from exc
        except (jwt.PyJWTError, TypeError, ValueError) as exc:  # a key that cannot check this token: refused
            raise unauthorized() from exc
        role, tenant = claims.get("role"), claims.get("tenant")
        if role == "pharmacy" and isinstance(tenant, str) and _TENANT.match(tenant):
            return Caller(sub=str(claims["sub"]), role="pharmacy", tenant=tenant, via_cookie=via_cookie)
        if role == "operator":
            return Caller(sub=str(claims["sub"]), role="operator", tenant=None, via_cookie=via_cookie)
        raise unauthorized("the token names no valid role and pharmacy",
                           "le jeton ne nomme ni rôle ni pharmacie valides")


def algorithms_of(key: PublicKey) -> list[str]:
    if isinstance(key, Ed25519PublicKey):
        return ["EdDSA"]
    return RSA_ALGORITHMS if isinstance(key, RSAPublicKey) else EC_ALGORITHMS


def csrf_value(secret: bytes, session_token: str) -> str:
    return hmac.new(secret, session_token.encode(), hashlib.sha256).hexdigest()


def new_secret() -> bytes:
    return secrets.token_bytes(32)


async def authenticate(request: Request, verifier: Verifier, secret: bytes) -> Caller:
    """The caller of ``request``: its bearer token, else its session cookie (CSRF-checked when the
    method changes something)."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        return await verifier.verify(token.strip())
    session = request.cookies.get(SESSION_COOKIE)
    if not session:
        raise unauthorized()
    caller = await verifier.verify(session, via_cookie=True)
    if request.method in UNSAFE_METHODS:
        sent, cookie = request.headers.get(CSRF_HEADER, ""), request.cookies.get(CSRF_COOKIE, "")
        expected = csrf_value(secret, session)
        if not (sent and hmac.compare_digest(sent, cookie) and hmac.compare_digest(sent, expected)):
            raise forbidden("missing or wrong CSRF token", "jeton CSRF absent ou faux")
    return caller


def require_pharmacy(caller: Caller) -> str:
    """The caller's tenant; an operator token reaches no pharmacy's accounts, invoices or secrets."""
    if caller.role != "pharmacy" or caller.tenant is None:
        raise forbidden("this route is a pharmacy's", "cette route est réservée aux pharmacies")
    return caller.tenant


def require_operator(caller: Caller) -> None:
    if caller.role != "operator":
        raise forbidden("operators only", "réservé aux opérateurs")
