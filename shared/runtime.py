"""What every service shares at run time: health answers, background tasks, start and stop.

A service's composition root builds a :class:`ServiceRuntime`; ``python -m services.<name>`` runs
one alone, and ``collectors up`` runs all five in one event loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage

from shared import subjects, telemetry
from shared.api import HealthReply
from shared.broker import ensure_streams, jetstream, restore_after_reconnect
from shared.logging import get_logger

log = get_logger("collectors.runtime")
BROKER_STOP_TIMEOUT_S = 15.0
# How long a stop keeps cancelling background loops that do not end (_stop_tasks).
TASKS_STOP_TIMEOUT_S = 10.0


def _name(func: Callable[..., Any]) -> str:
    name = getattr(func, "__name__", None) or getattr(getattr(func, "func", None), "__name__", "task")
    return str(name)


@dataclass
class ServiceRuntime:
    name: str
    broker: NatsBroker
    # Run after the broker is connected and the streams exist, before subscribers consume.
    on_connect: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Long-running loops (outbox relay, scheduler tick...), cancelled on stop.
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    # Run once subscribers consume (announcements others must be ready to hear).
    after_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    # What a composition root exposes for tests and benchmarks (e.g. the use-case object).
    extras: dict[str, Any] = field(default_factory=dict)
    # Why this instance cannot work now (None: it can), e.g. the scraper's browser restarting.
    readiness: list[Callable[[], str | None]] = field(default_factory=list)
    # Set by fail(): what could not recover.
    failure: str | None = None
    _failed: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _health_runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        reply = HealthReply(service=self.name, instance=self.instance).model_dump_json().encode()

        # Silent while not ready, rather than a "not ready" answer: every instance hears the request
        # and the first reply wins, so the service answers as long as one instance can work.
        @self.broker.subscriber(subjects.health(self.name), title=f"{self.name}-health", no_reply=True)
        async def health(msg: NatsMessage) -> None:
            if msg.reply_to and not self.not_ready():
                await msg.raw_message.respond(reply)

    def not_ready(self) -> list[str]:
        return [why for check in self.readiness if (why := check()) is not None]

    def fail(self, reason: str) -> None:
        """Something this service needs cannot recover: its process stops and exits non-zero, for
        its supervisor (Kubernetes, `collectors up`'s caller) to start a fresh one."""
        if self.failure is None:
            log.critical("service_failed", service=self.name, reason=reason)
            self.failure = reason
            self._failed.set()

    async def failed(self) -> str:
        """Wait until :meth:`fail` is called; return its reason."""
        await self._failed.wait()
        return self.failure or ""

    async def start(self, health_port: int = 0) -> None:
        await self.broker.connect()
        await ensure_streams(jetstream(self.broker))
        for hook in self.on_connect:
            await hook()
        await self.broker.start()
        for hook in self.after_start:
            await hook()
        # A nats-server restarted on a lost store comes back without streams and consumers.
        loops: list[Callable[[], Coroutine[Any, Any, None]]] = [
            *self.background, partial(restore_after_reconnect, self.broker)]
        if telemetry.metrics_enabled():
            loops.append(self._watch_consumer_lag)
        for loop in loops:
            self._tasks.append(asyncio.create_task(self._guard(loop), name=f"{self.name}:{_name(loop)}"))
        if health_port:
            await self._serve_health(health_port)
        log.info("service_started", service=self.name, instance=self.instance)

    async def _guard(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A background loop that crashes is logged and restarted, never silently gone."""
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background_task_crashed", service=self.name, task=_name(loop))
                await asyncio.sleep(1.0)

    def durable_consumers(self) -> list[tuple[str, str]]:
        """``(stream, durable)`` of each durable consumer this service's subscribers read."""
        found = []
        for sub in self.broker.subscribers:
            stream, config = getattr(sub, "stream", None), getattr(sub, "config", None)
            if stream is not None and config is not None and config.durable_name:
                found.append((str(stream.name), str(config.durable_name)))
        return found

    async def _watch_consumer_lag(self) -> None:
        """JetStream's consumer info, read every ``COLLECTORS_METRICS_LAG_S``, as the lag gauges."""
        every_s = telemetry.lag_every_s()
        while True:
            await telemetry.read_consumer_lag(self.name, self.durable_consumers(),
                                              jetstream(self.broker).consumer_info)
            await asyncio.sleep(every_s)

    async def _stop_tasks(self) -> None:
        """Cancel the background loops and wait for them to end, cancelling again any that goes on.

        On Python 3.11, ``asyncio.wait_for`` (nats-py's request, under every JetStream call) can
        swallow a cancellation that lands as its reply arrives: the loop around it goes on as if
        nothing happened, and a stop that cancelled it once and then awaited it waited forever (CI:
        the consumer-lag loop of test_telemetry's accounts service, a teardown hung 300 s). Each
        round cancels what is still running; after ``TASKS_STOP_TIMEOUT_S`` the rest is left behind.
        """
        pending = set(self._tasks)
        self._tasks.clear()
        deadline = asyncio.get_running_loop().time() + TASKS_STOP_TIMEOUT_S
        while pending:
            for task in pending:
                task.cancel()
            done, pending = await asyncio.wait(pending, timeout=0.5)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("background_task_failed_on_stop", service=self.name, task=task.get_name(),
                                error=str(task.exception()))
            if pending and asyncio.get_running_loop().time() >= deadline:
                log.warning("background_tasks_left_running", service=self.name,
                            tasks=sorted(t.get_name() for t in pending))
                return

    async def _stop_broker(self) -> None:
        """Stop the broker, giving up after ``BROKER_STOP_TIMEOUT_S``: a stop must end.

        Hardening, not the cause of the 300 s CI teardowns (those were the background loops,
        ``_stop_tasks``): ``asyncio.wait_for`` cancels the stop on its timeout and then waits for
        the cancellation to be over, so a stop that absorbed it would keep the caller waiting.
        ``asyncio.wait`` returns at the deadline whatever the stop does; the stop left behind is
        cancelled and not waited for.
        """
        stopping = asyncio.ensure_future(self.broker.stop())
        done, _ = await asyncio.wait({stopping}, timeout=BROKER_STOP_TIMEOUT_S)
        if stopping in done:
            stopping.result()  # its errors are the caller's, as before
            return
        stopping.cancel()
        log.warning("broker_stop_timed_out", service=self.name, after_s=BROKER_STOP_TIMEOUT_S)

    async def _serve_health(self, port: int) -> None:
        async def health(_: web.Request) -> web.Response:
            ok = self.broker._connection is not None and self.broker._connection.is_connected
            not_ready = self.not_ready()
            return web.json_response({"service": self.name, "nats": ok, "ready": not not_ready,
                                      "not_ready": not_ready}, status=200 if ok and not not_ready else 503)

        app = web.Application()
        app.router.add_get("/health", health)
        if telemetry.metrics_enabled():
            app.router.add_get("/metrics", telemetry.metrics_view)
        self._health_runner = web.AppRunner(app, access_log=None)
        await self._health_runner.setup()
        # Probes come from the kubelet on the pod's address, so this one listens beyond loopback.
        await web.TCPSite(self._health_runner, os.environ.get("COLLECTORS_HEALTH_HOST", "0.0.0.0"),
                          port).start()

    async def stop(self) -> None:
        await self._stop_tasks()
        await self._stop_broker()
        for hook in self.on_stop:
            await hook()
        if self._health_runner:
            await self._health_runner.cleanup()
        log.info("service_stopped", service=self.name)


async def run_until_signalled(runtimes: list[ServiceRuntime], health_port: int = 0) -> int:
    """Run until SIGINT or SIGTERM (exit status 0) or until a runtime fails (1)."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    for rt in runtimes:
        await rt.start(health_port)
    await first_of(stop.wait(), *(rt.failed() for rt in runtimes))
    for rt in reversed(runtimes):
        await rt.stop()
    return 1 if any(rt.failure for rt in runtimes) else 0


async def first_of(*waits: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of ``waits`` is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
