"""The "classic" portal style: a login form, a paginated invoice table, one PDF link per row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from html import escape

from aiohttp import web

from sandbox.data import SUPPLIER, SandboxDocument, documents_for
from sandbox.faults import RETRY_AFTER_S, SUPPLIER_SIDE, Fault, FaultOptions, download_is_broken, fault_of
from sandbox.interstitials import BODIES, TITLES
from sandbox.pdf import pdf_for
from sandbox.sessions import Session, Sessions

TITLE = "Portail classique"
PASSWORD = "demo"
PAGE_SIZE = 10
COOKIE = "classic_session"
LOGIN_ERROR = "Identifiant ou mot de passe incorrect"

_SESSIONS = web.AppKey("sessions", Sessions)
_TODAY: web.AppKey[Callable[[], date]] = web.AppKey("today")
_FAULTS = web.AppKey("faults", FaultOptions)

# French formatting as CLDR does it: narrow no-break space between thousands, no-break space before €.
_THOUSANDS = "\u202f"
_BEFORE_CURRENCY = "\u00a0"
_STATUS = {Fault.SERVER_ERROR: 500, Fault.RATE_LIMITED: 429}


def create_classic_app(today: Callable[[], date], faults: FaultOptions | None = None) -> web.Application:
    """The style as a sub-application; its URLs follow wherever the portal mounts it."""
    app = web.Application()
    app[_SESSIONS] = Sessions()
    app[_TODAY] = today
    app[_FAULTS] = faults or FaultOptions()
    app.router.add_get("/", _root, name="root")
    app.router.add_get("/login", _login_form, name="login")
    app.router.add_post("/login", _login_submit)
    app.router.add_get("/logout", _logout, name="logout")
    app.router.add_get("/account/{step}", _account_step, name="account_step")
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


def _html(title: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=_layout(title, body), content_type="text/html", status=status, headers=headers)


def _interstitial(fault: Fault) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if fault is Fault.RATE_LIMITED else None
    return _html(TITLES[fault], BODIES[fault], _STATUS.get(fault, 200), headers)


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
    return _html("Connexion", body)


def _session(request: web.Request) -> Session:
    """The logged-in pharmacy's session, or a redirect to the login page (or to what blocks it)."""
    return request.app[_SESSIONS].require(request.cookies.get(COOKIE), _url(request, "login"),
                                          lambda fault: _url(request, "account_step", step=fault.value))


async def _root(request: web.Request) -> web.Response:
    raise web.HTTPFound(_url(request, "invoices"))


async def _login_form(request: web.Request) -> web.Response:
    return _login_page(request)


async def _login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    login, password = str(form.get("login", "")).strip(), str(form.get("password", ""))
    await request.app[_FAULTS].pace(login)
    fault = fault_of(login)
    if fault in SUPPLIER_SIDE:
        return _interstitial(fault)
    if not login or password != PASSWORD:
        # Like most real portals: 200 with an error block, not a 401.
        return _login_page(request, error=True, login=login)
    session = request.app[_SESSIONS].open(login)
    target = (_url(request, "account_step", step=session.blocker.value) if session.blocker
              else _url(request, "invoices"))
    response = web.Response(status=303, headers={"Location": target})
    response.set_cookie(COOKIE, session.token, path=_url(request, "root"), httponly=True, samesite="Lax")
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
        raise web.HTTPFound(_url(request, "invoices"))
    await request.app[_FAULTS].pace(session.login)
    return _interstitial(session.blocker)


def _rows(request: web.Request, documents: list[SandboxDocument]) -> str:
    return "\n".join(
        f"""<tr class="invoice-row" data-number="{escape(doc.number)}">
<td class="number">{escape(doc.number)}</td>
<td class="date">{doc.issue_date:%d/%m/%Y}</td>
<td class="kind">{"Facture" if doc.kind == "invoice" else "Avoir"}</td>
<td class="amount">{french_amount(doc)}</td>
<td class="download"><a href="{_url(request, "pdf", number=doc.number)}">Télécharger</a></td>
</tr>"""
        for doc in documents
    )


def _renamed_rows(request: web.Request, documents: list[SandboxDocument]) -> str:
    """The same table after a redesign: every id and class the collector relied on is renamed."""
    return "\n".join(
        f"""<tr class="line" data-ref="{escape(doc.number)}">
<td class="col-ref">{escape(doc.number)}</td>
<td class="col-issued">{doc.issue_date:%d/%m/%Y}</td>
<td class="col-type">{"Facture" if doc.kind == "invoice" else "Avoir"}</td>
<td class="col-total">{french_amount(doc)}</td>
<td class="col-file"><a href="{_url(request, "pdf", number=doc.number)}">PDF</a></td>
</tr>"""
        for doc in documents
    )


async def _invoices(request: web.Request) -> web.Response:
    session = _session(request)
    login = session.login
    await request.app[_FAULTS].pace(login)
    documents = documents_for(login, request.app[_TODAY]())
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    last_page = max(1, -(-len(documents) // PAGE_SIZE))
    shown = documents[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    renamed = fault_of(login) is Fault.LAYOUT_CHANGED
    rows = _renamed_rows(request, shown) if renamed else _rows(request, shown)
    table_id = "invoice-list" if renamed else "invoices"
    invoices_url = _url(request, "invoices")
    previous = f'<a rel="prev" href="{invoices_url}?page={page - 1}">Page précédente</a>' if page > 1 else ""
    following = f'<a rel="next" href="{invoices_url}?page={page + 1}">Page suivante</a>' if page < last_page else ""
    body = f"""<p id="account">Pharmacie : <strong>{escape(login)}</strong>
— <a id="logout" href="{_url(request, "logout")}">Se déconnecter</a></p>
<h2>Mes factures</h2>
<table id="{table_id}">
<thead><tr><th>Numéro</th><th>Date</th><th>Type</th><th>Montant TTC</th><th>PDF</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<nav class="pagination"><span class="current">Page {page} / {last_page}</span> {previous} {following}</nav>"""
    return _html("Mes factures", body)


async def _invoice_pdf(request: web.Request) -> web.Response:
    session = _session(request)
    number = request.match_info["number"]
    today = request.app[_TODAY]()
    # Only the logged-in pharmacy's own documents.
    for doc in documents_for(session.login, today):
        if doc.number == number:
            if download_is_broken(doc, today):
                return _html("Erreur", "<p>Le document est momentanément indisponible.</p>", 500)
            return web.Response(
                body=pdf_for(doc, "classic"),
                content_type="application/pdf",
                headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
            )
    raise web.HTTPNotFound()
