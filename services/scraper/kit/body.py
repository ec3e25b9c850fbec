"""A downloaded file's bytes, kept without ever holding a large one whole in memory.

Portals send whatever they like (issue 10: a 300 MB "PDF" killed the Playwright driver). A body is
written chunk by chunk into a spooled temporary file (in memory while small, which most invoices
are, on disk beyond), hashed as it goes, and read back the same way by the Object Store.
"""

from __future__ import annotations

import hashlib
import tempfile
import weakref
from typing import IO

# Kept in memory up to this size, on disk beyond: a typical invoice PDF never touches the disk.
SPOOL_BYTES = 1024 * 1024
# What judging a download needs (the PDF magic, a login page served instead): a bounded prefix.
HEAD_BYTES = 256 * 1024


class DocumentBody:
    """Bytes written once, then read from the start as often as needed (``open``)."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        # Documents are handed around and dropped (stored, skipped as known, judged not a PDF): the
        # file, and its disk space, go with the last reference, without an unclosed-file warning.
        self._closer = weakref.finalize(self, self._file.close)
        self._sha256 = hashlib.sha256()
        self._head = bytearray()
        self.size = 0

    @classmethod
    def of(cls, data: bytes) -> DocumentBody:
        body = cls()
        body.write(data)
        return body

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._sha256.update(chunk)
        if len(self._head) < HEAD_BYTES:
            self._head += chunk[:HEAD_BYTES - len(self._head)]
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def head(self) -> bytes:
        """The first bytes (at most ``HEAD_BYTES``)."""
        return bytes(self._head)

    def open(self) -> IO[bytes]:
        """The file, rewound: a reader for the Object Store (nats-py reads it in chunks)."""
        self._file.seek(0)
        return self._file

    def read(self) -> bytes:
        """Every byte in memory: for small documents and tests only."""
        if self.size <= len(self._head):
            return bytes(self._head)
        return self.open().read()

    def close(self) -> None:
        self._closer()

