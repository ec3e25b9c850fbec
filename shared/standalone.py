"""``python -m services.<name>``: one service alone, configured from the environment."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import structlog

from shared.journal import StoreLocked
from shared.logging import configure_logging
from shared.mongo import EMBEDDED_SUBDIR, is_memory_url, use_embedded_store, use_in_memory
from shared.runtime import ServiceRuntime, run_until_signalled
from shared.settings import Settings

NO_DATABASE = ("no database: set MONGODB_URL, or COLLECTORS_DATA_DIR for the durable embedded store, "
               "or COLLECTORS_IN_MEMORY=1 to keep nothing")


def choose_database(settings: Settings) -> str | None:
    """Without MONGODB_URL, a standalone service uses the durable embedded store in the data dir it was
    given, or memory if told so explicitly; otherwise it refuses (the message is returned): a service
    never keeps its data in a private in-memory database without saying so."""
    log = structlog.get_logger("collectors.storage")
    if settings.in_memory or is_memory_url(settings.mongodb_url):
        use_in_memory()
        log.warning("mongodb_in_memory", detail="the IN-MEMORY stand-in, as asked: nothing is kept")
        return None
    if settings.mongodb_url:
        return None
    if "data_dir" not in settings.model_fields_set:
        return NO_DATABASE
    use_embedded_store(settings.data_dir)
    log.info("mongodb_embedded", directory=str(settings.data_dir / EMBEDDED_SUBDIR))
    return None


def run_standalone(build: Callable[[], ServiceRuntime]) -> None:
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    refusal = choose_database(settings)
    if refusal is not None:
        sys.exit(f"collectors: {refusal}")

    async def main() -> int:
        try:
            runtime = build()  # opens the service's database: one another process holds fails here
        except StoreLocked as exc:
            sys.exit(f"collectors: {exc}")
        return await run_until_signalled([runtime], health_port=settings.health_port)

    # Non-zero when the service could not recover (ServiceRuntime.fail): its supervisor restarts it.
    sys.exit(asyncio.run(main()))
