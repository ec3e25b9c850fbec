"""Who is calling, at the HTTP layer: every refusal of a token, a role or a session, and the limit on
activations. Tokens come from PyJWT directly (tests/unit/web/fakes.py), some forged by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from shared.errors import RemoteApiError
from shared.subjects import Api
from tests.unit.web import samples
from tests.unit.web.fakes import AUDIENCE, ISSUER, KEY, OTHER_KEY, FakeBackend, bearer, serve, token

NEW_ACCOUNT = {"collector_id": "sandbox-classic", "login": "l", "password": "p"}


def owned_by(owner: str) -> FakeBackend:
    """A NATS API where account acc-1 and invoice inv-1 are ``owner``'s: another tenant gets
    not_found, as the real services answer."""
    backend = FakeBackend()

    def account(payload: dict[str, Any]) -> Any:
        if payload["tenant_id"] != owner:
            return RemoteApiError("not_found", "Compte introuvable.")
        return samples.account(owner)

    def invoice(payload: dict[str, Any]) -> Any:
        if payload["tenant_id"] != owner:
            return RemoteApiError("not_found", "Facture introuvable.")
        return samples.invoice(owner)

    backend.replies.update({Api.ACCOUNTS_GET: account, Api.ACCOUNTS_DELETE: account, Api.SCRAPER_INVOICE_GET: invoice,
                            Api.SCRAPER_INVOICE_DOWNLOAD: invoice, Api.ACCOUNTS_CREATE: samples.account(owner),
                            Api.ACCOUNTS_LIST: {"accounts": []}, Api.REQUESTS_LIST_ALL: {"requests": []},
                            Api.ACCOUNTS_UPDATE_CREDENTIALS: account})
    return backend


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def good_claims() -> dict[str, Any]:
    return {"sub": "u", "role": "pharmacy", "tenant": "pharma-1", "iss": ISSUER, "aud": AUDIENCE,
            "exp": 4102444800}


def alg_none() -> str:
    return unsigned(good_claims(), {"alg": "none", "typ": "JWT"}) + "."


def hs256_with_public_key() -> str:
    """The key-confusion attack: HMAC-signed with the (public) verification key as the secret."""
    pem = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = unsigned(good_claims(), {"alg": "HS256", "typ": "JWT"})
    return f"{head}.{_b64(hmac.new(pem, head.encode(), hashlib.sha256).digest())}"


REFUSED = {
    "no token": {},
    "not bearer": {"Authorization": f"Basic {token()}"},
    "garbage": bearer("not.a.jwt"),
    "forged signature": bearer(token(key=OTHER_KEY)),
    "expired": bearer(token(minutes=-1)),
    "wrong audience": bearer(token(aud="someone-else")),
    "wrong issuer": bearer(token(iss="https://evil.test")),
    "alg none": bearer(alg_none()),
    "hs256 with the public key": bearer(hs256_with_public_key()),
    "rsa key unknown": bearer(token(key=generate_private_key(65537, 2048), algorithm="RS256")),
    "no tenant": bearer(token(None)),
    "bad tenant": bearer(token("../pharma-2")),
    "unknown role": bearer(token(role="admin")),
}


@pytest.mark.parametrize("headers", REFUSED.values(), ids=REFUSED.keys())
async def test_refused_tokens_get_401_and_reach_nothing(tmp_path: Path, headers: dict[str, str]) -> None:
    backend = owned_by("pharma-1")
    async with serve(backend, tmp_path) as http:
        reply = await http.get("/api/v1/accounts", headers=headers)
        created = await http.post("/api/v1/accounts", headers=headers, json=NEW_ACCOUNT)
    for r in (reply, created):
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.json()["error"]["message"].startswith("Non authentifié")
        assert r.headers["www-authenticate"] == "Bearer"
    assert backend.calls == []


async def test_expired_message_in_english(tmp_path: Path) -> None:
    async with serve(owned_by("pharma-1"), tmp_path) as http:
        reply = await http.get("/api/v1/accounts?lang=en", headers=bearer(token(minutes=-1)))
    assert reply.json()["error"] == {"code": "unauthorized", "message": "Not authenticated: the token has expired.",
                                     "field": None}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/accounts/acc-1"), ("DELETE", "/api/v1/accounts/acc-1"),
    ("GET", "/api/v1/invoices/inv-1"), ("GET", "/api/v1/invoices/inv-1/pdf")])
async def test_another_tenants_token_on_this_tenants_ids_is_404(tmp_path: Path, method: str, path: str) -> None:
    backend = owned_by("pharma-1")
    async with serve(backend, tmp_path) as http:
        reply = await http.request(method, path, headers=bearer(token("pharma-2")))
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"
    assert {p["tenant_id"] for _, p in backend.calls} == {"pharma-2"}


async def test_a_pharmacy_token_on_operator_routes_is_403(tmp_path: Path) -> None:
    backend = owned_by("pharma-1")
    async with serve(backend, tmp_path) as http:
        listed = await http.get("/api/v1/operator/requests", headers=bearer(token()))
        changed = await http.post("/api/v1/operator/requests/req-1/status", headers=bearer(token()),
                                  json={"status": "available", "collector_id": "sandbox-classic"})
    for r in (listed, changed):
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert backend.calls == []


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/catalog"), ("GET", "/api/v1/accounts"), ("GET", "/api/v1/accounts/acc-1"),
    ("POST", "/api/v1/accounts"), ("GET", "/api/v1/invoices"), ("GET", "/api/v1/invoices/inv-1/pdf"),
    ("GET", "/api/v1/notifications"), ("GET", "/api/v1/notifications/preferences"), ("GET", "/api/v1/events"),
    ("GET", "/api/v1/requests")])
async def test_an_operator_token_on_tenant_routes_is_403(tmp_path: Path, method: str, path: str) -> None:
    backend = owned_by("pharma-1")
    async with serve(backend, tmp_path) as http:
        reply = await http.request(method, path, headers=bearer(token(None, role="operator")),
                                   json=NEW_ACCOUNT if method == "POST" else None)
    assert reply.status_code == 403 and reply.json()["error"]["code"] == "forbidden"
    assert backend.calls == []


async def test_operator_token_with_a_tenant_claim_still_reaches_no_tenant(tmp_path: Path) -> None:
    backend = owned_by("pharma-1")
    async with serve(backend, tmp_path) as http:
        reply = await http.get("/api/v1/accounts", headers=bearer(token("pharma-1", role="operator")))
    assert reply.status_code == 403
    assert backend.calls == []


# --- the session cookie -------------------------------------------------------------------------------


async def test_signin_sets_the_session_and_csrf_cookies(tmp_path: Path) -> None:
    tok = token()
    async with serve(owned_by("pharma-1"), tmp_path) as http:
        reply = await http.get("/signin", params={"token": tok})
        bad = await http.get("/signin", params={"token": token(key=OTHER_KEY)})
    assert reply.status_code == 303 and reply.headers["location"] == "/"
    cookies = reply.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("collectors_session="))
    csrf = next(c for c in cookies if c.startswith("collectors_csrf="))
    assert session.startswith(f"collectors_session={tok};")
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/" in session
    assert "HttpOnly" not in csrf and "SameSite=strict" in csrf
    expected = hmac.new(b"test-secret", tok.encode(), hashlib.sha256).hexdigest()
    assert csrf.startswith(f"collectors_csrf={expected};")
    assert bad.status_code == 401 and "set-cookie" not in bad.headers


async def test_cookie_session_needs_the_csrf_header_on_unsafe_methods(tmp_path: Path) -> None:
    tok = token()
    csrf = hmac.new(b"test-secret", tok.encode(), hashlib.sha256).hexdigest()
    backend = owned_by("pharma-1")
    cookie = {"Cookie": f"collectors_session={tok}; collectors_csrf={csrf}"}
    forged_pair = {"Cookie": f"collectors_session={tok}; collectors_csrf={'a' * 64}", "X-CSRF-Token": "a" * 64}
    async with serve(backend, tmp_path) as http:
        read = await http.get("/api/v1/accounts", headers=cookie)
        without = await http.post("/api/v1/accounts", headers=cookie, json=NEW_ACCOUNT)
        wrong = await http.post("/api/v1/accounts", headers={**cookie, "X-CSRF-Token": "0" * 64}, json=NEW_ACCOUNT)
        forged = await http.post("/api/v1/accounts", headers=forged_pair, json=NEW_ACCOUNT)
        deleted = await http.delete("/api/v1/accounts/acc-1", headers=cookie)
        right = await http.post("/api/v1/accounts", headers={**cookie, "X-CSRF-Token": csrf}, json=NEW_ACCOUNT)
    assert read.status_code == 200
    for r in (without, wrong, forged, deleted):
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert right.status_code == 201
    assert [s for s, _ in backend.calls] == [Api.ACCOUNTS_LIST, Api.ACCOUNTS_CREATE]


async def test_signout_clears_both_cookies(tmp_path: Path) -> None:
    async with serve(owned_by("pharma-1"), tmp_path) as http:
        reply = await http.post("/signout")
    cookies = reply.headers.get_list("set-cookie")
    assert reply.status_code == 204
    assert {c.split("=")[0] for c in cookies} == {"collectors_session", "collectors_csrf"}
    assert all("Max-Age=0" in c for c in cookies)


# --- activations per tenant and minute ----------------------------------------------------------------


async def test_activations_are_limited_per_tenant_and_minute(tmp_path: Path) -> None:
    now = [1000.0]
    backend = owned_by("pharma-1")
    backend.replies[Api.ACCOUNTS_UPDATE_CREDENTIALS] = samples.account()
    mine, other = bearer(token("pharma-1")), bearer(token("pharma-2"))
    async with serve(backend, tmp_path, clock=lambda: now[0]) as http:
        allowed = []
        for i in range(10):
            if i % 2:
                allowed.append(await http.put("/api/v1/accounts/acc-1/credentials", headers=mine,
                                              json={"password": "p"}))
            else:
                allowed.append(await http.post("/api/v1/accounts", headers=mine, json=NEW_ACCOUNT))
        now[0] += 30
        limited = await http.post("/api/v1/accounts", headers=mine, json=NEW_ACCOUNT)
        limited_update = await http.put("/api/v1/accounts/acc-1/credentials?lang=en", headers=mine,
                                        json={"password": "p"})
        others = await http.post("/api/v1/accounts", headers=other, json=NEW_ACCOUNT)
        now[0] += 30.5
        after = await http.post("/api/v1/accounts", headers=mine, json=NEW_ACCOUNT)
    assert [r.status_code for r in allowed] == [201, 200] * 5
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.headers["retry-after"] == "30"
    assert limited_update.status_code == 429
    assert limited_update.json()["error"]["message"].startswith("Too many")
    assert others.status_code == 201
    assert after.status_code == 201
    assert len([s for s, p in backend.calls if p["tenant_id"] == "pharma-1"]) == 11


async def test_reading_is_not_rate_limited(tmp_path: Path) -> None:
    async with serve(owned_by("pharma-1"), tmp_path, clock=lambda: 0.0) as http:
        replies = [await http.get("/api/v1/accounts", headers=bearer(token())) for _ in range(15)]
    assert {r.status_code for r in replies} == {200}


def test_dev_tokens_verify_with_pyjwt(tmp_path: Path) -> None:
    from services.web.auth import SIGNING_KEY_FILE, ensure_signing_key, mint_token

    key, created = ensure_signing_key(tmp_path / SIGNING_KEY_FILE)
    again, created_again = ensure_signing_key(tmp_path / SIGNING_KEY_FILE)
    assert created and not created_again
    assert (tmp_path / SIGNING_KEY_FILE).stat().st_mode & 0o777 == 0o600
    claims = jwt.decode(mint_token(key, tenant="demo"), again.public_key(), algorithms=["EdDSA"],
                        audience="collectors-web", issuer="collectors-dev")
    assert claims["tenant"] == "demo" and claims["role"] == "pharmacy"
