"""``collectors up --demo`` without MONGODB_URL keeps its data: the whole process group killed with
SIGKILL while collections run, started again on the same data dir, it has every account (same ids),
every credential (a retry still collects: the password decrypts), every invoice, none twice, every
notification, none twice, and the collections the kill interrupted run again by themselves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collectors.platform import DEMO_ACCOUNTS
from shared.natsserver import free_port
from tests.e2e.test_platform_cli import COLLECTORS, Cli, _env

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# A second pharmacy besides the demo one: an account whose collection ends action_required (so the
# notifier records an alert on every channel its prefs ask for) and one whose every portal page takes
# 1.5 s (so a retried collection is surely still running when the process group dies).
TENANT = "restart"
EXPIRED_LOGIN = "fault-password_expired-restart"
SLOW_LOGIN = "fault-slow-restart"
# A job interrupted by the kill stays unacked in JetStream and is delivered again once its ack wait
# runs out: shortened (heartbeats, the in-progress acks, well below it) so that the test sees the
# redo within seconds; a job dispatched but never started is sent again after the start timeout.
REDO_ENV = {"COLLECTORS_ACK_WAIT_S": "5", "COLLECTORS_HEARTBEAT_S": "1", "COLLECTORS_START_TIMEOUT_S": "5"}


def _up(data_dir: Path, port: int, console: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in _env().items() if k not in ("MONGODB_URL", "COLLECTORS_MONGODB_URL",
                                                         "COLLECTORS_IN_MEMORY")}
    env.update(REDO_ENV)
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
            if len(accounts) == len(DEMO_ACCOUNTS) and all(a["status"] == "ok" for a in accounts):
                return accounts
        assert time.monotonic() < deadline, console.read_text()[-3000:]
        time.sleep(0.5)


def _invoices(cli: Cli) -> list[tuple[str, str, str]]:
    invoices = cli.json("invoices", "list", "--tenant", "demo")["invoices"]
    # (account, site/number, file): two sites of one login may reuse a number (the legacy demo account)
    return [(i["account_id"], f"{i.get('site') or ''}/{i['number']}", i["sha256"]) for i in invoices]


def _at(stamp: str | None) -> datetime:
    return datetime.fromisoformat(stamp) if stamp else datetime.min.replace(tzinfo=UTC)


def _account(cli: Cli, account_id: str) -> dict[str, Any]:
    acc: dict[str, Any] = cli.json("accounts", "show", "--tenant", TENANT, account_id)
    return acc


def _wait_account(cli: Cli, proc: subprocess.Popen[str], console: Path, account_id: str, done: Any,
                  timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, console.read_text()[-3000:]
        acc = _account(cli, account_id)
        if done(acc):
            return acc
        assert time.monotonic() < deadline, (acc, console.read_text()[-3000:])
        time.sleep(0.3)


def _notifications(cli: Cli) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for tenant in ("demo", TENANT):
        found += cli.json("notifications", "list", "--tenant", tenant)["notifications"]
    return found


def _kill_group(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_up_survives_kill_9_of_the_whole_process_group(tmp_path: Path) -> None:
    data_dir, console = tmp_path / "data", tmp_path / "console.txt"
    port = free_port()
    cli = Cli(f"nats://127.0.0.1:{port}")
    proc = _up(data_dir, port, console)
    try:
        deadline = time.monotonic() + 60
        while cli.run("health", "--wait", "5", check=False).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, console.read_text()
        add = ("accounts", "add", "--tenant", TENANT, "--collector", "sandbox-classic", "--password-stdin")
        slow = cli.json(*add, "--login", SLOW_LOGIN, stdin="demo\n")["id"]
        cli.run("notifications", "prefs", "--tenant", TENANT, "--email", "pharmacien@restart.test")
        expired = cli.json(*add, "--login", EXPIRED_LOGIN, stdin="demo\n")["id"]
        accounts = _wait_all_ok(cli, proc, console)
        ids = sorted(a["id"] for a in accounts)
        _wait_account(cli, proc, console, expired, lambda a: a["status"] == "action_required", 30)
        first = _wait_account(cli, proc, console, slow, lambda a: a["status"] == "ok", 60)
        # the alert, in the app and by email (no SMTP server: recorded as failed, but recorded)
        deadline = time.monotonic() + 30
        while {(n["kind"], n["channel"]) for n in _notifications(cli)} < {("action_required", "in_app"),
                                                                          ("action_required", "email")}:
            assert time.monotonic() < deadline, _notifications(cli)
            time.sleep(0.3)
        invoices = _invoices(cli)
        assert invoices and len(set(invoices)) == len(invoices)
        for account_id in ids:  # collections in flight when the process group dies
            cli.run("accounts", "retry", "--tenant", "demo", account_id)
        cli.run("accounts", "retry", "--tenant", TENANT, slow)
        # Positive control: the slow account's retried collection has started (a newer attempt than
        # its last success) and has no result yet; its pages take 1.5 s each (~6 s in all), so the
        # kill that follows at once interrupts it.
        interrupted = _wait_account(cli, proc, console, slow, lambda a: a["status"] == "collecting", 30)
        assert _at(interrupted["last_attempt_at"]) > _at(first["last_success_at"]), interrupted
        assert interrupted["last_success_at"] == first["last_success_at"], interrupted
        notified = _notifications(cli)
        killed_at = datetime.now(UTC)
    finally:
        _kill_group(proc)

    proc = _up(data_dir, port, console)
    try:
        again = _wait_all_ok(cli, proc, console)
        assert sorted(a["id"] for a in again) == ids
        # every notification is still there, none twice
        kept = _notifications(cli)
        assert {n["id"] for n in notified} <= {n["id"] for n in kept}, (notified, kept)
        assert len({n["id"] for n in kept}) == len(kept), kept
        twice = [k for k, n in Counter((m["tenant_id"], m["kind"], m["channel"], m["subject"], m["recipient"])
                                       for m in kept).items() if n > 1]
        assert not twice, twice
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
        # The interrupted collection ran again by itself (no retry asked for it after the restart): a
        # new attempt, started after the kill, ended in a success.
        redone = _wait_account(cli, proc, console, slow, lambda a: a["status"] == "ok"
                               and _at(a["last_attempt_at"]) > killed_at and _at(a["last_success_at"]) > killed_at, 60)
        assert _at(redone["last_attempt_at"]) > _at(interrupted["last_attempt_at"]), redone
        final = _invoices(cli)
        assert len(final) == len(set(final)) == len(set(after))
        assert "durable embedded store" in console.read_text()
        assert "(kept)" in console.read_text() and "reset" not in console.read_text()  # JetStream kept
    finally:
        _kill_group(proc)
