"""Running a recipe without a page: the portal read over HTTP in the job's browser context.

Forms are submitted as a browser submits them (``kit.forms``), list pages are read from their HTML
(``extract``), documents downloaded with the same session. Optional clicks are skipped: they dismiss
what scripts draw for people (cookie banners, pop-ups), which an HTTP client never sees.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from functools import cached_property
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from services.scraper.kit.collector import CollectContext, Found
from services.scraper.kit.download import fetch_documents
from services.scraper.kit.errors import CollectorBug, InterfaceChanged, LoginFailed
from services.scraper.kit.forms import FormSubmission, find, parse_html, postback, submission, text_of
from services.scraper.kit.http import page_text
from services.scraper.kit.recipe.extract import read_list, read_value
from services.scraper.kit.recipe.model import Click, Fill, Goto, Recipe, SetCookie, Step, Submit, WaitFor
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
    return await _send(ctx, submission(shown.html, shown.url, selector, fills, charset=shown.charset))


async def _send(ctx: CollectContext, form: FormSubmission) -> Shown:
    reply = await ctx.http.submit(form)
    landed = Shown(reply.url, page_text(reply, form.url, accept=_LOGIN_STATUSES), reply.charset)
    return await _landed(ctx, landed, _LOGIN_STATUSES)


def _postback(recipe: Recipe, shown: Shown, href: str, fills: dict[str, str] | None = None) -> FormSubmission | None:
    """The form a ``javascript:`` link submits, by the recipe's postback rule; None for a plain link."""
    if urlsplit(href.strip()).scheme.lower() != "javascript":
        return None
    fields = recipe.postback.fields(href) if recipe.postback is not None else None
    if fields is None:
        # Our recipe's gap, not the portal's fault: it must say what such a link submits.
        raise CollectorBug(f"{href[:80]!r} at {shown.url} runs a script: describe it with Recipe.postback")
    assert recipe.postback is not None
    return postback(shown.html, shown.url, recipe.postback.form, fields, fills, charset=shown.charset)


async def _click(ctx: CollectContext, recipe: Recipe, shown: Shown, selector: str, fills: dict[str, str]) -> Shown:
    element = find(shown.document, selector)
    if element is None:
        raise InterfaceChanged(f"element {selector!r} not found at {shown.url}")
    href = element.attributes.get("href")
    if element.tag == "a" and href:
        form = _postback(recipe, shown, href, fills)
        if form is not None:
            return await _send(ctx, form)
        return await _open(ctx, urljoin(shown.url, href), logging_in=True)
    kind = (element.attributes.get("type") or ("submit" if element.tag == "button" else "")).lower()
    if element.tag in ("button", "input") and kind in _SUBMIT_TYPES:
        return await _submit(ctx, shown, selector, fills)
    # Clicking anything else only does what a script makes of it: a recipe error, not the portal's.
    raise CollectorBug(f"{selector!r} is neither a link nor a submit button: this recipe needs engine='browser'")


async def _steps(recipe: Recipe, ctx: CollectContext, shown: Shown, steps: list[Step],
                 fills: dict[str, str], *, logging_in: bool) -> Shown:
    """Run ``steps`` from the page shown; ``fills`` typed so far go with the next submission."""
    listing = recipe.listing
    for step in steps:
        if isinstance(step, Goto):
            shown, fills = await _open(ctx, urljoin(ctx.base_url, step.url), logging_in=logging_in), {}
        elif isinstance(step, Click):
            if not step.optional:
                shown, fills = await _click(ctx, recipe, shown, step.selector, fills), {}
        elif isinstance(step, Fill):
            if not shown.has(step.selector):
                raise InterfaceChanged(f"element {step.selector!r} not found at {shown.url}")
            fills[step.selector] = step.typed(ctx.login, ctx.password, today=ctx.today, earliest=listing.earliest)
        elif isinstance(step, Submit):
            shown, fills = await _submit(ctx, shown, step.selector, fills), {}
            if logging_in and recipe.login.failure and shown.has(recipe.login.failure):
                raise LoginFailed("the portal rejected the login or password")
        elif isinstance(step, SetCookie):
            await ctx.set_cookie(step.name, step.value)
        elif isinstance(step, WaitFor) and not shown.has(step.selector):
            raise InterfaceChanged(f"element {step.selector!r} not found at {shown.url}")
    return shown


async def _log_in(recipe: Recipe, ctx: CollectContext) -> Shown:
    login = recipe.login
    shown = await _open(ctx, urljoin(ctx.base_url, login.url), logging_in=True)
    shown = await _steps(recipe, ctx, shown, login.steps, {}, logging_in=True)
    if login.failure and shown.has(login.failure):
        raise LoginFailed("the portal rejected the login or password")
    if not shown.has(login.success):
        # Not necessarily a redesign: the framework reads the page (terms, OTP, maintenance...).
        raise InterfaceChanged(f"after login, neither {login.success!r} nor the failure message is shown")
    return shown


async def collect_over_http(recipe: Recipe, ctx: CollectContext) -> AsyncGenerator[Found]:
    shown = await _log_in(recipe, ctx)
    ctx.mark_logged_in()
    async for document in list_over_http(recipe, ctx, shown):
        yield document


def _choices(recipe: Recipe, shown: Shown) -> list[tuple[str | None, str | None]]:
    """(option value to choose, site to record) for each pass over the list."""
    loop = recipe.listing.each_option
    if loop is None:
        return [(None, None)]
    select = find(shown.document, loop.select)
    if select is None:
        if loop.single is None:
            raise InterfaceChanged(f"selector {loop.select!r} not found at {shown.url}")
        named = read_value(shown.document.root, loop.single) if shown.document.root is not None else None
        if not named or not named.strip():
            raise InterfaceChanged(f"neither {loop.select!r} nor the only site's name at {shown.url}")
        return [(None, named.strip())]
    choices: list[tuple[str | None, str | None]] = []
    for option in select.css("option"):
        if option.attributes.get("disabled") is not None:
            continue
        text = " ".join(text_of(option).split())
        value = option.attributes.get("value")
        value = text if value is None else value
        choices.append((value, text if loop.record == "text" else value))
    if not choices:
        raise InterfaceChanged(f"{loop.select!r} offers no option at {shown.url}")
    return choices


async def list_over_http(recipe: Recipe, ctx: CollectContext, shown: Shown | None) -> AsyncGenerator[Found]:
    """Every document of the list, read over HTTP from ``shown`` (the page after the login; None: no
    page yet, as after a login in a browser page): the search steps, once per option of
    ``each_option``, then the list pages, each checked against the portal's own count."""
    listing = recipe.listing
    first = urljoin(ctx.base_url, listing.url)
    if shown is None or shown.url != first:
        shown = await _open(ctx, first)
    at = _At(shown)
    for value, site in _choices(recipe, shown):
        fills = {listing.each_option.select: value} if listing.each_option and value is not None else {}
        at.shown = await _steps(recipe, ctx, at.shown, listing.search, fills, logging_in=False)
        async for document in _pages(recipe, ctx, at, site):
            yield document


@dataclass
class _At:
    """The page the portal showed last: the next form goes from there, with its tokens (WebForms
    accepts only the latest page's)."""

    shown: Shown


async def _pages(recipe: Recipe, ctx: CollectContext, at: _At, site: str | None) -> AsyncGenerator[Found]:
    listing = recipe.listing
    listed = 0
    counted: int | None = None
    shown = at.shown
    for _ in range(listing.max_pages):
        found = read_list(shown.document, listing, recipe.download.headers)
        if not found.container:
            raise InterfaceChanged(f"list {listing.container!r} not found at {shown.url}")
        if listing.count is not None and counted is None:
            counted = portal_count(found.count, shown.url)
        headers = {name: value for name, value in found.headers.items() if value}
        refs = refs_from_rows(found.rows, listing, shown.url, site=site)
        listed += len(refs)
        wanted, forms = [], []
        for ref in refs:
            if ctx.is_known(ref):
                continue
            form = _postback(recipe, shown, ref.download_url)
            wanted.append(ref if form is None else replace(ref, download_url=form.url))
            forms.append(form)
        async for document in fetch_documents(ctx.http, wanted, headers=headers, forms=forms):
            yield document
        ctx.heartbeat()
        if not found.next_href:
            break
        form = _postback(recipe, shown, found.next_href)
        shown = at.shown = await (_send(ctx, form) if form is not None
                                  else _open(ctx, urljoin(shown.url, found.next_href)))
    else:
        raise InterfaceChanged(f"more than {listing.max_pages} list pages")
    if counted is not None and counted != listed:
        # Pages skipped or misread: say so rather than report a partial history as complete.
        raise InterfaceChanged(f"the portal counts {counted} documents{f' for {site}' if site else ''}; "
                               f"the list pages showed {listed}")


_NUMBER = re.compile(r"\d[\d\s\u00a0\u202f.,']*")


def portal_count(text: str | None, url: str) -> int:
    """The first number of the portal's count ("1 234 document(s)", "Documents : 37")."""
    found = _NUMBER.search(text or "")
    if found is None:
        raise InterfaceChanged(f"the document count is not shown at {url}: {(text or '')[:60]!r}")
    digits = re.sub(r"[\s\u00a0\u202f.,']", "", found.group(0).rstrip(".,' \u00a0\u202f"))
    return int(digits)
