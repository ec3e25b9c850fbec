"""Downloading a document in the job's browser context without ever holding it whole in memory.

Playwright's request client (``BrowserContext.request``) reads a whole body in its Node driver and
sends it to Python in one base64 message: a 300 MB answer killed the driver, a 500 MB one exceeded
V8's longest string, and it has no size limit to set. A document is therefore fetched here, in
Python, as that client would fetch it (the context's cookies for the URL, the browser's user agent,
``Set-Cookie`` answers put back into the context, so pages and ``ctx.http`` keep one session), and
its body streamed into a spooled file (``kit.body``), stopped past the collector's limit.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import mktime_tz, parsedate_tz
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
from playwright._impl._api_structures import SetCookieParam  # add_cookies' type, not exported
from playwright.async_api import Browser, BrowserContext
from playwright.async_api import Error as PlaywrightError

from services.scraper.kit.body import DocumentBody
from services.scraper.kit.reply import HttpReply

CHUNK_BYTES = 64 * 1024
# Playwright's own bound on a cookie's expiry (year 9999).
_MAX_EXPIRES = 253402300799.0
_SAME_SITE: dict[str, Literal["Lax", "None", "Strict"]] = {"lax": "Lax", "none": "None", "strict": "Strict"}


@dataclass(frozen=True)
class Download(HttpReply):
    """A reply whose body went to ``file``; ``body`` holds only its first bytes (what judging the
    download and explaining a failure need)."""

    file: DocumentBody | None = None
    cut_at: int | None = None  # larger than this limit: stopped there, ``file`` incomplete


def declared_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


def kept(reply: HttpReply, max_bytes: int) -> Download:
    """A reply already in memory (replayed from a HAR, fetched by a page) judged as a download."""
    if isinstance(reply, Download):
        return reply
    if reply.status == 0:
        return Download(status=0, url=reply.url, headers=reply.headers, body=b"", error=reply.error)
    if (declared_length(reply.headers) or 0) > max_bytes or len(reply.body) > max_bytes:
        return Download(status=reply.status, url=reply.url, headers=reply.headers, body=b"", cut_at=max_bytes)
    file = DocumentBody.of(reply.body)
    return Download(status=reply.status, url=reply.url, headers=reply.headers, body=file.head, file=file)


_user_agents: weakref.WeakKeyDictionary[Browser, str] = weakref.WeakKeyDictionary()


async def user_agent(context: BrowserContext) -> str | None:
    """What Playwright's request client sends as User-Agent: the browser's own (asked once)."""
    browser = context.browser
    return None if browser is None else await browser_user_agent(browser)


async def browser_user_agent(browser: Browser) -> str:
    if browser not in _user_agents:
        session = await browser.new_browser_cdp_session()
        try:
            version = await session.send("Browser.getVersion")
        finally:
            await session.detach()
        _user_agents[browser] = str(version["userAgent"])
    return _user_agents[browser]


def cookie_from_header(url: str, header: str, now: float) -> SetCookieParam | None:
    """A ``Set-Cookie`` header as Playwright's request client stores it in the context (its
    parseRawCookie and _parseSetCookieHeader, so that behaviour does not change)."""
    name_value, *attributes = header.split(";")
    name, equals, value = name_value.partition("=")
    name, value = (name.strip(), value.strip()) if equals else ("", name.strip())
    if not name and not value:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    cookie: SetCookieParam = {"name": name, "value": value, "domain": host, "expires": -1, "httpOnly": False,
                              "secure": False, "sameSite": "Lax"}
    path = ""
    max_age: float | None = None
    for attribute in attributes:
        key, _, raw = attribute.partition("=")
        key, raw = key.strip().lower(), raw.strip()
        if key == "expires":
            parsed = parsedate_tz(raw)
            if parsed is not None:
                at = mktime_tz(parsed)
                cookie["expires"] = 0 if at <= 0 else min(float(at), _MAX_EXPIRES)
        elif key == "max-age" and raw.lstrip("-").isdigit():
            seconds = int(raw)
            max_age = 0 if seconds <= 0 else min(now + seconds, _MAX_EXPIRES)
        elif key == "domain" and raw:
            domain = raw.lower()
            cookie["domain"] = "." + domain if not domain.startswith(".") and "." in domain else domain
        elif key == "path":
            path = raw
        elif key == "secure":
            cookie["secure"] = True
        elif key == "httponly":
            cookie["httpOnly"] = True
        elif key == "samesite" and raw.lower() in _SAME_SITE:
            cookie["sameSite"] = _SAME_SITE[raw.lower()]
    if max_age is not None:
        cookie["expires"] = max_age
    domain = cookie.get("domain") or host
    if domain != host and not (domain.startswith(".") and ("." + host).endswith(domain)):
        return None  # a cookie for another site: refused, as a browser refuses it
    cookie["path"] = path if path.startswith("/") else "/" + "/".join(parts.path[1:].split("/")[:-1])
    return cookie


async def _keep_cookies(context: BrowserContext, url: str, headers: list[str]) -> None:
    cookies = [c for c in (cookie_from_header(url, h, time.time()) for h in headers) if c is not None]
    if not cookies:
        return
    try:
        await context.add_cookies(cookies)
    except PlaywrightError:
        # One malformed cookie refuses the lot: keep the others, as Playwright's client does.
        for cookie in cookies:
            try:
                await context.add_cookies([cookie])
            except PlaywrightError as exc:
                if context.browser is not None and not context.browser.is_connected():
                    raise exc from None  # not the cookie: our browser is gone


def merged_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names, repeated headers joined as Playwright joins them (``Set-Cookie`` by a
    newline, the others by a comma)."""
    merged: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        merged[key] = f"{merged[key]}{chr(10) if key == 'set-cookie' else ', '}{value}" if key in merged else value
    return merged


async def stream_download(context: BrowserContext, method: str, url: str, headers: Mapping[str, str],
                          body: str | None, *, max_bytes: int, timeout_ms: float,
                          session: aiohttp.ClientSession | None = None) -> Download:
    """One exchange (no redirect followed) with the browser context's cookies, its body kept in a
    file up to ``max_bytes``: past that, or if the portal announces more, the download stops and is
    ``cut_at`` the limit. ``session``: the connection pool to send it on (one per job keeps the
    connection alive across downloads; without it, one is made for this download).

    Raises only if the browser context is gone (our failure); no answer at all is ``status == 0``.
    """
    agent = await user_agent(context)
    sent = {"accept": "*/*", **({"user-agent": agent} if agent else {}), **{k.lower(): v for k, v in headers.items()}}
    cookies = await context.cookies([url])
    if cookies and "cookie" not in sent:
        sent["cookie"] = "; ".join(f"{c['name']}={c['value']}" if c["name"] else c["value"] for c in cookies)
    if session is not None:
        return await read_into_file(session, method, url, sent, body, max_bytes=max_bytes, timeout_ms=timeout_ms,
                                    keep=lambda at, found: _keep_cookies(context, at, found))
    # Cookies are the browser context's (sent above, kept below), never a jar of aiohttp's own.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as own:
        return await read_into_file(own, method, url, sent, body, max_bytes=max_bytes, timeout_ms=timeout_ms,
                                    keep=lambda at, found: _keep_cookies(context, at, found))


async def read_into_file(session: aiohttp.ClientSession, method: str, url: str, sent: Mapping[str, str],
                         body: str | None, *, max_bytes: int, timeout_ms: float,
                         keep: Callable[[str, list[str]], Awaitable[None]] | None = None) -> Download:
    """Send one exchange on ``session`` and stream its body into a file up to ``max_bytes``;
    ``keep(url, set-cookie headers)`` hands the answer's cookies to whoever keeps them (a session
    with its own jar needs none). No answer at all is ``status == 0``."""
    file = DocumentBody()
    try:
        async with session.request(method, url, headers=dict(sent), data=body, allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(total=timeout_ms / 1000)) as response:
            if keep is not None:
                await keep(str(response.url), response.headers.getall("set-cookie", []))
            answered = merged_headers(response.headers)
            if (declared_length(answered) or 0) > max_bytes:
                file.close()
                return Download(status=response.status, url=url, headers=answered, body=b"", cut_at=max_bytes)
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                # One byte past the limit is kept: a recording of the download replays as too large too.
                file.write(chunk[:max_bytes + 1 - file.size])
                if file.size > max_bytes:
                    return Download(status=response.status, url=url, headers=answered, body=file.head,
                                    file=file, cut_at=max_bytes)
    except (aiohttp.ClientError, TimeoutError) as exc:
        file.close()
        return Download(status=0, url=url, headers={}, body=b"", error=(str(exc) or type(exc).__name__)[:200])
    return Download(status=response.status, url=url, headers=answered, body=file.head, file=file)
