"""``kit.forms.submission`` against the real thing: each form submitted by Chromium and worked out
without a browser must give the same method, URL and body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Request, Route, async_playwright

from services.scraper.browser import launch_browser
from services.scraper.kit.forms import submission
from services.scraper.kit.reply import HttpReply

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

START = "http://portal.test/app/start?from=home"


def form(inner: str) -> str:
    return f'<form method="post" action="/s">{inner}<button id="go">OK</button></form>'


@dataclass(frozen=True)
class Case:
    html: str
    submitter: str = "#go"
    fills: dict[str, str] = field(default_factory=dict)
    enter: bool = False  # Enter pressed in the submitter (a field) instead of a click
    content_type: str = "text/html; charset=utf-8"


CASES = {
    "hidden, typed, checked": Case(form(
        '<input type="hidden" name="csrf" value="t0k3n"><input name="login" id="login" value="old">'
        '<input type="checkbox" name="remember" checked><input type="checkbox" name="news" value="y">'
        '<input type="radio" name="lang" value="fr" checked><input type="radio" name="lang" value="en">'
        '<input name="off" value="x" disabled><input value="no name"><textarea name="note">a\nb\r\nc</textarea>'),
        fills={"#login": "pharma 1"}),
    "selects": Case(form(
        '<select name="site"><option value="">-- Choisissez --</option><option value="1">A</option></select>'
        '<select name="region"><option>  Ile  de\n France </option></select>'
        '<select name="a"><option selected>x</option><option selected>y</option></select>'
        '<select name="b"><option disabled>-</option><option>first enabled</option></select>'
        '<select name="c"><option selected disabled>gone</option><option>z</option></select>'
        '<select name="box" size="3"><option>none chosen</option></select>'
        '<select name="m" multiple><option selected>m1</option><option>m2</option>'
        '<optgroup disabled><option selected>m3</option></optgroup><option selected>m4</option></select>')),
    "checkbox with an empty value": Case(form('<input type="checkbox" name="cb" value="" checked>')),
    "radio group checked twice": Case(form(
        '<input type="radio" name="r" value="a" checked><input type="radio" name="r" value="b" checked>'
        '<input type="radio" name="other" value="c" checked>')),
    "disabled fieldset": Case(form(
        '<fieldset disabled><legend><input name="in_legend" value="1"></legend><input name="in" value="2">'
        '<legend><input name="second_legend" value="3"></legend></fieldset><input name="kept" value="4">')),
    "submit buttons": Case(
        '<form method="post" action="/s"><button type="primary" name="weird" value="w">W</button>'
        '<input type="submit" name="plain" id="plain"><button type="button" name="js" value="j">J</button>'
        '<input type="reset" name="r" value="R"></form>', submitter="#plain"),
    "file input": Case(form('<input type="file" name="attachment">')),
    "enter in a field": Case(
        '<form method="post" action="/s"><input name="user" id="user">'
        '<input type="submit" name="ctl00$Login" value="Connexion" formaction="/login2">'
        '<input type="submit" name="cancel" value="Annuler"></form>',
        submitter="#user", fills={"#user": "pharma"}, enter=True),
    "form attribute": Case(
        '<form id="login" method="post" action="/s"><input name="user" value="u">'
        '<input name="elsewhere" form="other" value="no"></form>'
        '<input name="password" form="login" id="pw"><button form="login" id="ext" name="go" value="1">OK</button>'
        '<form id="other"></form>', submitter="#ext", fills={"#pw": "secret"}),
    "button overrides": Case(
        '<form method="post" action="/s"><input name="a" value="1">'
        '<button id="go" formmethod="get" formaction="find?x=1#frag">x</button></form>'),
    "empty formaction": Case('<form method="post" action="/s"><button id="go" formaction="">x</button></form>'),
    "get form": Case('<form action="../find"><input name="q" id="q"><button id="go">OK</button></form>',
                     fills={"#q": "doliprane 1000 & co"}),
    "latin-1 page": Case(
        '<form method="post" action="/s"><input name="p" id="p"><button id="go">OK</button></form>',
        fills={"#p": "café€π"}, content_type="text/html; charset=iso-8859-1"),
    "accept-charset": Case(
        '<form method="post" action="/s" accept-charset="utf-8"><input name="p" id="p"><button id="go">OK</button>'
        '</form>', fills={"#p": "café"}, content_type="text/html; charset=windows-1252"),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser: Browser = await launch_browser(playwright)
        yield await browser.new_page()
        await browser.close()


@pytest.mark.parametrize("name", CASES)
async def test_a_form_is_sent_as_chromium_sends_it(page: Page, name: str) -> None:
    case = CASES[name]
    body = case.html.encode("cp1252" if "1252" in case.content_type or "8859" in case.content_type else "utf-8")
    sent: list[Request] = []

    async def portal(route: Route, request: Request) -> None:
        if request.url == START and request.method == "GET" and not sent:
            await route.fulfill(body=body, headers={"content-type": case.content_type})
            return
        sent.append(request)
        await route.fulfill(body="done", content_type="text/html")

    await page.route("**/*", portal)
    try:
        await page.goto(START)
        for selector, value in case.fills.items():
            await page.fill(selector, value)
        async with page.expect_navigation():
            await (page.press(case.submitter, "Enter") if case.enter else page.click(case.submitter))
    finally:
        await page.unroute("**/*")
    charset = HttpReply(status=200, url=START, headers={"content-type": case.content_type}, body=body).charset
    ours = submission(body.decode(charset), START, case.submitter, case.fills, charset=charset)
    (request,) = sent
    assert (ours.method, ours.url) == (request.method, request.url.split("#")[0])
    if ours.method == "POST":
        assert ours.body == (request.post_data or "").replace("%7E", "~").replace("*", "%2A")
