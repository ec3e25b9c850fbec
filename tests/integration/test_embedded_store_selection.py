"""What a standalone service does without MONGODB_URL: the durable embedded store in the data dir it
was given, never a silent private in-memory database, and never a data dir another process holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.durable_store import DurableServerStore
from shared.memory_mongo import InMemoryMongoClient


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MONGODB_URL", "COLLECTORS_MONGODB_URL", "COLLECTORS_DATA_DIR", "COLLECTORS_IN_MEMORY")}
    return {**env, "NATS_URL": "nats://127.0.0.1:1", **extra}


def test_a_standalone_service_without_a_database_refuses_to_start() -> None:
    proc = subprocess.run([sys.executable, "-m", "services.requests"], env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    assert "no database: set MONGODB_URL, or COLLECTORS_DATA_DIR" in proc.stderr


def test_a_data_dir_held_by_another_process_is_refused(tmp_path: Path) -> None:
    holder = InMemoryMongoClient(DurableServerStore(tmp_path / "db"))
    holder.get_database("collectors_requests")  # opened, so locked, by this process
    try:
        proc = subprocess.run([sys.executable, "-m", "services.requests"],
                              env=_env(COLLECTORS_DATA_DIR=str(tmp_path)), capture_output=True, text=True,
                              timeout=60)
    finally:
        holder.release()
    assert proc.returncode != 0
    assert "database collectors_requests" in proc.stderr and "is in use by another process" in proc.stderr
    assert "Traceback" not in proc.stderr


def _niceness(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def _started_niceness(extra: dict[str, str]) -> int:
    """The niceness of ``python -m services.documents`` once it has built the service (it then
    waits for a NATS that is not there)."""
    with subprocess.Popen([sys.executable, "-m", "services.documents"],
                          env=_env(COLLECTORS_IN_MEMORY="1", COLLECTORS_LOG_LEVEL="info", **extra),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:  # the niceness comes before the store is chosen, which it says
                if "mongodb_in_memory" in line:
                    return _niceness(proc.pid)
            raise AssertionError(f"the service ended (code {proc.wait()}) before saying which database")
        finally:
            proc.kill()


def test_the_documents_service_alone_yields_the_cpu_to_collection() -> None:
    here = os.nice(0)
    assert _started_niceness({}) == min(19, here + 10)
    # Positive control: the setting is what moves it.
    assert _started_niceness({"COLLECTORS_DOCUMENTS_NICENESS": "0"}) == here
