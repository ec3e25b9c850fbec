"""The collector plugins this worker can run."""

from __future__ import annotations

from services.scraper.kit import Collector


def builtin_collectors() -> dict[str, Collector]:
    # Imported here so that listing plugins never costs anything at import time of the package.
    from services.scraper.collectors.sandbox_classic import COLLECTOR as sandbox_classic
    from services.scraper.collectors.sandbox_legacy import COLLECTOR as sandbox_legacy
    from services.scraper.collectors.sandbox_spa import COLLECTOR as sandbox_spa
    from services.scraper.collectors.sandbox_twostep import COLLECTOR as sandbox_twostep

    collectors = [sandbox_classic, sandbox_twostep, sandbox_spa, sandbox_legacy]
    return {c.manifest.id: c for c in collectors}
