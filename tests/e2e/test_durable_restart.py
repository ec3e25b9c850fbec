"""``collectors up --demo`` without MONGODB_URL keeps its data: the whole process group killed with
SIGKILL while collections run, started again on the same data dir, it has every account (same ids),
every credential (a retry still collects: the password decrypts), every invoice, none twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shared.natsserver import free_port
from tests.e2e.test_platform_cli import COLLECTORS, Cli, _env

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _up(data_dir: Path, port: int, console: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in _env().items() if k not in ("MONGODB_URL", "COLLECTORS_MONGODB_URL",
                                                         "COLLECTORS_IN_MEMORY")}
    with console.open("a") as out:
        # a process group of its own (nats-server included), to kill it all at once
        return subprocess.Popen([COLLECTORS, "up", "--demo", "--data-dir", str(data_dir), "--nats-port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)


def _wait_all_ok(cli: Cli, proc: subprocess.Popen[str], console: Path, timeout: float = 120) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, console.read_text()
        done = cli.run("accounts", "list", "--tenant", "demo", "--json", check=False)
        if done.returncode == 0:
            accounts: list[dict[str, Any]] = json.loads(done.stdout)["accounts"]
            if len(accounts) == 4 and all(a["status"] == "ok" for a in accounts):
                return accounts
        assert time.monotonic() < deadline, console.read_text()[-3000:]
        time.sleep(0.5)


def _invoices(cli: Cli) -> list[tuple[str, str, str]]:
    invoices = cli.json("invoices", "list", "--tenant", "demo")["invoices"]
    return [(i["account_id"], i["number"], i["sha256"]) for i in invoices]


def _kill_group(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_up_survives_kill_9_of_the_whole_process_group(tmp_path: Path) -> None:
    data_dir, console = tmp_path / "data", tmp_path / "console.txt"
    port = free_port()
    cli = Cli(f"nats://127.0.0.1:{port}")
    proc = _up(data_dir, port, console)
    try:
        accounts = _wait_all_ok(cli, proc, console)
        ids = sorted(a["id"] for a in accounts)
        invoices = _invoices(cli)
        assert invoices and len(set(invoices)) == len(invoices)
        for account_id in ids:  # collections in flight when the process group dies
            cli.run("accounts", "retry", "--tenant", "demo", account_id)
        time.sleep(0.3)
    finally:
        _kill_group(proc)

    proc = _up(data_dir, port, console)
    try:
        again = _wait_all_ok(cli, proc, console)
        assert sorted(a["id"] for a in again) == ids
        after = _invoices(cli)
        assert set(invoices) <= set(after)
        doubled = [key for key, n in Counter((a, num) for a, num, _ in after).items() if n > 1]
        assert not doubled, doubled
        # the credentials decrypt: a retry after the restart collects again, and adds no invoice twice
        before_retry = {a["id"]: a["last_success_at"] for a in again}
        for account_id in ids:
            cli.run("accounts", "retry", "--tenant", "demo", account_id)
        deadline = time.monotonic() + 60
        while True:
            now = {a["id"]: a for a in cli.json("accounts", "list", "--tenant", "demo")["accounts"]}
            if all(now[i]["status"] == "ok" and now[i]["last_success_at"] != before_retry[i] for i in ids):
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.5)
        final = _invoices(cli)
        assert len(final) == len(set(final)) == len(set(after))
        assert "durable embedded store" in console.read_text()
        assert "(kept)" in console.read_text() and "reset" not in console.read_text()  # JetStream kept
    finally:
        _kill_group(proc)
