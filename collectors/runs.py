"""``collectors runs``: the scraper's runs and the evidence of failed ones (operators only).

    collectors runs list [--collector C] [--status ok|failed] [--since 2h|ISO]
    collectors runs show RUN_ID
    collectors runs evidence RUN_ID -o DIR   # trail.json, page.html, screenshot.png, run.har

The HAR opens in a browser's developer tools (Network, import) and replays offline with
``collectors dev try COLLECTOR --har-replay DIR/run.har``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from collectors.api_call import DEFAULT_NATS, JsonOpt, NatsOpt, run_api
from collectors.output import console, emit, record, shown, table
from shared.client import ApiClient
from shared.errors import RemoteApiError
from shared.subjects import Api

app = typer.Typer(help="The scraper's runs and the evidence of failed ones (operators).", no_args_is_help=True)

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2h``, ``30m``, ``7d``, ``45s`` ago, or an ISO date/time (UTC when it names no zone)."""
    found = _AGO.match(text.strip())
    if found:
        return (now or datetime.now(UTC)) - timedelta(seconds=float(found[1]) * _UNITS[found[2]])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give a duration (2h, 30m, 7d) or an ISO date/time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)




@app.command("list")
def runs_list(
    collector: Annotated[str | None, typer.Option("--collector", "-c", help="Only this collector's runs.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="ok or failed.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Started since: 2h, 30m, 7d or an ISO time.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 100,
    as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """Runs (one attempt of a collect job each), newest first."""
    if status is not None and status not in ("ok", "failed"):
        raise typer.BadParameter("--status is ok or failed")
    payload: dict[str, Any] = {"collector_id": collector, "status": status, "limit": limit,
                               "since": parse_since(since).isoformat() if since else None}
    data = run_api(as_json, nats_url, lambda c: c.call(Api.SCRAPER_RUNS_LIST, payload))
    emit(data, as_json, lambda d: table(d["runs"], [
        ("run_id", "run"), ("started_at", "started"), ("collector_id", "collector"), ("tenant_id", "tenant"),
        ("account_id", "account"), ("status", "status"), ("error_code", "code"), ("duration_ms", "ms"),
        ("documents", "docs"), ("evidence", "evidence")], title="Runs"))


@app.command("show")
def runs_show(run_id: str, as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS) -> None:
    """A run: its verdict, its trail of requests and the evidence it kept."""
    data = run_api(as_json, nats_url, lambda c: c.call(Api.SCRAPER_RUNS_SHOW, {"run_id": run_id}))

    def human(d: dict[str, Any]) -> None:
        record(d, ["run_id", "job_id", "tenant_id", "account_id", "collector_id", "worker_id", "started_at",
                   "duration_ms", "status", "error_code", "detail", "documents", "new_documents", "logins",
                   "evidence", "evidence_expires_at", "evidence_note"])
        table(d["trail"], [("at_ms", "at ms"), ("method", "method"), ("status", "status"), ("ms", "ms"),
                           ("via", "via"), ("url", "url")], title="Trail")
        if d.get("trail_dropped"):
            console.print(f"… and {d['trail_dropped']} more requests, not kept")

    emit(data, as_json, human)


async def _download(c: ApiClient, run_id: str, name: str, out: Path) -> int:
    request: dict[str, Any] = {"run_id": run_id, "name": name, "offset": 0}
    digest, written = hashlib.sha256(), 0
    tmp = out.with_name(out.name + ".part")
    try:
        with tmp.open("wb") as fh:
            while True:
                chunk = await c.call(Api.SCRAPER_RUNS_EVIDENCE, request)
                data = base64.b64decode(chunk["data"], validate=True)
                if chunk["offset"] != written or chunk["next_offset"] != written + len(data):
                    raise RemoteApiError("integrity_error", "the download went out of order")
                fh.write(data)
                digest.update(data)
                written += len(data)
                if chunk["cursor"] is None:
                    break
                if not data:
                    raise RemoteApiError("integrity_error", "the download stopped moving forward")
                request = {**request, "offset": written, "cursor": chunk["cursor"]}
        if written != chunk["size"] or digest.hexdigest() != chunk["sha256"]:
            raise RemoteApiError("integrity_error", f"{name}: the downloaded file does not match its SHA-256")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return written


@app.command("evidence")
def runs_evidence(
    run_id: str,
    out: Annotated[Path, typer.Option("-o", "--output", help="Directory to write the files to.")],
    as_json: JsonOpt = False, nats_url: NatsOpt = DEFAULT_NATS,
) -> None:
    """Write a run's evidence into a directory: trail.json, page.html, screenshot.png, run.har,
    manifest.json (what the run kept; a successful run keeps its trail only)."""

    async def work(c: ApiClient) -> dict[str, Any]:
        run = await c.call(Api.SCRAPER_RUNS_SHOW, {"run_id": run_id})
        out.mkdir(parents=True, exist_ok=True)
        files: dict[str, int] = {}
        for name in run["evidence"]:
            files[name] = await _download(c, run_id, name, out / name)
        if "trail.json" not in files:  # a run without evidence still has its trail in the index
            trail = json.dumps({"requests": run["trail"], "dropped": run["trail_dropped"]}, indent=1).encode()
            (out / "trail.json").write_bytes(trail)
            files["trail.json"] = len(trail)
        return {"run_id": run_id, "directory": str(out), "files": files, "note": run["evidence_note"]}

    data = run_api(as_json, nats_url, work)

    def human(d: dict[str, Any]) -> None:
        for name, size in d["files"].items():
            console.print(f"{shown(str(Path(d['directory']) / name))} ({size} bytes)")
        if d["note"]:
            console.print(f"note: {shown(d['note'])}")

    emit(data, as_json, human)
