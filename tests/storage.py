"""Which MongoDB the tests use (design §5): ``open_test_mongo()`` yields ``(client, kind)``.

In order: ``MONGODB_URL`` if set ("external"); else a testcontainers MongoDB when a Docker engine answers
("testcontainers", one container for the whole test run); else a fresh in-memory stand-in ("memory").
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import gc
import os
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from shared.durable_store import DurableServerStore
from shared.memory_mongo import InMemoryMongoClient
from shared.mongo import MongoClientLike, make_mongo_client

StorageKind = Literal["external", "testcontainers", "memory"]

MONGO_IMAGE = "mongo:7"
DOCKER_PROBE_TIMEOUT_S = 1

_container: Any = None


@functools.cache
def docker_engine_answers() -> bool:
    """Whether a Docker engine answers a ping, decided fast (no socket: at once; else ~0.1 s, 1 s at most)."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host or host.startswith("unix://"):
        if not Path(host.removeprefix("unix://") or "/var/run/docker.sock").exists():
            return False
    with warnings.catch_warnings():
        # docker-py does not close the socket of a failed unix connection: drop it here, quietly
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            import docker

            client = docker.from_env(timeout=DOCKER_PROBE_TIMEOUT_S)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False
        finally:
            gc.collect()


async def container_url() -> str:
    """URL of the run's MongoDB container, started on first use and stopped at exit."""
    global _container
    if _container is None:
        from testcontainers.community.mongodb import MongoDbContainer

        container = MongoDbContainer(MONGO_IMAGE)
        await asyncio.to_thread(container.start)
        atexit.register(container.stop)
        _container = container
    url: str = _container.get_connection_url()
    return url


def storage_kind() -> StorageKind:
    if os.environ.get("MONGODB_URL"):
        return "external"
    if docker_engine_answers():
        return "testcontainers"
    return "memory"


@asynccontextmanager
async def open_test_mongo() -> AsyncIterator[tuple[MongoClientLike, StorageKind]]:
    """A client for this test; real clients are closed on exit, the stand-in is never the shared one."""
    kind = storage_kind()
    if kind == "memory":
        yield InMemoryMongoClient(), kind
        return
    url = os.environ["MONGODB_URL"] if kind == "external" else await container_url()
    client = make_mongo_client(url)
    try:
        yield client, kind
    finally:
        await client.close()


@asynccontextmanager
async def open_durable_store(directory: Path) -> AsyncIterator[InMemoryMongoClient]:
    """The durable embedded store in ``directory``, its files released on exit."""
    client = InMemoryMongoClient(DurableServerStore(directory))
    try:
        yield client
    finally:
        client.release()
