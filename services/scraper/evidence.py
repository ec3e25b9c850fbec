"""What a run was shown, kept for the collector team: the trail of its requests always, and for a
failed run (or a sampled successful one) its last page's HTML, a screenshot and a HAR, scrubbed.

- ``RunRecorder`` follows one run: every exchange of the page-less client (``PortalHttp.listen``,
  with its timing) and every answer to the context's pages (``BrowserContext.on("response")``) make
  the trail; the page-less client's exchanges are also kept as HAR entries *in memory* (as
  ``HarRecorder`` does for ``collectors dev record``, without the documents' bodies), dropped when
  the run succeeds. The pages' own HAR is Playwright's (``record_har_path`` of the job's context,
  as ``kit.offline.har_session``), written to a scratch file when the context closes.
- ``snapshot`` takes the last page shown (``Witness``) and a PNG of the open page when the run fails,
  before its context closes.
- ``build_evidence`` merges both HARs and scrubs everything with ``kit.har``'s scrubbing (the password
  in every encoding, cookie values, credentials, tokens: ``scrub_har_document``), the page and the
  trail's URLs with the same replacements; the HAR is capped at ``max_bytes`` by dropping bodies
  (largest first), which the manifest says.
- ``EvidenceStore`` keeps the files in the ``collectors-evidence`` Object Store bucket under
  ``<run_id>/<file>``; NATS expires them after the retention (the bucket's TTL, its stream's max_age).

A run's id is a fresh uuid (hex) per attempt: a job redelivered after a crash is a second run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import BadRequestError
from nats.js.object_store import ObjectStore
from playwright.async_api import BrowserContext, Response
from playwright.async_api import Error as PlaywrightError
from pydantic import BaseModel

from services.scraper.downloads import Slice, read_slice
from services.scraper.kit.collector import CollectContext
from services.scraper.kit.har import HarRecorder, Scrubber, scrub_har_document
from services.scraper.kit.reply import HttpReply
from services.scraper.kit.stream import Download
from shared import api
from shared.subjects import EVIDENCE_BUCKET

# A run's trail stops growing here (a portal looping on redirects must not fill the run index).
MAX_TRAIL = 1000
SCREENSHOT_TIMEOUT_S = 3.0
_PDF = "application/pdf"


@dataclass(frozen=True)
class EvidencePolicy:
    max_bytes: int = 5 * 1024 * 1024
    retention_s: float = 14 * 86400.0
    # collector id -> share of its successful runs that keep full evidence too
    sample: Mapping[str, float] = field(default_factory=dict)

    def keep_success(self, collector_id: str) -> bool:
        rate = self.sample.get(collector_id, 0.0)
        return rate > 0 and random.random() < rate


def parse_sample(text: str) -> dict[str, float]:
    """``COLLECTORS_EVIDENCE_SAMPLE``: ``collector-id=0.1,other=1`` (shares between 0 and 1)."""
    rates: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        collector_id, sep, rate = part.partition("=")
        if not sep:
            raise ValueError(f"COLLECTORS_EVIDENCE_SAMPLE: {part!r} is not collector-id=share")
        value = float(rate)
        if not 0 <= value <= 1:
            raise ValueError(f"COLLECTORS_EVIDENCE_SAMPLE: {part!r}: the share must be between 0 and 1")
        rates[collector_id.strip()] = value
    return rates


@dataclass
class Snapshot:
    url: str = ""
    html: str = ""
    screenshot: bytes | None = None


class RunRecorder:
    """The trail of one run, and the page-less client's exchanges as HAR entries (in memory)."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self.trail: list[api.TrailEntry] = []
        self.dropped = 0
        self.http_har = HarRecorder()
        self.snapshot: Snapshot | None = None
        self._contexts: list[BrowserContext] = []

    def watch(self, ctx: CollectContext) -> None:
        ctx.http.listen(self._exchanged)
        if ctx.browser_context is not None:
            self._watch_pages(ctx.browser_context)
        elif self._watch_pages not in ctx.context_opened:
            ctx.context_opened.append(self._watch_pages)  # a job's context opens with its first page

    def _watch_pages(self, context: BrowserContext) -> None:
        if context not in self._contexts:
            context.on("response", self._page_answered)
            self._contexts.append(context)

    def stop(self) -> None:
        for context in self._contexts:
            context.remove_listener("response", self._page_answered)
        self._contexts.clear()

    def _add(self, method: str, url: str, status: int, ms: float, via: str, error: str | None = None) -> None:
        if len(self.trail) >= MAX_TRAIL:
            self.dropped += 1
            return
        self.trail.append(api.TrailEntry(at_ms=round((time.perf_counter() - self._started) * 1000, 1),
                                         method=method, url=url, status=status, ms=round(ms, 1),
                                         via=via, error=error))

    def _exchanged(self, method: str, url: str, headers: Mapping[str, str], body: str | None,
                   reply: HttpReply, ms: float) -> None:
        self._add(method, url, reply.status, ms, "http", reply.error)
        if reply.status == 0:
            return
        if isinstance(reply, Download) or reply.headers.get("content-type", "").startswith(_PDF):
            # A document's bytes are no evidence (and may be megabytes): its headers are.
            reply = HttpReply(reply.status, reply.url, reply.headers, b"")
        self.http_har.add(method, url, headers, body, reply)
        self.http_har.entries[-1]["time"] = round(ms, 1)

    def _page_answered(self, response: Response) -> None:
        request = response.request
        try:
            timing = request.timing
            ms = max(0.0, float(timing.get("responseStart", 0)))
        except PlaywrightError:
            ms = 0.0
        self._add(request.method, response.url, response.status, ms, "page")


async def snapshot(ctx: CollectContext) -> Snapshot:
    """The last page the run was shown (HTML) and, while a page is open, what it looked like."""
    shown = await ctx.witness.evidence(logged_in=ctx.logged_in)
    picture: bytes | None = None
    page = ctx.page
    # Never what fails a run: a page that cannot be drawn (closed, crashed, a test's fake) has no picture.
    with contextlib.suppress(PlaywrightError, TimeoutError, AttributeError):
        if page is not None and not page.is_closed():
            # Playwright's own timeout (it stops waiting in the driver too); a page still loading from a
            # silent host would otherwise hold the failed run's report that long.
            picture = await asyncio.wait_for(page.screenshot(type="png", full_page=True,
                                                             timeout=SCREENSHOT_TIMEOUT_S * 1000),
                                             SCREENSHOT_TIMEOUT_S + 1)
    return Snapshot(url=shown.url, html=shown.html, screenshot=picture)


# --- what is kept ----------------------------------------------------------------------------------


class EvidenceManifest(BaseModel):
    run_id: str
    collector_id: str
    status: api.RunStatus
    error_code: str | None = None
    page_url: str = ""
    files: list[api.EvidenceFile]
    har_entries: int = 0
    har_bodies_dropped: int = 0
    note: str = ""
    expires_at: datetime


@dataclass
class Evidence:
    files: dict[str, bytes]  # evidence file name -> content
    trail: list[api.TrailEntry] = field(default_factory=list)  # scrubbed
    page_url: str = ""
    note: str = ""
    har_entries: int = 0
    har_bodies_dropped: int = 0


def scrubbed_trail(trail: list[api.TrailEntry], scrub: Scrubber) -> list[api.TrailEntry]:
    return [entry.model_copy(update={"url": scrub(entry.url),
                                     "error": scrub(entry.error) if entry.error else entry.error})
            for entry in trail]


def password_scrubber(password: str) -> Scrubber:
    """The password's replacements alone: what a successful run's trail (URLs) is scrubbed with."""
    return scrub_har_document({"log": {"entries": []}}, password)


def _empty_har() -> dict[str, Any]:
    return {"log": {"version": "1.2", "creator": {"name": "collectors", "version": "1"}, "pages": [], "entries": []}}


def _load_page_har(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return _empty_har()
    try:
        har: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _empty_har()
    return har


def _body_size(entry: dict[str, Any]) -> int:
    content = entry.get("response", {}).get("content", {})
    return len(str(content.get("text", "")))


def _capped(har: dict[str, Any], max_bytes: int) -> tuple[bytes, int]:
    """The HAR as JSON within ``max_bytes``: answers' bodies dropped, largest first, until it fits
    (then requests' bodies). Returns the bytes and how many bodies were dropped."""
    data = json.dumps(har).encode()
    if len(data) <= max_bytes:
        return data, 0
    entries: list[dict[str, Any]] = har["log"]["entries"]
    excess = len(data) - max_bytes
    dropped = 0
    for entry in sorted(entries, key=_body_size, reverse=True):
        size = _body_size(entry)
        if size == 0 or excess <= 0:
            break
        content = entry["response"]["content"]
        content.pop("text", None)
        content.pop("encoding", None)
        content["comment"] = "body dropped: the evidence's size cap"
        excess -= size
        dropped += 1
    data = json.dumps(har).encode()
    if len(data) > max_bytes:
        for entry in entries:
            post = entry.get("request", {}).get("postData")
            if post is not None and post.get("text"):
                post["text"] = ""
                post["comment"] = "body dropped: the evidence's size cap"
                dropped += 1
        data = json.dumps(har).encode()
    return data, dropped


def build_evidence(recorder: RunRecorder, page_har: Path | None, password: str, max_bytes: int) -> Evidence:
    """The run's files, scrubbed, the HAR within ``max_bytes``."""
    har = _load_page_har(page_har)
    har["log"]["entries"] = sorted([*har["log"].get("entries", []), *recorder.http_har.entries],
                                   key=lambda e: str(e.get("startedDateTime", "")))
    scrub = scrub_har_document(har, password)
    files: dict[str, bytes] = {}
    trail = scrubbed_trail(recorder.trail, scrub)
    files["trail.json"] = json.dumps({"requests": [t.model_dump(mode="json") for t in trail],
                                      "dropped": recorder.dropped}, indent=1).encode()
    notes: list[str] = []
    shot = recorder.snapshot
    if shot is not None and shot.html:
        html = scrub(shot.html).encode()
        if len(html) > max_bytes:
            html = html[:max_bytes]
            notes.append(f"page.html cut at {max_bytes} bytes")
        files["page.html"] = html
    if shot is not None and shot.screenshot:
        files["screenshot.png"] = shot.screenshot
    data, dropped = _capped(har, max_bytes)
    if len(data) <= max_bytes:
        files["run.har"] = data
        if dropped:
            notes.append(f"run.har: {dropped} bodies dropped to stay within {max_bytes} bytes")
    else:
        notes.append(f"run.har left out: {len(data)} bytes even without bodies (cap {max_bytes})")
    return Evidence(files=files, trail=trail, page_url=scrub(shot.url) if shot is not None else "",
                    note="; ".join(notes), har_entries=len(har["log"]["entries"]), har_bodies_dropped=dropped)


def describe(files: Mapping[str, bytes]) -> list[api.EvidenceFile]:
    return [api.EvidenceFile(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
            for name, data in files.items()]


# --- the bucket ------------------------------------------------------------------------------------


def bucket_config(retention_s: float, replicas: int = 1) -> ObjectStoreConfig:
    """The evidence bucket: NATS itself removes what is older than the retention (its stream's max_age)."""
    return ObjectStoreConfig(bucket=EVIDENCE_BUCKET, ttl=retention_s, storage=StorageType.FILE, replicas=replicas,
                             description="Scrubbed evidence of failed scraper runs")


async def open_bucket(js: JetStreamContext, retention_s: float, replicas: int = 1) -> ObjectStore:
    """The evidence bucket, created with the retention; one created with another retention gets this one."""
    config = bucket_config(retention_s, replicas)
    try:
        return await js.create_object_store(EVIDENCE_BUCKET, config)
    except BadRequestError:  # it exists with another configuration: the setting wins
        info = await js.stream_info(f"OBJ_{EVIDENCE_BUCKET}")
        info.config.max_age = retention_s
        await js.update_stream(info.config)
        return await js.object_store(EVIDENCE_BUCKET)


def object_name(run_id: str, name: str) -> str:
    return f"{run_id}/{name}"


class EvidenceStore:
    def __init__(self, store: ObjectStore, js: JetStreamContext) -> None:
        self.store = store
        self.js = js

    async def put(self, run_id: str, files: Mapping[str, bytes]) -> None:
        for name, data in files.items():
            await self.store.put(object_name(run_id, name), data)

    async def read(self, run_id: str, name: str, offset: int, cursor: str | None, limit: int) -> Slice:
        return await read_slice(self.js, self.store, object_name(run_id, name), offset, cursor, limit,
                                bucket=EVIDENCE_BUCKET)


def expires_at(finished_at: datetime, policy: EvidencePolicy) -> datetime:
    return finished_at + timedelta(seconds=policy.retention_s)
