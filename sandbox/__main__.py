"""``python -m sandbox [--host 127.0.0.1] [--port 8765] [--slow-s 1.5]``: serve the sandbox portals
until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from sandbox.faults import FaultOptions
from sandbox.portal import STYLES, start_portal


async def _serve(host: str, port: int, slow_s: float) -> None:
    portal = await start_portal(host, port, slow_s=slow_s)
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
    parser.add_argument("--slow-s", type=float, default=FaultOptions.slow_s,
                        help="how long each page of a fault-slow-* login takes")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.slow_s))


if __name__ == "__main__":
    main()
