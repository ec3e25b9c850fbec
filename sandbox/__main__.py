"""``python -m sandbox [--host 127.0.0.1] [--port 8765] [--slow-s 1.5] [--prepare FILE]``: serve the
sandbox portals until Ctrl-C (``--prepare``: first render the PDFs of the ``style<TAB>login`` lines
of FILE, ``sandbox.prepare``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from datetime import date
from pathlib import Path

from sandbox.faults import FaultOptions
from sandbox.portal import STYLES, start_portal
from sandbox.prepare import prepare, read_pairs


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
    parser.add_argument("--prepare", type=Path, metavar="FILE",
                        help="render first the PDFs of these logins (lines 'style<TAB>login'), then serve")
    args = parser.parse_args()
    if args.prepare is not None:
        started = time.perf_counter()
        rendered = prepare(read_pairs(args.prepare), date.today())
        print(f"Prepared {rendered} PDFs in {time.perf_counter() - started:.1f} s", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.slow_s))


if __name__ == "__main__":
    main()
