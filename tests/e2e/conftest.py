"""The whole platform (every service, the sandbox portal, SMTP and webhook receivers) for end-to-end
tests that drive it through its NATS API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox.portal import SandboxPortal, start_portal
from services.accounts.crypto import Keyring
from tests.notifier_harness import FullPlatform, full_platform


@pytest.fixture
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal()
    yield p
    await p.close()


@pytest.fixture
async def platform(nats_url: str, mongodb_url: str | None, db_prefix: str, keyring: Keyring,
                   portal: SandboxPortal) -> AsyncIterator[FullPlatform]:
    async with full_platform(nats_url, mongodb_url, db_prefix, keyring, portal.url) as p:
        yield p
