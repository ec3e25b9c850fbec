"""Driving the SPA portal: log in through its own screen (so its cookies and CSRF token are the
ones a person would get), then read the invoices from the JSON API the app itself uses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin

from playwright.async_api import Response

from services.scraper.collectors.sandbox_spa import pages
from services.scraper.kit import (
    CollectContext,
    Found,
    InterfaceChanged,
    fetch_documents,
    page_fill_and_click,
    raise_for_status,
)

MAX_PAGES = 500


async def _json(response: Response, what: str) -> Any:
    try:
        return json.loads(await response.body())
    except ValueError:
        raise InterfaceChanged(f"{what}: HTTP {response.status}, not JSON") from None


async def _log_in(ctx: CollectContext) -> str:
    page = await ctx.open_page()  # a JavaScript app: it needs a real page to draw its login
    response = await page.goto(ctx.base_url)
    if response is not None:
        raise_for_status(response.status, response.headers, ctx.base_url)
    # The app draws its login screen once it has its CSRF token: the fields are waited for.
    async with page.expect_response(
            lambda r: r.url.endswith("/api/login") and r.request.method == "POST") as reply_info:
        await page_fill_and_click(page, {"#spa-login": ctx.login, "#spa-password": ctx.password}, "#spa-submit",
                                  timeout_ms=ctx.http.timeout_ms)
    reply = await reply_info.value
    if reply.status not in (200, 401, 403):
        raise_for_status(reply.status, reply.headers, reply.url)
    return pages.parse_login(reply.status, await _json(reply, "login reply"))


async def collect(ctx: CollectContext) -> AsyncIterator[Found]:
    csrf = await _log_in(ctx)
    # The session is in the context's cookies and the token in hand: the app's own API is read
    # over HTTP, and the page, which would go on drawing the list, is closed.
    await ctx.close_page()
    ctx.mark_logged_in()
    headers = {pages.CSRF_HEADER: csrf}
    api_url = urljoin(ctx.base_url, "api/invoices")
    number = 1
    while True:
        if number > MAX_PAGES:
            raise InterfaceChanged(f"more than {MAX_PAGES} list pages")
        reply = await ctx.http.get(f"{api_url}?page={number}", headers=headers)
        raise_for_status(reply.status, reply.headers, api_url)
        if reply.status != 200:
            raise InterfaceChanged(f"invoice list: HTTP {reply.status}")
        listing = pages.parse_invoice_page(reply.json("invoice list"), api_url)
        new_refs = [ref for ref in listing.refs if not ctx.is_known(ref)]
        async for found in fetch_documents(ctx.http, new_refs, headers=headers):
            yield found
        ctx.heartbeat()
        if listing.page >= listing.page_count:
            return
        number += 1
