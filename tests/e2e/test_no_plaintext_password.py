"""A whole run (collections, an update, a key rotation, a delete) with every NATS message, every log
line and every database captured: the plaintext password is in none of them (design §6).

The only places a password may travel are the user's own requests that carry it in (create,
update_credentials) and the one reply that carries it out, to the scraper (reveal_credentials).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import nats
import pytest
from nats.aio.msg import Msg

from sandbox.portal import start_portal
from services.accounts.app import build as build_accounts
from services.accounts.crypto import new_key_entry
from services.notifier.app import build as build_notifier
from services.requests.app import build as build_requests
from services.scheduler.app import build as build_scheduler
from services.scraper.app import build as build_scraper
from shared.client import ApiClient
from shared.logging import configure_logging
from shared.mongo import make_mongo_client
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings, Settings
from shared.subjects import Api
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.slow, pytest.mark.browser]


class Wiretap:
    """Every message on the NATS server, as the server routes it."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, bytes]] = []

    async def on_message(self, msg: Msg) -> None:
        headers = json.dumps(msg.headers or {}).encode()
        self.messages.append((msg.subject, msg.reply, msg.data + headers))


@pytest.fixture
async def captured_logs() -> AsyncIterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    out = io.StringIO()
    configure_logging("DEBUG", json=True, stream=out)
    yield out
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


async def test_the_password_never_leaks(nats_url: str, mongodb_url: str | None, db_prefix: str, tmp_path: Path,
                                        captured_logs: io.StringIO) -> None:
    first, second = f"Pw1-{uuid4().hex}", f"Pw2-{uuid4().hex}"
    keys = tmp_path / "keys"
    keys.write_text(new_key_entry("k1") + "\n")
    portal = await start_portal()
    common: dict[str, Any] = {"nats_url": nats_url, "mongodb_url": mongodb_url, "db_prefix": db_prefix}
    runtimes: list[ServiceRuntime] = [
        build_accounts(AccountsSettings(**common, credential_keys_file=keys)),
        build_scheduler(SchedulerSettings(**common)),
        build_scraper(ScraperSettings(**common, sandbox_url=portal.url)),
        build_notifier(Settings(**common)),
        build_requests(Settings(**common)),
    ]
    tap = Wiretap()
    wire = await nats.connect(nats_url)
    await wire.subscribe(">", cb=tap.on_message)
    for rt in runtimes:
        await rt.start()
    client = await ApiClient.connect(nats_url)
    try:
        async def catalog() -> bool:
            reply = await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "p"})
            return bool(reply["collectors"])

        await eventually(catalog, what="the catalog")

        async def status(account_id: str, wanted: str, version: int) -> dict[str, Any] | None:
            acc = await client.call(Api.ACCOUNTS_GET, {"tenant_id": "leak", "account_id": account_id})
            return acc if acc["status"] == wanted and acc["last_attempt_at"] else None

        # A full successful collection on another account (the sandbox only takes "demo").
        ok = await client.call(Api.ACCOUNTS_CREATE, {"tenant_id": "leak", "collector_id": "sandbox-classic",
                                                     "login": "works", "password": "demo"})
        await eventually(lambda: status(ok["id"], "ok", 1), what="a successful collection")
        # The marked account: its password is typed into the portal, rejected, then replaced.
        acc = await client.call(Api.ACCOUNTS_CREATE, {"tenant_id": "leak", "collector_id": "sandbox-classic",
                                                      "login": "marked", "password": first})
        await eventually(lambda: status(acc["id"], "action_required", 1), what="first attempt")
        await client.call(Api.ACCOUNTS_UPDATE_CREDENTIALS, {"tenant_id": "leak", "account_id": acc["id"],
                                                            "password": second})
        await eventually(lambda: status(acc["id"], "action_required", 2), what="second attempt")
        keys.write_text(new_key_entry("k2") + "\n" + keys.read_text())
        rotated = await client.call(Api.ACCOUNTS_ROTATE_KEYS, {})
        assert rotated["rotated"] == 2
        await client.call(Api.ACCOUNTS_DELETE, {"tenant_id": "leak", "account_id": acc["id"]})
        await wire.flush()
    finally:
        await client.close()
        for rt in reversed(runtimes):
            await rt.stop()
        await wire.drain()
        await portal.close()

    secrets = [first.encode(), second.encode()]
    # NATS: everything except the requests that carry a password in and the reveal replies.
    inbound = {Api.ACCOUNTS_CREATE, Api.ACCOUNTS_UPDATE_CREDENTIALS}
    reveal_inboxes = {reply for subject, reply, _ in tap.messages if subject == Api.ACCOUNTS_REVEAL_CREDENTIALS}
    assert len(reveal_inboxes) >= 3, "the scraper never asked for credentials: the test proves nothing"
    carried = [(s, d) for s, _, d in tap.messages if s not in inbound and s not in reveal_inboxes]
    assert len(carried) > 100
    for subject, data in carried:
        for secret in secrets:
            assert secret not in data, f"password found in a NATS message on {subject}"
    # The exemptions do carry it (so the search above looks at the right bytes).
    assert any(secrets[0] in d for s, _, d in tap.messages if s in reveal_inboxes)

    logs = captured_logs.getvalue()
    assert "collection_failed" in logs and "credentials_rotated" in logs
    for secret in secrets:
        assert secret.decode() not in logs, "password found in a log line"

    client_db = make_mongo_client(mongodb_url)
    dump = []
    for name in await client_db.list_database_names():
        if name.startswith(db_prefix):
            db = client_db[name]
            for coll in await db.list_collection_names():
                dump += [json.dumps(d, default=str) for d in await db[coll].find({}).to_list()]
    text = "\n".join(dump)
    assert '"kid": "k2"' in text  # the remaining account's ciphertext, rotated
    for secret in secrets:
        assert secret.decode() not in text, "password found in a database"
    deleted = await client_db[f"{db_prefix}_accounts"]["accounts"].find_one({"_id": acc["id"]})
    assert deleted is not None and "secret" not in deleted and deleted["login"] == ""
