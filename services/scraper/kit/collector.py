"""The collector plugin protocol.

A collector is a manifest plus an async generator that logs in with the given credentials on a
fresh Playwright page and yields every document it finds. Navigation lives in the collector's
``navigation`` module, pure HTML parsing in its ``pages`` module (unit-tested on saved HTML).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from playwright.async_api import Page

from services.scraper.kit.invoice import CollectedDocument
from services.scraper.kit.manifest import Manifest


@dataclass
class CollectContext:
    page: Page
    portal_url: str  # base URL to use (the manifest's, or an override such as a local sandbox)
    login: str
    password: str
    # Numbers of documents the ledger already holds for this account: a collector may skip
    # downloading them (the framework dedups anyway).
    known_numbers: frozenset[str] = frozenset()
    # Called during long work so the job's in-progress ack keeps the message ours.
    heartbeat: Callable[[], None] = field(default=lambda: None)


class Collector(Protocol):
    manifest: Manifest

    def collect(self, ctx: CollectContext) -> AsyncIterator[CollectedDocument]: ...
