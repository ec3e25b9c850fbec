"""The "single-page app" portal style: a JavaScript shell that talks to a JSON API.

Every API call carries the session's CSRF token in ``X-CSRF-Token``; the token is handed out by
``api/session`` before login and rotated by ``api/login`` (with the session cookie).
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web

from sandbox.data import SUPPLIER, SandboxDocument, documents_for
from sandbox.faults import RETRY_AFTER_S, Fault, FaultOptions, download_is_broken, fault_of
from sandbox.interstitials import BODIES
from sandbox.pdf import pdf_for
from sandbox.sessions import Session, Sessions

TITLE = "Portail application (SPA)"
PASSWORD = "demo"
PAGE_SIZE = 12
COOKIE = "spa_sid"
CSRF_HEADER = "X-CSRF-Token"
_MAX_ANONYMOUS = 20_000
# The data API fails for these once logged in: the app shell and login keep working.
_API_FAULTS = {
    Fault.MAINTENANCE: (503, "maintenance"),
    Fault.SERVER_ERROR: (500, "internal_error"),
    Fault.RATE_LIMITED: (429, "rate_limited"),
}

_SESSIONS = web.AppKey("sessions", Sessions)
# Visitors before login: cookie -> CSRF token.
_ANONYMOUS = web.AppKey("anonymous", OrderedDict[str, str])
_TODAY: web.AppKey[Callable[[], date]] = web.AppKey("today")
_FAULTS = web.AppKey("faults", FaultOptions)


def create_spa_app(today: Callable[[], date], faults: FaultOptions | None = None) -> web.Application:
    app = web.Application()
    app[_SESSIONS] = Sessions()
    app[_ANONYMOUS] = OrderedDict()
    app[_TODAY] = today
    app[_FAULTS] = faults or FaultOptions()
    app.router.add_get("/", _shell, name="root")
    app.router.add_get("/api/session", _session_info, name="session")
    app.router.add_post("/api/login", _login, name="login")
    app.router.add_post("/api/logout", _logout, name="logout")
    app.router.add_get("/api/invoices", _invoices, name="invoices")
    app.router.add_get("/api/invoices/{number}/pdf", _pdf, name="pdf")
    return app


@cache
def _shell_template() -> str:
    return resources.files("sandbox").joinpath("spa.html").read_text(encoding="utf-8")


def _url(request: web.Request, name: str, **parts: str) -> str:
    return str(request.app.router[name].url_for(**parts))


def _error(status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


@cache
def _screens_json() -> str:
    # Inside a <script>: "</" must not close it early.
    return json.dumps({fault.value: body for fault, body in BODIES.items()}).replace("</", "<\\/")


async def _shell(request: web.Request) -> web.Response:
    html = (_shell_template()
            .replace("{{BASE}}", _url(request, "root"))
            .replace("{{SUPPLIER}}", SUPPLIER)
            .replace("{{SCREENS}}", _screens_json()))
    return web.Response(text=html, content_type="text/html")


async def _session_info(request: web.Request) -> web.Response:
    sid = request.cookies.get(COOKIE)
    session = request.app[_SESSIONS].peek(sid)
    if session is not None:
        return web.json_response({"csrf_token": session.csrf, "user": {"login": session.login}})
    anonymous = request.app[_ANONYMOUS]
    if sid not in anonymous:
        sid = secrets.token_urlsafe(24)
        anonymous[sid] = secrets.token_urlsafe(18)
        while len(anonymous) > _MAX_ANONYMOUS:
            anonymous.popitem(last=False)
    response = web.json_response({"csrf_token": anonymous[sid or ""], "user": None})
    response.set_cookie(COOKIE, sid or "", path=_url(request, "root"), httponly=True, samesite="Strict")
    return response


async def _login(request: web.Request) -> web.Response:
    sid = request.cookies.get(COOKIE, "")
    current = request.app[_SESSIONS].peek(sid)  # someone logged in may log in again, as anyone
    expected = request.app[_ANONYMOUS].get(sid) or (current.csrf if current else None)
    if expected is None or request.headers.get(CSRF_HEADER) != expected:
        return _error(403, "csrf_failed", "Jeton de sécurité invalide : rechargez la page.")
    try:
        payload = await request.json()
        login, password = str(payload.get("login", "")).strip(), str(payload.get("password", ""))
    except (ValueError, AttributeError):
        return _error(400, "bad_request")
    await request.app[_FAULTS].pace(login)
    if fault_of(login) is Fault.CAPTCHA:
        return _error(403, "captcha_required", "Vérification de sécurité requise : je ne suis pas un robot.")
    if not login or password != PASSWORD:
        return _error(401, "invalid_credentials", "Identifiant ou mot de passe incorrect.")
    request.app[_ANONYMOUS].pop(sid, None)
    request.app[_SESSIONS].close(sid)
    session = request.app[_SESSIONS].open(login)
    response = web.json_response({
        "user": {"login": login},
        "csrf_token": session.csrf,
        "next": session.blocker.value if session.blocker else None,
    })
    response.set_cookie(COOKIE, session.token, path=_url(request, "root"), httponly=True, samesite="Strict")
    return response


async def _logout(request: web.Request) -> web.Response:
    request.app[_SESSIONS].close(request.cookies.get(COOKIE))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path=_url(request, "root"))
    return response


def _authorised(request: web.Request) -> Session | web.Response:
    """The session behind an API call, or the refusal to send back."""
    session = request.app[_SESSIONS].use(request.cookies.get(COOKIE))
    if session is None:
        return _error(401, "unauthenticated", "Votre session a expiré : reconnectez-vous.")
    if request.headers.get(CSRF_HEADER) != session.csrf:
        return _error(403, "csrf_failed", "Jeton de sécurité invalide : rechargez la page.")
    if session.blocker is not None:
        return _error(403, session.blocker.value)
    return session


def _item(request: web.Request, doc: SandboxDocument, renamed: bool) -> dict[str, Any]:
    pdf = _url(request, "pdf", number=doc.number)
    if renamed:  # a new API version the app follows, but not a collector written for the old one
        return {"ref": doc.number, "date": doc.issue_date.isoformat(), "category": doc.kind,
                "amount_ttc": str(doc.amount), "devise": doc.currency, "document": pdf}
    return {"number": doc.number, "issued_on": doc.issue_date.isoformat(), "type": doc.kind,
            "total": {"amount": str(doc.amount), "currency": doc.currency}, "pdf_url": pdf}


async def _invoices(request: web.Request) -> web.Response:
    session = _authorised(request)
    if isinstance(session, web.Response):
        return session
    await request.app[_FAULTS].pace(session.login)
    fault = fault_of(session.login)
    if fault in _API_FAULTS:
        status, code = _API_FAULTS[fault]
        headers = {"Retry-After": str(RETRY_AFTER_S)} if fault is Fault.RATE_LIMITED else None
        return _error(status, code, headers=headers)
    documents = documents_for(session.login, request.app[_TODAY]())
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    renamed = fault is Fault.LAYOUT_CHANGED
    shown = documents[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return web.json_response({
        "items": [_item(request, doc, renamed) for doc in shown],
        "page": page,
        "page_count": max(1, -(-len(documents) // PAGE_SIZE)),
        "total": len(documents),
    })


async def _pdf(request: web.Request) -> web.Response:
    session = _authorised(request)
    if isinstance(session, web.Response):
        return session
    number = request.match_info["number"]
    today = request.app[_TODAY]()
    for doc in documents_for(session.login, today):
        if doc.number == number:
            if download_is_broken(doc, today):
                return _error(502, "storage_unavailable", "Document momentanément indisponible.")
            return web.Response(body=pdf_for(doc, "spa"), content_type="application/pdf",
                                headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'})
    return _error(404, "not_found")
