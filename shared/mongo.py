"""Choice of the MongoDB client: a real ``AsyncMongoClient`` for a URL, else the in-memory stand-in.

Nothing connects here: ``AsyncMongoClient`` connects lazily on its first operation, and the stand-in is
created on first request.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, TypeAlias

from pymongo import AsyncMongoClient

from shared.memory_mongo import InMemoryMongoClient

MongoClientLike: TypeAlias = AsyncMongoClient[dict[str, Any]] | InMemoryMongoClient

_in_memory_client: InMemoryMongoClient | None = None


def make_mongo_client(url: str | None) -> MongoClientLike:
    """A real client for ``url``; without one, the process-wide in-memory stand-in.

    Services running in one process share the stand-in (each with its own database name), so what one
    writes the others (and a restarted instance) can read, as with a real server.
    """
    global _in_memory_client
    if not url:
        if _in_memory_client is None:
            _in_memory_client = InMemoryMongoClient()
        return _in_memory_client
    return AsyncMongoClient(url, tz_aware=True, tzinfo=UTC)


def is_in_memory(client: object) -> bool:
    """Whether ``client`` is the in-memory stand-in rather than a real MongoDB client."""
    return isinstance(client, InMemoryMongoClient)
