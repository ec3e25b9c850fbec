"""A collector's session recorded once against the real portal, then replayed offline in tests.

Pages and the page-less client are recorded into one HAR file, and both are answered from it on
replay: what a page loads through Playwright (``record_har_path``, ``route_from_har``), what
``ctx.http`` reads through ``kit.har`` (Playwright neither records nor replays that client).

A recording replays whatever host it was made on: given the run's ``portal_url``, the recorded
portal's origin is mapped to that one (a sandbox on another port, a local copy of the portal).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from playwright.async_api import Browser, BrowserContext

from services.scraper.kit.har import HarRecorder, HarReplay, load_har
from services.scraper.kit.portal_http import PortalHttp

HttpFactory = Callable[..., PortalHttp]


def portal_url_for(manifest_url: str, override: str | None) -> str:
    """The portal URL a run uses: the manifest's, or ``override`` in its place. An override without
    a path (``http://127.0.0.1:9000``) keeps the manifest's path, as the platform's sandbox
    rewrite does; one with a path is used as given."""
    if not override:
        return manifest_url
    if urlparse(override).path.strip("/"):
        return override
    return override.rstrip("/") + (urlparse(manifest_url).path or "/")


@asynccontextmanager
async def har_session(browser: Browser, *, record: Path | None = None, replay: Path | None = None,
                      portal_url: str | None = None, http_factory: HttpFactory = PortalHttp,
                      **context_options: Any) -> AsyncIterator[tuple[BrowserContext, PortalHttp]]:
    """A fresh context and its HTTP client, recording everything to ``record``, or answered only
    from ``replay`` (whatever the recording lacks fails instead of reaching the network).

    ``portal_url``: the run's portal, to which a replayed recording's portal origin is mapped.
    ``http_factory``: makes the client (``PortalHttp`` or a subclass). ``context_options`` go to
    ``browser.new_context``."""
    if record is not None and replay is not None:
        raise ValueError("record or replay, not both")
    options: dict[str, Any] = dict(context_options)
    if record is not None:
        options |= {"record_har_path": str(record), "record_har_content": "embed"}
    with tempfile.TemporaryDirectory(prefix="collectors-har-") as scratch:
        replay_path = replay
        if replay is not None and portal_url is not None:
            replay_path = Path(scratch) / "replay.har"
            replay_path.write_text(json.dumps(load_har(replay, portal_url)), encoding="utf-8")
        context = await browser.new_context(**options)
        recorder = HarRecorder() if record is not None else None
        try:
            if replay_path is not None:
                await context.route_from_har(replay_path, not_found="abort")
            http = http_factory(context, recorder=recorder,
                                replay=HarReplay.load(replay_path) if replay_path is not None else None)
            yield context, http
        finally:
            await context.close()  # writes the pages' part of the recording
            if recorder is not None and record is not None:
                recorder.save(record)
