"""`collectors dev try / record / new` against a local sandbox portal, as a developer runs them."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from typer.testing import CliRunner

from collectors.cli import app
from sandbox import documents_for, start_portal
from sandbox.portal import SandboxPortal
from sandbox.sessions import Session, Sessions

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "pharma-42"


@pytest.fixture
async def portal() -> AsyncIterator[SandboxPortal]:
    started = await start_portal()
    try:
        yield started
    finally:
        await started.close()


async def dev(*args: str, password: str = "demo") -> tuple[int, str, str]:
    """``python -m collectors dev ...`` in its own process (the portal keeps serving meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collectors", "dev", *args, cwd=ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    out, err = await asyncio.wait_for(process.communicate(f"{password}\n".encode()), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def expected(login: str) -> list[dict[str, Any]]:
    return [{"number": d.number, "issue_date": d.issue_date.isoformat(), "amount": str(d.amount), "kind": d.kind,
             "site": None} for d in documents_for(login, date.today())]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_try_runs_a_collection_and_says_the_verdict(portal: SandboxPortal) -> None:
    code, out, err = await dev("try", "sandbox-classic", "--login", LOGIN, "--password-stdin",
                               "--portal-url", portal.url, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"outcome", "documents", "trail"}
    assert result["outcome"] == "ok"
    assert sorted(result["documents"], key=lambda d: d["number"]) == sorted(expected(LOGIN),
                                                                           key=lambda d: d["number"])
    trail = result["trail"]
    assert trail[0]["method"] == "GET" and trail[0]["url"] == f"{portal.url}/classic/login"
    assert any(r["method"] == "POST" and r["status"] == 303 for r in trail)
    assert all(set(r) == {"method", "url", "status", "ms"} and isinstance(r["ms"], int) for r in trail)
    assert "Traceback" not in err

    # A portal in maintenance: the framework's diagnosis gives the code, and the exit status is 1.
    code, out, err = await dev("try", "sandbox-classic", "--login", "fault-maintenance-1", "--password-stdin",
                               "--portal-url", portal.url, "--json")
    assert code == 1, err
    assert json.loads(out) == {"outcome": "supplier_unavailable", "documents": [], "trail": json.loads(out)["trail"]}

    # Human output, a page-driven collector, a wrong password.
    code, out, err = await dev("try", "sandbox-spa", "--login", LOGIN, "--password-stdin",
                               "--portal-url", portal.url, password="wrong")
    assert code == 1
    assert "verdict: login_failed" in out
    assert "POST   401" in out and f"{portal.url}/spa/api/login" in out  # the page's requests too
    assert "wrong" not in out


async def test_out_writes_the_pdfs(portal: SandboxPortal, tmp_path: Path) -> None:
    code, _, err = await dev("try", "sandbox-classic", "--login", LOGIN, "--password-stdin",
                             "--portal-url", f"{portal.url}/classic/", "--out", str(tmp_path / "pdfs"))
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "pdfs").iterdir())
    assert written == sorted(f"{d['number']}.pdf" for d in expected(LOGIN))
    assert all(p.read_bytes().startswith(b"%PDF") for p in (tmp_path / "pdfs").iterdir())


@pytest.mark.parametrize("collector", ["sandbox-classic", "sandbox-spa"])
async def test_record_is_scrubbed_and_replays_offline_on_another_origin(
        collector: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens: list[str] = []
    opened = Sessions.open

    def spy(self: Sessions, login: str) -> Session:
        session = opened(self, login)
        tokens.append(session.token)
        return session

    monkeypatch.setattr(Sessions, "open", spy)
    har = tmp_path / "session.har"
    password = "Dé mo+/=é€"  # the sandbox accepts only demo: this one is typed, refused, and must not show
    live_portal = await start_portal()
    try:
        code, out, err = await dev("record", collector, "--login", LOGIN, "--password-stdin",
                                   "--portal-url", live_portal.url, "--har", str(har), "--json")
        assert code == 0, err
        live = json.loads(out)
        code, out, err = await dev("record", collector, "--login", LOGIN, "--password-stdin",
                                   "--portal-url", live_portal.url, "--har", str(tmp_path / "refused.har"),
                                   password=password)
        assert code == 1 and "login_failed" in out
    finally:
        await live_portal.close()  # from here on nothing answers: the HAR is the portal
    assert live["outcome"] == "ok" and live["documents"]

    text = har.read_text(encoding="utf-8")
    refused = (tmp_path / "refused.har").read_text(encoding="utf-8")
    for secret, recording in (("demo", text), (password, refused)):
        for form in {secret, quote(secret), quote_plus(secret), quote_plus(secret.encode("cp1252")),
                     json.dumps(secret)[1:-1], base64.b64encode(secret.encode()).decode(),
                     base64.b64encode(secret.encode()).decode().rstrip("=")}:
            assert form not in recording, form
    assert tokens, "the portal opened no session"
    assert not [t for t in tokens if t in text or t in refused]
    entries = json.loads(text)["log"]["entries"]
    cookies = [h["value"] for e in entries for part in ("request", "response") for h in e[part]["headers"]
               if h["name"].lower() in ("cookie", "set-cookie")]
    assert cookies and all("=scrubbed" in c for c in cookies)
    assert all(c["value"] == "scrubbed" for e in entries for part in ("request", "response")
               for c in e[part].get("cookies", []))

    # Offline, whatever origin the run uses: another port, or the manifest's own.
    for portal_url in (f"http://127.0.0.1:{free_port()}", None):
        options = ["--portal-url", portal_url] if portal_url else []
        code, out, err = await dev("try", collector, "--login", LOGIN, "--password-stdin", "--json",
                                   "--har-replay", str(har), *options)
        assert code == 0, err
        replay = json.loads(out)
        assert replay["outcome"] == live["outcome"]
        assert replay["documents"] == live["documents"]


def test_bad_usage_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["dev", "try", "no-such-portal", "--login", "x", "--password-stdin"], input="p\n")
    assert result.exit_code == 2
    assert "unknown collector 'no-such-portal'" in result.output and "sandbox-classic" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for name in ("Bad_Name", "x", "sandbox-classic"):
        result = runner.invoke(app, ["dev", "new", name, "--dir", str(tmp_path)])
        assert result.exit_code == 2, name
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("recipe", [False, True])
def test_new_writes_a_skeleton_the_linters_accept(tmp_path: Path, recipe: bool) -> None:
    result = CliRunner().invoke(app, ["dev", "new", "acme-pharma", "--dir", str(tmp_path),
                                      *(["--recipe"] if recipe else [])])
    assert result.exit_code == 0, result.output
    package = tmp_path / "acme_pharma"
    assert "next steps" in result.output
    assert (package / ("recipe.py" if recipe else "pages.py")).exists()
    assert (package / "tests" / "test_offline.py").exists()
    again = CliRunner().invoke(app, ["dev", "new", "acme-pharma", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output

    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    bin_dir = Path(sys.executable).parent
    ruff = subprocess.run([str(bin_dir / "ruff"), "check", "--config", str(ROOT / "pyproject.toml"), str(package)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    mypy = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                           "-p", "acme_pharma"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    # The generated tests run: the page parsing passes on its placeholder page, the offline test
    # waits for a recording.
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                            "-c", str(ROOT / "pyproject.toml"), str(package / "tests")],
                           capture_output=True, text=True, cwd=tmp_path, env=env)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert ("1 passed, 1 skipped" if recipe else "2 passed, 1 skipped") in tests.stdout
