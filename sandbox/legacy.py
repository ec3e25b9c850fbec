"""The "legacy" portal style: an ASP.NET WebForms-like extranet.

Everything after the login is a postback: one form per page, hidden ``__VIEWSTATE`` /
``__EVENTVALIDATION`` tokens that only the latest page's values satisfy, grid paging and PDF
downloads through ``__doPostBack``, and the search criteria kept server-side between postbacks.
Pages are windows-1252, as such an extranet still serves them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from html import escape
from typing import Literal
from urllib.parse import parse_qsl

from aiohttp import web

from sandbox.data import SandboxDocument, documents_for
from sandbox.faults import RETRY_AFTER_S, SUPPLIER_SIDE, Fault, FaultOptions, fault_of, is_broken
from sandbox.pdf import pdf_for
from sandbox.sessions import MAX_SESSIONS, Session, Sessions

TITLE = "Sandbox — extranet officine (WebForms)"
PASSWORD = "demo"
PAGE_SIZE = 10
PAGER_BUTTONS = 10  # ASP.NET's PagerSettings.PageButtonCount default
DEFAULT_WINDOW_DAYS = 90
COOKIE = "ASP.NET_SessionId"
CHARSET = "windows-1252"

Site = tuple[str, str]  # (code, name)
LEGACY_SITES: dict[str, tuple[Site, ...]] = {
    "multi": (("0101", "Pharmacie Centrale"), ("0102", "Pharmacie de la Gare")),
    "single": (("0101", "Officine principale"),),
}

# Control names as WebForms would generate them from a master page (ctl00) and its content (Main).
GRID = "ctl00$Main$gvFactures"
RENAMED_LIST = "ctl00$Main$lstDocuments"  # the grid after a layout_changed redesign
DDL_SITE = "ctl00$Main$ddlSite"
TXT_DU = "ctl00$Main$txtDu"
TXT_AU = "ctl00$Main$txtAu"
BTN_NOUVELLE = "ctl00$Main$btnNouvelle"
BTN_RECHERCHER = "ctl00$Main$btnRechercher"
TXT_CODE_CLIENT = "ctl00$Main$txtCodeClient"
TXT_MOT_DE_PASSE = "ctl00$Main$txtMotDePasse"

LOGIN_ERROR = "Code client ou mot de passe erroné. Vérifiez votre saisie."
DATE_ERROR = "Date invalide : saisissez les dates au format jj/mm/aaaa."
VIEWSTATE_MAC = ("Validation of viewstate MAC failed. If this application is hosted by a Web Farm or cluster, "
                 "ensure that <machineKey> configuration specifies the same validationKey and validation "
                 "algorithm. AutoGenerate cannot be used in a cluster.")
INVALID_ARGUMENT = ("Invalid postback or callback argument.  Event validation is enabled using "
                    '<pages enableEventValidation="true"/> in configuration or <%@ Page '
                    'EnableEventValidation="true" %> in a page.')

# Account-side faults each get their own page, as such an extranet bolts them on one by one.
STEP_PAGES = {
    Fault.PASSWORD_EXPIRED: "MotDePasseExpire.aspx",
    Fault.TERMS: "ConditionsUtilisation.aspx",
    Fault.OTP: "CodeSecurite.aspx",
}

_SESSIONS = web.AppKey("sessions", Sessions)
_TODAY: web.AppKey[Callable[[], date]] = web.AppKey("today")
_FAULTS = web.AppKey("faults", FaultOptions)


# --- Documents and sites (pure) -------------------------------------------------------------------

def sites_for(login: str) -> tuple[Site, ...]:
    return LEGACY_SITES["multi" if "-multi" in login else "single"]


@lru_cache(maxsize=4096)
def _site_documents(login: str, code: str, today: date) -> tuple[SandboxDocument, ...]:
    if len(sites_for(login)) == 1:
        return tuple(documents_for(login, today))
    # Each site keeps its own ledger but numbers it like the others (the part between dashes comes
    # from the pharmacy, not the site), so two sites reuse numbers: FA2026-xxxxxx-0001 exists twice
    # and a collector must keep the two documents apart.
    tag = hashlib.sha256(login.encode("utf-8")).hexdigest()[:6]
    documents = []
    for doc in documents_for(f"{login}#{code}", today):
        prefix, _, sequence = doc.number.split("-")
        documents.append(replace(doc, login=login, number=f"{prefix}-{tag}-{sequence}"))
    return tuple(documents)


def legacy_documents(login: str, today: date) -> list[tuple[str, SandboxDocument]]:
    """Every document of the pharmacy as (site code, document): site by site, newest first."""
    return [(code, doc) for code, _ in sites_for(login) for doc in _site_documents(login, code, today)]


# --- Search state and postbacks (pure) ------------------------------------------------------------

@dataclass(frozen=True)
class Search:
    """What the viewstate would carry: the criteria as typed, their parsed values and the page."""
    site: str
    du_text: str
    au_text: str
    page: int = 1

    @property
    def window(self) -> tuple[date, date] | None:
        du, au = parse_french_date(self.du_text), parse_french_date(self.au_text)
        return (du, au) if du is not None and au is not None else None


def default_search(site: str, today: date) -> Search:
    return Search(site, f"{today - timedelta(days=DEFAULT_WINDOW_DAYS):%d/%m/%Y}", f"{today:%d/%m/%Y}")


def parse_french_date(text: str) -> date | None:
    try:
        return datetime.strptime(text.strip(), "%d/%m/%Y").date()
    except ValueError:
        return None


def results(search: Search, documents: tuple[SandboxDocument, ...]) -> list[SandboxDocument]:
    """The documents the search matches over all its pages, newest first (an invalid date: none)."""
    window = search.window
    if window is None:
        return []
    return [doc for doc in documents if window[0] <= doc.issue_date <= window[1]]


def parse_postback(body: bytes) -> dict[str, str]:
    """An urlencoded windows-1252 body, as the browser posts it for a windows-1252 page."""
    text = body.decode(CHARSET, errors="replace")
    return dict(parse_qsl(text, keep_blank_values=True, encoding=CHARSET, errors="replace"))


PostbackKind = Literal["reset", "search", "site", "page", "pdf", "none"]


def postback_action(form: Mapping[str, str]) -> tuple[PostbackKind, str]:
    """What a Factures.aspx postback asks for, with its argument (page, document index, site).

    As in WebForms, a ``__doPostBack`` target wins; otherwise the submit button that was posted,
    checked in form order, so an implicit submission (the first button) starts a new search."""
    target, argument = form.get("__EVENTTARGET", ""), form.get("__EVENTARGUMENT", "")
    if target in (GRID, RENAMED_LIST):
        command, _, value = argument.partition("$")
        if command == "Page":
            return "page", value
        if command in ("Pdf", "Telecharger"):
            return "pdf", value
        return "none", ""
    if target == DDL_SITE:
        return "site", form.get(DDL_SITE, "")
    if BTN_NOUVELLE in form:
        return "reset", ""
    if BTN_RECHERCHER in form:
        return "search", ""
    return "none", ""


# --- Rendering (pure) ------------------------------------------------------------------------------

def french_amount(doc: SandboxDocument) -> str:
    """``1 234,56 €`` (no-break space between thousands), credit notes negative: ``-45,10 €``."""
    whole, cents = f"{doc.amount:.2f}".split(".")
    sign = "-" if doc.kind == "credit_note" else ""
    return f"{sign}{int(whole):,}".replace(",", "\u00a0") + f",{cents} €"


def _token(prefix: str, size: int) -> str:
    return prefix + base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def _postback_href(target: str, argument: str) -> str:
    return f"javascript:__doPostBack('{target}','{argument}')"


def pager_links(page: int, last: int) -> list[tuple[str, int | None]]:
    """The numeric pager as ASP.NET draws it: (label, page to post back to, None for the current
    page), at most PAGER_BUTTONS numbers, ``...`` before and after to reach the other blocks."""
    first = (page - 1) // PAGER_BUTTONS * PAGER_BUTTONS + 1
    end = min(first + PAGER_BUTTONS - 1, last)
    links: list[tuple[str, int | None]] = [("...", first - 1)] if first > 1 else []
    links += [(str(n), None if n == page else n) for n in range(first, end + 1)]
    if end < last:
        links.append(("...", end + 1))
    return links


def _kind_code(doc: SandboxDocument) -> str:
    return "FA" if doc.kind == "invoice" else "AV"


def render_grid(found: list[SandboxDocument], page: int, *, renamed: bool = False) -> str:
    """The result grid for one page; ``renamed``: the redesign a layout_changed login gets."""
    last = max(1, -(-len(found) // PAGE_SIZE))
    start = (page - 1) * PAGE_SIZE
    shown = list(enumerate(found[start:start + PAGE_SIZE], start))
    if renamed:
        return _render_renamed(shown, page, last, empty=not found)
    rows = ['<tr class="entete"><th scope="col">Date</th><th scope="col">N° pièce</th><th scope="col">Type</th>'
            '<th scope="col">Montant TTC</th><th scope="col">PDF</th></tr>']
    if not found:
        rows.append('<tr class="vide"><td colspan="5">Aucun document pour cette période.</td></tr>')
    for i, (k, doc) in enumerate(shown):
        rows.append(
            f'<tr class="{"ligne-alt" if i % 2 else "ligne"}"><td class="date">{doc.issue_date:%d/%m/%Y}</td>'
            f'<td class="piece">{escape(doc.number)}</td><td class="type">{_kind_code(doc)}</td>'
            f'<td class="montant">{french_amount(doc)}</td>'
            f'<td class="pdf"><a href="{_postback_href(GRID, f"Pdf${k}")}">PDF</a></td></tr>')
    if last > 1:
        cells = "".join(
            f"<td><span>{label}</span></td>" if target is None
            else f'<td><a href="{_postback_href(GRID, f"Page${target}")}">{label}</a></td>'
            for label, target in pager_links(page, last))
        rows.append(f'<tr class="pager"><td colspan="5"><table><tr>{cells}</tr></table></td></tr>')
    body = "\n".join(rows)
    return f'<table id="Main_gvFactures" class="grille" cellspacing="0" rules="all" border="1">\n{body}\n</table>'


def _render_renamed(shown: list[tuple[int, SandboxDocument]], page: int, last: int, *, empty: bool) -> str:
    items = [
        f'<div class="doc-item"><span class="doc-emis">{doc.issue_date:%d/%m/%Y}</span> '
        f'<span class="doc-ref">{escape(doc.number)}</span> <span class="doc-nature">{_kind_code(doc)}</span> '
        f'<span class="doc-ttc">{french_amount(doc)}</span> '
        f'<a class="doc-lien" href="{_postback_href(RENAMED_LIST, f"Telecharger${k}")}">Télécharger</a></div>'
        for k, doc in shown]
    if empty:
        items.append('<p class="doc-aucun">Aucun document pour cette période.</p>')
    if last > 1:
        links = " ".join(
            f'<b>{label}</b>' if target is None
            else f'<a href="{_postback_href(RENAMED_LIST, f"Page${target}")}">{label}</a>'
            for label, target in pager_links(page, last))
        items.append(f'<div class="doc-pages">{links}</div>')
    body = "\n".join(items)
    return f'<div id="Main_lstDocuments" class="liste-docs">\n{body}\n</div>'


def _hidden_fields(viewstate: str, validation: str) -> str:
    return f"""<div class="aspNetHidden">
<input type="hidden" name="__EVENTTARGET" id="__EVENTTARGET" value="">
<input type="hidden" name="__EVENTARGUMENT" id="__EVENTARGUMENT" value="">
<input type="hidden" name="__VIEWSTATE" id="__VIEWSTATE" value="{viewstate}">
</div>
<script type="text/javascript">
//<![CDATA[
var theForm = document.forms['aspnetForm'];
function __doPostBack(eventTarget, eventArgument) {{
    if (!theForm.onsubmit || (theForm.onsubmit() != false)) {{
        theForm.__EVENTTARGET.value = eventTarget;
        theForm.__EVENTARGUMENT.value = eventArgument;
        theForm.submit();
    }}
}}
//]]>
</script>
<div class="aspNetHidden">
<input type="hidden" name="__VIEWSTATEGENERATOR" id="__VIEWSTATEGENERATOR" value="{secrets.token_hex(4).upper()}">
<input type="hidden" name="__EVENTVALIDATION" id="__EVENTVALIDATION" value="{validation}">
</div>"""


def render_page(action: str, content: str, viewstate: str, validation: str, user: str | None = None) -> str:
    """A page of the extranet: the master page's frame around one form that posts back to itself."""
    menu = (f"""<div id="bandeau-utilisateur">Client : <span id="Main_lblUtilisateur">{escape(user)}</span>
| <a id="lnkAccueil" href="Accueil.aspx">Accueil</a> | <a id="lnkFactures" href="Factures.aspx">Mes factures</a>
| <a id="lnkDeconnexion" href="Deconnexion.aspx">Déconnexion</a></div>""" if user is not None else "")
    return f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" lang="fr">
<head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">
<title>{escape(TITLE)}</title>
<style type="text/css">
body {{ font-family: Verdana, Arial, sans-serif; font-size: 11px; background: #e8eef4; }}
#entete {{ background: #003366; color: #fff; padding: 6px; }}
.grille th {{ background: #5d7b9d; color: #fff; }} .ligne-alt {{ background: #f0f0f0; }}
.msg-erreur {{ color: #c00; font-weight: bold; }} td.montant {{ text-align: right; }}
</style></head>
<body>
<form method="post" action="./{action}" id="aspnetForm">
{_hidden_fields(viewstate, validation)}
<div id="entete"><b>Répartition Sandbox</b> — Extranet officine</div>
{menu}
<div id="contenu">
{content}
</div>
<div id="pied">© Répartition Sandbox — Tous droits réservés</div>
</form>
</body>
</html>
"""


def render_login(login: str = "", error: str = "", extra: str = "") -> str:
    error_span = f'<span id="Main_lblErreur" class="msg-erreur">{escape(error)}</span>\n' if error else ""
    return f"""<h2>Accès à votre espace client</h2>
{error_span}<table class="connexion">
<tr><td><label for="Main_txtCodeClient">Code client :</label></td>
<td><input name="{TXT_CODE_CLIENT}" id="Main_txtCodeClient" type="text" value="{escape(login)}"></td></tr>
<tr><td><label for="Main_txtMotDePasse">Mot de passe :</label></td>
<td><input name="{TXT_MOT_DE_PASSE}" id="Main_txtMotDePasse" type="password"></td></tr>
</table>
{extra}<input type="submit" name="ctl00$Main$btnConnexion" id="Main_btnConnexion" value="Se connecter">"""


def render_factures(search: Search, sites: tuple[Site, ...], found: list[SandboxDocument], *,
                    renamed: bool = False) -> str:
    if len(sites) > 1:
        selected = ' selected="selected"'
        options = "".join(
            f'<option value="{code}"{selected if code == search.site else ""}>{escape(name)}</option>'
            for code, name in sites)
        site = (f'<select name="{DDL_SITE}" id="Main_ddlSite" onchange="javascript:setTimeout('
                f"'__doPostBack(\\'{DDL_SITE}\\',\\'\\')', 0)\">{options}</select>")
    else:
        site = f'<span id="Main_lblSite">{escape(sites[0][1])}</span>'
    date_error = ("" if search.window is not None
                  else f'<span id="Main_lblErreurDate" class="msg-erreur">{DATE_ERROR}</span>\n')
    return f"""<h2>Mes factures</h2>
<div class="criteres">
<input type="submit" name="{BTN_NOUVELLE}" id="Main_btnNouvelle" value="Nouvelle recherche">
<label for="Main_ddlSite">Site :</label> {site}
<label for="Main_txtDu">Du</label> <input name="{TXT_DU}" id="Main_txtDu" type="text" value="{escape(search.du_text)}">
<label for="Main_txtAu">au</label> <input name="{TXT_AU}" id="Main_txtAu" type="text" value="{escape(search.au_text)}">
<input type="submit" name="{BTN_RECHERCHER}" id="Main_btnRechercher" value="Rechercher">
</div>
{date_error}<p><span id="Main_lblNombre">{len(found)} document(s)</span></p>
{render_grid(found, search.page, renamed=renamed)}"""


def render_error_page(message: str, exception: str = "System.Web.HttpException") -> str:
    """The framework's own error page: English, no form, no tokens."""
    return f"""<!DOCTYPE html>
<html>
<head><title>{escape(message.split("  ")[0])}</title>
<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">
<style>body {{font-family:"Verdana";font-weight:normal;font-size: .7em;color:black;}}
H1 {{ font-family:"Verdana";font-weight:normal;font-size:18pt;color:red }}</style></head>
<body bgcolor="white">
<span><H1>Server Error in '/' Application.<hr width=100% size=1 color=silver></H1>
<h2> <i>{escape(message)}</i> </h2></span>
<b> Description: </b>An unhandled exception occurred during the execution of the current web request.
Please review the stack trace for more information about the error and where it originated in the code.
<br><br><b> Exception Details: </b>{exception}: {escape(message)}<br><br>
<hr width=100% size=1 color=silver>
<b>Version Information:</b>&nbsp;Microsoft .NET Framework Version:4.0.30319; ASP.NET Version:4.8.4676.0
</body>
</html>
"""


# Fault pages, worded as this extranet would (each style has its own wording).
_SUPPLIER_PAGES = {
    Fault.MAINTENANCE: """<div id="Main_pnlIndispo" class="bandeau-info">
<h2>Extranet indisponible</h2>
<p>Le service est momentanément interrompu pour intervention technique sur nos serveurs.
Il sera rétabli dans les meilleurs délais. Nous vous prions de nous excuser pour la gêne occasionnée.</p>
<p>Pour une commande urgente, merci de contacter directement votre agence de répartition.</p>
</div>""",
    Fault.SERVER_ERROR: """<div id="Main_pnlErreur" class="bandeau-erreur">
<h2>Erreur d'exécution</h2>
<p>Une anomalie s'est produite pendant le traitement de votre demande et l'opération n'a pu aboutir.
Notre service informatique en a été averti. Merci de renouveler votre demande ultérieurement.</p>
</div>""",
    Fault.RATE_LIMITED: f"""<div id="Main_pnlQuota" class="bandeau-erreur">
<h2>Accès temporairement suspendu</h2>
<p>Le nombre de demandes autorisées depuis votre poste a été atteint. Par mesure de protection,
l'accès à l'extranet est bloqué pendant {RETRY_AFTER_S // 60} minutes. Patientez avant de vous reconnecter.</p>
</div>""",
}
_SUPPLIER_STATUS = {Fault.MAINTENANCE: 200, Fault.SERVER_ERROR: 500, Fault.RATE_LIMITED: 429}
CAPTCHA_MESSAGE = ("Contrôle de sécurité : merci de valider la vérification ci-dessous pour confirmer que la "
                   "demande de connexion émane bien d'une personne.")
# A reCAPTCHA v2 placeholder as the page would carry it; no external script, the sandbox stays offline.
_CAPTCHA_WIDGET = f"""<div id="Main_pnlControle" class="controle-securite">
<p class="msg-info">{CAPTCHA_MESSAGE}</p>
<div class="g-recaptcha" data-sitekey="6LcSandboxLegacyExtranet0000000000000000" data-theme="light"></div>
<textarea id="g-recaptcha-response" name="g-recaptcha-response" class="g-recaptcha-response"
 style="display:none"></textarea>
</div>
"""
_STEP_CONTENT = {
    Fault.PASSWORD_EXPIRED: """<h2>Renouvellement du mot de passe</h2>
<p class="msg-erreur">Votre mot de passe n'est plus valide. Conformément à notre politique de sécurité,
il doit être changé tous les 90 jours. Choisissez un nouveau mot de passe pour poursuivre.</p>
<p><label>Ancien mot de passe : <input name="ctl00$Main$txtAncien" id="Main_txtAncien" type="password"></label></p>
<p><label>Nouveau mot de passe : <input name="ctl00$Main$txtNouveau" id="Main_txtNouveau" type="password"></label></p>
<p><label>Confirmation : <input name="ctl00$Main$txtConfirmation" id="Main_txtConfirmation" type="password"></label></p>
<input type="submit" name="ctl00$Main$btnChanger" id="Main_btnChanger" value="Enregistrer">""",
    Fault.TERMS: """<h2>Conditions d'utilisation de l'extranet</h2>
<p>Nos conditions générales d'utilisation de l'extranet ont été modifiées. Merci d'en prendre connaissance
et de les approuver : l'accès à votre espace reste suspendu jusqu'à votre approbation.</p>
<div class="cgu" style="height:120px;overflow:auto">Article 1 — Objet. Le présent document régit l'accès
des officines clientes à l'extranet de commande et de consultation…</div>
<p><input id="Main_chkApprouve" type="checkbox" name="ctl00$Main$chkApprouve">
<label for="Main_chkApprouve">J'ai lu et j'approuve les conditions d'utilisation</label></p>
<input type="submit" name="ctl00$Main$btnApprouver" id="Main_btnApprouver" value="Valider">""",
    Fault.OTP: """<h2>Vérification de votre identité</h2>
<p>Pour sécuriser votre accès, un code à 6 chiffres vient d'être envoyé au 06 •• •• •• 42.</p>
<p><label for="Main_txtCodeSms">Saisissez le code reçu par SMS :</label>
<input name="ctl00$Main$txtCodeSms" id="Main_txtCodeSms" type="text" maxlength="6" autocomplete="off"></p>
<input type="submit" name="ctl00$Main$btnVerifier" id="Main_btnVerifier" value="Valider">
<p><a id="Main_lnkRenvoyer" href="javascript:__doPostBack('ctl00$Main$lnkRenvoyer','')">
Recevoir un nouveau code</a></p>""",
}
BROKEN_DOWNLOAD_PAGE = """<h2>Document indisponible</h2>
<p class="msg-erreur">Le document demandé n'a pas pu être extrait de notre serveur d'archivage.</p>"""


# --- Handlers --------------------------------------------------------------------------------------

@dataclass
class _Visitor:
    """Per ASP.NET_SessionId: the latest page's tokens and, once logged in, the search."""
    viewstate: str = ""
    validation: str = ""
    search: Search | None = None


_VISITORS = web.AppKey("visitors", OrderedDict[str, _Visitor])


def create_legacy_app(today: Callable[[], date], faults: FaultOptions | None = None) -> web.Application:
    app = web.Application()
    app[_SESSIONS] = Sessions()
    app[_VISITORS] = OrderedDict()
    app[_TODAY] = today
    app[_FAULTS] = faults or FaultOptions()
    app.router.add_get("/", _root, name="root")
    app.router.add_get("/Login.aspx", _login_form, name="login")
    app.router.add_post("/Login.aspx", _login_submit)
    app.router.add_get("/Accueil.aspx", _accueil, name="accueil")
    app.router.add_get("/Factures.aspx", _factures, name="factures")
    app.router.add_post("/Factures.aspx", _factures_postback)
    app.router.add_get("/Deconnexion.aspx", _logout, name="logout")
    for page in STEP_PAGES.values():
        app.router.add_route("*", f"/{page}", _account_step)
    return app


def _url(request: web.Request, name: str) -> str:
    return str(request.app.router[name].url_for())


def _step_url(request: web.Request, fault: Fault) -> str:
    return _url(request, "root") + STEP_PAGES[fault]


def _visitor(request: web.Request, key: str | None = None) -> tuple[str, _Visitor]:
    """The visitor behind the cookie (or ``key``), created on first sight as ASP.NET does."""
    visitors = request.app[_VISITORS]
    key = key or request.cookies.get(COOKIE) or ""
    if key not in visitors:
        key = key or secrets.token_hex(12)
        visitors[key] = _Visitor()
        while len(visitors) > MAX_SESSIONS:
            visitors.popitem(last=False)
    return key, visitors[key]


def _encoded(html: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(body=html.encode(CHARSET, errors="xmlcharrefreplace"), status=status, headers=headers)
    response.content_type = "text/html"
    response.charset = CHARSET
    return response


def _page(request: web.Request, action: str, content: str, *, user: str | None = None,
          key: str | None = None) -> web.Response:
    """A page with fresh tokens: from now on only these are accepted from this visitor."""
    key, visitor = _visitor(request, key)
    visitor.viewstate, visitor.validation = _token("/wEPDwUKLTk", 96), _token("/wEdAA", 48)
    response = _encoded(render_page(action, content, visitor.viewstate, visitor.validation, user))
    if request.cookies.get(COOKIE) != key:
        response.set_cookie(COOKIE, key, path=_url(request, "root"), httponly=True)
    return response


def _tokens_match(request: web.Request, form: Mapping[str, str]) -> bool:
    visitor = request.app[_VISITORS].get(request.cookies.get(COOKIE) or "")
    return (visitor is not None and bool(visitor.viewstate)
            and form.get("__VIEWSTATE") == visitor.viewstate
            and form.get("__EVENTVALIDATION") == visitor.validation)


def _framework_error(message: str, exception: str = "System.Web.HttpException") -> web.Response:
    return _encoded(render_error_page(message, exception), 500)


def _session(request: web.Request) -> Session:
    return request.app[_SESSIONS].require(request.cookies.get(COOKIE), _url(request, "login"),
                                          lambda fault: _step_url(request, fault))


async def _root(request: web.Request) -> web.Response:
    raise web.HTTPFound(_url(request, "login"))


async def _login_form(request: web.Request) -> web.Response:
    return _page(request, "Login.aspx", render_login())


async def _login_submit(request: web.Request) -> web.Response:
    form = parse_postback(await request.read())
    if not _tokens_match(request, form):
        return _framework_error(VIEWSTATE_MAC)
    login, password = form.get(TXT_CODE_CLIENT, "").strip(), form.get(TXT_MOT_DE_PASSE, "")
    await request.app[_FAULTS].pace(login)
    fault = fault_of(login)
    if fault is Fault.CAPTCHA:
        # Not the wrong-password span: the credentials were never looked at.
        return _page(request, "Login.aspx", render_login(login, extra=_CAPTCHA_WIDGET))
    if fault in SUPPLIER_SIDE:
        headers = {"Retry-After": str(RETRY_AFTER_S)} if fault is Fault.RATE_LIMITED else None
        return _encoded(render_page("Login.aspx", _SUPPLIER_PAGES[fault], "", ""), _SUPPLIER_STATUS[fault], headers)
    if not login or password != PASSWORD:
        return _page(request, "Login.aspx", render_login(login, LOGIN_ERROR))
    session = request.app[_SESSIONS].open(login)
    # A new session id on login; the anonymous visitor and its tokens are forgotten.
    request.app[_VISITORS].pop(request.cookies.get(COOKIE) or "", None)
    _visitor(request, session.token)
    target = _step_url(request, session.blocker) if session.blocker else _url(request, "accueil")
    response = web.Response(status=302, headers={"Location": target})
    response.set_cookie(COOKIE, session.token, path=_url(request, "root"), httponly=True)
    return response


async def _logout(request: web.Request) -> web.Response:
    token = request.cookies.get(COOKIE)
    request.app[_SESSIONS].close(token)
    request.app[_VISITORS].pop(token or "", None)
    raise web.HTTPFound(_url(request, "login"))


async def _account_step(request: web.Request) -> web.Response:
    session = request.app[_SESSIONS].peek(request.cookies.get(COOKIE))
    if session is None:
        raise web.HTTPFound(_url(request, "login"))
    page = request.path.rsplit("/", 1)[-1]
    if session.blocker is None or STEP_PAGES[session.blocker] != page:
        raise web.HTTPFound(_url(request, "accueil"))
    await request.app[_FAULTS].pace(session.login)
    # Posting the form changes nothing: the sandbox never lets the collector clear the block.
    return _page(request, page, _STEP_CONTENT[session.blocker], user=session.login)


async def _accueil(request: web.Request) -> web.Response:
    session = _session(request)
    await request.app[_FAULTS].pace(session.login)
    content = """<h2>Bienvenue sur votre extranet</h2>
<p>Consultez et téléchargez vos factures et avoirs depuis le menu <b>Mes factures</b>.</p>"""
    return _page(request, "Accueil.aspx", content, user=session.login)


def _show_factures(request: web.Request, session: Session, search: Search) -> web.Response:
    key, visitor = _visitor(request)
    visitor.search = search
    found = results(search, _site_documents(session.login, search.site, request.app[_TODAY]()))
    last = max(1, -(-len(found) // PAGE_SIZE))
    if search.page > last:
        search = visitor.search = replace(search, page=last)
    content = render_factures(search, sites_for(session.login), found,
                              renamed=fault_of(session.login) is Fault.LAYOUT_CHANGED)
    return _page(request, "Factures.aspx", content, user=session.login, key=key)


async def _factures(request: web.Request) -> web.Response:
    session = _session(request)
    await request.app[_FAULTS].pace(session.login)
    # A first load (not a postback) starts from the default search.
    return _show_factures(request, session,
                          default_search(sites_for(session.login)[0][0], request.app[_TODAY]()))


async def _factures_postback(request: web.Request) -> web.Response:
    session = _session(request)
    form = parse_postback(await request.read())
    if not _tokens_match(request, form):
        return _framework_error(VIEWSTATE_MAC)
    today = request.app[_TODAY]()
    sites = [code for code, _ in sites_for(session.login)]
    _, visitor = _visitor(request)
    search = visitor.search or default_search(sites[0], today)
    kind, argument = postback_action(form)
    if kind == "pdf":
        return _download(request, session, search, argument)
    await request.app[_FAULTS].pace(session.login)
    if kind == "reset":
        search = default_search(sites[0], today)
    elif kind == "site":
        if argument not in sites:
            return _framework_error(INVALID_ARGUMENT, "System.ArgumentException")
        search = default_search(argument, today)
    elif kind == "search":
        site = form.get(DDL_SITE, search.site)
        if site not in sites:
            return _framework_error(INVALID_ARGUMENT, "System.ArgumentException")
        search = Search(site, form.get(TXT_DU, ""), form.get(TXT_AU, ""))
    elif kind == "page":
        if not argument.isdigit() or int(argument) < 1:
            return _framework_error(INVALID_ARGUMENT, "System.ArgumentException")
        search = replace(search, page=int(argument))
    return _show_factures(request, session, search)


def _download(request: web.Request, session: Session, search: Search, argument: str) -> web.Response:
    """The K-th document of the current search; the page's tokens stay valid (no page was served)."""
    documents = _site_documents(session.login, search.site, request.app[_TODAY]())
    found = results(search, documents)
    if not argument.isdigit() or int(argument) >= len(found):
        return _framework_error("Index was out of range. Must be non-negative and less than the size of the "
                                "collection.", "System.ArgumentOutOfRangeException")
    doc = found[int(argument)]
    if fault_of(session.login) is Fault.BROKEN_DOWNLOAD and is_broken(documents.index(doc)):
        return _encoded(render_page("Factures.aspx", BROKEN_DOWNLOAD_PAGE, "", "", session.login), 500)
    return web.Response(body=pdf_for(doc, "legacy"), content_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{doc.number}.pdf"'})
