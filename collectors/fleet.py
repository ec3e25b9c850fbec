"""``collectors fleet``: how every collector of the catalog is doing (operators; the accounts service's
``Api.ACCOUNTS_FLEET``, refused to the web gateway by NATS permissions).

The table fits 100 columns: error codes take one line each inside their cell, an incident its id's start
over its start time, times are UTC ``MM-DD HH:MM``; ``--json`` prints the service's reply as it is (full
ids, ISO dates).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from collectors.api_call import run_api
from collectors.output import console, emit, shown
from shared.client import ApiClient
from shared.subjects import Api

# 100,000 accounts are one pass in the service (about 2 s on the embedded store): leave it room.
FLEET_TIMEOUT_S = 120.0


def _when(value: str | None) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).strftime("%m-%d %H:%M")


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def render(data: dict[str, Any], out: Console) -> None:
    """The reply as a table (every value from the platform goes through ``shown``)."""
    t = Table(title=f"Collectors over the last {data['window_hours']} h (times UTC)", box=box.SIMPLE_HEAD,
              pad_edge=False, collapse_padding=True)
    for header, justify in [("collector", "left"), ("accts", "right"), ("ok %", "right"), ("errors", "left"),
                            ("incident", "left"), ("last ok", "left"), ("runs", "right"),
                            ("p50/p95 s", "right")]:
        t.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for c in data["collectors"]:
        share = c.get("ok_share")
        style = "" if share is None else "green" if share >= 95 else "yellow" if share >= 80 else "red"
        ok = "—" if share is None else f"[{style}]{share:.1f}[/]"
        errors = "\n".join(f"{shown(code)} {n}" for code, n in c.get("error_codes", {}).items()) or "—"
        inc = c.get("incident")
        incident = "—" if not inc else f"[magenta]{shown(inc['id'][:11])}[/]\n{_when(inc['since'])}"
        durations = "—" if not c.get("runs") else f"{_seconds(c.get('p50_s'))}/{_seconds(c.get('p95_s'))}"
        t.add_row(shown(c["collector_id"]), str(c["accounts"]), ok, errors, incident,
                  _when(c.get("last_success_at")), str(c.get("runs", 0)), durations)
    out.print(t)


def fleet(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    nats_url: Annotated[str, typer.Option("--nats-url", envvar="NATS_URL",
                                          help="NATS server of the platform.")] = "nats://127.0.0.1:4222",
) -> None:
    """Per collector: active accounts, share ok, accounts by error code, open incident, last success,
    p50/p95 run duration over 24 h (operators)."""

    async def work(client: ApiClient) -> dict[str, Any]:
        return await client.call(Api.ACCOUNTS_FLEET, {}, timeout=FLEET_TIMEOUT_S)

    data = run_api(as_json, nats_url, work)
    emit(data, as_json, lambda d: render(d, console))
