"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.mongo import MongoClientLike
from tests.storage import open_test_mongo


@pytest.fixture
async def mongo_client() -> AsyncIterator[MongoClientLike]:
    """A MongoDB client per test (see ``tests.storage``); each test picks its own database names."""
    async with open_test_mongo() as (client, _kind):
        yield client
