"""Never blame the supplier for our mistakes (issue 12): a failure of ours (a URL no request can be
sent to, a selector that does not parse, an exception in our code, Playwright refusing what we asked,
a third-party host) ends ``internal_error``; only the portal's own outage ends ``supplier_unavailable``.

Each case runs through the framework's run loop (``run_collection``) as a collector's failure does,
on a fake page whose content a wrong diagnosis could be read from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from playwright._impl._errors import TargetClosedError
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from services.scheduler import policy
from services.scraper.classify import classify
from services.scraper.kit import CollectContext, Found, InterfaceChanged, Manifest
from services.scraper.kit.errors import CollectorBug, PortalUnreachable
from services.scraper.kit.http import error_for_status, page_text
from services.scraper.kit.portal_http import PortalHttp
from services.scraper.runner import RunReport, run_collection
from shared.errors import CollectionErrorCode as C

PORTAL = "http://portal.test/"
LOGIN_PAGE = '<form id="login-form"><input name="login"><input type="password" name="password"></form>'
TERMS = "<h1>Conditions generales d'utilisation</h1><button>J'accepte</button>"
MAINTENANCE = "<h1>Maintenance en cours</h1>"


class FakePage:
    def __init__(self, html: str = "<p>Mes factures</p>") -> None:
        self.html = html
        self.url = PORTAL + "list"
        self.main_frame = object()
        self.context = None

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        pass

    async def content(self) -> str:
        return self.html

    async def wait_for_load_state(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeRequestClient:
    """Playwright's request client as far as ``PortalHttp`` uses it: fails as the real one does."""

    def __init__(self, error: str | None, kind: type[PlaywrightError] = PlaywrightError) -> None:
        self.error = error
        self.kind = kind
        self.sent: list[str] = []

    async def fetch(self, url: str, **_: Any) -> Any:
        self.sent.append(url)
        raise self.kind(self.error or "unexpected request")


class Failing:
    """A collector whose every login ends in ``step`` (raised, or awaited and its error kept)."""

    def __init__(self, step: Callable[[CollectContext], Any]) -> None:
        self.manifest = Manifest(id="fake", name="Fake", supplier="Fake", portal_url=PORTAL)
        self.step = step

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        ctx.mark_logged_in()
        await self.step(ctx)
        return
        yield


def raising(exc: BaseException) -> Callable[[CollectContext], Any]:
    async def step(_: CollectContext) -> None:
        raise exc
    return step


async def run(step: Callable[[CollectContext], Any], html: str = "<p>Mes factures</p>",
              http: PortalHttp | None = None) -> RunReport:
    async def store(_: Any) -> bool:
        return True

    ctx = CollectContext(page=FakePage(html), portal_url=PORTAL, login="l", password="p",  # type: ignore[arg-type]
                         http=http or PortalHttp(FakeRequestClient(None)))  # type: ignore[arg-type]
    return await run_collection(Failing(step), ctx, store, timeout_s=10)


def code(report: RunReport) -> C:
    assert report.outcome is not None
    return report.outcome.code


# --- our mistakes: internal_error -------------------------------------------------------------

POSTBACK = "javascript:__doPostBack('ctl00$Invoices','Page$2')"


async def test_a_javascript_href_over_http_is_never_sent_and_is_our_bug() -> None:
    client = FakeRequestClient('APIRequestContext.fetch: Protocol "javascript:" not supported. Expected "http:"')
    http = PortalHttp(client)  # type: ignore[arg-type]

    async def follow_the_link(ctx: CollectContext) -> None:
        page_text(await ctx.http.get(POSTBACK), POSTBACK)  # what the HTTP engine does with a link

    report = await run(follow_the_link, http=http)
    assert code(report) is C.INTERNAL_ERROR, report.outcome
    assert "javascript" in report.outcome.detail and "recipe or collector bug" in report.outcome.detail
    assert client.sent == []  # never sent to the portal


@pytest.mark.parametrize("url", ["mailto:factures@portal.test", "data:text/html,hello", "about:blank",
                                 "file:///etc/passwd", "/relative/only", "", "http:///no-host"])
async def test_other_urls_no_request_can_be_sent_to_are_our_bug(url: str) -> None:
    client = FakeRequestClient("APIRequestContext.fetch: Invalid URL")
    with pytest.raises(CollectorBug):
        await PortalHttp(client).get(url)  # type: ignore[arg-type]
    with pytest.raises(CollectorBug):
        await PortalHttp(client).download(url, max_bytes=1000)  # type: ignore[arg-type]
    assert client.sent == []


async def test_a_request_playwright_refuses_is_our_bug_not_no_answer() -> None:
    # A URL that looks like http(s) but that the client still refuses to send.
    client = FakeRequestClient("APIRequestContext.fetch: Invalid header value char")
    with pytest.raises(CollectorBug, match="Invalid header"):
        await PortalHttp(client).get(PORTAL + "list")  # type: ignore[arg-type]


@pytest.mark.parametrize("message", [
    f"Page.goto: net::ERR_ABORTED at {POSTBACK}",
    "Page.goto: net::ERR_UNKNOWN_URL_SCHEME at mailto:x@y",
    "Page.goto: net::ERR_INVALID_URL at http://[bad/",
    "Page.goto: net::ERR_BLOCKED_BY_CLIENT at http://portal.test/ads.js",
])
async def test_a_navigation_we_could_not_make_is_our_bug(message: str) -> None:
    assert code(await run(raising(PlaywrightError(message)))) is C.INTERNAL_ERROR


async def test_a_bad_css_selector_is_our_bug_even_on_a_page_that_explains_other_things() -> None:
    bad = PlaywrightError('Page.click: Unexpected token "<" while parsing css selector "<<". '
                          "Did you mean to CSS.escape it?")
    assert code(await run(raising(bad), TERMS)) is C.INTERNAL_ERROR  # was action_required_on_site
    bad_in_script = PlaywrightError("Page.evaluate: SyntaxError: Failed to execute 'querySelector' on "
                                    "'Document': '<<' is not a valid selector.")
    assert code(await run(raising(bad_in_script), TERMS)) is C.INTERNAL_ERROR


async def test_a_python_exception_in_a_collector_is_our_bug_on_a_login_page() -> None:
    # Logged in, then a KeyError in front of a login form: not a session the portal ended three times.
    report = await run(raising(KeyError("invoice_number")), LOGIN_PAGE)
    assert code(report) is C.INTERNAL_ERROR and report.logins == 1, report.outcome
    assert code(await run(raising(TypeError("'NoneType' object is not subscriptable")), TERMS)) is C.INTERNAL_ERROR


async def test_a_page_we_closed_is_our_bug() -> None:
    closed = TargetClosedError("Page.goto: Target page, context or browser has been closed")
    assert code(await run(raising(closed), TERMS)) is C.INTERNAL_ERROR


async def test_a_strict_mode_violation_is_our_bug() -> None:
    strict = PlaywrightError('Locator.click: Error: strict mode violation: locator("a") resolved to 2 elements:')
    assert code(await run(raising(strict), LOGIN_PAGE)) is C.INTERNAL_ERROR


async def test_an_error_in_our_own_script_is_our_bug() -> None:
    assert code(await run(raising(PlaywrightError("Page.evaluate: ReferenceError: x is not defined")),
                          TERMS)) is C.INTERNAL_ERROR


async def test_a_third_party_host_not_answering_is_not_the_suppliers_outage() -> None:
    refused = PlaywrightError("Page.goto: net::ERR_CONNECTION_REFUSED at http://cdn.elsewhere.test/app.js")
    assert code(await run(raising(refused))) is C.INTERNAL_ERROR
    client = FakeRequestClient("APIRequestContext.fetch: connect ECONNREFUSED 10.0.0.9:443")
    http = PortalHttp(client)  # type: ignore[arg-type]

    async def read_elsewhere(ctx: CollectContext) -> None:
        page_text(await ctx.http.get("https://sso.elsewhere.test/login"), "login page")

    assert code(await run(read_elsewhere, http=http)) is C.INTERNAL_ERROR
    timed_out = PlaywrightTimeout('Page.goto: Timeout 1000ms exceeded.\nCall log:\n'
                                  '  - navigating to "http://analytics.elsewhere.test/", waiting until "load"')
    assert code(await run(raising(timed_out))) is C.INTERNAL_ERROR


# --- the supplier's real outages: still supplier_unavailable ----------------------------------


async def test_the_portal_answering_503_is_its_outage() -> None:
    error = error_for_status(503, {}, PORTAL + "list")
    assert error is not None
    assert code(await run(raising(error))) is C.SUPPLIER_UNAVAILABLE


async def test_the_portal_refusing_connections_is_its_outage() -> None:
    refused = PlaywrightError("Page.goto: net::ERR_CONNECTION_REFUSED at http://portal.test/login")
    assert code(await run(raising(refused))) is C.SUPPLIER_UNAVAILABLE
    client = FakeRequestClient("APIRequestContext.fetch: connect ECONNREFUSED 127.0.0.1:1")

    async def read_login(ctx: CollectContext) -> None:
        page_text(await ctx.http.get(PORTAL + "login"), "login page")

    report = await run(read_login, http=PortalHttp(client))  # type: ignore[arg-type]
    assert code(report) is C.SUPPLIER_UNAVAILABLE and "no answer" in report.outcome.detail


async def test_the_portal_not_answering_in_time_is_its_outage() -> None:
    timed_out = PlaywrightTimeout('Page.goto: Timeout 1000ms exceeded.\nCall log:\n'
                                  '  - navigating to "http://portal.test/login", waiting until "load"')
    assert code(await run(raising(timed_out))) is C.SUPPLIER_UNAVAILABLE  # was interface_changed
    with pytest.raises(PortalUnreachable):
        page_text(await PortalHttp(FakeRequestClient(  # type: ignore[arg-type]
            "APIRequestContext.fetch: Timeout 500ms exceeded.", PlaywrightTimeout)).get(PORTAL), PORTAL)


async def test_a_maintenance_page_is_its_outage_even_behind_our_crash() -> None:
    assert code(await run(raising(InterfaceChanged("no table")), MAINTENANCE)) is C.SUPPLIER_UNAVAILABLE
    assert code(await run(raising(KeyError("boom")), MAINTENANCE)) is C.SUPPLIER_UNAVAILABLE


def test_without_a_portal_to_compare_with_no_answer_stays_the_suppliers() -> None:
    refused = PlaywrightError("Page.goto: net::ERR_CONNECTION_REFUSED at http://anywhere.test/")
    assert classify(refused).code is C.SUPPLIER_UNAVAILABLE


# --- incidents --------------------------------------------------------------------------------


def test_an_internal_error_never_counts_toward_a_supplier_incident() -> None:
    """The scheduler records a failure toward an incident only if its code is in INCIDENT_CODES
    (services/scheduler/service.py, the result handler)."""
    assert C.INTERNAL_ERROR not in policy.INCIDENT_CODES
    assert C.SUPPLIER_UNAVAILABLE in policy.INCIDENT_CODES
