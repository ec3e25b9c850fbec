"""Files of the durable embedded store (``shared.durable_store``): framed BSON, an append-only journal
with group commit, atomic snapshots and the lock that keeps a second process out.

A frame is ``<u32 length><u32 crc32><payload>``, the payload a run of BSON documents. A crash can
leave the journal's last frame half written; its length or checksum then fails and reading stops
there, so a torn tail is ignored and everything before it is kept. BSON (PyMongo's own codec) keeps
what the stand-in stores: naive UTC datetimes, ObjectId, Decimal128, bytes, key order.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import bson

__all__ = ["Journal", "StoreLocked", "frame", "iter_frames", "lock_file", "read_frames", "write_atomically"]

_HEADER = struct.Struct("<II")
# A frame longer than this is taken for garbage (a torn length field), not read.
_MAX_FRAME = 1 << 30


class StoreLocked(RuntimeError):
    """Another process holds this data dir's store."""


def frame(documents: Iterable[bytes]) -> bytes:
    """One frame holding the given BSON documents (already encoded)."""
    payload = b"".join(documents)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_frames(data: bytes) -> tuple[list[list[dict[str, Any]]], int]:
    """The documents of each whole frame in ``data``, and how many bytes they span: reading stops
    at the first frame that is cut short or fails its checksum (a write torn by a crash)."""
    ends: list[int] = []
    frames = list(iter_frames(data, ends))
    return frames, ends[-1] if ends else 0


def iter_frames(data: bytes, ends: list[int] | None = None) -> Iterator[list[dict[str, Any]]]:
    """``read_frames`` one frame at a time (a large snapshot is applied as it is decoded, not held
    twice); ``ends`` gets the end offset of each frame read."""
    position = 0
    view = memoryview(data)
    while position + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, position)
        start = position + _HEADER.size
        end = start + length
        if length > _MAX_FRAME or end > len(data) or zlib.crc32(view[start:end]) != crc:
            return
        try:
            documents = bson.decode_all(view[start:end])
        except bson.errors.InvalidBSON:  # a checksum collision on garbage: stop as for a torn frame
            return
        position = end
        if ends is not None:
            ends.append(end)
        yield documents


def fsync_dir(path: Path) -> None:
    """Make a rename or a file creation in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, frames: Iterable[bytes]) -> int:
    """Replace ``path`` with ``frames``: written to a temporary file, fsynced, renamed over it and the
    directory fsynced, so a crash leaves either the old file or the new one, whole. Returns its size."""
    temp = path.with_name(path.name + ".tmp")
    size = 0
    with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        for chunk in frames:
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
    fsync_dir(path.parent)
    return size


def lock_file(path: Path, what: str) -> int:
    """An exclusive lock on ``path`` for this process's lifetime (the kernel drops it when the process
    dies, even by ``kill -9``); ``StoreLocked`` if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StoreLocked(f"{what} is in use by another process (pid {holder}, lock {path}): "
                          "stop it first, or give this one another data dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class Journal:
    """An append-only journal file; ``append`` queues a frame, ``durable()`` returns once every frame
    queued before the call is on disk (written and fsynced).

    Group commit: one flush (write + fsync, in a thread so the event loop keeps serving) takes every
    frame queued so far; frames queued meanwhile go together in the next one. So concurrent writers
    share fsyncs, and a lone writer waits for one fsync.
    """

    def __init__(self, path: Path, executor: Executor | None = None) -> None:
        self.path = path
        self._executor = executor
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self._fd).st_size
        self._queued: list[bytes] = []
        self._appended = 0  # frames queued since opened
        self._synced = 0  # frames on disk
        self._flush: asyncio.Future[None] | None = None

    @property
    def pending(self) -> bool:
        return self._synced < self._appended

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing being written: everything appended is on disk."""
        return not self._queued and self._flush is None and not self.pending

    def append(self, data: bytes) -> None:
        self._queued.append(data)
        self._appended += 1
        self.size += len(data)

    async def durable(self) -> None:
        target = self._appended
        while self._synced < target:
            if self._flush is None:
                self._flush = asyncio.ensure_future(self._flush_queued())
            # shielded: a caller cancelled while waiting must not cancel the flush the others share
            await asyncio.shield(self._flush)

    async def _flush_queued(self) -> None:
        data, target = b"".join(self._queued), self._appended
        self._queued = []
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write, data)
            self._synced = target
        finally:
            self._flush = None

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fdatasync(self._fd)  # the file's size changes, so fdatasync writes that metadata too

    def truncate(self) -> None:
        """Empty the journal (once a snapshot holds everything in it); it must be idle."""
        assert self.idle
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self.size = 0

    def close(self) -> None:
        os.close(self._fd)
