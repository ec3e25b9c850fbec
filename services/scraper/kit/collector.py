"""The collector plugin protocol.

A collector is a manifest plus an async generator that logs in with the given credentials on a
fresh Playwright page and yields every document it finds. Navigation lives in the collector's
``navigation`` module, pure parsing in its ``pages`` module (unit-tested on saved pages). Simple
portals need no code at all: a :class:`~services.scraper.kit.recipe.Recipe` describes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from playwright.async_api import Page

from services.scraper.kit.invoice import CollectedDocument, MissingDocument
from services.scraper.kit.manifest import Manifest

Found = CollectedDocument | MissingDocument


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
    # Set once the portal accepted the credentials: a login page met after that point means the
    # session expired, not that the portal changed.
    logged_in: bool = False

    def mark_logged_in(self) -> None:
        self.logged_in = True

    @property
    def base_url(self) -> str:
        """The portal URL with its trailing slash, so relative URLs join under it."""
        return self.portal_url if self.portal_url.endswith("/") else self.portal_url + "/"


class Collector(Protocol):
    manifest: Manifest

    def collect(self, ctx: CollectContext) -> AsyncIterator[Found]: ...
