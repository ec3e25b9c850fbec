"""Collector for the sandbox's single-page app: UI login, then the app's JSON API with its CSRF token."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.scraper.collectors.sandbox_spa import navigation
from services.scraper.kit import CollectContext, Collector, Found, Manifest

MANIFEST = Manifest(
    id="sandbox-spa",
    name="Sandbox — application web (SPA)",
    supplier="Sandbox Répartition",
    portal_url="http://127.0.0.1:8765/spa/",
    login_kind="identifier",
    frequency_hours=24,
    max_sessions=16,
)


class SandboxSpaCollector:
    def __init__(self) -> None:
        self.manifest = MANIFEST

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        async for found in navigation.collect(ctx):
            yield found


COLLECTOR: Collector = SandboxSpaCollector()

__all__ = ["COLLECTOR", "MANIFEST", "SandboxSpaCollector"]
