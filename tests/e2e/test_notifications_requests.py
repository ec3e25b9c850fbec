"""A requested collector, end to end: two pharmacies ask for the same new supplier, an operator takes the
request, a scraper worker with the new collector starts and announces it, and each pharmacy receives
exactly one "available" notification, whose words are enough to activate it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sandbox.portal import SandboxPortal
from services.scraper.app import build as build_scraper
from services.scraper.collectors import builtin_collectors
from services.scraper.collectors.sandbox_classic import SandboxClassicCollector
from services.scraper.kit import Manifest
from shared.settings import ScraperSettings
from shared.subjects import Api
from tests.integration.helpers import eventually
from tests.notifier_harness import FullPlatform

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The team's new collector: the sandbox's classic portal, as a laboratory's customer portal.
GILBERT = Manifest(id="sandbox-gilbert", name="Gilbert — espace pharmacie", supplier="Laboratoires Gilbert",
                   portal_url="http://127.0.0.1:8765/classic/", login_kind="identifier", frequency_hours=24,
                   max_sessions=2)


class GilbertCollector(SandboxClassicCollector):
    def __init__(self) -> None:
        self.manifest = GILBERT


async def _available_notices(p: FullPlatform, tenant: str) -> list[dict[str, Any]] | None:
    notes = [n for n in await p.history(tenant) if n["kind"] == "request_available"]
    return notes if len(notes) >= 2 and all(n["status"] == "delivered" for n in notes) else None


async def test_both_requesters_get_one_available_notice_and_can_activate_the_collector(
        platform: FullPlatform, portal: SandboxPortal) -> None:
    p = platform
    for tenant in ("ph-nord", "ph-sud"):
        await p.call(Api.NOTIFIER_PREFS_SET, {"tenant_id": tenant, "emails": [f"compta@{tenant}.fr"]})
    first = await p.call(Api.REQUESTS_CREATE, {"tenant_id": "ph-nord", "supplier": "Laboratoires Gilbert",
                                               "comment": "Nos factures mensuelles"})
    second = await p.call(Api.REQUESTS_CREATE, {"tenant_id": "ph-sud", "supplier": "laboratoires  GILBERT"})
    assert second["id"] == first["id"] and second["votes"] == 2
    taken = await p.call(Api.REQUESTS_SET_STATUS, {"request_id": first["id"], "status": "in_progress"})
    assert taken["status"] == "in_progress"

    # the new collector ships: a scraper worker that has it starts and announces it, the old one stops
    [old_worker] = [rt for rt in p.runtimes if rt.name == "scraper"]
    await p.start(build_scraper(ScraperSettings(**p.settings, sandbox_url=portal.url, concurrency=1),
                                collectors={**builtin_collectors(), GILBERT.id: GilbertCollector()}))
    await p.stop(old_worker)

    async def fulfilled() -> dict[str, Any] | None:
        [req] = (await p.call(Api.REQUESTS_LIST_ALL, {}))["requests"]
        return req if req["status"] == "available" else None

    req = await eventually(fulfilled, what="the request to be fulfilled")
    assert req["collector_id"] == GILBERT.id
    for tenant in ("ph-nord", "ph-sud"):
        await eventually(lambda t=tenant: _available_notices(p, t), what=f"{tenant}'s notices")
    await asyncio.sleep(1.0)  # every scraper announces its collectors: nothing more may come of it
    await p.alive()  # the notifier was there to tell it

    for tenant in ("ph-nord", "ph-sud"):
        notes = await p.history(tenant)
        assert sorted(n["channel"] for n in notes) == ["email", "in_app"]
        assert {n["kind"] for n in notes} == {"request_available"}
        [mail] = p.inbox.to(f"compta@{tenant}.fr")
        assert mail.subject == "Collecteur disponible – Laboratoires Gilbert"
        assert ("ouvrez Collecteurs, choisissez le portail « Laboratoires Gilbert » puis le collecteur "
                "« Gilbert — espace pharmacie », saisissez votre identifiant et votre mot de passe") in mail.text
        assert "Valider" in mail.text
    assert len(p.inbox.mails) == 2

    # the words are right: the collector is in the catalog, and activating it collects invoices
    catalog = (await p.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "ph-nord"}))["collectors"]
    entry = next(c for c in catalog if c["id"] == GILBERT.id)
    assert (entry["supplier"], entry["name"], entry["login_kind"]) == (
        "Laboratoires Gilbert", "Gilbert — espace pharmacie", "identifier")
    created = await p.call(Api.ACCOUNTS_CREATE, {"tenant_id": "ph-nord", "collector_id": GILBERT.id,
                                                 "login": "officine-12", "password": "demo"})

    async def collected() -> dict[str, Any] | None:
        acc = await p.call(Api.ACCOUNTS_GET, {"tenant_id": "ph-nord", "account_id": created["id"]})
        return acc if acc["status"] == "ok" and acc["invoice_count"] > 0 else None

    await eventually(collected, what="the first collection on the new collector", timeout=60)
