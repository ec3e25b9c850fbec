"""Issue 13's done-when: after `collectors up --demo` with one account in a fault mode, `collectors runs
list --status failed` shows its run and `collectors runs evidence` writes its HTML, screenshot (a
single-page app's) and HAR, none of them holding the password."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.e2e.test_platform_cli import Cli, platform  # noqa: F401  (the module's own `up --demo`)
from tests.integration.test_scraper_evidence import leaks


def test_a_failed_runs_evidence_through_the_cli(platform: tuple[Cli, subprocess.Popen[str], Path],  # noqa: F811
                                                 tmp_path: Path) -> None:
    cli, _, _ = platform
    created = cli.json("accounts", "add", "--tenant", "pharma-evidence", "--collector", "sandbox-spa",
                       "--login", "fault-terms-1", "--password-stdin", stdin="demo\n")
    cli.wait_for("pharma-evidence", created["id"], {"action_required"}, timeout=60)

    deadline = time.monotonic() + 20
    while True:
        runs = cli.json("runs", "list", "--status", "failed", "--collector", "sandbox-spa", "--since", "1h")["runs"]
        mine = [r for r in runs if r["account_id"] == created["id"]]
        if mine:
            break
        assert time.monotonic() < deadline, runs
        time.sleep(0.3)
    run = mine[0]
    assert run["error_code"] == "action_required_on_site"
    assert run["run_id"] in cli.run("runs", "list", "--status", "failed").stdout  # the human table too

    shown = cli.json("runs", "show", run["run_id"])
    assert shown["trail"] and shown["status"] == "failed"

    out = tmp_path / "evidence"
    cli.run("runs", "evidence", run["run_id"], "-o", str(out))
    assert (out / "page.html").read_text().strip()
    assert (out / "screenshot.png").read_bytes().startswith(b"\x89PNG")
    har = json.loads((out / "run.har").read_text())
    assert any(e["request"]["url"].endswith("/api/login") for e in har["log"]["entries"])
    assert json.loads((out / "trail.json").read_text())["requests"]
    for file in out.iterdir():
        assert not leaks(file.read_bytes(), "demo"), file.name
