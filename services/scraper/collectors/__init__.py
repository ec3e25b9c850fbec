"""The collector plugins this worker can run."""

from __future__ import annotations

from services.scraper.kit import Collector


def builtin_collectors() -> dict[str, Collector]:
    # Imported here so that listing plugins never costs anything at import time of the package.
    from services.scraper.collectors.sandbox_classic import COLLECTOR as sandbox_classic

    collectors = [sandbox_classic]
    return {c.manifest.id: c for c in collectors}
