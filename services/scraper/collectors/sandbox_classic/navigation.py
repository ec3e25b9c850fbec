"""Reading the classic sandbox portal over HTTP; all HTML understanding is in ``pages``.

A server-drawn portal (a form, tables, links) needs no page: the kit's page-less client logs in by
submitting the form as a browser would (``kit.forms``), in the job's browser context. Timeouts are
the framework's. Nothing here looks for maintenance pages, captchas or terms to accept: when the
invoice table is not where it should be, the collector says so and the framework reads what the
portal last answered to tell why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urljoin

from services.scraper.collectors.sandbox_classic import pages
from services.scraper.kit import (
    CollectContext,
    Found,
    InterfaceChanged,
    LoginFailed,
    fetch_documents,
    page_text,
    submission,
)

# A portal that loops on "Page suivante" must not keep a worker forever.
MAX_PAGES = 500


async def _log_in(ctx: CollectContext) -> tuple[str, str]:
    """Log in; returns the page the portal lands on (the first list page): its URL and HTML."""
    login_url = urljoin(ctx.base_url, "login")
    shown = await ctx.http.get(login_url)
    html = page_text(shown, login_url)
    if not pages.has_login_form(html):
        raise InterfaceChanged("login form not found")
    # Relative to where the form is (the login URL may redirect), in the page's encoding.
    form = submission(html, shown.url, "form#login-form [type=submit]",
                      {"input[name=login]": ctx.login, "input[name=password]": ctx.password}, charset=shown.charset)
    reply = await ctx.http.submit(form)
    # Read once, 401 included: whatever that page says (a lock, terms...) the framework reads if the
    # list is not there; a 401 taken for an expired session would send the password again.
    landed = page_text(reply, form.url, accept=(401,))
    if pages.is_login_error(landed):
        raise LoginFailed("the portal rejected the login or password")
    return reply.url, landed


async def collect(ctx: CollectContext) -> AsyncIterator[Found]:
    page_url, html = await _log_in(ctx)
    ctx.mark_logged_in()
    for _ in range(MAX_PAGES):
        refs, next_url = pages.parse_invoice_list(html, page_url)
        async for found in fetch_documents(ctx.http, [r for r in refs if not ctx.is_known(r)]):
            yield found
        ctx.heartbeat()
        if next_url is None:
            return
        reply = await ctx.http.get(next_url)
        page_url, html = reply.url, page_text(reply, next_url)
    raise InterfaceChanged(f"more than {MAX_PAGES} list pages")
