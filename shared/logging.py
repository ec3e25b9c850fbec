"""structlog JSON logging with secret redaction.

Anything that looks like a credential is masked before a line is written, whatever the caller
passed: keys named like a secret, and the values registered with :func:`register_secret`.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[REDACTED]"
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential|authorization", re.I)
# Values seen at runtime (a password revealed for one job) that must never be printed.
_live_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    if len(value) >= 3:
        with _lock:
            _live_secrets.add(value)


def forget_secret(value: str) -> None:
    with _lock:
        _live_secrets.discard(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _live_secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def configure_logging(level: str = "INFO", *, json: bool = True, stream: TextIO | None = None) -> None:
    """Route structlog and the stdlib (FastStream, nats) through the same redacting pipeline."""
    out = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # Lines from the stdlib (FastStream, nats) get the same treatment, tracebacks included.
            foreign_pre_chain=[*shared[:-2], structlog.stdlib.ExtraAdder(),
                               structlog.processors.format_exc_info, redact_secrets],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # FastStream installs its own stderr handler that would bypass redaction: route it through ours.
    # It also logs every message received/processed at INFO: too chatty for the platform's log.
    faststream_log = logging.getLogger("faststream")
    faststream_log.handlers.clear()
    faststream_log.propagate = True
    faststream_log.setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
