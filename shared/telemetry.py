"""Metrics and traces, with the ecosystem's tools: ``prometheus-client`` and OpenTelemetry.

Metrics: one Prometheus registry per process (``registry()``); ``collectors up`` runs the five
services in one process, so they share it and tell their series apart by a ``service`` label.
FastStream's ``NatsPrometheusMiddleware`` counts and times every message a broker handles; each
service adds its own series here (``counter``/``histogram``/``gauge``: created once per registry).
Served as ``/metrics`` next to ``/health`` on a service's HTTP port, or on ``collectors up
--metrics-port``. ``COLLECTORS_METRICS=0`` turns them off (no middleware, no recording).

Traces: FastStream's ``NatsTelemetryMiddleware`` on every broker opens a span for each message
handled and published through FastStream; what the services publish by themselves (the outbox
relay, ``publish_event``, API requests) carries the current context in its headers through
``trace_headers()``. Exported by OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; otherwise
tracing is off: no middleware, no headers, nothing recorded.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from aiohttp import web
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.prometheus import NatsPrometheusMiddleware
from nats.errors import Error as NatsError
from nats.js.api import ConsumerInfo
from nats.js.errors import APIError
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from shared.logging import get_logger

log = get_logger("collectors.telemetry")

METRICS_ENV = "COLLECTORS_METRICS"
LAG_EVERY_ENV = "COLLECTORS_METRICS_LAG_S"
OTLP_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
DEFAULT_METRICS_PORT = 9464
# FastStream's series: faststream_received_messages_total{app_name="collectors", service=...}.
APP_NAME = "collectors"

M = TypeVar("M", Counter, Gauge, Histogram)


class _State:
    def __init__(self) -> None:
        self.metrics_on: bool | None = None  # None: read COLLECTORS_METRICS on first use
        self.registry: CollectorRegistry | None = None
        self.metrics: dict[str, Any] = {}
        self.processors: list[SpanProcessor] | None = None  # None: read OTEL_EXPORTER_OTLP_ENDPOINT on first use
        self.providers: dict[str, TracerProvider] = {}


_state = _State()


# --- metrics ----------------------------------------------------------------------------------------


def metrics_enabled() -> bool:
    if _state.metrics_on is None:
        _state.metrics_on = os.environ.get(METRICS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
    return _state.metrics_on


def configure_metrics(enabled: bool | None = None) -> CollectorRegistry:
    """Start over with a fresh registry (tests), metrics on or off (None: as the environment says)."""
    _state.metrics_on = enabled
    _state.registry = None
    _state.metrics = {}
    return registry()


def registry() -> CollectorRegistry:
    """This process's registry: the services' series and the process's own (CPU, memory, GC)."""
    if _state.registry is None:
        reg = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            reg.register(collector)
        _state.registry = reg
    return _state.registry


def _metric(kind: type[M], name: str, documentation: str, labels: Sequence[str], **extra: Any) -> M:
    metric = _state.metrics.get(name)
    if metric is None:
        metric = kind(name, documentation, labelnames=tuple(labels), registry=registry(), **extra)
        _state.metrics[name] = metric
    return metric


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
    """The counter ``name`` of this process's registry (``name_total`` once exposed)."""
    return _metric(Counter, name, documentation, labels)


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
    return _metric(Gauge, name, documentation, labels)


def histogram(name: str, documentation: str, labels: Sequence[str] = (),
              buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS) -> Histogram:
    return _metric(Histogram, name, documentation, labels, buckets=tuple(buckets))


def exposition() -> bytes:
    return generate_latest(registry())


async def metrics_view(_: web.Request) -> web.Response:
    return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def serve_metrics(host: str, port: int) -> web.AppRunner:
    """``/metrics`` alone on ``host:port`` (``collectors up``); stop it with ``cleanup()``."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def lag_every_s() -> float:
    return float(os.environ.get(LAG_EVERY_ENV, "15"))


async def read_consumer_lag(service: str, consumers: Iterable[tuple[str, str]],
                            info: Callable[[str, str], Awaitable[ConsumerInfo]]) -> None:
    """Set the lag gauges of each ``(stream, durable)`` consumer from JetStream's consumer info."""
    pending = gauge("collectors_consumer_pending_messages",
                    "Messages of a durable consumer's stream not yet delivered to it (JetStream num_pending)",
                    ("service", "stream", "consumer"))
    ack_pending = gauge("collectors_consumer_ack_pending_messages",
                        "Messages delivered to a durable consumer and not acknowledged yet (num_ack_pending)",
                        ("service", "stream", "consumer"))
    redelivered = gauge("collectors_consumer_redelivered_messages",
                        "Messages of a durable consumer delivered more than once (num_redelivered)",
                        ("service", "stream", "consumer"))
    for stream, durable in consumers:
        try:
            got = await info(stream, durable)
        except (NatsError, TimeoutError, APIError) as exc:
            log.debug("consumer_lag_unread", stream=stream, consumer=durable, error=str(exc))
            continue
        pending.labels(service, stream, durable).set(got.num_pending or 0)
        ack_pending.labels(service, stream, durable).set(got.num_ack_pending or 0)
        redelivered.labels(service, stream, durable).set(got.num_redelivered or 0)


# --- traces -----------------------------------------------------------------------------------------


def configure_tracing(*processors: SpanProcessor) -> None:
    """Export spans through these processors from now on (none: tracing off). Brokers built
    before keep what they had. Without a call, ``OTEL_EXPORTER_OTLP_ENDPOINT`` decides."""
    _state.processors = list(processors)
    _state.providers = {}


def _processors() -> list[SpanProcessor]:
    if _state.processors is None:
        _state.processors = []
        if os.environ.get(OTLP_ENV):
            # Imported only when asked for: the exporter and its protobuf stay out of a process without it.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _state.processors.append(BatchSpanProcessor(OTLPSpanExporter()))
            log.info("tracing_enabled", endpoint=os.environ[OTLP_ENV])
    return _state.processors


def tracing_enabled() -> bool:
    return bool(_processors())


def tracer_provider(service: str) -> TracerProvider | None:
    """The service's tracer provider (its spans say ``service.name``), None with tracing off."""
    processors = _processors()
    if not processors:
        return None
    provider = _state.providers.get(service)
    if provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                            "service.namespace": "collectors"}))
        for processor in processors:
            provider.add_span_processor(processor)
        _state.providers[service] = provider
    return provider


def trace_headers() -> dict[str, str]:
    """The current trace context as NATS headers (``traceparent``...), for a publish FastStream does
    not make; empty with tracing off."""
    if not _state.processors:  # off, or never configured: decided by the first broker built
        return {}
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def broker_middlewares(service: str) -> list[Any]:
    """FastStream's OpenTelemetry and Prometheus middlewares for the service's broker, as configured."""
    middlewares: list[Any] = []
    provider = tracer_provider(service)
    if provider is not None:
        middlewares.append(NatsTelemetryMiddleware(tracer_provider=provider, include_messages_counters=False))
    if metrics_enabled():
        middlewares.append(NatsPrometheusMiddleware(registry=registry(), app_name=APP_NAME,
                                                    custom_labels={"service": service}))
    return middlewares
