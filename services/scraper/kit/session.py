"""A collection's HTTP session before it needs a browser: one cookie jar, one keep-alive connection.

Most portals (forms, HTML tables, PDF links) never need a page, yet going through the browser
context's request client cost every exchange a round trip through the Playwright driver and
Chromium (the cookies asked for each download, the body sent back in base64), and the context
itself a renderer-side setup: ~60 ms of the driver and browser's CPU per collection, and ~30 % of
the worker's own, for pages no browser ever drew. So a job starts with this session (aiohttp, its
cookie jar, the browser's user agent and language) and only opens a browser context when the
collector asks for a page (``CollectContext.open_page``): its cookies are then handed to the
context (``cookies_for_browser``), and from there on the context is the session, as before.

Everything a browser-like client must do is above this layer, in ``kit.portal_http`` (redirects hop
by hop, Referer/Origin, no credentials to another origin, the HAR, the witness): this module only
sends one exchange and reads its answer, bounded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from http.cookies import CookieError, Morsel

import aiohttp
from playwright._impl._api_structures import Cookie, SetCookieParam  # add_cookies' types, not exported
from yarl import URL

from services.scraper.kit.errors import CollectorBug
from services.scraper.kit.reply import HttpReply
from services.scraper.kit.stream import Download, merged_headers, read_into_file

# A page (not a document: those go to a file) larger than this is not read past it: no portal page
# is that big, and a worker must not hold a runaway answer in memory.
MAX_PAGE_BYTES = 32 * 1024 * 1024
# What the browser context sends (BrowserPool: locale fr-FR).
ACCEPT_LANGUAGE = "fr-FR,fr;q=0.9"
_SAME_SITE = {"lax": "Lax", "none": "None", "strict": "Strict"}


class HttpSession:
    """One job's page-less session: cookies kept across exchanges (aiohttp's jar, as a browser's),
    connections kept alive, no redirect followed (the caller follows them hop by hop)."""

    def __init__(self, *, user_agent: str | None = None) -> None:
        # unsafe: portals reached by an IP address (a sandbox, an intranet) keep their cookies too.
        self._jar = aiohttp.CookieJar(unsafe=True, quote_cookie=False)
        headers = {"Accept": "*/*", "Accept-Language": ACCEPT_LANGUAGE}
        if user_agent:
            headers["User-Agent"] = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._headers = headers

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made in the running loop, on first use
            self._session = aiohttp.ClientSession(cookie_jar=self._jar, headers=self._headers,
                                                  connector=aiohttp.TCPConnector(limit_per_host=2))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HttpSession:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def set_cookie(self, name: str, value: str, url: str) -> None:
        self._jar.update_cookies({name: value}, URL(url))

    def cookies_for_browser(self) -> list[SetCookieParam]:
        """Every cookie of the jar as ``BrowserContext.add_cookies`` takes it: the session a page
        opened later continues."""
        cookies: list[SetCookieParam] = []
        now = time.time()
        for morsel in self._jar:
            domain = morsel["domain"]
            if not domain:
                continue
            cookie: SetCookieParam = {"name": morsel.key, "value": morsel.value, "domain": domain,
                                      "path": morsel["path"] or "/", "secure": bool(morsel["secure"]),
                                      "httpOnly": bool(morsel["httponly"])}
            same_site = _SAME_SITE.get(str(morsel.get("samesite", "")).lower())
            if same_site is not None:
                cookie["sameSite"] = same_site  # type: ignore[typeddict-item]
            if morsel["max-age"] and str(morsel["max-age"]).lstrip("-").isdigit():
                cookie["expires"] = now + int(morsel["max-age"])
            cookies.append(cookie)
        return cookies

    def load_browser_cookies(self, cookies: Sequence[Cookie]) -> bool:
        """Replace the jar's cookies with a browser context's (``BrowserContext.cookies()``); False,
        and the jar unchanged, if one of them is not a cookie this jar can hold."""
        loaded: list[tuple[str, Morsel[str], URL]] = []
        now = time.time()
        for cookie in cookies:
            name, value, domain = cookie.get("name", ""), cookie.get("value", ""), cookie.get("domain", "")
            morsel: Morsel[str] = Morsel()
            try:
                morsel.set(name, value, value)
            except CookieError:
                return False
            morsel["path"] = cookie.get("path") or "/"
            if domain.startswith("."):  # a domain cookie; without the dot, host-only
                morsel["domain"] = domain
            if cookie.get("secure"):
                morsel["secure"] = True
            if cookie.get("httpOnly"):
                morsel["httponly"] = True
            expires = cookie.get("expires", -1)
            if expires > 0:
                morsel["max-age"] = str(max(1, int(expires - now)))
            scheme = "https" if cookie.get("secure") else "http"
            loaded.append((name, morsel, URL.build(scheme=scheme, host=domain.lstrip("."))))
        self._jar.clear()
        for name, morsel, url in loaded:
            self._jar.update_cookies({name: morsel}, url)
        return True

    async def exchange(self, method: str, url: str, headers: Mapping[str, str], body: str | None, *,
                       timeout_ms: float) -> HttpReply:
        """One exchange, its whole (bounded) body in memory: a page."""
        try:
            async with self._client().request(method, url, headers=dict(headers), data=body, allow_redirects=False,
                                              timeout=aiohttp.ClientTimeout(total=timeout_ms / 1000)) as response:
                data = await response.content.read(MAX_PAGE_BYTES + 1)
                answered = merged_headers(response.headers)
                if len(data) > MAX_PAGE_BYTES:
                    return HttpReply(status=0, url=url, headers=answered, body=b"",
                                     error=f"a page of more than {MAX_PAGE_BYTES} bytes")
                return HttpReply(status=response.status, url=str(response.url), headers=answered, body=data)
        except (aiohttp.InvalidURL, ValueError, TypeError) as exc:
            # Never sent: a request of ours the client refuses is not the portal's silence.
            raise CollectorBug(f"{method} {url[:200]}: {type(exc).__name__}: {exc}"[:300]) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            return HttpReply(status=0, url=url, headers={}, body=b"", error=(str(exc) or type(exc).__name__)[:200])

    async def download(self, method: str, url: str, headers: Mapping[str, str], body: str | None, *,
                       max_bytes: int, timeout_ms: float) -> Download:
        """One exchange, its body streamed into a file up to ``max_bytes`` (``kit.stream``)."""
        try:
            return await read_into_file(self._client(), method, url, dict(headers), body, max_bytes=max_bytes,
                                        timeout_ms=timeout_ms)
        except (aiohttp.InvalidURL, ValueError, TypeError) as exc:
            raise CollectorBug(f"{method} {url[:200]}: {type(exc).__name__}: {exc}"[:300]) from exc

