"""Every fault mode on every sandbox portal style, through the real pipeline: accounts, scheduler and
a scraper worker on a real nats-server, Debian's Chromium, the sandbox portals. Each account is
activated like a pharmacist would, and its first collection must end with the code design §4 and
the issue's table give for its fault.

The 52 collections (13 cases x 4 styles) run at once on one platform, as they would in production."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from sandbox.data import documents_for
from sandbox.faults import RETRY_AFTER_S, broken_numbers
from sandbox.portal import SandboxPortal, start_portal
from services.accounts.app import build as build_accounts
from services.accounts.crypto import Keyring
from services.scheduler.app import build as build_scheduler
from services.scraper.app import build as build_scraper
from shared.client import ApiClient
from shared.runtime import ServiceRuntime
from shared.settings import AccountsSettings, SchedulerSettings, ScraperSettings
from shared.subjects import Api
from tests.integration.helpers import eventually, services_running

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TODAY = date(2026, 3, 15)
STYLES = {"classic": "sandbox-classic", "twostep": "sandbox-twostep", "spa": "sandbox-spa",
          "legacy": "sandbox-legacy"}
# case -> the code its first collection must end with (None: success)
EXPECTED: dict[str, str | None] = {
    "ok": None,
    "wrong_password": "login_failed",
    "password_expired": "password_expired",
    "terms": "action_required_on_site",
    "otp": "two_factor_required",
    "maintenance": "supplier_unavailable",
    "server_error": "supplier_unavailable",
    "rate_limited": "rate_limited",
    "captcha": "rate_limited",
    "layout_changed": "interface_changed",
    "broken_download": "download_failed",
    "slow": None,
    "session_expiry": None,
}


def login_for(style: str, case: str) -> str:
    base = f"pharma-{case}-{style}" if case in ("ok", "wrong_password") else f"fault-{case}-{style}"
    return f"{base}@pharmacie.test" if style == "twostep" else base  # that collector asks for an e-mail


@pytest.fixture
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal(today=TODAY, slow_s=0.5)
    yield p
    await p.close()


@pytest.fixture
async def platform(nats_url: str, mongodb_url: str | None, db_prefix: str, keyring: Keyring,
                   portal: SandboxPortal) -> AsyncIterator[ApiClient]:
    common: dict[str, Any] = {"nats_url": nats_url, "mongodb_url": mongodb_url, "db_prefix": db_prefix}
    runtimes: list[ServiceRuntime] = [
        build_accounts(AccountsSettings(**common), keyring=keyring),
        build_scheduler(SchedulerSettings(**common)),
        build_scraper(ScraperSettings(**common, sandbox_url=portal.url, concurrency=6, page_timeout_s=5.0)),
    ]
    async with services_running(runtimes, nats_url) as client:
        yield client


async def test_every_fault_mode_on_every_portal_style_ends_with_its_code(platform: ApiClient,
                                                                         nats_url: str) -> None:
    async def catalog() -> set[str]:
        reply = await platform.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "x"})
        return {c["id"] for c in reply["collectors"]} & set(STYLES.values())

    # The catalog lists a sandbox collector of each style, as announced by the worker.
    assert await eventually(lambda: _full(catalog, len(STYLES)), what="the four sandbox collectors") == set(
        STYLES.values())

    events: list[tuple[str, dict[str, Any]]] = []
    nc = await nats.connect(nats_url)

    async def on_event(msg: Msg) -> None:
        events.append((msg.subject, json.loads(msg.data)))

    await nc.subscribe("collectors.evt.scraper.>", cb=on_event)
    try:
        cases = [(style, case) for case in EXPECTED for style in STYLES]
        created = await asyncio.gather(*(platform.call(Api.ACCOUNTS_CREATE, {
            "tenant_id": f"faults-{case}", "collector_id": STYLES[style], "login": login_for(style, case),
            "password": "nope" if case == "wrong_password" else "demo"}) for style, case in cases))
        account_of = {(style, case): acc["id"] for (style, case), acc in zip(cases, created, strict=True)}

        def results() -> dict[str, dict[str, Any]]:
            found: dict[str, dict[str, Any]] = {}
            for subject, body in events:
                if ".collection_succeeded." in subject or ".collection_failed." in subject:
                    found.setdefault(body["account_id"], {**body, "ok": ".collection_succeeded." in subject})
            return found

        async def all_results() -> dict[str, dict[str, Any]] | None:
            found = results()
            return found if len(found) >= len(cases) else None

        got = await eventually(all_results, timeout=240, every=0.5, what="a result for every account")
    finally:
        await nc.close()

    invoices: dict[str, list[str]] = {}
    for subject, body in events:
        if ".invoice_collected." in subject:
            invoices.setdefault(body["account_id"], []).append(body["number"])

    outcomes = {(style, case): (None if got[account_of[style, case]]["ok"]
                                else got[account_of[style, case]]["error_code"]) for style, case in cases}
    assert outcomes == {(style, case): EXPECTED[case] for style, case in cases}

    for (style, case), account_id in account_of.items():
        result, login = got[account_id], login_for(style, case)
        numbers = invoices.get(account_id, [])
        assert len(numbers) == len(set(numbers)), (style, case)  # never published twice
        expected = {d.number for d in documents_for(login, TODAY)}
        if EXPECTED[case] is None:
            assert set(numbers) == expected and result["new_invoices"] == result["total_invoices"] == len(expected)
        elif case == "broken_download":
            kept = expected - broken_numbers(login, TODAY)
            assert set(numbers) == kept and result["new_invoices"] == len(kept), style
        else:
            assert numbers == [], (style, case)
        if case == "rate_limited":
            assert result["retry_after_s"] == RETRY_AFTER_S, style
        assert result["worker_id"] and (result["ok"] or result["detail"])

    # What the pharmacist sees: the accounts carry the outcome too.
    for (style, case), account_id in account_of.items():
        acc = await platform.call(Api.ACCOUNTS_GET, {"tenant_id": f"faults-{case}", "account_id": account_id})
        if EXPECTED[case] is None:
            assert acc["status"] == "ok" and acc["invoice_count"] == len(documents_for(login_for(style, case),
                                                                                       TODAY)), (style, case)
        elif case in ("wrong_password", "password_expired", "terms", "otp"):
            assert (acc["status"], acc["error_code"]) == ("action_required", EXPECTED[case]), (style, case)


async def _full(probe: Any, size: int) -> Any:
    value = await probe()
    return value if len(value) >= size else None
