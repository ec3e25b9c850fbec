"""``python -m services.<name>``: one service alone, configured from the environment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shared.logging import configure_logging
from shared.runtime import ServiceRuntime, run_until_signalled
from shared.settings import Settings


def run_standalone(build: Callable[[], ServiceRuntime]) -> None:
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    async def main() -> None:
        await run_until_signalled([build()], health_port=settings.health_port)

    asyncio.run(main())
