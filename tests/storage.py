"""Which MongoDB the tests use (design §5): ``open_test_mongo()`` yields ``(client, kind)``.

In order: ``MONGODB_URL`` if set ("external"); else a testcontainers MongoDB when a Docker engine answers
("testcontainers", one container for the whole test run); else a fresh in-memory stand-in ("memory").

``pytest -m mongo`` selects the tests that reach the database (:func:`reaches_the_database`: the
storage contract and every integration test through the ``mongodb_url`` / ``mongo_client``
fixtures), and refuses to run them on the stand-in (:func:`mongo_run_refusal`): with
``MONGODB_URL=mongodb://...`` they all run against that server.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import gc
import os
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from _pytest.mark.expression import Expression

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


MONGO_MARK = "mongo"
# The fixtures through which a test's code reaches the database (tests/conftest.py; the storage
# contract overrides ``mongo_client`` with a run on the durable embedded store too).
DATABASE_FIXTURES = frozenset({"mongodb_url", "mongo_client"})
MONGO_SUITE = "tests/integration/"
MONGO_NEEDED = ("pytest -m mongo runs the storage contract and the integration tests against a real MongoDB: "
                "set MONGODB_URL (e.g. mongodb://host-1,host-2,host-3/?replicaSet=rs0) or run a Docker "
                "engine for testcontainers. Without either they would test the in-memory stand-in again.")


def reaches_the_database(nodeid: str, fixturenames: Iterable[str], params: Mapping[str, object]) -> bool:
    """Whether a test is one of ``-m mongo``'s: an integration test (the storage contract is one)
    whose code gets the database from a fixture, except the contract's runs on the embedded store."""
    return (nodeid.startswith(MONGO_SUITE) and not DATABASE_FIXTURES.isdisjoint(fixturenames)
            and params.get("mongo_client") != "durable")


def selects_mongo_tests(markexpr: str) -> bool:
    """Whether ``-m markexpr`` asks for the mongo tests: it keeps a test marked ``mongo`` and only
    that marker, and drops a test with no marker (so ``-m "not chaos"`` does not count)."""
    if not markexpr.strip():
        return False
    expr = Expression.compile(markexpr)
    return expr.evaluate(lambda name, **_: name == MONGO_MARK) and not expr.evaluate(lambda name, **_: False)


def mongo_run_refusal(markexpr: str, kind: Callable[[], StorageKind]) -> str | None:
    """Why this run must not start (``-m mongo`` with no real MongoDB to run on), or None."""
    return MONGO_NEEDED if selects_mongo_tests(markexpr) and kind() == "memory" else None


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
