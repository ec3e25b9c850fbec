"""``extract_isolated``: ``extract`` in a child process with a memory ceiling and a deadline.

A parser bug or a hostile file can still exhaust memory or spin inside C code (libxml2, zlib)
where no Python limit reaches; in a child with ``RLIMIT_AS`` and a kill at the deadline, the
worst it does is die, and the caller (the documents service) reads a warning instead.

The child comes from a forkserver that has already imported the extractor, so a call costs a
fork, not a fresh interpreter (``spawn`` re-imports lxml, pypdf, pydantic and factur-x every time).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from shared.invoice_data import DataWarning, Extraction

Target = Callable[..., Extraction]

# The reply of a child is the model's JSON; past this it is a child gone wrong, not an invoice.
_MAX_REPLY_BYTES = 64 * 1024 * 1024

_context = multiprocessing.get_context("forkserver")
# "__main__" too: the server imports the program's main module once, so a child does not re-run
# it (multiprocessing re-imports the main module in every child it prepares otherwise: 0.5 s a
# call under pytest, whose main imports half the world).
_context.set_forkserver_preload(["__main__", "services.documents.einvoice.extract", "facturx.parse_xml"])


def _child_main(conn: Connection, target: Target, filename: str | None, memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    data = conn.recv_bytes()
    result = target(data, filename=filename)
    conn.send_bytes(result.model_dump_json().encode())
    conn.close()


def _failed(code: str, message: str) -> Extraction:
    return Extraction(source="none", warnings=[DataWarning(code=code, message=message)])


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def run_in_child(
    target: Target, data: bytes, *, filename: str | None = None, timeout_s: float = 20.0, memory_mb: int = 512
) -> Extraction:
    """``target(data, filename=...)`` in a forkserver child; blocking. ``target`` must be importable
    by name (a module-level function): tests pass misbehaving ones."""
    deadline = time.monotonic() + timeout_s
    parent, child = _context.Pipe(duplex=True)
    process = _context.Process(target=_child_main, args=(child, target, filename, memory_mb), daemon=True)
    try:
        process.start()
        child.close()
        try:
            parent.send_bytes(data)
            if not parent.poll(max(0.0, deadline - time.monotonic())):
                process.kill()
                process.join(5)
                return _failed("extraction_timeout", f"extraction took more than {timeout_s:g} s; stopped")
            reply = parent.recv_bytes(_MAX_REPLY_BYTES)
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            process.join(5)
            return _failed(
                "extraction_crashed",
                f"the extraction process died ({_describe_exit(process.exitcode)}): "
                f"a crash, or over its {memory_mb} MB memory limit",
            )
        process.join(5)
        try:
            return Extraction.model_validate_json(reply)
        except ValueError as exc:
            return _failed("extraction_crashed", f"the extraction process replied nonsense: {exc}")
    finally:
        if process.is_alive():
            process.kill()
            process.join(5)
        parent.close()
        if process.exitcode is not None:
            process.close()


async def extract_isolated(
    data: bytes, *, filename: str | None = None, timeout_s: float = 20.0, memory_mb: int = 512
) -> Extraction:
    """``extract(data)`` in a child process limited to ``memory_mb`` of address space and ``timeout_s``.

    A child that is killed, crashes or times out gives ``Extraction(source="none")`` with an
    ``extraction_timeout`` / ``extraction_crashed`` warning; the caller never sees the exception.
    The wait runs in a thread: cancelling the awaiting task leaves the child to its deadline.
    """
    from services.documents.einvoice.extract import extract

    return await asyncio.to_thread(
        run_in_child, extract, data, filename=filename, timeout_s=timeout_s, memory_mb=memory_mb
    )
