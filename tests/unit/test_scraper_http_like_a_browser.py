"""The page-less client reads and sends what a browser would: pages in their own charset, forms in
it with the Referer and Origin of their page, no credentials handed to another origin, refresh pages
followed; recordings replay byte for byte; failures met over HTTP are classified as in a page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from services.scraper.collectors import builtin_collectors
from services.scraper.diagnose import Diagnosis, diagnose
from services.scraper.kit import CollectContext, CollectedDocument, Found, Manifest, SessionExpired
from services.scraper.kit.forms import submission
from services.scraper.kit.har import HarRecorder, HarReplay
from services.scraper.kit.http import page_text
from services.scraper.kit.offline import har_session
from services.scraper.kit.portal_http import FORM_TYPE, PortalHttp
from services.scraper.kit.reply import HttpReply
from services.scraper.kit.witness import Witness
from services.scraper.runner import run_collection
from shared.errors import CollectionErrorCode as C

BASE = "http://portal.test/"
LATIN1_HTML = "text/html; charset=ISO-8859-1"


def reply(url: str, status: int = 200, body: bytes = b"", **headers: str) -> HttpReply:
    return HttpReply(status=status, url=url, headers={k.replace("_", "-"): v for k, v in headers.items()},
                     body=body)


def replaying(*exchanges: tuple[str, str, str | None, HttpReply]) -> PortalHttp:
    recorder = HarRecorder()
    for method, url, body, answer in exchanges:
        recorder.add(method, url, {"Content-Type": FORM_TYPE} if body is not None else {}, body, answer)
    return PortalHttp(None, replay=HarReplay(json.loads(json.dumps(recorder.entries))))


# --- charsets ------------------------------------------------------------------------------------

def test_a_latin1_page_is_read_as_a_browser_reads_it() -> None:
    page = "<p>Votre mot de passe a expiré.</p>".encode("latin-1")
    assert "expiré" in page_text(reply(BASE, body=page, content_type=LATIN1_HTML), "page")
    # Declared in the page only, as old portals do.
    meta = '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"><p>été</p>'.encode("latin-1")
    assert "été" in page_text(reply(BASE, body=meta, content_type="text/html"), "page")
    # Declared nowhere and not UTF-8: what browsers fall back to in Western Europe.
    assert "été" in page_text(reply(BASE, body="<p>été</p>".encode("cp1252"), content_type="text/html"), "page")


async def test_a_latin1_page_explains_a_failure() -> None:
    witness = Witness()
    expired = "<h2>Mot de passe expiré</h2><p>Votre mot de passe a expiré.</p>".encode("latin-1")
    witness.saw_http(reply(BASE + "home", body=expired, content_type=LATIN1_HTML), {})
    found = diagnose(await witness.evidence(logged_in=True))
    assert isinstance(found, Diagnosis) and found.code is C.PASSWORD_EXPIRED, found


def test_a_form_of_a_latin1_page_is_sent_in_latin1() -> None:
    html = '<form method="post" action="/login"><input name="password" id="p"><button id="go">OK</button></form>'
    form = submission(html, BASE + "login", "#go", {"#p": "café€"}, charset="windows-1252")
    assert form.body == "password=caf%E9%80"
    search = '<form action="/find"><input name="q" id="q"><button id="go">OK</button></form>'
    assert submission(search, BASE, "#go", {"#q": "thé"}, charset="windows-1252").url == BASE + "find?q=th%E9"
    # What the charset cannot hold is sent as a character reference, as browsers do.
    assert submission(html, BASE, "#go", {"#p": "π"}, charset="windows-1252").body == "password=%26%23960%3B"
    # accept-charset chooses for the page.
    chosen = html.replace('method="post"', 'method="post" accept-charset="utf-8"')
    assert submission(chosen, BASE, "#go", {"#p": "é"}, charset="windows-1252").body == "password=%C3%A9"


# --- HAR -----------------------------------------------------------------------------------------

def test_a_recorded_answer_replays_byte_for_byte() -> None:
    latin1 = "<p>Facture réglée</p>".encode("latin-1")
    mislabelled_pdf = b"%PDF-1.4\n\xe2\x82\xff\xfe binary"
    recorder = HarRecorder()
    recorder.add("GET", BASE + "page", {}, None, reply(BASE + "page", body=latin1, content_type=LATIN1_HTML))
    recorder.add("GET", BASE + "1.pdf", {}, None,
                 reply(BASE + "1.pdf", body=mislabelled_pdf, content_type="text/plain"))
    replay = HarReplay(json.loads(json.dumps(recorder.entries)))
    assert replay.answer("GET", BASE + "page", None).body == latin1
    assert replay.answer("GET", BASE + "1.pdf", None).body == mislabelled_pdf


async def test_a_replay_session_that_cannot_start_closes_its_context(tmp_path: Path) -> None:
    closed: list[bool] = []

    class Context:
        request = None

        async def route_from_har(self, *args: Any, **kwargs: Any) -> None:
            raise FileNotFoundError("no such HAR")

        async def close(self) -> None:
            closed.append(True)

    class Browser:
        async def new_context(self, **options: Any) -> Context:
            return Context()

    with pytest.raises(FileNotFoundError):
        async with har_session(Browser(), replay=tmp_path / "missing.har"):  # type: ignore[arg-type]
            pass
    assert closed == [True]


# --- redirects and navigation headers -----------------------------------------------------------

async def test_credentials_do_not_follow_a_redirect_to_another_origin() -> None:
    http = replaying(("GET", BASE + "api/1/pdf", None, reply(BASE + "api/1/pdf", 302,
                                                             location="https://files.example/1.pdf?sig=x")),
                     ("GET", "https://files.example/1.pdf?sig=x", None,
                      reply("https://files.example/1.pdf?sig=x", body=b"%PDF", content_type="application/pdf")))
    sent: list[dict[str, str]] = []
    http.observe(lambda _reply, headers: sent.append(dict(headers)))
    await http.get(BASE + "api/1/pdf", headers={"Authorization": "Bearer t", "Accept": "application/pdf"})
    assert sent[0]["Authorization"] == "Bearer t"
    assert "Authorization" not in sent[1] and sent[1]["Accept"] == "application/pdf"


async def test_a_form_is_posted_with_the_origin_and_referer_a_browser_sends() -> None:
    # Django's CSRF check refuses an HTTPS POST without a Referer; many portals check Origin.
    page = "https://portal.test/login?next=%2F#top"
    html = '<form method="post" action="/session"><input name="l" id="l"><button id="go">OK</button></form>'
    http = replaying(("POST", "https://portal.test/session", "l=x",
                      reply("https://portal.test/session", 200, b"ok", content_type="text/html")))
    sent: list[dict[str, str]] = []
    http.observe(lambda _reply, headers: sent.append(dict(headers)))
    await http.submit(submission(html, page, "#go", {"#l": "x"}))
    assert sent[0]["Origin"] == "https://portal.test"
    assert sent[0]["Referer"] == "https://portal.test/login?next=%2F"


# --- classification ------------------------------------------------------------------------------

CLASSIC_LOGIN = ('<form id="login-form" method="post" action="/classic/login"><input name="login" id="login">'
                 '<input type="password" name="password" id="password">'
                 '<button type="submit" id="login-submit">Se connecter</button></form>')
LOCKED = "<h2>Compte bloqué</h2><p>Votre compte a été bloqué après trop de tentatives.</p>"


async def test_a_login_answered_401_is_read_not_retried() -> None:
    login_url = BASE + "classic/login"
    http = replaying(("GET", login_url, None, reply(login_url, body=CLASSIC_LOGIN.encode(),
                                                    content_type="text/html; charset=utf-8")),
                     ("POST", login_url, "login=pharma&password=demo",
                      reply(login_url, 401, LOCKED.encode(), content_type="text/html; charset=utf-8")))
    posts: list[str] = []
    http.observe(lambda r, h: posts.append(r.url) if "Content-Type" in h else None)
    ctx = CollectContext(portal_url=BASE + "classic/", login="pharma", password="demo", http=http)

    async def store(_: CollectedDocument) -> bool:
        return True

    report = await run_collection(builtin_collectors()["sandbox-classic"], ctx, store, timeout_s=10)
    assert report.outcome is not None and report.outcome.code is C.ACCOUNT_LOCKED, report.outcome
    assert len(posts) == 1  # a locked account is not sent the password again and again


class CountingPage:
    def __init__(self) -> None:
        self.url = BASE + "list"
        self.main_frame = object()
        self.context = None
        self.listeners: list[Callable[..., Any]] = []

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        self.listeners.append(handler)

    def remove_listener(self, event: str, handler: Callable[..., Any]) -> None:
        self.listeners.remove(handler)

    async def content(self) -> str:
        return "<p>Mes factures</p>"

    async def wait_for_load_state(self, *args: Any, **kwargs: Any) -> None:
        pass


async def test_logging_in_again_watches_once() -> None:
    class Expiring:
        manifest = Manifest(id="expiring", name="X", supplier="X", portal_url=BASE)

        def __init__(self) -> None:
            self.runs = 0

        async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
            self.runs += 1
            await ctx.open_page()
            if self.runs < 3:
                raise SessionExpired("logged out")
            return
            yield

    page = CountingPage()
    http = PortalHttp(None, replay=HarReplay([]))
    ctx = CollectContext(page=page, portal_url=BASE, login="l", password="p", http=http)  # type: ignore[arg-type]

    async def store(_: CollectedDocument) -> bool:
        return True

    collector = Expiring()
    report = await run_collection(collector, ctx, store, timeout_s=5)
    assert report.outcome is None and collector.runs == 3
    assert len(page.listeners) == 1 and len(http._observers) == 1


# --- a recipe over HTTP lands where a browser lands ----------------------------------------------

async def test_a_recipe_over_http_follows_a_refresh_after_login() -> None:
    from services.scraper.kit.recipe import Fill, ListingRecipe, LoginRecipe, Recipe, RecipeCollector, Submit, Value

    recipe = Recipe(
        manifest=Manifest(id="refreshing", name="R", supplier="R", portal_url=BASE),
        login=LoginRecipe(url="login", steps=[Fill(selector="#u", value="{login}"),
                                              Fill(selector="#p", value="{password}"), Submit(selector="#go")],
                          success="#menu"),
        listing=ListingRecipe(url="home", container="ul#docs", row="li", number=Value(selector=".n"),
                              issue_date=Value(selector=".d"), amount=Value(selector=".a"),
                              kind=Value(selector=".k"), download=Value(selector="a", attribute="href")))
    assert recipe.over_http
    html = "text/html; charset=utf-8"
    login = ('<form method="post" action="/session"><input name="u" id="u"><input name="p" id="p" type="password">'
             '<button id="go">OK</button></form>')
    # Old portals land on a "redirecting..." page that a browser leaves at once.
    refresh = '<meta http-equiv="Refresh" content="0; URL=\'/home\'"><p>Redirection en cours...</p>'
    home = '<nav id="menu">Mon compte</nav><ul id="docs"></ul>'
    http = replaying(("GET", BASE + "login", None, reply(BASE + "login", body=login.encode(), content_type=html)),
                     ("POST", BASE + "session", "u=pharma&p=demo",
                      reply(BASE + "session", body=refresh.encode(), content_type=html)),
                     ("GET", BASE + "home", None, reply(BASE + "home", body=home.encode(), content_type=html)))
    ctx = CollectContext(portal_url=BASE, login="pharma", password="demo", http=http)

    async def store(_: CollectedDocument) -> bool:
        return True

    report = await run_collection(RecipeCollector(recipe), ctx, store, timeout_s=10)
    assert report.outcome is None, report.outcome


async def test_a_scrubbed_recording_replays_whatever_the_charset_of_the_form(tmp_path: Path) -> None:
    from services.scraper.kit.forms import form_body
    from services.scraper.kit.har import scrub_har

    har = tmp_path / "portal.har"
    recorder = HarRecorder()
    landed = reply(BASE + "home", body=b"<p>ok</p>", content_type="text/html")
    for charset in ("utf-8", "cp1252"):
        recorder.add("POST", BASE + f"login-{charset}", {"Content-Type": FORM_TYPE},
                     form_body([("password", "sécret")], charset), landed)
    recorder.save(har)
    scrub_har(har, {"sécret": "scrubbed-password"})
    assert "cret" not in har.read_text(encoding="utf-8")  # neither s%C3%A9cret nor s%E9cret
    http = PortalHttp(None, replay=HarReplay.load(har))
    for charset in ("utf-8", "cp1252"):
        answer = await http.post_form(BASE + f"login-{charset}", [("password", "scrubbed-password")], charset=charset)
        assert answer.status == 200, charset
    # A placeholder that a form would encode could never be replayed: refused rather than kept.
    with pytest.raises(ValueError, match="placeholders"):
        scrub_har(har, {"sécret": "scrubbed password"})


def test_which_refreshes_a_browser_follows_at_once() -> None:
    from services.scraper.kit.recipe.http_engine import refresh_target

    def target(content: str, around: str = "{}") -> str | None:
        return refresh_target(around.format(f'<meta http-equiv="refresh" content="{content}">'), BASE + "a/b")

    assert target("0; URL='/home'") == BASE + "home"
    assert target("0;url=next") == BASE + "a/next"
    assert target("2, /home") == BASE + "home"
    assert target("0") is None  # the same page again
    assert target("30; url=/home") is None  # a page meant to be read first
    assert target("0; url=/nojs", "<noscript>{}</noscript><p>app</p>") is None  # not for a browser with scripts
