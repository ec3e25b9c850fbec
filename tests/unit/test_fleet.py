"""The fleet view's computation (services/accounts/fleet.py), its table (collectors/fleet.py) and who may
ask for it (issue 13, bullet 2)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

from rich.console import Console

from collectors.fleet import render
from services.accounts.fleet import (
    WINDOW,
    FleetService,
    IncidentRecord,
    RunStat,
    percentile,
    summarise,
    tally,
)
from services.accounts.repository import AccountStatusRow
from shared import api
from shared.errors import CollectionErrorCode
from shared.events import CollectionFailed, CollectionSucceeded
from shared.subjects import OPERATOR_API, TENANT_API, Api
from tests.unit.test_deploy import LiveNats, answering_every_api, connect, server  # noqa: F401 (fixture)

NOW = datetime(2025, 5, 14, 12, 0, tzinfo=UTC)


def row(collector: str, status: str = "ok", code: str | None = None, success: datetime | None = None,
        ) -> AccountStatusRow:
    return AccountStatusRow(collector, status, code, success)


# --- percentiles ----------------------------------------------------------------------------------


def test_percentiles_are_nearest_rank_over_unordered_values() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, reversed on purpose
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([7.0], 50) == percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    # ten runs, one slow: the median ignores it, the 95th percentile is it
    runs = [10.0] * 9 + [120.0]
    assert (percentile(runs, 50), percentile(runs, 95)) == (10.0, 120.0)
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([5.0, 4.0, 3.0, 2.0, 1.0], 50) == 3.0  # rank ceil(2.5) = 3, not a rounding of it


# --- shares, error codes, last success, incidents ---------------------------------------------------


def test_every_catalog_collector_has_a_row_with_its_share_errors_and_last_success() -> None:
    rows = [
        row("classic", success=NOW - timedelta(hours=5)),
        row("classic", success=NOW - timedelta(hours=1)),
        row("classic", "action_required", "login_failed", NOW - timedelta(days=3)),
        row("labo", "retrying", "supplier_unavailable"),
        row("labo", "maintenance", "supplier_unavailable"),
        row("labo", "retrying", "interface_changed"),
        row("gone", "ok"),  # accounts of a collector no longer in the catalog still show
    ]
    reply = summarise({"classic": "Classic", "labo": "Labo", "empty": "Empty"}, tally(rows),
                      {"classic": [10.0, 30.0, 20.0]}, [], NOW)
    by_id = {c.collector_id: c for c in reply.collectors}
    assert [c.collector_id for c in reply.collectors] == ["classic", "labo", "empty", "gone"]
    classic = by_id["classic"]
    assert (classic.accounts, classic.ok, classic.ok_share) == (3, 2, 66.7)
    assert classic.error_codes == {"login_failed": 1}
    assert classic.last_success_at == NOW - timedelta(hours=1)
    assert (classic.runs, classic.p50_s, classic.p95_s) == (3, 20.0, 30.0)
    labo = by_id["labo"]
    assert (labo.accounts, labo.ok, labo.ok_share) == (3, 0, 0.0)
    assert labo.error_codes == {"supplier_unavailable": 2, "interface_changed": 1}
    assert list(labo.error_codes) == ["supplier_unavailable", "interface_changed"]  # most first
    assert labo.last_success_at is None and labo.runs == 0 and labo.p50_s is None
    empty = by_id["empty"]
    assert (empty.accounts, empty.ok, empty.ok_share, empty.error_codes, empty.name) == (0, 0, None, {}, "Empty")
    assert by_id["gone"].ok_share == 100.0
    # ok is the status, not the lack of an error code: pending and collecting accounts are not ok
    assert tally([row("c", "pending"), row("c", "collecting"), row("c", "ok")])["c"].ok_share == 33.3
    assert reply.window_hours == 24


def test_the_latest_open_incident_shows_resolved_ones_do_not() -> None:
    incidents = [
        IncidentRecord(incident_id="old", collector_id="labo", error_code="supplier_unavailable",
                       since=NOW - timedelta(hours=9)),
        IncidentRecord(incident_id="new", collector_id="labo", error_code="interface_changed",
                       since=NOW - timedelta(hours=2)),
        IncidentRecord(incident_id="closed", collector_id="classic", error_code="interface_changed",
                       since=NOW - timedelta(hours=3), resolved_at=NOW - timedelta(hours=1)),
        # only its resolution was read so far: not open
        IncidentRecord(incident_id="early", collector_id="classic", resolved_at=NOW),
    ]
    reply = summarise({"classic": "", "labo": ""}, {}, {}, incidents, NOW)
    by_id = {c.collector_id: c for c in reply.collectors}
    assert by_id["labo"].incident == api.FleetIncident(
        id="new", since=NOW - timedelta(hours=2), error_code=CollectionErrorCode.INTERFACE_CHANGED)
    assert by_id["classic"].incident is None


# --- the use case, with fakes -----------------------------------------------------------------------


class FakeAccounts:
    def __init__(self, rows: list[AccountStatusRow]) -> None:
        self.rows = rows
        self.passes = 0

    async def status_rows(self):  # type: ignore[no-untyped-def]
        self.passes += 1
        for r in self.rows:
            yield r


class FakeCatalog:
    async def all(self) -> list[dict[str, str]]:
        return [{"_id": "classic", "name": "Classic"}, {"_id": "labo", "name": "Labo"}]


class FakeRuns:
    def __init__(self) -> None:
        self.by_job: dict[str, RunStat] = {}

    async def add(self, run: RunStat) -> None:
        self.by_job.setdefault(run.job_id, run)

    async def durations_since(self, since: datetime) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for r in self.by_job.values():
            if r.finished_at >= since:
                out.setdefault(r.collector_id, []).append(r.duration_s)
        return out


class FakeIncidents:
    async def open(self) -> list[IncidentRecord]:
        return []


def result(job: str, collector: str, started: datetime, seconds: float,
           code: CollectionErrorCode | None = None) -> CollectionSucceeded | CollectionFailed:
    common = {"tenant_id": "p1", "account_id": f"a-{job}", "collector_id": collector, "job_id": job,
              "credential_version": 1, "started_at": started, "finished_at": started + timedelta(seconds=seconds)}
    if code is None:
        return CollectionSucceeded(**common)  # type: ignore[arg-type]
    return CollectionFailed(error_code=code, **common)  # type: ignore[arg-type]


async def test_the_use_case_reads_accounts_once_and_runs_of_the_last_24_hours() -> None:
    accounts = FakeAccounts([row("classic"), row("classic", "retrying", "supplier_unavailable")])
    runs = FakeRuns()
    fleet = FleetService(accounts, FakeCatalog(), runs, FakeIncidents(), clock=lambda: NOW)  # type: ignore[arg-type]
    await fleet.run_ended(result("j1", "classic", NOW - timedelta(hours=1), 12))
    await fleet.run_ended(result("j1", "classic", NOW - timedelta(hours=1), 12))  # redelivered
    await fleet.run_ended(result("j2", "classic", NOW - timedelta(hours=2), 40, CollectionErrorCode.LOGIN_FAILED))
    await fleet.run_ended(result("j3", "classic", NOW - WINDOW - timedelta(hours=1), 999))  # ended 25 h ago
    assert set(runs.by_job) == {"j1", "j2"}  # the old one is not even kept
    reply = await fleet.fleet(api.FleetRequest())
    classic = reply.collectors[0]
    assert (classic.runs, classic.p50_s, classic.p95_s) == (2, 12.0, 40.0)
    assert (classic.accounts, classic.ok_share, classic.error_codes) == (2, 50.0, {"supplier_unavailable": 1})
    assert [c.collector_id for c in reply.collectors] == ["classic", "labo"]
    assert reply.generated_at == NOW and accounts.passes == 1


def test_a_run_record_is_its_duration_never_negative() -> None:
    run = RunStat.of(result("j", "c", NOW, 42.5, CollectionErrorCode.LOGIN_FAILED))
    assert (run.duration_s, run.succeeded, run.error_code) == (42.5, False, "login_failed")
    skewed = result("k", "c", NOW, 0)
    skewed.finished_at = NOW - timedelta(seconds=3)
    assert RunStat.of(skewed).duration_s == 0.0


# --- the table ---------------------------------------------------------------------------------------


def test_the_table_is_readable_in_100_columns() -> None:
    reply = summarise(
        {"sandbox-classic": "Sandbox", "labo-mail": "Labo", "grossiste-nord": "Nord"},
        tally([row("sandbox-classic", success=NOW), row("sandbox-classic", "action_required", "login_failed"),
               row("labo-mail", "maintenance", "action_required_on_site"),
               row("labo-mail", "retrying", "supplier_unavailable")]),
        {"sandbox-classic": [12.25, 61.0]},
        [IncidentRecord(incident_id="0123456789abcdef0123456789abcdef", collector_id="labo-mail",
                        error_code="supplier_unavailable", since=NOW - timedelta(hours=2))], NOW)
    out = io.StringIO()
    render(reply.model_dump(mode="json"), Console(file=out, width=100, color_system=None))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "…" not in text  # nothing cut
    for expected in ["sandbox-classic", "50.0", "login_failed 1", "action_required_on_site 1", "0123456789a",
                     "05-14 10:00", "05-14 12:00", "12.2/61.0", "grossiste-nord"]:
        assert expected in text, expected
    assert re.search(r"grossiste-nord\s+0\s+—\s+—\s+—\s+—\s+0\s+—", text)


# --- permissions ---------------------------------------------------------------------------------------


def test_the_fleet_view_is_an_operator_subject() -> None:
    assert Api.ACCOUNTS_FLEET in OPERATOR_API and Api.ACCOUNTS_FLEET not in TENANT_API


async def test_the_gateway_cannot_ask_for_the_fleet_operators_can(server: LiveNats) -> None:  # noqa: F811
    """On nats-server with deploy/nats's users (nats.conf and the Helm values): the web gateway is refused
    the fleet view, the operator (the CLI) is answered by the accounts service's user."""
    async with answering_every_api(server) as asked, \
            connect(server, "gateway") as gateway, connect(server, "operator") as operator:
        assert (await operator.nc.request(Api.ACCOUNTS_FLEET, b"{}", timeout=5)).data == b"{}"
        await gateway.nc.publish(Api.ACCOUNTS_FLEET, b"{}")
        await gateway.nc.flush()
        assert await gateway.refused(Api.ACCOUNTS_FLEET)
        assert asked == [Api.ACCOUNTS_FLEET]
