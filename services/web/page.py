"""``GET /``: the "Collecteurs" page for the signed-in pharmacy (issue 15, design §1's help page).

The template renders the page's frame and words; ``static/collecteurs.js`` fills it from the JSON API
and keeps it live from ``/api/v1/events``. The caller is read exactly as the API reads it
(``services.web.auth.authenticate``): a page never names its pharmacy from the URL.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.web.api import state
from services.web.auth import SESSION_COOKIE, AuthError, authenticate, csrf_value
from services.web.i18n import PageLang, page_lang, strings

TEMPLATES_DIR = Path(__file__).parent / "templates"
# Autoescape on for every template whatever its extension (select_autoescape would skip ``.j2``):
# a tenant id or any later value must never become markup. StrictUndefined: a missing word is a bug.
_env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined,
                   auto_reload=False)
# The page carries the session's CSRF token: no shared cache may keep it.
_NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter()


def render(name: str, lang: PageLang, **context: object) -> str:
    return _env.get_template(name).render(lang=lang, t=strings(lang), **context)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index(request: Request, lang: str | None = Query(default=None, max_length=8)) -> HTMLResponse:
    language = page_lang(lang)
    web = state(request)
    try:
        who = await authenticate(request, web.verifier, web.secret)  # a GET: no CSRF check
    except AuthError:
        return HTMLResponse(render("signin.html.j2", language, reason="signin"), status_code=401, headers=_NO_STORE)
    if who.tenant is None:  # an operator: the page shows a pharmacy's accounts, it has none
        return HTMLResponse(render("signin.html.j2", language, reason="operator"), status_code=403,
                            headers=_NO_STORE)
    session = request.cookies.get(SESSION_COOKIE)
    # The value of the collectors_csrf cookie, recomputed from the session rather than read back from a
    # cookie the browser sent (which a sibling subdomain could have planted).
    csrf = csrf_value(web.secret, session) if session else ""
    return HTMLResponse(render("collecteurs.html.j2", language, tenant=who.tenant, csrf_token=csrf),
                        headers=_NO_STORE)
