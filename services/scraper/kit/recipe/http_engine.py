"""Running a recipe without a page: the portal read over HTTP in the job's browser context.

Forms are submitted as a browser submits them (``kit.forms``), list pages are read from their HTML
(``extract``), documents downloaded with the same session. Optional clicks are skipped: they dismiss
what scripts draw for people (cookie banners, pop-ups), which an HTTP client never sees.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser, LexborNode

from services.scraper.kit.collector import CollectContext, Found
from services.scraper.kit.download import fetch_documents
from services.scraper.kit.errors import InterfaceChanged, LoginFailed
from services.scraper.kit.forms import find, parse_html, submission
from services.scraper.kit.http import page_text
from services.scraper.kit.recipe.extract import read_list
from services.scraper.kit.recipe.model import Click, Fill, Goto, Recipe, SetCookie, Submit, WaitFor
from services.scraper.kit.recipe.rows import refs_from_rows

# <meta http-equiv="refresh" content="0; url=/home">, as the HTML standard parses its content.
_REFRESH = re.compile(r"\s*\d*(?:\.[\d.]*)?\s*[;,\s]\s*(?:url\s*=\s*)?(?P<q>['\"]?)(?P<url>.*?)(?P=q)?\s*$",
                      re.IGNORECASE | re.DOTALL)
_REFRESH_DELAY = re.compile(r"\s*(\d+)")
# A page that refreshes to another one sooner than this is a step a browser goes through by itself
# ("Redirection en cours..."); later than that, a person would be reading it.
MAX_REFRESH_DELAY_S = 5
MAX_REFRESHES = 5
# Many portals answer a bad password with one of these: the recipe's failure selector tells.
_LOGIN_STATUSES = (401, 403)
_SUBMIT_TYPES = frozenset({"submit", "image"})


@dataclass(frozen=True)
class Shown:
    """The page the portal answered last: what a browser would be showing."""

    url: str
    html: str
    charset: str = "utf-8"  # the page's encoding: its forms are sent in it

    @cached_property
    def document(self) -> LexborHTMLParser:
        """Parsed once, however many selectors a login step looks for on it."""
        return parse_html(self.html)

    def has(self, selector: str) -> bool:
        return find(self.document, selector) is not None


def _in_noscript(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag == "noscript":
            return True  # what a browser running scripts never reads
        parent = parent.parent
    return False


def refresh_target(html: str | LexborHTMLParser, url: str) -> str | None:
    """Where a ``<meta http-equiv="refresh">`` sends a browser at once, if it does."""
    for meta in parse_html(html).css("meta"):
        if (meta.attributes.get("http-equiv") or "").strip().lower() != "refresh" or _in_noscript(meta):
            continue
        content = meta.attributes.get("content") or ""
        delay = _REFRESH_DELAY.match(content)
        target = _REFRESH.match(content)
        where: str = target.group("url").strip() if target is not None else ""
        if delay is None or int(delay.group(1)) > MAX_REFRESH_DELAY_S or not where:
            return None  # late, or the same page again: nothing a collector should wait for
        return urljoin(url, where)
    return None


async def _landed(ctx: CollectContext, shown: Shown, accept: tuple[int, ...]) -> Shown:
    """The page a browser ends up on: refreshes to another page followed, as redirects are."""
    for _ in range(MAX_REFRESHES):
        target = refresh_target(shown.document, shown.url)
        if target is None:
            break
        reply = await ctx.http.get(target)
        shown = Shown(reply.url, page_text(reply, target, accept=accept), reply.charset)
    return shown


async def _open(ctx: CollectContext, url: str, *, logging_in: bool = False) -> Shown:
    accept = _LOGIN_STATUSES if logging_in else ()
    reply = await ctx.http.get(url)
    return await _landed(ctx, Shown(reply.url, page_text(reply, url, accept=accept), reply.charset), accept)


async def _submit(ctx: CollectContext, shown: Shown, selector: str, fills: dict[str, str]) -> Shown:
    form = submission(shown.html, shown.url, selector, fills, charset=shown.charset)
    reply = await ctx.http.submit(form)
    landed = Shown(reply.url, page_text(reply, form.url, accept=_LOGIN_STATUSES), reply.charset)
    return await _landed(ctx, landed, _LOGIN_STATUSES)


async def _click(ctx: CollectContext, shown: Shown, selector: str, fills: dict[str, str]) -> Shown:
    element = find(shown.document, selector)
    if element is None:
        raise InterfaceChanged(f"element {selector!r} not found at {shown.url}")
    href = element.attributes.get("href")
    if element.tag == "a" and href:
        return await _open(ctx, urljoin(shown.url, href), logging_in=True)
    kind = (element.attributes.get("type") or ("submit" if element.tag == "button" else "")).lower()
    if element.tag in ("button", "input") and kind in _SUBMIT_TYPES:
        return await _submit(ctx, shown, selector, fills)
    # Clicking anything else only does what a script makes of it: a recipe error, not the portal's.
    raise ValueError(f"{selector!r} is neither a link nor a submit button: this recipe needs engine='browser'")


async def _log_in(recipe: Recipe, ctx: CollectContext) -> Shown:
    login = recipe.login
    shown = await _open(ctx, urljoin(ctx.base_url, login.url), logging_in=True)
    fills: dict[str, str] = {}
    for step in login.steps:
        if isinstance(step, Goto):
            shown, fills = await _open(ctx, urljoin(ctx.base_url, step.url), logging_in=True), {}
        elif isinstance(step, Click):
            if not step.optional:
                shown, fills = await _click(ctx, shown, step.selector, fills), {}
        elif isinstance(step, Fill):
            if not shown.has(step.selector):
                raise InterfaceChanged(f"element {step.selector!r} not found at {shown.url}")
            fills[step.selector] = step.typed(ctx.login, ctx.password)
        elif isinstance(step, Submit):
            shown, fills = await _submit(ctx, shown, step.selector, fills), {}
            if login.failure and shown.has(login.failure):
                raise LoginFailed("the portal rejected the login or password")
        elif isinstance(step, SetCookie):
            await ctx.set_cookie(step.name, step.value)
        elif isinstance(step, WaitFor) and not shown.has(step.selector):
            raise InterfaceChanged(f"element {step.selector!r} not found at {shown.url}")
    if login.failure and shown.has(login.failure):
        raise LoginFailed("the portal rejected the login or password")
    if not shown.has(login.success):
        # Not necessarily a redesign: the framework reads the page (terms, OTP, maintenance...).
        raise InterfaceChanged(f"after login, neither {login.success!r} nor the failure message is shown")
    return shown


async def collect_over_http(recipe: Recipe, ctx: CollectContext) -> AsyncGenerator[Found]:
    shown = await _log_in(recipe, ctx)
    ctx.mark_logged_in()
    listing = recipe.listing
    first = urljoin(ctx.base_url, listing.url)
    if shown.url != first:
        shown = await _open(ctx, first)
    for _ in range(listing.max_pages):
        found = read_list(shown.document, listing, recipe.download.headers)
        if not found.container:
            raise InterfaceChanged(f"list {listing.container!r} not found at {shown.url}")
        headers = {name: value for name, value in found.headers.items() if value}
        refs = refs_from_rows(found.rows, listing, shown.url)
        async for document in fetch_documents(ctx.http, [r for r in refs if r.number not in ctx.known_numbers],
                                              headers=headers):
            yield document
        ctx.heartbeat()
        if not found.next_href:
            return
        shown = await _open(ctx, urljoin(shown.url, found.next_href))
    raise InterfaceChanged(f"more than {listing.max_pages} list pages")
