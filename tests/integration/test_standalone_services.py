"""Each service runs on its own (``python -m services.<name>``), answers health over NATS and over
HTTP for Kubernetes probes, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from services.accounts.crypto import new_key_entry
from shared.client import ApiClient
from shared.natsserver import free_port
from shared.subjects import SERVICES, health
from tests.integration.helpers import eventually

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("service", SERVICES)
async def test_service_runs_alone(service: str, nats_url: str, db_prefix: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "NATS_URL": nats_url, "COLLECTORS_HEALTH_PORT": str(port),
           "COLLECTORS_HEALTH_HOST": "127.0.0.1", "COLLECTORS_DB_PREFIX": db_prefix,
           "COLLECTORS_CREDENTIAL_KEYS": new_key_entry("k1"),
           "COLLECTORS_DATA_DIR": str(tmp_path / "data")}  # the durable embedded store, without MONGODB_URL
    log = (tmp_path / "service.log").open("w")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", f"services.{service}", env=env,
                                                stdout=log, stderr=subprocess.STDOUT)
    client = await ApiClient.connect(nats_url)
    try:
        async def http_ok() -> bool:
            assert proc.returncode is None, (tmp_path / "service.log").read_text()
            try:
                async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/health") as r:
                    return r.status == 200 and (await r.json())["service"] == service
            except aiohttp.ClientError:
                return False

        await eventually(http_ok, timeout=30, what=f"{service} HTTP health")
        reply = await client.call(health(service))
        assert reply["service"] == service and reply["status"] == "ok"
    finally:
        await client.close()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=30)
        log.close()
    assert code == 0, (tmp_path / "service.log").read_text()
    assert "Traceback" not in (tmp_path / "service.log").read_text()
