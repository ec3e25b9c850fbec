"""The "two-step" portal style: a cookie banner in front of everything, the identifier on one page,
the password on the next, then documents as a paginated list of cards."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from html import escape

from aiohttp import web

from sandbox.data import SUPPLIER, SandboxDocument, documents_for
from sandbox.faults import RETRY_AFTER_S, SUPPLIER_SIDE, Fault, FaultOptions, download_is_broken, fault_of
from sandbox.interstitials import BODIES, TITLES
from sandbox.pdf import pdf_for
from sandbox.sessions import Session, Sessions

TITLE = "Portail en deux étapes"
PASSWORD = "demo"
PAGE_SIZE = 8
COOKIE = "ts_session"
PENDING_COOKIE = "ts_pending"
CONSENT_COOKIE = "ts_consent"
PASSWORD_ERROR = "Mot de passe incorrect."
_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre")
# A maintenance page here is a real 503, unlike the classic style's 200 page.
_STATUS = {Fault.MAINTENANCE: 503, Fault.SERVER_ERROR: 500, Fault.RATE_LIMITED: 429}
_MAX_PENDING = 20_000

_SESSIONS = web.AppKey("sessions", Sessions)
_PENDING = web.AppKey("pending", OrderedDict[str, str])
_TODAY: web.AppKey[Callable[[], date]] = web.AppKey("today")
_FAULTS = web.AppKey("faults", FaultOptions)


def create_twostep_app(today: Callable[[], date], faults: FaultOptions | None = None) -> web.Application:
    app = web.Application()
    app[_SESSIONS] = Sessions()
    app[_PENDING] = OrderedDict()
    app[_TODAY] = today
    app[_FAULTS] = faults or FaultOptions()
    app.router.add_get("/", _root, name="root")
    app.router.add_get("/login", _identifier_form, name="login")
    app.router.add_post("/login", _identifier_submit)
    app.router.add_get("/login/password", _password_form, name="password")
    app.router.add_post("/login/password", _password_submit)
    app.router.add_get("/logout", _logout, name="logout")
    app.router.add_get("/account/{step}", _account_step, name="account_step")
    app.router.add_get("/documents", _documents, name="documents")
    app.router.add_get("/documents/{number}/download", _download, name="download")
    return app


def _url(request: web.Request, name: str, **parts: str) -> str:
    return str(request.app.router[name].url_for(**parts))


def french_long_date(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def signed_amount(doc: SandboxDocument) -> str:
    """``3 885,93 €`` for an invoice, ``−52,21 €`` (a real minus sign) for a credit note."""
    whole, cents = f"{doc.amount:.2f}".split(".")
    sign = "\u2212" if doc.kind == "credit_note" else ""
    return f"{sign}{int(whole):,}".replace(",", "\u00a0") + f",{cents}\u00a0€"


def _banner(request: web.Request) -> str:
    if request.cookies.get(CONSENT_COOKIE):
        return ""
    # A full-screen overlay: nothing underneath can be clicked until a choice is made.
    return f"""<div id="cookie-banner" role="dialog" aria-modal="true" aria-label="Cookies"
 style="position:fixed;inset:0;background:rgba(0,0,0,.55);z-index:1000;display:flex;align-items:flex-end">
<div style="background:#fff;width:100%;padding:1.5em">
<p>Nous utilisons des cookies pour assurer le bon fonctionnement du site et mesurer son audience.</p>
<button type="button" id="cookie-accept" data-consent="all">Tout accepter</button>
<button type="button" id="cookie-reject" data-consent="necessary">Continuer sans accepter</button>
</div></div>
<script>
for (const button of document.querySelectorAll("#cookie-banner button")) {{
  button.addEventListener("click", () => {{
    document.cookie = "{CONSENT_COOKIE}=" + button.dataset.consent + "; path={_url(request, "root")}; SameSite=Lax";
    document.getElementById("cookie-banner").remove();
  }});
}}
</script>"""


def _html(request: web.Request, title: str, body: str, *, status: int = 200, account: str | None = None,
          headers: dict[str, str] | None = None) -> web.Response:
    menu = (f"""<nav id="account-menu"><span class="who">{escape(account)}</span>
<a href="{_url(request, "documents")}">Mes documents</a> <a href="{_url(request, "logout")}">Déconnexion</a></nav>"""
            if account else "")
    html = f"""<!DOCTYPE html>
<html lang="fr">
<head><meta charset="utf-8"><title>{escape(title)} | {escape(SUPPLIER)} — Espace client</title>
<style>
body {{ font-family: Georgia, serif; margin: 0; background: #f4f1ea; }}
.top {{ background: #234; color: #fff; padding: .8em 2em; display: flex; justify-content: space-between; }}
.top a {{ color: #fff; }}
.content {{ margin: 2em; }}
.document {{ background: #fff; margin: .4em 0; padding: .6em; list-style: none; }}
.alert-error {{ color: #900; }}
</style></head>
<body>
<div class="top"><strong>{escape(SUPPLIER)}</strong>{menu}</div>
<div class="content">
{body}
</div>
{_banner(request)}
</body></html>
"""
    return web.Response(text=html, content_type="text/html", status=status, headers=headers)


def _interstitial(request: web.Request, fault: Fault, account: str | None = None) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if fault is Fault.RATE_LIMITED else None
    return _html(request, TITLES[fault], BODIES[fault], status=_STATUS.get(fault, 200), account=account,
                 headers=headers)


def _identifier_page(request: web.Request, notice: str = "") -> web.Response:
    notice_block = f'<p class="alert-error" role="alert">{escape(notice)}</p>' if notice else ""
    body = f"""<h2>Connexion à votre espace</h2>
<p class="step">Étape 1 sur 2 : votre adresse e-mail</p>
{notice_block}<form id="identifier-form" method="post" action="{_url(request, "login")}">
<p><label for="username">Adresse e-mail</label>
<input type="text" inputmode="email" id="username" name="username" autocomplete="username" required></p>
<p><button type="submit" id="identifier-next">Continuer</button></p>
</form>"""
    return _html(request, "Connexion", body)


def _password_page(request: web.Request, identifier: str, *, error: bool = False) -> web.Response:
    renamed = fault_of(identifier) is Fault.LAYOUT_CHANGED
    # After a redesign the password field got another name and id: a collector relying on them breaks.
    field = ('<input type="password" id="secret-code" name="secret" autocomplete="current-password" required>'
             if renamed else
             '<input type="password" id="password" name="password" autocomplete="current-password" required>')
    error_block = (f'<p class="alert alert-error" id="password-error" role="alert">{PASSWORD_ERROR}</p>\n'
                   if error else "")
    body = f"""<h2>Connexion à votre espace</h2>
<p class="step">Étape 2 sur 2 : votre mot de passe</p>
<p>Bonjour <strong class="identifier">{escape(identifier)}</strong>
(<a href="{_url(request, "login")}">ce n'est pas vous ?</a>)</p>
{error_block}<form id="password-form" method="post" action="{_url(request, "password")}">
<p><label>Mot de passe {field}</label></p>
<p><button type="submit" id="password-submit">Se connecter</button></p>
</form>"""
    return _html(request, "Connexion", body)


def _session(request: web.Request) -> Session:
    """The logged-in pharmacy's session, or a redirect to the login page (or to what blocks it)."""
    return request.app[_SESSIONS].require(request.cookies.get(COOKIE), _url(request, "login"),
                                          lambda fault: _url(request, "account_step", step=fault.value))


async def _root(request: web.Request) -> web.Response:
    raise web.HTTPFound(_url(request, "documents"))


async def _identifier_form(request: web.Request) -> web.Response:
    return _identifier_page(request)


async def _identifier_submit(request: web.Request) -> web.Response:
    form = await request.post()
    identifier = str(form.get("username", "")).strip()
    if not request.cookies.get(CONSENT_COOKIE):
        return _identifier_page(request, "Veuillez d'abord faire un choix concernant les cookies.")
    if not identifier:
        return _identifier_page(request, "Saisissez votre adresse e-mail.")
    await request.app[_FAULTS].pace(identifier)
    fault = fault_of(identifier)
    if fault in SUPPLIER_SIDE:
        return _interstitial(request, fault)
    pending = request.app[_PENDING]
    token = secrets.token_urlsafe(18)
    pending[token] = identifier
    while len(pending) > _MAX_PENDING:
        pending.popitem(last=False)
    response = web.Response(status=303, headers={"Location": _url(request, "password")})
    response.set_cookie(PENDING_COOKIE, token, path=_url(request, "root"), httponly=True, samesite="Lax")
    return response


async def _password_form(request: web.Request) -> web.Response:
    identifier = request.app[_PENDING].get(request.cookies.get(PENDING_COOKIE, ""))
    if identifier is None:
        raise web.HTTPFound(_url(request, "login"))
    await request.app[_FAULTS].pace(identifier)
    return _password_page(request, identifier)


async def _password_submit(request: web.Request) -> web.Response:
    token = request.cookies.get(PENDING_COOKIE, "")
    identifier = request.app[_PENDING].get(token)
    if identifier is None:
        raise web.HTTPFound(_url(request, "login"))
    form = await request.post()
    password = str(form.get("secret" if fault_of(identifier) is Fault.LAYOUT_CHANGED else "password", ""))
    await request.app[_FAULTS].pace(identifier)
    if password != PASSWORD:
        return _password_page(request, identifier, error=True)
    request.app[_PENDING].pop(token, None)
    session = request.app[_SESSIONS].open(identifier)
    target = (_url(request, "account_step", step=session.blocker.value) if session.blocker
              else _url(request, "documents"))
    response = web.Response(status=303, headers={"Location": target})
    response.set_cookie(COOKIE, session.token, path=_url(request, "root"), httponly=True, samesite="Lax")
    response.del_cookie(PENDING_COOKIE, path=_url(request, "root"))
    return response


async def _logout(request: web.Request) -> web.Response:
    request.app[_SESSIONS].close(request.cookies.get(COOKIE))
    response = web.Response(status=302, headers={"Location": _url(request, "login")})
    response.del_cookie(COOKIE, path=_url(request, "root"))
    return response


async def _account_step(request: web.Request) -> web.Response:
    session = request.app[_SESSIONS].peek(request.cookies.get(COOKIE))
    if session is None:
        raise web.HTTPFound(_url(request, "login"))
    if session.blocker is None or session.blocker.value != request.match_info["step"]:
        raise web.HTTPFound(_url(request, "documents"))
    await request.app[_FAULTS].pace(session.login)
    return _interstitial(request, session.blocker, account=session.login)


def _card(request: web.Request, doc: SandboxDocument) -> str:
    label = "Facture" if doc.kind == "invoice" else "Avoir"
    return f"""<li class="document" data-id="{escape(doc.number)}">
<span class="doc-type">{label}</span> n° <span class="doc-number">{escape(doc.number)}</span>
du <time datetime="{doc.issue_date.isoformat()}">{french_long_date(doc.issue_date)}</time>
— <span class="doc-amount">{signed_amount(doc)}</span>
<a class="doc-pdf" href="{_url(request, "download", number=doc.number)}">Télécharger le PDF</a>
</li>"""


async def _documents(request: web.Request) -> web.Response:
    session = _session(request)
    await request.app[_FAULTS].pace(session.login)
    documents = documents_for(session.login, request.app[_TODAY]())
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    last_page = max(1, -(-len(documents) // PAGE_SIZE))
    cards = "\n".join(_card(request, doc) for doc in documents[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
    base = _url(request, "documents")
    prev_link = f'<a class="pager-prev" href="{base}?page={page - 1}">‹ Précédent</a>' if page > 1 else ""
    next_link = f'<a class="pager-next" href="{base}?page={page + 1}">Suivant ›</a>' if page < last_page else ""
    body = f"""<section id="documents">
<h2>Mes documents</h2>
<ul class="document-list">
{cards}
</ul>
<nav class="pager">{prev_link} <span class="pager-status">{page}/{last_page}</span> {next_link}</nav>
</section>"""
    return _html(request, "Mes documents", body, account=session.login)


async def _download(request: web.Request) -> web.Response:
    session = _session(request)
    number = request.match_info["number"]
    today = request.app[_TODAY]()
    for doc in documents_for(session.login, today):
        if doc.number == number:
            if download_is_broken(doc, today):
                # Some portals answer 200 with an error page where the PDF should be.
                return _html(request, "Document indisponible",
                             "<p class=\"alert-error\">Ce document est momentanément indisponible.</p>",
                             account=session.login)
            return web.Response(body=pdf_for(doc, "twostep"), content_type="application/pdf",
                                headers={"Content-Disposition": f'inline; filename="{number}.pdf"'})
    raise web.HTTPNotFound()
