"""The "classic" portal style: a login form, a paginated invoice table, one PDF link per row."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date
from html import escape

from aiohttp import web

from sandbox.data import SUPPLIER, SandboxDocument, documents_for
from sandbox.pdf import pdf_for

TITLE = "Portail classique"
PASSWORD = "demo"
PAGE_SIZE = 10
COOKIE = "classic_session"
LOGIN_ERROR = "Identifiant ou mot de passe incorrect"

_SESSIONS = web.AppKey("sessions", dict[str, str])
_TODAY: web.AppKey[Callable[[], date]] = web.AppKey("today")

# French formatting as CLDR does it: narrow no-break space between thousands, no-break space before €.
_THOUSANDS = "\u202f"
_BEFORE_CURRENCY = "\u00a0"


def create_classic_app(today: Callable[[], date]) -> web.Application:
    """The style as a sub-application; its URLs follow wherever the portal mounts it."""
    app = web.Application()
    app[_SESSIONS] = {}
    app[_TODAY] = today
    app.router.add_get("/", _root, name="root")
    app.router.add_get("/login", _login_form, name="login")
    app.router.add_post("/login", _login_submit)
    app.router.add_get("/logout", _logout, name="logout")
    app.router.add_get("/invoices", _invoices, name="invoices")
    app.router.add_get("/invoices/{number}.pdf", _invoice_pdf, name="pdf")
    return app


def french_amount(doc: SandboxDocument) -> str:
    whole, cents = f"{doc.amount:.2f}".split(".")
    return f"{int(whole):,}".replace(",", _THOUSANDS) + f",{cents}{_BEFORE_CURRENCY}€"


def _url(request: web.Request, name: str, **parts: str) -> str:
    return str(request.app.router[name].url_for(**parts))


def _layout(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<title>{escape(title)} — {escape(SUPPLIER)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
header {{ border-bottom: 2px solid #0a6; margin-bottom: 1em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: .3em .6em; }}
td.amount {{ text-align: right; }}
.error {{ color: #a00; border: 1px solid #a00; padding: .5em; margin: 1em 0; }}
</style>
</head>
<body>
<header><h1 id="supplier">{escape(SUPPLIER)}</h1><p>Espace pharmacie</p></header>
<main>
{body}
</main>
</body>
</html>
"""


def _login_page(request: web.Request, *, error: bool = False, login: str = "") -> web.Response:
    error_block = f'<div class="error" id="login-error">{LOGIN_ERROR}</div>\n' if error else ""
    body = f"""<h2>Connexion</h2>
{error_block}<form id="login-form" method="post" action="{_url(request, "login")}">
<p><label for="login">Identifiant</label>
<input type="text" id="login" name="login" value="{escape(login)}" autocomplete="username" required></p>
<p><label for="password">Mot de passe</label>
<input type="password" id="password" name="password" autocomplete="current-password" required></p>
<p><button type="submit" id="login-submit">Se connecter</button></p>
</form>"""
    return web.Response(text=_layout("Connexion", body), content_type="text/html")


def _session_login(request: web.Request) -> str:
    """The logged-in pharmacy, or a redirect to the login page."""
    login = request.app[_SESSIONS].get(request.cookies.get(COOKIE, ""))
    if login is None:
        raise web.HTTPFound(_url(request, "login"))
    return login


async def _root(request: web.Request) -> web.Response:
    raise web.HTTPFound(_url(request, "invoices"))


async def _login_form(request: web.Request) -> web.Response:
    return _login_page(request)


async def _login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    login, password = str(form.get("login", "")).strip(), str(form.get("password", ""))
    if not login or password != PASSWORD:
        # Like most real portals: 200 with an error block, not a 401.
        return _login_page(request, error=True, login=login)
    token = secrets.token_urlsafe(24)
    request.app[_SESSIONS][token] = login
    response = web.Response(status=303, headers={"Location": _url(request, "invoices")})
    response.set_cookie(COOKIE, token, path=_url(request, "root"), httponly=True, samesite="Lax")
    return response


async def _logout(request: web.Request) -> web.Response:
    request.app[_SESSIONS].pop(request.cookies.get(COOKIE, ""), None)
    response = web.Response(status=302, headers={"Location": _url(request, "login")})
    response.del_cookie(COOKIE, path=_url(request, "root"))
    return response


async def _invoices(request: web.Request) -> web.Response:
    login = _session_login(request)
    documents = documents_for(login, request.app[_TODAY]())
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    last_page = max(1, -(-len(documents) // PAGE_SIZE))
    rows = "\n".join(
        f"""<tr class="invoice-row" data-number="{escape(doc.number)}">
<td class="number">{escape(doc.number)}</td>
<td class="date">{doc.issue_date:%d/%m/%Y}</td>
<td class="kind">{"Facture" if doc.kind == "invoice" else "Avoir"}</td>
<td class="amount">{french_amount(doc)}</td>
<td class="download"><a href="{_url(request, "pdf", number=doc.number)}">Télécharger</a></td>
</tr>"""
        for doc in documents[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    )
    invoices_url = _url(request, "invoices")
    previous = f'<a rel="prev" href="{invoices_url}?page={page - 1}">Page précédente</a>' if page > 1 else ""
    following = f'<a rel="next" href="{invoices_url}?page={page + 1}">Page suivante</a>' if page < last_page else ""
    body = f"""<p id="account">Pharmacie : <strong>{escape(login)}</strong>
— <a id="logout" href="{_url(request, "logout")}">Se déconnecter</a></p>
<h2>Mes factures</h2>
<table id="invoices">
<thead><tr><th>Numéro</th><th>Date</th><th>Type</th><th>Montant TTC</th><th>PDF</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<nav class="pagination"><span class="current">Page {page} / {last_page}</span> {previous} {following}</nav>"""
    return web.Response(text=_layout("Mes factures", body), content_type="text/html")


async def _invoice_pdf(request: web.Request) -> web.Response:
    login = _session_login(request)
    number = request.match_info["number"]
    # Only the logged-in pharmacy's own documents.
    for doc in documents_for(login, request.app[_TODAY]()):
        if doc.number == number:
            return web.Response(
                body=pdf_for(doc),
                content_type="application/pdf",
                headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
            )
    raise web.HTTPNotFound()
