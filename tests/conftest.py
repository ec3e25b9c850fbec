"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from uuid import uuid4

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from services.accounts.crypto import Keyring, new_key_entry
from services.scraper.browser import launch_browser
from shared.mongo import MongoClientLike
from shared.natsserver import NatsServer, wait_jetstream_ready
from shared.standin_timing import JITTER_ENV
from tests.standin import SEED_ATTR, standin
from tests.storage import (
    MONGO_MARK,
    container_url,
    mongo_run_refusal,
    open_test_mongo,
    reaches_the_database,
    storage_kind,
)

__all__ = ["standin"]  # the fixture, re-exported for every test


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    """A test that ran under the stand-in's jitter and failed says which seed to replay it with."""
    report = yield
    seed = getattr(item, SEED_ATTR, None)
    if seed is not None and isinstance(report, pytest.TestReport) and report.failed:
        report.sections.append(("stand-in jitter", f"replay with {JITTER_ENV}={seed}"))
    return report


def pytest_configure(config: pytest.Config) -> None:
    refusal = mongo_run_refusal(config.getoption("markexpr") or "", storage_kind)
    if refusal is not None:
        raise pytest.UsageError(refusal)


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``mongo`` the tests that reach the database (``tests.storage.reaches_the_database``)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if reaches_the_database(item.nodeid, getattr(item, "fixturenames", ()), callspec.params if callspec else {}):
            item.add_marker(MONGO_MARK)


@pytest.fixture
async def mongo_client() -> AsyncIterator[MongoClientLike]:
    """A MongoDB client per test (see ``tests.storage``); each test picks its own database names."""
    async with open_test_mongo() as (client, _kind):
        yield client


@pytest.fixture
async def nats_url(tmp_path: Path) -> AsyncIterator[str]:
    """A real nats-server with JetStream on a free loopback port, for one test."""
    server = NatsServer(store_dir=tmp_path / "nats")
    server.start()
    try:
        await wait_jetstream_ready(server.url)
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def mongodb_url() -> str | None:
    """What services under test get as MONGODB_URL, chosen as in design §5: MONGODB_URL if set, a
    testcontainers MongoDB if a Docker engine answers, else the in-memory stand-in (``None``)."""
    kind = storage_kind()
    if kind == "memory":
        return None
    return os.environ["MONGODB_URL"] if kind == "external" else await container_url()


@pytest.fixture
def db_prefix() -> str:
    """Each test's services get their own databases, so the shared stand-in never leaks between tests."""
    return f"t{uuid4().hex[:10]}"


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.parse(new_key_entry("test1"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for a whole test module, as a worker holds one (module-scoped event loop)."""
    async with async_playwright() as playwright:
        b = await launch_browser(playwright)
        yield b
        await b.close()
