"""What every API command of the CLI shares: its options and one connection per command, with the
"unavailable" error as a clean message (never a traceback)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from collectors.output import fail
from shared.client import ApiClient
from shared.errors import RemoteApiError

T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NatsOpt = Annotated[str, typer.Option("--nats-url", envvar="NATS_URL", help="NATS server of the platform.")]
DEFAULT_NATS = "nats://127.0.0.1:4222"


def run_api(as_json: bool, nats_url: str, work: Callable[[ApiClient], Awaitable[T]]) -> T:
    """Connect, run ``work`` with the client, close; a refusal or an unreachable NATS ends the command."""
    async def main() -> T:
        try:
            client = await ApiClient.connect(nats_url)
        except Exception as exc:
            raise RemoteApiError("unavailable", f"cannot reach NATS at {nats_url}: {exc}. "
                                 "Is `collectors up` running?") from exc
        try:
            return await work(client)
        finally:
            await client.close()

    try:
        return asyncio.run(main())
    except RemoteApiError as exc:
        fail(exc, as_json)
