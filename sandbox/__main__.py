"""``python -m sandbox [--host 127.0.0.1] [--port 8765]``: serve the sandbox portal until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from sandbox.portal import STYLES, start_portal


async def _serve(host: str, port: int) -> None:
    portal = await start_portal(host, port)
    try:
        print(f"Sandbox portal on {portal.url}/ (password: demo)", flush=True)
        for prefix in STYLES:
            print(f"  {portal.url}/{prefix}/", flush=True)
        await asyncio.Event().wait()
    finally:
        await portal.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
