"""`collectors fleet` through NATS (issue 13, bullet 2): the accounts service's fleet view from results and
incidents published on JetStream, and the CLI printing it."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from typer.testing import CliRunner

from collectors.cli import app
from shared.errors import CollectionErrorCode
from shared.events import (
    CollectionFailed,
    CollectionSucceeded,
    CollectorAnnounced,
    IncidentDeclared,
    IncidentResolved,
    utcnow,
)
from shared.subjects import Api, Events
from tests.integration.helpers import eventually
from tests.integration.test_accounts import Accounts, accounts, publish  # noqa: F401 (fixture)

EMPTY = CollectorAnnounced(collector_id="grossiste-vide", name="Vide", supplier="Vide", login_kind="identifier",
                           portal_url="https://vide.example/", frequency_hours=24, max_sessions=4, version="1")


def result(acc: dict[str, Any], job: str, seconds: float, *, ended_ago: timedelta = timedelta(minutes=1),
           code: CollectionErrorCode | None = None) -> CollectionSucceeded | CollectionFailed:
    finished = utcnow() - ended_ago
    common: dict[str, Any] = {
        "tenant_id": acc["tenant_id"], "account_id": acc["id"], "collector_id": acc["collector_id"],
        "job_id": job, "credential_version": 1, "started_at": finished - timedelta(seconds=seconds),
        "finished_at": finished}
    return CollectionSucceeded(**common) if code is None else CollectionFailed(error_code=code, **common)


async def send(accounts: Accounts, evt: CollectionSucceeded | CollectionFailed) -> None:  # noqa: F811
    subject = Events.COLLECTION_SUCCEEDED if isinstance(evt, CollectionSucceeded) else Events.COLLECTION_FAILED
    await publish(accounts.nc, subject.for_tenant(evt.tenant_id), evt)


async def test_the_fleet_view_from_results_and_incidents(accounts: Accounts) -> None:  # noqa: F811
    await publish(accounts.nc, Events.COLLECTOR_ANNOUNCED.base, EMPTY)
    a1 = await accounts.create("p1", "officine-1")
    a2 = await accounts.create("p2", "officine-2")
    a3 = await accounts.create("p3", "officine-3")
    await accounts.create("p4", "officine-4")  # never ran: pending, not ok
    b1 = await accounts.create("p1", "compta@p1.example", collector="labo-mail")

    await send(accounts, result(a1, "job-a1", 10))
    await send(accounts, result(a2, "job-a2", 30, code=CollectionErrorCode.LOGIN_FAILED))
    await send(accounts, result(a3, "job-a3", 20, code=CollectionErrorCode.SUPPLIER_UNAVAILABLE))
    # The same result once more, as a redelivery would bring it (another message id: past JetStream's dedup).
    again = result(a1, "job-a1", 10)
    await accounts.nc.jetstream().publish(Events.COLLECTION_SUCCEEDED.for_tenant("p1"),
                                          again.model_dump_json().encode(), headers={"Nats-Msg-Id": "redelivered"})
    # labo-mail: a run that ended 25 h ago (outside the window) and one a minute ago.
    await send(accounts, result(b1, "job-b1-old", 500, ended_ago=timedelta(hours=25)))
    await send(accounts, result(b1, "job-b1", 4))
    # labo-mail has an open incident; sandbox-classic's was resolved (its resolution read first).
    declared = IncidentDeclared(incident_id="inc-labo", collector_id="labo-mail",
                                error_code=CollectionErrorCode.INTERFACE_CHANGED)
    await publish(accounts.nc, Events.INCIDENT_DECLARED.base, declared)
    await publish(accounts.nc, Events.INCIDENT_RESOLVED.base, IncidentResolved(
        incident_id="inc-classic", collector_id="sandbox-classic", error_code=CollectionErrorCode.INTERFACE_CHANGED))
    await publish(accounts.nc, Events.INCIDENT_DECLARED.base, IncidentDeclared(
        incident_id="inc-classic", collector_id="sandbox-classic", error_code=CollectionErrorCode.INTERFACE_CHANGED))

    async def settled() -> dict[str, dict[str, Any]] | None:
        reply = await accounts.call(Api.ACCOUNTS_FLEET)
        rows = {c["collector_id"]: c for c in reply["collectors"]}
        classic, labo = rows["sandbox-classic"], rows["labo-mail"]
        done = ("grossiste-vide" in rows and classic["ok"] == 1 and len(classic["error_codes"]) == 2
                and classic["runs"] >= 3 and labo["incident"] is not None and labo["runs"] >= 1 and labo["ok"] == 1)
        return rows if done else None

    rows = await eventually(settled, what="the fleet view")
    await asyncio.sleep(1.0)  # a late duplicate or old run would have landed by now
    rows = {c["collector_id"]: c for c in (await accounts.call(Api.ACCOUNTS_FLEET))["collectors"]}
    assert list(rows) == ["grossiste-vide", "labo-mail", "sandbox-classic"]  # the catalog, by id
    classic = rows["sandbox-classic"]
    assert (classic["accounts"], classic["ok"], classic["ok_share"]) == (4, 1, 25.0)
    assert classic["error_codes"] == {"login_failed": 1, "supplier_unavailable": 1}
    assert (classic["runs"], classic["p50_s"], classic["p95_s"]) == (3, 20.0, 30.0)  # job-a1 counted once
    assert classic["incident"] is None
    labo = rows["labo-mail"]
    assert (labo["runs"], labo["p50_s"], labo["p95_s"]) == (1, 4.0, 4.0)  # the 500 s run 25 h ago is out
    assert labo["incident"]["id"] == "inc-labo" and labo["incident"]["error_code"] == "interface_changed"
    assert labo["incident"]["since"].startswith(declared.occurred_at.isoformat()[:19])
    assert labo["last_success_at"] is not None and labo["ok_share"] == 100.0
    empty = rows["grossiste-vide"]
    assert (empty["accounts"], empty["ok_share"], empty["runs"], empty["incident"]) == (0, None, 0, None)

    # The CLI: --json prints the reply, the table shows the same numbers.
    runner = CliRunner()
    out = await asyncio.to_thread(runner.invoke, app, ["fleet", "--json", "--nats-url", accounts.nats_url])
    assert out.exit_code == 0, out.output
    printed = {c["collector_id"]: c for c in json.loads(out.stdout)["collectors"]}
    assert printed["sandbox-classic"]["ok_share"] == 25.0 and printed["labo-mail"]["incident"]["id"] == "inc-labo"
    out = await asyncio.to_thread(runner.invoke, app, ["fleet", "--nats-url", accounts.nats_url])
    assert out.exit_code == 0, out.output
    line = next(ln for ln in out.stdout.splitlines() if ln.lstrip().startswith("sandbox-classic"))
    assert line.split()[1:4] == ["4", "25.0", "login_failed"] and "20.0/30.0" in line
    assert any(ln.lstrip().startswith("grossiste-vide") for ln in out.stdout.splitlines())
