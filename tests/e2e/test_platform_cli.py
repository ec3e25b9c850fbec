"""The whole platform driven as a user would: ``collectors up --demo`` in one process, the
``collectors`` CLI in others."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.natsserver import free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]
COLLECTORS = str(Path(sys.executable).parent / "collectors")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "COLLECTORS_NATS_URL")}
    env["PYTHONWARNINGS"] = "error::RuntimeWarning"  # an un-awaited coroutine is a bug
    return env


class Cli:
    def __init__(self, nats_url: str, web_port: int = 0) -> None:
        self.nats_url = nats_url
        self.web_port = web_port

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([COLLECTORS, *args, "--nats-url", self.nats_url], input=stdin, text=True,
                              capture_output=True, env=_env(), timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} exited {proc.returncode}: {proc.stdout} {proc.stderr}")
        return proc

    def json(self, *args: str, stdin: str | None = None) -> Any:
        return json.loads(self.run(*args, "--json", stdin=stdin).stdout)

    def wait_for(self, tenant: str, account_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            acc: dict[str, Any] = self.json("accounts", "show", "--tenant", tenant, account_id)
            if acc["status"] in statuses:
                return acc
            if time.monotonic() > deadline:
                raise AssertionError(f"account stayed {acc['status']}: {acc}")
            time.sleep(0.3)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, subprocess.Popen[str], Path]]:
    data_dir = tmp_path_factory.mktemp("up")
    port, web_port = free_port(), free_port()
    console = data_dir / "console.txt"  # a file, not a pipe: a full pipe would block the platform
    with console.open("w") as out:
        proc = subprocess.Popen([COLLECTORS, "up", "--demo", "--data-dir", str(data_dir), "--nats-port", str(port),
                                 "--web-port", str(web_port)],
                                stdout=out, stderr=subprocess.STDOUT, text=True, env=_env())
    cli = Cli(f"nats://127.0.0.1:{port}", web_port)
    try:
        deadline = time.monotonic() + 60
        while cli.run("health", "--wait", "5", check=False).returncode != 0:
            assert proc.poll() is None, console.read_text()
            assert time.monotonic() < deadline, "platform never became healthy"
        yield cli, proc, console
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_demo_accounts_collect_and_the_cli_sees_them(platform: tuple[Cli, subprocess.Popen[str], Path]) -> None:
    cli, _, _ = platform
    health = cli.json("health")
    assert health["healthy"] and set(health["services"]) == {"accounts", "scheduler", "scraper", "notifier",
                                                             "requests", "documents"}
    catalog = cli.json("catalog")["collectors"]
    assert any(c["id"].startswith("sandbox-") for c in catalog)
    assert {"id", "name", "supplier", "login_kind"} <= set(catalog[0])

    deadline = time.monotonic() + 90
    while True:
        accounts = cli.json("accounts", "list", "--tenant", "demo")["accounts"]
        if accounts and all(a["status"] == "ok" for a in accounts):
            break
        assert time.monotonic() < deadline, accounts
        time.sleep(0.5)
    assert len(accounts) >= 2 and all(a["invoice_count"] >= 10 for a in accounts)
    invoices = cli.json("invoices", "list", "--tenant", "demo")["invoices"]
    assert len(invoices) == sum(a["invoice_count"] for a in accounts)
    assert {"id", "account_id", "number", "issue_date", "amount", "currency", "kind", "sha256"} <= set(invoices[0])
    human = cli.run("accounts", "list", "--tenant", "demo").stdout
    assert "ok" in human and accounts[0]["login"] in human


def test_up_serves_the_web_api_and_prints_the_demo_pharmacys_sign_in_link(
        platform: tuple[Cli, subprocess.Popen[str], Path]) -> None:
    import httpx

    cli, _, console = platform
    base = f"http://127.0.0.1:{cli.web_port}"
    link = (console.parent / "demo-signin-link.txt").read_text().strip()
    assert link.startswith(f"{base}/signin?token=")
    text = console.read_text()
    assert f"Web API and page: {base}/" in text and "demo-signin-link.txt" in text
    with httpx.Client(base_url=base, timeout=30) as http:
        signed_in = http.get(link, follow_redirects=False)
        assert signed_in.status_code == 303 and {"collectors_session", "collectors_csrf"} <= set(http.cookies)
        accounts = http.get("/api/v1/accounts")
        assert accounts.status_code == 200 and accounts.json()["accounts"]
        assert {a["tenant_id"] for a in accounts.json()["accounts"]} == {"demo"}
        assert http.post("/api/v1/requests", json={"supplier": "X"}).status_code == 403  # no CSRF header
    token = subprocess.run([COLLECTORS, "dev", "token", "--tenant", "demo", "--data-dir", str(console.parent)],
                           capture_output=True, text=True, env=_env(), timeout=60, check=True).stdout.strip()
    catalog = httpx.get(f"{base}/api/v1/catalog", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert catalog.status_code == 200 and catalog.json()["collectors"]


def test_an_account_added_with_the_cli_gets_its_invoices_within_seconds(
        platform: tuple[Cli, subprocess.Popen[str], Path], tmp_path: Path) -> None:
    cli, _, _ = platform
    started = time.monotonic()
    created = cli.json("accounts", "add", "--tenant", "pharma-e2e", "--collector", "sandbox-classic",
                       "--login", "officine-e2e", "--password-stdin", stdin="demo\n")
    assert created["status"] == "pending"
    acc = cli.wait_for("pharma-e2e", created["id"], {"ok", "action_required", "retrying"}, timeout=30)
    elapsed = time.monotonic() - started
    assert acc["status"] == "ok" and acc["invoice_count"] >= 10
    assert elapsed < 20, f"first invoices took {elapsed:.1f} s"

    # The next planned run (from the scheduler) reaches the status, and `accounts show` prints it.
    deadline = time.monotonic() + 15
    while not acc.get("next_run_at"):
        assert time.monotonic() < deadline, acc
        time.sleep(0.3)
        acc = cli.json("accounts", "show", "--tenant", "pharma-e2e", created["id"])
    assert acc["pause_reason"] is None
    assert "next_run_at" in cli.run("accounts", "show", "--tenant", "pharma-e2e", created["id"]).stdout
    invoices = cli.json("invoices", "list", "--tenant", "pharma-e2e", "--account", created["id"])["invoices"]
    assert len(invoices) == acc["invoice_count"]
    out = tmp_path / "invoice.pdf"
    cli.run("invoices", "download", "--tenant", "pharma-e2e", invoices[0]["id"], "-o", str(out))
    assert out.read_bytes().startswith(b"%PDF")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == invoices[0]["sha256"]


def test_a_wrong_password_ends_in_action_required_with_a_french_message(
        platform: tuple[Cli, subprocess.Popen[str], Path]) -> None:
    cli, _, _ = platform
    created = cli.json("accounts", "add", "--tenant", "pharma-bad", "--collector", "sandbox-classic",
                       "--login", "officine-bad", "--password-stdin", stdin="wrong\n")
    acc = cli.wait_for("pharma-bad", created["id"], {"action_required", "ok", "retrying"})
    assert acc["status"] == "action_required"
    assert acc["error_code"] == "login_failed"
    deadline = time.monotonic() + 15
    while acc.get("pause_reason") != "login_failed":  # never retried in the background
        assert time.monotonic() < deadline, acc
        time.sleep(0.3)
        acc = cli.json("accounts", "show", "--tenant", "pharma-bad", created["id"])
    assert acc["next_run_at"] is None
    assert "mot de passe refusé" in acc["message"]
    shown = cli.run("accounts", "show", "--tenant", "pharma-bad", created["id"]).stdout
    assert "Collecteurs → Modifier" in " ".join(shown.split())

    cli.run("accounts", "update", "--tenant", "pharma-bad", created["id"], "--password-stdin", stdin="demo\n")
    assert cli.wait_for("pharma-bad", created["id"], {"ok"})["invoice_count"] >= 10

    cli.run("accounts", "delete", "--tenant", "pharma-bad", created["id"], "--yes")
    gone = cli.run("accounts", "show", "--tenant", "pharma-bad", created["id"], "--json", check=False)
    assert gone.returncode == 1
    assert json.loads(gone.stdout)["error"]["code"] == "not_found"


def test_errors_are_printed_and_exit_non_zero(platform: tuple[Cli, subprocess.Popen[str], Path]) -> None:
    cli, _, _ = platform
    proc = cli.run("accounts", "add", "--tenant", "demo", "--collector", "nope", "--login", "x",
                   "--password-stdin", "--json", stdin="pw\n", check=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {"error": {"code": "unknown_collector", "field": "collector_id",
                                                 "message": "Ce collecteur n'existe pas dans le catalogue."}}
    human = cli.run("accounts", "show", "--tenant", "demo", "missing", check=False)
    assert human.returncode == 1 and "not_found" in human.stderr
    down = subprocess.run([COLLECTORS, "catalog", "--json", "--nats-url", f"nats://127.0.0.1:{free_port()}"],
                          capture_output=True, text=True, env=_env(), timeout=30)
    assert down.returncode == 3 and json.loads(down.stdout)["error"]["code"] == "unavailable"


def test_requests_and_notifications_answer(platform: tuple[Cli, subprocess.Popen[str], Path]) -> None:
    cli, _, _ = platform
    first = cli.json("requests", "add", "--tenant", "t1", "--supplier", "Laboratoire Exemple",
                     "--url", "https://www.labo-exemple.fr/espace-client")
    second = cli.json("requests", "add", "--tenant", "t2", "--supplier", "laboratoire  exemple")
    assert first["id"] == second["id"] and second["votes"] == 2
    listed = cli.json("requests", "list", "--all")["requests"]
    assert listed[0]["id"] == first["id"] and listed[0]["requesters"] == ["t1", "t2"]
    # a pharmacy's list names that pharmacy; without --tenant or --all the CLI refuses
    mine = cli.json("requests", "list", "--tenant", "t2")["requests"]
    assert [(r["id"], r["requesters"]) for r in mine] == [(first["id"], ["t2"])]
    assert cli.run("requests", "list", check=False).returncode == 2
    moved = cli.json("requests", "set-status", first["id"], "in_progress")
    assert moved["status"] == "in_progress"

    prefs = cli.json("notifications", "prefs", "--tenant", "t1")
    assert prefs["language"] == "fr" and prefs["emails"] == []
    prefs = cli.json("notifications", "prefs", "--tenant", "t1", "--email", "compta@pharmacie.fr", "--lang", "en")
    assert prefs["emails"] == ["compta@pharmacie.fr"] and prefs["language"] == "en"
    hooked = cli.json("notifications", "prefs", "--tenant", "t1", "--webhook", "https://hooks.pharmacie.fr/c")
    rotated = cli.json("notifications", "prefs", "--tenant", "t1", "--rotate-webhook-secret")
    assert hooked["webhook_secret"] and rotated["webhook_secret"] != hooked["webhook_secret"]
    assert rotated["webhook_url"] == "https://hooks.pharmacie.fr/c" and rotated["emails"] == ["compta@pharmacie.fr"]
    assert "notifications" in cli.json("notifications", "list", "--tenant", "t1")


def test_ctrl_c_stops_everything_cleanly(platform: tuple[Cli, subprocess.Popen[str], Path]) -> None:
    cli, proc, console = platform
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    output = console.read_text()
    assert "IN-MEMORY" in output or "MongoDB:" in output
    assert "Stopped." in output
    assert "Traceback" not in output
    assert cli.run("health", check=False).returncode != 0


def test_collectors_demo_summarises_the_first_round(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run([COLLECTORS, "demo", "--json", "--data-dir", str(tmp_path), "--nats-port",
                           str(free_port())], capture_output=True, text=True, env=_env(), timeout=180)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["accounts"] and all(a["status"] == "ok" for a in summary["accounts"])
    assert summary["invoices"] == sum(a["invoice_count"] for a in summary["accounts"]) > 0
    # issue 14: the documents service read every collected invoice; part of them carry an e-invoice
    assert summary["invoices_read"] == summary["invoices"]
    assert 0 < summary["invoices_with_data"] < summary["invoices"]
    assert time.monotonic() - started < 120
