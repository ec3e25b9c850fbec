"""``extract_isolated``: ``extract`` in a worker process with a memory ceiling and a deadline.

A parser bug or a hostile file can still exhaust memory or spin inside C code (libxml2, zlib)
where no Python limit reaches; in a worker with ``RLIMIT_AS`` and a kill at the deadline, the
worst it does is die, and the caller (the documents service) reads a warning instead.

Workers are kept between documents: a fresh process per document cost ~0.45 s here, because
multiprocessing re-runs the parent's main script in every child it starts (Python 3.11's
forkserver does not honour a "__main__" preload) and the child compiles the XSD schemas again.
A worker that crashed, timed out or served ``MAX_DOCUMENTS_PER_WORKER`` documents is replaced;
one that answered goes back to the idle list. Workers come from a forkserver (never a fork of
the service itself, whose threads and event loop must not be copied).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from shared.invoice_data import DataWarning, Extraction

Target = Callable[..., Extraction]

# The reply of a worker is the model's JSON; past this it is a worker gone wrong, not an invoice.
_MAX_REPLY_BYTES = 64 * 1024 * 1024
# Recycled now and then, so one document's heap fragmentation does not weigh on the next thousand.
MAX_DOCUMENTS_PER_WORKER = 500

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["services.documents.einvoice.extract"])


# Reading invoices is enrichment, after the fact: on a node it shares, it gives the CPU to
# collecting them (the scraper, NATS) and catches up when they are idle.
WORKER_NICENESS = 10


def _worker_main(conn: Connection, memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.nice(WORKER_NICENESS)
    # Ctrl-C in a terminal reaches the whole process group: the service stops its workers itself
    # (shutdown_workers); a worker that raised KeyboardInterrupt only printed a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            target, filename = conn.recv()
        except EOFError:  # the parent closed its end: this worker is retired
            return
        data = conn.recv_bytes()
        result = target(data, filename=filename)
        conn.send_bytes(result.model_dump_json().encode())
        del data, result


class _Worker:
    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.conn, child = _context.Pipe(duplex=True)
        self.process: BaseProcess = _context.Process(target=_worker_main, args=(child, memory_mb), daemon=True)
        self.process.start()
        child.close()
        self.served = 0

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


_idle: dict[int, list[_Worker]] = {}
_idle_lock = threading.Lock()


def _take(memory_mb: int) -> _Worker:
    with _idle_lock:
        pool = _idle.setdefault(memory_mb, [])
        while pool:
            worker = pool.pop()
            if worker.process.is_alive():
                return worker
            worker.stop()
    return _Worker(memory_mb)


def _give_back(worker: _Worker) -> None:
    if worker.served >= MAX_DOCUMENTS_PER_WORKER:
        worker.stop()
        return
    with _idle_lock:
        _idle.setdefault(worker.memory_mb, []).append(worker)


def shutdown_workers() -> None:
    """Stops the idle workers (a stopping service; tests). Busy ones stop when their call ends."""
    with _idle_lock:
        workers = [w for pool in _idle.values() for w in pool]
        _idle.clear()
    for worker in workers:
        worker.stop()


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
    """``target(data, filename=...)`` in a worker process; blocking. ``target`` must be importable
    by name (a module-level function): tests pass misbehaving ones."""
    deadline = time.monotonic() + timeout_s
    worker = _take(memory_mb)
    answered = False
    try:
        try:
            worker.conn.send((target, filename))
            worker.conn.send_bytes(data)
            if not worker.conn.poll(max(0.0, deadline - time.monotonic())):
                return _failed("extraction_timeout", f"extraction took more than {timeout_s:g} s; stopped")
            reply = worker.conn.recv_bytes(_MAX_REPLY_BYTES)
        except (EOFError, OSError):
            worker.process.join(5)
            return _failed(
                "extraction_crashed",
                f"the extraction process died ({_describe_exit(worker.process.exitcode)})"
                f": a crash, or over its {memory_mb} MB memory limit",
            )
        answered = True
        worker.served += 1
        try:
            return Extraction.model_validate_json(reply)
        except ValueError as exc:
            answered = False
            return _failed("extraction_crashed", f"the extraction process replied nonsense: {exc}")
    finally:
        if answered:
            _give_back(worker)
        else:
            worker.stop()


async def extract_isolated(
    data: bytes, *, filename: str | None = None, timeout_s: float = 20.0, memory_mb: int = 512
) -> Extraction:
    """``extract(data)`` in a worker process limited to ``memory_mb`` of address space and ``timeout_s``.

    A worker that is killed, crashes or times out gives ``Extraction(source="none")`` with an
    ``extraction_timeout`` / ``extraction_crashed`` warning; the caller never sees the exception.
    The wait runs in a thread: cancelling the awaiting task leaves the worker to its deadline.
    """
    from services.documents.einvoice.extract import extract

    return await asyncio.to_thread(
        run_in_child, extract, data, filename=filename, timeout_s=timeout_s, memory_mb=memory_mb
    )
