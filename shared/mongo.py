"""Choice of the MongoDB client: a real ``AsyncMongoClient`` for a URL, else the embedded store.

Without a URL, a process uses what it was told to (``use_embedded_store``: the durable embedded
store in a data dir; ``MEMORY_URL`` or ``use_in_memory``: the in-memory stand-in, nothing kept).
A process told neither gets the in-memory stand-in and a warning: that is for tests and for code
that builds services without running them (contract documents); ``collectors up`` and a standalone
service always decide (``collectors.platform``, ``shared.standalone``).

Nothing connects here: ``AsyncMongoClient`` connects lazily on its first operation, and the embedded
store opens a database's files when the database is first asked for.
"""

from __future__ import annotations

import logging
from datetime import UTC
from pathlib import Path
from typing import Any, TypeAlias

from pymongo import AsyncMongoClient

from shared.durable_store import DurableServerStore
from shared.memory_mongo import InMemoryMongoClient

MongoClientLike: TypeAlias = AsyncMongoClient[dict[str, Any]] | InMemoryMongoClient

# ``MONGODB_URL=memory://``: the in-memory stand-in, explicitly.
MEMORY_URL = "memory://"
# Where the embedded store keeps its files under a data dir.
EMBEDDED_SUBDIR = "db"

_in_memory_client: InMemoryMongoClient | None = None
_embedded_client: InMemoryMongoClient | None = None
_embedded_dir: Path | None = None
_warned = False


def is_memory_url(url: str | None) -> bool:
    return bool(url) and url.strip().lower().startswith("memory:")  # type: ignore[union-attr]


def use_embedded_store(data_dir: Path) -> InMemoryMongoClient:
    """From now on, no URL means the durable embedded store under ``data_dir`` (the same client for
    every service of this process: one file set per database). Raises ``StoreLocked`` when another
    process has one of its databases open (on first use of that database)."""
    global _embedded_client, _embedded_dir
    directory = (data_dir / EMBEDDED_SUBDIR).resolve()
    if _embedded_client is None or _embedded_dir != directory:
        release_embedded_store()
        _embedded_client = InMemoryMongoClient(DurableServerStore(directory))
        _embedded_dir = directory
    return _embedded_client


def release_embedded_store() -> None:
    """Close the embedded store's files and forget it (a platform stopping, a test)."""
    global _embedded_client, _embedded_dir
    if _embedded_client is not None:
        _embedded_client.release()
    _embedded_client = _embedded_dir = None


def use_in_memory() -> InMemoryMongoClient:
    """From now on, no URL means the process-wide in-memory stand-in, as asked for."""
    release_embedded_store()
    return _shared_in_memory()


def _shared_in_memory() -> InMemoryMongoClient:
    global _in_memory_client
    if _in_memory_client is None:
        _in_memory_client = InMemoryMongoClient()
    return _in_memory_client


def make_mongo_client(url: str | None) -> MongoClientLike:
    """A real client for ``url``; without one, the embedded store this process was told to use.

    Services running in one process share it (each with its own database name), so what one writes
    the others (and a restarted instance) can read, as with a real server.
    """
    global _warned
    if is_memory_url(url):
        return _shared_in_memory()
    if url:
        return AsyncMongoClient(url, tz_aware=True, tzinfo=UTC)
    if _embedded_client is not None:
        return _embedded_client
    if _in_memory_client is None and not _warned:
        _warned = True
        logging.getLogger(__name__).warning(
            "MongoDB: no MONGODB_URL and no data dir given: the IN-MEMORY stand-in, nothing is kept")
    return _shared_in_memory()


def is_in_memory(client: object) -> bool:
    """Whether ``client`` is the in-memory stand-in (nothing kept) rather than a real MongoDB client
    or the durable embedded store."""
    return isinstance(client, InMemoryMongoClient) and not client.durable
