"""Collector for the sandbox's "classic" portal: login form, paginated table, one PDF per row."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.scraper.collectors.sandbox_classic import navigation
from services.scraper.kit import CollectContext, Collector, Found, Manifest

MANIFEST = Manifest(
    id="sandbox-classic",
    name="Sandbox — portail classique",
    supplier="Sandbox Répartition",
    portal_url="http://127.0.0.1:8765/classic/",
    login_kind="identifier",
    frequency_hours=24,
    # A local portal: as many sessions as a worker runs jobs.
    max_sessions=16,
)


class SandboxClassicCollector:
    def __init__(self) -> None:
        self.manifest = MANIFEST

    async def collect(self, ctx: CollectContext) -> AsyncIterator[Found]:
        async for document in navigation.collect(ctx):
            yield document


COLLECTOR: Collector = SandboxClassicCollector()

__all__ = ["COLLECTOR", "MANIFEST", "SandboxClassicCollector"]
