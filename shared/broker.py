"""Broker wiring: connecting, declaring the streams, publishing events, answering API requests."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, PubAck
from nats.js.errors import BadRequestError
from pydantic import BaseModel, ValidationError

from shared.client import inbox_prefix, servers
from shared.errors import ApiError, ApiErrorCode
from shared.events import CollectJob, Event
from shared.logging import get_logger
from shared.subjects import STREAMS

log = get_logger("collectors.broker")
M = TypeVar("M", bound=BaseModel)


def make_broker(nats_url: str, client_name: str) -> NatsBroker:
    """A broker that keeps reconnecting: a NATS restart must not kill a service. Its replies come on
    its own inbox (``inbox_prefix``), the only one its NATS user may subscribe to."""
    return NatsBroker(
        servers(nats_url),
        name=client_name,
        inbox_prefix=inbox_prefix(client_name),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        logger=logging.getLogger(f"faststream.{client_name}"),
        graceful_timeout=15.0,
    )


def jetstream(broker: NatsBroker) -> JetStreamContext:
    return broker.config.connection_state.stream  # type: ignore[no-any-return]


async def ensure_streams(js: JetStreamContext, owners: Iterable[str] = tuple(STREAMS)) -> None:
    """Create each stream, or bring an existing one to the declared configuration."""
    for owner in owners:
        config = STREAMS[owner]
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)


async def publish_event(broker: NatsBroker, subject: str, event: Event | CollectJob) -> PubAck:
    """Publish to JetStream with ``Nats-Msg-Id`` so a retried publish is stored once."""
    payload = event.model_dump_json().encode()
    ack: PubAck = await jetstream(broker).publish(
        subject, payload, headers={"Nats-Msg-Id": event.msg_id(), "content-type": "application/json"}
    )
    return ack


def error_reply(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return {"error": body}


def _validation_reply(exc: ValidationError) -> dict[str, Any]:
    first = exc.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__") or None
    # pydantic's message names the rule broken, never the value (include_input=False above).
    return error_reply(ApiErrorCode.VALIDATION_ERROR, f"{field or 'payload'}: {first['msg']}", field)


def api_handler(
    model: type[M], func: Callable[[M], Awaitable[BaseModel | dict[str, Any]]], *, service: str
) -> Callable[[NatsMessage], Awaitable[dict[str, Any]]]:
    """Wrap a use case into a request handler whose every reply is a result or an error object.

    The raw message is parsed here, not by FastStream, so that malformed JSON or a hostile payload
    gets a structured error instead of a timeout.
    """

    async def handler(msg: NatsMessage) -> dict[str, Any]:
        try:
            raw = json.loads(msg.body or b"{}")
            if not isinstance(raw, dict):
                return error_reply(ApiErrorCode.VALIDATION_ERROR, "payload must be a JSON object")
            request = model.model_validate(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, ValidationError):
                return _validation_reply(exc)
            return error_reply(ApiErrorCode.VALIDATION_ERROR, "payload is not valid JSON")
        try:
            result = await func(request)
        except ApiError as exc:
            return error_reply(exc.code, exc.message, exc.field)
        except Exception:
            log.exception("api_handler_failed", service=service, subject=msg.raw_message.subject)
            return error_reply(ApiErrorCode.INTERNAL_ERROR, "internal error, the team has been alerted")
        return result.model_dump(mode="json") if isinstance(result, BaseModel) else result

    handler.__name__ = f"{service}_{getattr(func, '__name__', 'handler')}"
    handler.__doc__ = func.__doc__
    return handler


def event_handler(
    model: type[M], func: Callable[[M], Awaitable[None]], *, service: str, retry_delay_s: float = 2.0
) -> Callable[[NatsMessage], Awaitable[None]]:
    """Wrap an event consumer with a deliberate ack policy (§3).

    Poison (an event that cannot be parsed) is terminated: it stays in its stream for inspection
    and is logged, but never redelivered. A failure while handling it is transient: nack with a
    delay so JetStream redelivers it later. The ack comes only once the handler has finished.
    """

    async def handler(msg: NatsMessage) -> None:
        try:
            event = model.model_validate_json(msg.body)
        except ValueError as exc:
            log.error("poison_event_terminated", service=service, subject=msg.raw_message.subject,
                      error=str(exc)[:300])
            await msg.reject()
            return
        try:
            await func(event)
        except Exception:
            log.exception("event_handler_failed", service=service, subject=msg.raw_message.subject)
            await msg.nack(delay=retry_delay_s)
            return
        await msg.ack()

    handler.__name__ = f"{service}_{getattr(func, '__name__', 'consumer')}"
    handler.__doc__ = func.__doc__
    return handler


def consume(
    broker: NatsBroker,
    subject: str,
    *,
    owner: str,
    durable: str,
    handler: Callable[[NatsMessage], Awaitable[None]],
    max_workers: int = 1,
    ack_wait_s: float = 30.0,
    max_deliver: int = 50,
    batch_size: int = 16,
    description: str | None = None,
) -> None:
    """A durable pull consumer ``<service>-<purpose>`` on an owner's stream, acked by hand."""
    # FastStream gives a pull subscriber nats-py's default `_INBOX.` for its fetches unless told
    # otherwise, overriding the connection's prefix: the broker's own inbox, then.
    prefix = str(broker._connection_kwargs.get("inbox_prefix") or "_INBOX")
    broker.subscriber(
        subject,
        stream=JStream(str(STREAMS[owner].name), declare=False),
        durable=durable,
        pull_sub=PullSub(batch_size=batch_size, timeout=1.0),
        inbox_prefix=f"{prefix}.".encode(),
        ack_policy=AckPolicy.MANUAL,
        max_workers=max_workers,
        config=ConsumerConfig(ack_wait=ack_wait_s, max_deliver=max_deliver,
                              deliver_policy=DeliverPolicy.ALL),
        title=durable,
        description=description,
    )(handler)


def serve_api(broker: NatsBroker, subject: str, service: str,
              handler: Callable[[NatsMessage], Awaitable[dict[str, Any]]], *, max_workers: int = 16) -> None:
    """Answer ``subject`` in the service's queue group: one replica replies per request, and each
    replica handles several requests at once (one slow request must not stall the others)."""
    broker.subscriber(subject, queue=f"{service}-api", title=subject, max_workers=max_workers,
                      description=handler.__doc__)(handler)
