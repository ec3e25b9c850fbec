"""The "legacy" WebForms-like style over HTTP: tokens, postback search and paging, downloads, sites,
windows-1252 pages and every fault mode."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from sandbox.data import documents_for
from sandbox.faults import RETRY_AFTER_S, SESSION_BUDGET, broken_numbers
from sandbox.legacy import (
    BTN_NOUVELLE,
    BTN_RECHERCHER,
    DDL_SITE,
    GRID,
    TXT_AU,
    TXT_DU,
    legacy_documents,
    pager_links,
    parse_postback,
    postback_action,
)
from sandbox.pdf import pdf_for
from sandbox.portal import create_app

TODAY = date(2026, 3, 15)
WHOLE_YEAR = {TXT_DU: "01/01/2025", TXT_AU: TODAY.strftime("%d/%m/%Y")}
Client = TestClient[web.Request, web.Application]
PIECE = re.compile(r'<td class="piece">([^<]+)</td>')


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(TODAY, slow_s=0.05))) as c:
        yield c


def hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" id="[^"]+" value="([^"]*)">', html))


async def post(client: Client, path: str, fields: dict[str, str]) -> ClientResponse:
    """Posts like a browser on a windows-1252 page."""
    return await client.post(path, data=urlencode(fields, encoding="cp1252"),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})


async def login(client: Client, code: str, password: str = "demo") -> ClientResponse:
    page = await (await client.get("/legacy/Login.aspx")).text()
    return await post(client, "/legacy/Login.aspx", hidden(page) | {
        "ctl00$Main$txtCodeClient": code, "ctl00$Main$txtMotDePasse": password,
        "ctl00$Main$btnConnexion": "Se connecter"})


class Factures:
    """The invoices page as a collector drives it: the latest page's fields go into each postback."""

    def __init__(self, client: Client) -> None:
        self.client, self.html = client, ""

    async def open(self) -> str:
        self.html = await (await self.client.get("/legacy/Factures.aspx")).text()
        return self.html

    async def postback(self, fields: dict[str, str]) -> ClientResponse:
        reply = await post(self.client, "/legacy/Factures.aspx", hidden(self.html) | fields)
        if reply.content_type == "text/html" and reply.status == 200:
            self.html = await reply.text()
        return reply

    async def search(self, du: str, au: str, **extra: str) -> str:
        await self.postback({TXT_DU: du, TXT_AU: au, BTN_RECHERCHER: "Rechercher"} | extra)
        return self.html

    async def page(self, n: int) -> str:
        await self.postback({"__EVENTTARGET": GRID, "__EVENTARGUMENT": f"Page${n}"})
        return self.html

    def count(self) -> int:
        found = re.search(r'<span id="Main_lblNombre">(\d+) document\(s\)</span>', self.html)
        assert found
        return int(found.group(1))


async def test_root_redirects_and_login_page_is_windows_1252(client: Client) -> None:
    reply = await client.get("/legacy/")
    assert reply.url.path == "/legacy/Login.aspx"
    assert reply.headers["Content-Type"] == "text/html; charset=windows-1252"
    raw = await reply.read()
    assert "Sandbox — extranet officine (WebForms)".encode("cp1252") in raw
    assert b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">' in raw
    html = raw.decode("cp1252")
    assert '<form method="post" action="./Login.aspx" id="aspnetForm">' in html
    assert set(hidden(html)) == {"__EVENTTARGET", "__EVENTARGUMENT", "__VIEWSTATE", "__VIEWSTATEGENERATOR",
                                 "__EVENTVALIDATION"}
    assert 'id="Main_txtMotDePasse" type="password"' in html and 'value="Se connecter"' in html


async def test_login_ok_and_wrong(client: Client) -> None:
    wrong = await login(client, "pharma-1", "nope")
    html = await wrong.text()
    assert wrong.status == 200 and wrong.url.path == "/legacy/Login.aspx"
    assert '<span id="Main_lblErreur" class="msg-erreur">' in html
    ok = await login(client, "pharma-1")
    html = await ok.text()
    assert ok.url.path == "/legacy/Accueil.aspx"
    assert '<span id="Main_lblUtilisateur">pharma-1</span>' in html
    assert '<a id="lnkFactures" href="Factures.aspx">Mes factures</a>' in html
    assert client.session.cookie_jar.filter_cookies(client.make_url("/legacy/"))["ASP.NET_SessionId"]
    bye = await client.get("/legacy/Deconnexion.aspx")
    assert bye.url.path == "/legacy/Login.aspx"
    assert (await client.get("/legacy/Factures.aspx")).url.path == "/legacy/Login.aspx"


async def test_only_the_latest_tokens_are_accepted(client: Client) -> None:
    first = hidden(await (await client.get("/legacy/Login.aspx")).text())
    latest = hidden(await (await client.get("/legacy/Login.aspx")).text())
    assert first["__VIEWSTATE"] != latest["__VIEWSTATE"]
    fields = {"ctl00$Main$txtCodeClient": "pharma-1", "ctl00$Main$txtMotDePasse": "demo"}
    stale = await post(client, "/legacy/Login.aspx", first | fields)
    assert stale.status == 500
    text = await stale.text()
    assert "Server Error in '/' Application." in text and "Validation of viewstate MAC failed" in text
    assert (await post(client, "/legacy/Login.aspx", latest | fields)).url.path == "/legacy/Accueil.aspx"
    # Logged in: the invoices page's tokens work once a later page is served, not after.
    factures = Factures(client)
    old = await factures.open()
    await client.get("/legacy/Accueil.aspx")
    reply = await post(client, "/legacy/Factures.aspx", hidden(old) | {BTN_RECHERCHER: "Rechercher"})
    assert reply.status == 500
    await factures.open()
    assert (await factures.search("01/01/2025", "15/03/2026")).count('class="ligne') > 0


async def test_default_window_then_whole_year(client: Client) -> None:
    code = "pharma-42"
    docs = documents_for(code, TODAY)
    await login(client, code)
    factures = Factures(client)
    html = await factures.open()
    assert f'id="Main_txtDu" type="text" value="{TODAY - timedelta(days=90):%d/%m/%Y}"' in html
    assert '<span id="Main_lblSite">Officine principale</span>' in html and DDL_SITE not in html
    recent = [d.number for d in docs if d.issue_date >= TODAY - timedelta(days=90)]
    assert 0 < len(recent) < len(docs)
    assert factures.count() == len(recent)
    assert PIECE.findall(html) == recent[:10]
    await factures.search(**{"du": "15/03/2025", "au": "15/03/2026"})
    assert factures.count() == len(docs)
    seen: list[str] = []
    last = -(-len(docs) // 10)
    assert last > 1
    for n in range(1, last + 1):
        html = await factures.page(n)
        assert f"<td><span>{n}</span></td>" in html
        seen += PIECE.findall(html)
    assert seen == [d.number for d in docs]  # every page, no overlap, newest first


async def test_grid_rows_and_pager_markup(client: Client) -> None:
    code = "pharma-42"
    docs = documents_for(code, TODAY)
    await login(client, code)
    factures = Factures(client)
    await factures.open()
    html = await factures.search("15/03/2025", "15/03/2026")
    assert '<table id="Main_gvFactures" class="grille"' in html and '<tr class="entete">' in html
    assert html.count('<tr class="ligne">') == 5 and html.count('<tr class="ligne-alt">') == 5
    assert ('<a href="javascript:__doPostBack(\'ctl00$Main$gvFactures\',\'Page$2\')">2</a>' in html)
    note = next(i for i, d in enumerate(docs) if d.kind == "credit_note")
    html = await factures.page(note // 10 + 1)
    assert f'<td class="piece">{docs[note].number}</td><td class="type">AV</td><td class="montant">-' in html
    assert f"'Pdf${note}')\">PDF</a>" in html
    empty = await factures.search("01/01/2020", "31/01/2020")
    assert "0 document(s)" in empty and '<tr class="vide"><td colspan="5">Aucun document pour cette période.' in empty
    assert '<tr class="pager">' not in empty


def test_pager_numbers_like_asp_net() -> None:
    assert pager_links(1, 1) == [("1", None)]
    assert pager_links(2, 3) == [("1", 1), ("2", None), ("3", 3)]
    assert [label for label, _ in pager_links(3, 12)] == [str(n) for n in range(1, 11)] + ["..."]
    assert pager_links(3, 12)[-1] == ("...", 11)
    assert pager_links(11, 12) == [("...", 10), ("11", None), ("12", 12)]


def test_postback_parsing() -> None:
    assert parse_postback(b"ctl00%24Main%24txtDu=1er+f%E9vrier&a=") == {TXT_DU: "1er février", "a": ""}
    assert postback_action({BTN_NOUVELLE: "x", BTN_RECHERCHER: "y"}) == ("reset", "")
    assert postback_action({"__EVENTTARGET": GRID, "__EVENTARGUMENT": "Pdf$3", BTN_NOUVELLE: "x"}) == ("pdf", "3")
    assert postback_action({"__EVENTTARGET": DDL_SITE, DDL_SITE: "0102"}) == ("site", "0102")
    assert postback_action({"__EVENTTARGET": "", "__EVENTARGUMENT": ""}) == ("none", "")


async def test_new_search_button_comes_first_and_resets(client: Client) -> None:
    code = "pharma-42"
    await login(client, code)
    factures = Factures(client)
    html = await factures.open()
    form = html[html.index('id="aspnetForm"'):]
    assert form.index('type="submit"') == form.index('type="submit" name="ctl00$Main$btnNouvelle"')
    await factures.search("15/03/2025", "15/03/2026")
    await factures.page(2)
    # A browser's implicit submission (Enter in a date field) sends the first button: a reset.
    await factures.postback({TXT_DU: "15/03/2025", TXT_AU: "15/03/2026", BTN_NOUVELLE: "Nouvelle recherche"})
    recent = [d for d in documents_for(code, TODAY) if d.issue_date >= TODAY - timedelta(days=90)]
    assert factures.count() == len(recent) and "<td><span>2</span></td>" not in factures.html
    assert f'value="{TODAY - timedelta(days=90):%d/%m/%Y}"' in factures.html


async def test_download_by_postback_keeps_the_tokens(client: Client) -> None:
    code = "pharma-42"
    docs = documents_for(code, TODAY)
    await login(client, code)
    factures = Factures(client)
    await factures.open()
    await factures.search("15/03/2025", "15/03/2026")
    for k in (0, 11, len(docs) - 1):
        reply = await factures.postback({"__EVENTTARGET": GRID, "__EVENTARGUMENT": f"Pdf${k}"})
        assert reply.status == 200 and reply.content_type == "application/pdf"
        assert reply.headers["Content-Disposition"] == f'attachment; filename="{docs[k].number}.pdf"'
        assert await reply.read() == pdf_for(docs[k], "legacy")
    assert PIECE.findall(await factures.page(2)) == [d.number for d in docs[10:20]]


async def test_two_sites_of_a_multi_login(client: Client) -> None:
    code = "pharma-multi-1"
    expected = legacy_documents(code, TODAY)
    by_site = {site: [d.number for s, d in expected if s == site] for site in ("0101", "0102")}
    assert set(by_site["0101"]) & set(by_site["0102"])  # two sites reuse numbers
    await login(client, code)
    factures = Factures(client)
    html = await factures.open()
    assert '<option value="0101" selected="selected">Pharmacie Centrale</option>' in html
    assert ("onchange=\"javascript:setTimeout('__doPostBack(\\'ctl00$Main$ddlSite\\',\\'\\')', 0)\"" in html)
    for site in ("0101", "0102"):
        await factures.postback({"__EVENTTARGET": DDL_SITE, DDL_SITE: site})
        assert f'<option value="{site}" selected="selected">' in factures.html
        await factures.search("15/03/2025", "15/03/2026", **{DDL_SITE: site})
        numbers = []
        for n in range(1, -(-factures.count() // 10) + 1):
            numbers += PIECE.findall(await factures.page(n))
        assert numbers == by_site[site]
    reply = await factures.postback({"__EVENTTARGET": GRID, "__EVENTARGUMENT": "Pdf$0"})
    site2 = [d for s, d in expected if s == "0102"]
    assert await reply.read() == pdf_for(site2[0], "legacy")


async def test_invalid_date_round_trips_in_windows_1252(client: Client) -> None:
    await login(client, "pharma-42")
    factures = Factures(client)
    await factures.open()
    html = await factures.search("1er février", "15/03/2026")
    assert '<span id="Main_lblErreurDate" class="msg-erreur">' in html
    assert 'value="1er février"' in html and "0 document(s)" in html and 'class="ligne' not in html


async def test_index_lists_legacy(client: Client) -> None:
    assert 'href="/legacy/"' in await (await client.get("/")).text()


# --- Fault modes ----------------------------------------------------------------------------------

async def test_supplier_side_faults_fire_before_the_password(client: Client) -> None:
    limited = await login(client, "fault-rate_limited-1", "wrong")
    assert limited.status == 429 and limited.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert (await login(client, "fault-server_error-1", "wrong")).status == 500
    maintenance = await login(client, "fault-maintenance-1", "wrong")
    assert "interrompu pour intervention technique" in await maintenance.text()
    captcha = await login(client, "fault-captcha-1", "wrong")
    html = await captcha.text()
    assert captcha.status == 200 and 'class="g-recaptcha"' in html and "Main_lblErreur" not in html


@pytest.mark.parametrize(("mode", "page", "text"), [
    ("password_expired", "MotDePasseExpire.aspx", "n'est plus valide"),
    ("terms", "ConditionsUtilisation.aspx", "approuve"),
    ("otp", "CodeSecurite.aspx", "Saisissez le code reçu par SMS"),
])
async def test_account_side_faults_after_the_password(client: Client, mode: str, page: str,
                                                      text: str) -> None:
    wrong = await login(client, f"fault-{mode}-1", "nope")
    assert 'id="Main_lblErreur"' in await wrong.text()
    reply = await login(client, f"fault-{mode}-1")
    assert reply.url.path == f"/legacy/{page}" and text in await reply.text()
    assert (await client.get("/legacy/Factures.aspx")).url.path == f"/legacy/{page}"


async def test_layout_changed(client: Client) -> None:
    await login(client, "fault-layout_changed-1")
    factures = Factures(client)
    await factures.open()
    html = await factures.search("15/03/2025", "15/03/2026")
    assert 'class="liste-docs"' in html
    assert "Main_gvFactures" not in html and 'class="ligne' not in html and 'class="piece"' not in html


async def test_broken_download(client: Client) -> None:
    code = "fault-broken_download-1"
    docs = documents_for(code, TODAY)
    broken = broken_numbers(code, TODAY)
    await login(client, code)
    factures = Factures(client)
    await factures.open()
    await factures.search("15/03/2025", "15/03/2026")
    failed = set()
    for k, doc in enumerate(docs[:6]):
        reply = await factures.postback({"__EVENTTARGET": GRID, "__EVENTARGUMENT": f"Pdf${k}"})
        if reply.status != 200:
            failed.add(doc.number)
        else:
            assert (await reply.read()).startswith(b"%PDF")
    assert failed and failed == broken & {d.number for d in docs[:6]}


async def test_slow_pages(client: Client) -> None:
    import time

    started = time.monotonic()
    await login(client, "fault-slow-1")  # the login post, then Accueil.aspx
    assert time.monotonic() - started >= 0.1


async def test_session_expiry_sends_back_to_login(client: Client) -> None:
    code = "fault-session_expiry-1"
    assert (await login(client, code)).url.path == "/legacy/Accueil.aspx"  # request 1 of the session
    factures = Factures(client)
    await factures.open()
    for _ in range(SESSION_BUDGET - 2):
        assert (await factures.page(1)).count('class="ligne') > 0
    gone = await factures.page(1)
    assert 'id="Main_txtCodeClient"' in gone
    assert (await login(client, code)).url.path == "/legacy/Accueil.aspx"
    await factures.open()
    for _ in range(SESSION_BUDGET + 2):
        assert 'id="Main_lblNombre"' in await factures.page(1)
