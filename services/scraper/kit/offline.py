"""A collector's session recorded once against the real portal, then replayed offline in tests.

Pages and the page-less client are recorded into one HAR file, and both are answered from it on
replay: what a page loads through Playwright (``record_har_path``, ``route_from_har``), what
``ctx.http`` reads through ``kit.har`` (Playwright neither records nor replays that client).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext

from services.scraper.kit.har import HarRecorder, HarReplay
from services.scraper.kit.portal_http import PortalHttp


@asynccontextmanager
async def har_session(browser: Browser, *, record: Path | None = None,
                      replay: Path | None = None) -> AsyncIterator[tuple[BrowserContext, PortalHttp]]:
    """A fresh context and its HTTP client, recording everything to ``record``, or answered only
    from ``replay`` (whatever the recording lacks fails instead of reaching the network)."""
    if record is not None and replay is not None:
        raise ValueError("record or replay, not both")
    options: dict[str, Any] = {}
    if record is not None:
        options = {"record_har_path": str(record), "record_har_content": "embed"}
    context = await browser.new_context(**options)
    recorder = HarRecorder() if record is not None else None
    try:
        if replay is not None:
            await context.route_from_har(replay, not_found="abort")
        http = PortalHttp(context, recorder=recorder,
                          replay=HarReplay.load(replay) if replay is not None else None)
        yield context, http
    finally:
        await context.close()  # writes the pages' part of the recording
        if recorder is not None and record is not None:
            recorder.save(record)
