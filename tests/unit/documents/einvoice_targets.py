"""Misbehaving stand-ins for ``extract``, run by ``run_in_child`` in the isolation tests.

Module-level functions so the forkserver child can import them by name.
"""

from __future__ import annotations

import os
import time

from shared.invoice_data import DataWarning, Extraction


def abort(data: bytes, *, filename: str | None = None) -> Extraction:
    os.abort()  # a crash in C code: SIGABRT, no Python cleanup


def hang(data: bytes, *, filename: str | None = None) -> Extraction:
    time.sleep(3600)  # a parser spinning forever
    raise AssertionError("unreachable")


def hog(data: bytes, *, filename: str | None = None) -> Extraction:
    # Keeps allocating until the address-space limit stops it (an uncaught MemoryError: exit 1).
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))


def echo(data: bytes, *, filename: str | None = None) -> Extraction:
    return Extraction(source="none", attachment=filename)


def pid(data: bytes, *, filename: str | None = None) -> Extraction:
    return Extraction(source="none", attachment=str(os.getpid()))


def niceness(data: bytes, *, filename: str | None = None) -> Extraction:
    """The worker's niceness, as the warning's message (its priority against the scraper's)."""
    return Extraction(source="none", warnings=[DataWarning(code="niceness", message=str(os.nice(0)))])


def interrupt_self(data: bytes, *, filename: str | None = None) -> Extraction:
    """Sends itself SIGINT (as Ctrl-C does to a terminal's process group), then answers."""
    import signal

    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
    return Extraction(source="none", attachment="still here")
