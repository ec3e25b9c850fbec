"""HTTP requests in the job's browser context, without a page: the cheap way to read a portal.

A page costs a renderer process (tens of milliseconds of CPU to start) and every navigation lays
out and runs what it loads; most portals are forms, HTML tables and PDF links that need none of
that. ``PortalHttp`` goes through the context's request client: same cookie jar as any page the
collector opens in that context (log in over HTTP, then open a page for a JavaScript-only step, or
the reverse, and the session follows), same proxy, no rendering.

Redirects are followed here, one hop at a time, rather than inside Playwright: each hop's cookies
land in the context as usual, and every exchange is visible, so the framework's witness sees the
pages a collector was shown and a HAR recording holds every hop (Playwright records neither this
client's requests in a HAR nor replays them from one: ``kit.har`` does both).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date
from urllib.parse import urljoin, urlsplit

from playwright._impl._errors import TargetClosedError  # raised by the public API, not exported by it
from playwright.async_api import APIRequestContext, BrowserContext
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from services.scraper.kit.errors import CollectorBug, is_no_answer
from services.scraper.kit.fetch import DEFAULT_TIMEOUT_MS
from services.scraper.kit.forms import FormSubmission, form_body
from services.scraper.kit.har import HarRecorder, HarReplay
from services.scraper.kit.reply import HttpReply, http_url_problem, origin, require_http_url
from services.scraper.kit.session import HttpSession
from services.scraper.kit.stream import Download, kept, stream_download

MAX_REDIRECTS = 20
FORM_TYPE = "application/x-www-form-urlencoded"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Observer = Callable[[HttpReply, Mapping[str, str]], None]
Exchange = Callable[[str, str, dict[str, str], str | None], Awaitable[HttpReply]]
# ``listener(method, url, request headers, body, reply, elapsed ms)``: a run's trail and evidence.
Listener = Callable[[str, str, Mapping[str, str], str | None, HttpReply, float], None]


def navigation_headers(referrer: str, url: str, method: str) -> dict[str, str]:
    """The ``Referer`` and ``Origin`` a browser sends when a page at ``referrer`` submits a form to
    ``url`` (default referrer policy, strict-origin-when-cross-origin). Portals check them against
    cross-site request forgery (Django refuses an HTTPS POST without a Referer)."""
    source, target = urlsplit(referrer), urlsplit(url)
    same_origin = origin(referrer) == origin(url)
    downgrade = source.scheme == "https" and target.scheme != "https"
    headers: dict[str, str] = {}
    if same_origin:
        headers["Referer"] = f"{origin(referrer)}{source.path or '/'}" + (f"?{source.query}" if source.query else "")
    elif not downgrade:
        headers["Referer"] = origin(referrer) + "/"
    if method == "POST":
        headers["Origin"] = "null" if downgrade and not same_origin else origin(referrer)
    return headers


def _without(headers: Mapping[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in names}


class PortalHttp:
    """GET and form POST with the browser context's session; never raises for an HTTP status.

    A reply with ``status == 0`` means no HTTP answer at all (refused, timed out, not in the
    replayed HAR), with the reason in ``error``. A request that could not be sent for a reason of
    ours (a URL that is not http(s), one Playwright refuses) raises ``CollectorBug`` instead: it is
    never sent, and never taken for the portal's silence.

    Made from the browser context (``PortalHttp(context)``) it can also ``download`` documents of
    any size; from its request client only, it cannot. Made from a job's ``HttpSession`` (no
    browser yet: ``kit.session``) it reads and downloads without one, until ``use_browser`` hands
    the session over to a context the collector opened a page in; and ``leave_browser`` takes it
    back once the page is closed (a JavaScript login, then everything over HTTP).
    """

    def __init__(self, client: BrowserContext | APIRequestContext | HttpSession | None, *,
                 timeout_ms: float = DEFAULT_TIMEOUT_MS, recorder: HarRecorder | None = None,
                 replay: HarReplay | None = None) -> None:
        if client is None and replay is None:
            raise ValueError("PortalHttp needs a browser context, a request client, a session or a HAR to replay")
        self._session = client if isinstance(client, HttpSession) else None
        self._own_session = self._session  # the job's, kept while a context holds the session
        self._context = client if isinstance(client, BrowserContext) else None
        self._request = (client.request if isinstance(client, BrowserContext)
                         else None if isinstance(client, HttpSession) else client)
        self.timeout_ms = timeout_ms
        self._recorder = recorder
        self._replay = replay
        self._observers: list[Observer] = []
        self._listeners: list[Listener] = []

    @property
    def browserless(self) -> bool:
        """Reading the portal with a session of its own: no browser context yet."""
        return self._session is not None

    async def use_browser(self, context: BrowserContext) -> None:
        """From now on go through ``context`` (a page was opened in it): the session's cookies go
        with it, so the page continues what was done over HTTP, and what the page does next
        (its cookies) is what later requests send."""
        if self._session is not None:
            cookies = self._session.cookies_for_browser()
            if cookies:
                await context.add_cookies(cookies)
            self._session = None
        self._context, self._request = context, context.request

    async def leave_browser(self) -> bool:
        """Back to the job's own session once its pages are closed: the context's cookies (what the
        pages did) go into the session's jar, and later requests no longer ask the browser for its
        cookies on every download. False (nothing changes) without a session of its own, or if a
        cookie cannot be carried over."""
        if self._own_session is None or self._context is None or self._session is not None:
            return False
        if not self._own_session.load_browser_cookies(await self._context.cookies()):
            return False
        self._session = self._own_session
        return True

    def set_cookie(self, name: str, value: str, url: str) -> None:
        """A cookie in the session without a browser (``CollectContext.set_cookie``)."""
        if self._session is None:
            raise RuntimeError("set cookies in the browser context once there is one")
        self._session.set_cookie(name, value, url)

    @property
    def recorded_on(self) -> date | None:
        """The day the HAR being replayed was recorded; None for a live portal."""
        return self._replay.recorded_on if self._replay is not None else None

    def observe(self, observer: Observer) -> None:
        """Call ``observer(reply, request headers)`` after every exchange, redirect hops included."""
        if observer not in self._observers:  # a context copied for a new login observes once
            self._observers.append(observer)

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` after every exchange (redirect hops included) with its method, request
        and timing: what a run's trail keeps (``services.scraper.evidence``)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> HttpReply:
        return await self._follow("GET", url, dict(headers or {}), None)

    async def download(self, url: str, *, max_bytes: int, headers: Mapping[str, str] | None = None,
                       form: FormSubmission | None = None) -> Download:
        """GET a document (redirects followed) into a file, stopped past ``max_bytes``: never through
        Playwright's request client, which would hold the whole body in its driver. With ``form``, the
        document is what submitting it answers (a POST download: ``url`` is then the form's)."""

        async def exchange(method: str, hop: str, sent: dict[str, str], body: str | None) -> HttpReply:
            if self._replay is not None:
                return kept(self._replay.answer(method, hop, body), max_bytes)
            if self._session is not None:
                download = await self._session.download(method, hop, sent, body, max_bytes=max_bytes,
                                                        timeout_ms=self.timeout_ms)
            elif self._context is None:
                raise RuntimeError("downloads need the browser context: PortalHttp(context), not its request client")
            else:
                download = await stream_download(self._context, method, hop, sent, body, max_bytes=max_bytes,
                                                 timeout_ms=self.timeout_ms)
            if self._recorder is not None and download.status != 0:
                whole = download.file.read() if download.file is not None else b""
                self._recorder.add(method, hop, sent, body, HttpReply(download.status, hop, download.headers, whole))
            return download

        if form is not None and form.method == "POST":
            reply = await self._follow("POST", form.url, {"Content-Type": FORM_TYPE, **(headers or {})}, form.body,
                                       referrer=form.referrer or None, exchange=exchange)
        else:
            reply = await self._follow("GET", form.url if form is not None else url, dict(headers or {}), None,
                                       referrer=(form.referrer or None) if form is not None else None,
                                       exchange=exchange)
        return kept(reply, max_bytes)  # a Download, or no answer (too many redirects)

    async def get_all(self, urls: Sequence[str], *, headers: Mapping[str, str] | None = None) -> list[HttpReply]:
        """Each URL in turn (never a burst on the portal), replies in the same order."""
        return [await self.get(url, headers=headers) for url in urls]

    async def post_form(self, url: str, fields: Sequence[tuple[str, str]], *,
                        headers: Mapping[str, str] | None = None, charset: str = "utf-8") -> HttpReply:
        """POST ``fields`` as a browser submits a form (urlencoded in ``charset``; names may repeat)."""
        return await self._follow("POST", url, {"Content-Type": FORM_TYPE, **(headers or {})},
                                  form_body(fields, charset))

    async def submit(self, form: FormSubmission) -> HttpReply:
        """Send a form as ``kit.forms.submission`` worked it out, with the Referer and Origin of
        the page it is on."""
        headers = {"Content-Type": FORM_TYPE} if form.method == "POST" else {}
        return await self._follow(form.method, form.url, headers, form.body if form.method == "POST" else None,
                                  referrer=form.referrer or None)

    async def _follow(self, method: str, url: str, headers: dict[str, str], body: str | None, *,
                      referrer: str | None = None, exchange: Exchange | None = None) -> HttpReply:
        require_http_url(url, method)
        for _ in range(MAX_REDIRECTS + 1):
            if referrer is not None:
                headers = {**_without(headers, "referer", "origin"), **navigation_headers(referrer, url, method)}
            started = time.perf_counter()
            reply = await (exchange or self._exchange)(method, url, headers, body)
            for listener in self._listeners:
                listener(method, url, headers, body, reply, (time.perf_counter() - started) * 1000)
            for observer in self._observers:
                observer(reply, headers)
            location = reply.headers.get("location")
            if reply.status not in _REDIRECTS or not location:
                return reply
            next_url = urljoin(reply.url, location)
            if http_url_problem(next_url) is not None:
                return reply  # sent elsewhere than to a web page (as a browser, nothing to follow)
            if origin(next_url) != origin(url):
                # Fetch standard: credentials a caller set are not handed to another origin.
                headers = _without(headers, "authorization")
            url = next_url
            if reply.status in (301, 302, 303) and method == "POST":
                # What browsers do: the form's answer is fetched with a GET, without the body.
                method, body = "GET", None
                headers = _without(headers, "content-type")
        return HttpReply(status=0, url=url, headers={}, body=b"", error=f"more than {MAX_REDIRECTS} redirects")

    async def _exchange(self, method: str, url: str, headers: dict[str, str], body: str | None) -> HttpReply:
        if self._replay is not None:
            return self._replay.answer(method, url, body)
        if self._session is not None:
            reply = await self._session.exchange(method, url, headers, body, timeout_ms=self.timeout_ms)
            if self._recorder is not None:
                self._recorder.add(method, url, headers, body, reply)
            return reply
        assert self._request is not None
        try:
            response = await self._request.fetch(url, method=method, headers=headers, data=body,
                                                 max_redirects=0, timeout=self.timeout_ms,
                                                 fail_on_status_code=False)
        except TargetClosedError:
            raise  # our browser or context is gone: not something the portal answered
        except PlaywrightError as exc:
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            if isinstance(exc, PlaywrightTimeout) or is_no_answer(str(exc)):
                return HttpReply(status=0, url=url, headers={}, body=b"", error=first_line)
            # Not the portal's silence: the request itself was refused on our side.
            raise CollectorBug(f"{method} {url[:200]}: {first_line}") from exc
        try:
            reply = HttpReply(status=response.status, url=response.url,
                              headers={k.lower(): v for k, v in response.headers.items()},
                              body=await response.body())
        finally:
            await response.dispose()
        if self._recorder is not None:
            self._recorder.add(method, url, headers, body, reply)
        return reply
