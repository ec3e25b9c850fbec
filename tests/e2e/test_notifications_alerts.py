"""A pharmacist's wrong password, end to end: the sandbox portal refuses it, the accounts service marks the
account ``action_required``, and the notifier sends exactly one French alert; the credentials are
corrected, the account recovers, and exactly one recovery notice follows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.subjects import Api
from tests.integration.helpers import eventually
from tests.notifier_harness import FullPlatform

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TENANT = "pharmacie-du-port"


async def _status(p: FullPlatform, account_id: str, wanted: str) -> dict[str, Any] | None:
    acc = await p.call(Api.ACCOUNTS_GET, {"tenant_id": TENANT, "account_id": account_id})
    return acc if acc["status"] == wanted else None


async def _settled(p: FullPlatform, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        notes = await p.history(TENANT)
        return notes if len(notes) >= count and all(n["status"] != "pending" for n in notes) else None
    return await eventually(probe, what=f"{count} notifications for {TENANT}")


async def test_wrong_password_one_french_alert_then_one_recovery_notice(platform: FullPlatform) -> None:
    p = platform
    await p.call(Api.NOTIFIER_PREFS_SET, {"tenant_id": TENANT, "emails": ["titulaire@pharmacie-du-port.fr"]})
    created = await p.call(Api.ACCOUNTS_CREATE, {"tenant_id": TENANT, "collector_id": "sandbox-classic",
                                                 "login": "officine-7", "password": "pas-le-bon"})
    await eventually(lambda: _status(p, created["id"], "action_required"), what="the login to be refused")

    notes = await _settled(p, 2)
    await asyncio.sleep(1.0)  # nothing else is on its way
    await p.alive()  # and the platform was there to tell it
    notes = await p.history(TENANT)
    assert sorted(n["channel"] for n in notes) == ["email", "in_app"]
    assert {n["kind"] for n in notes} == {"action_required"}
    assert all(n["delivered"] for n in notes)
    [mail] = p.inbox.mails
    assert mail.recipients == ["titulaire@pharmacie-du-port.fr"]
    assert mail.subject == "Action requise – Sandbox — portail classique, officine-7"
    assert mail.message["Content-Language"] == "fr"
    assert "le portail du fournisseur a refusé l'identifiant ou le mot de passe" in mail.text
    assert "Mettez à jour votre mot de passe dans Collecteurs → Modifier" in mail.text
    assert "« officine-7 »" in mail.text
    assert "pas-le-bon" not in mail.text

    # "Modifier": the right password; collection resumes at once and succeeds
    await p.call(Api.ACCOUNTS_UPDATE_CREDENTIALS, {"tenant_id": TENANT, "account_id": created["id"],
                                                   "password": "demo"})
    await eventually(lambda: _status(p, created["id"], "ok"), what="the account to recover")
    notes = await _settled(p, 4)
    await asyncio.sleep(1.0)
    await p.alive()
    notes = await p.history(TENANT)
    assert [n["kind"] for n in notes if n["channel"] == "email"] == ["recovered", "action_required"]
    assert [n["kind"] for n in notes if n["channel"] == "in_app"] == ["recovered", "action_required"]
    assert [m.subject for m in p.inbox.mails] == [
        "Action requise – Sandbox — portail classique, officine-7",
        "Collecte rétablie – Sandbox — portail classique, officine-7"]
    assert "fonctionne à nouveau" in p.inbox.mails[1].text
