"""Broker wiring: connecting, declaring the streams, publishing events, answering API requests."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, Generic, Literal, TypeVar

from faststream import Context
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from faststream.nats.message import NatsBatchMessage as NatsBatchMessageType
from faststream.nats.message import NatsMessage as NatsMessageType
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, Header, PubAck
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError, NotFoundError
from pydantic import BaseModel, ValidationError

from shared import nats_compat
from shared.client import inbox_prefix, servers
from shared.errors import ApiError, ApiErrorCode
from shared.events import CollectJob, Event
from shared.logging import get_logger
from shared.payload import PayloadRefused, parse_object
from shared.settings import StreamSettings
from shared.subjects import STREAMS
from shared.telemetry import broker_middlewares, trace_headers

log = get_logger("collectors.broker")
M = TypeVar("M", bound=BaseModel)
# Keeps a message aside as a dead letter: (message, reason, "job" | "event"); shared.dead_letters.
# A batch subscriber's message, as FastStream hands it to the handler (its raw messages: a fetch).
NatsBatchMessage = Annotated[NatsBatchMessageType, Context("message")]
KeepAside = Callable[[NatsMessage, str, Literal["job", "event"]], Awaitable[object]]
# Deliveries of an event before JetStream stops trying (the consumers' max_deliver by default).
EVENT_MAX_DELIVER = 50


def make_broker(nats_url: str, client_name: str) -> NatsBroker:
    """A broker that keeps reconnecting: a NATS restart must not kill a service. Its replies come on
    its own inbox (``inbox_prefix``), the only one its NATS user may subscribe to."""
    nats_compat.install()
    return NatsBroker(
        servers(nats_url),
        name=client_name,
        inbox_prefix=inbox_prefix(client_name),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        logger=logging.getLogger(f"faststream.{client_name}"),
        graceful_timeout=15.0,
        decoder=undecoded,
        middlewares=broker_middlewares(client_name),
    )


async def undecoded(msg: StreamMessage[Any]) -> bytes | list[bytes]:
    """FastStream's decoder for every subscriber of ours: the body as it came, parsed by the handler.

    Every handler here reads the raw message and parses it itself, within limits (``api_handler``,
    ``event_handler``, the job consumer, health reads nothing). FastStream's default decoder ran
    ``json.loads`` on every body before any of them, and let RecursionError (a body nested 1,000 deep),
    ValueError (an integer of 5,000 digits) and, under a JSON content-type header, any decoding error
    escape: a request got no reply, an event no ack, and each logged a traceback.
    """
    if isinstance(msg.body, list):  # a batch subscriber's: one body per message
        return [bytes(body) for body in msg.body]
    return bytes(msg.body)


def jetstream(broker: NatsBroker) -> JetStreamContext:
    return broker.config.connection_state.stream  # type: ignore[no-any-return]


def nats_client(broker: NatsBroker) -> NATS:
    return broker.config.connection_state.connection  # type: ignore[no-any-return]


async def ensure_streams(js: JetStreamContext, owners: Iterable[str] = tuple(STREAMS)) -> None:
    """Create each stream, or bring an existing one to the declared configuration (its replicas
    from ``COLLECTORS_STREAM_REPLICAS``)."""
    replicas = StreamSettings().stream_replicas
    for owner in owners:
        config = dataclasses.replace(STREAMS[owner], num_replicas=replicas)
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)


async def publish_event(broker: NatsBroker, subject: str, event: Event | CollectJob) -> PubAck:
    """Publish to JetStream with ``Nats-Msg-Id`` so a retried publish is stored once."""
    payload = event.model_dump_json().encode()
    ack: PubAck = await jetstream(broker).publish(
        subject, payload,
        headers={"Nats-Msg-Id": event.msg_id(), "content-type": "application/json", **trace_headers()}
    )
    return ack


class PipelinedPublisher:
    """Publishes batches to JetStream and waits for all their acks at once.

    Each message carries a reply subject under one wildcard inbox of this publisher, and its ack
    resolves its future: a batch costs one round trip of latency, ~10 us of CPU a message. nats-py's
    ``publish`` is a request per message (a task, a timer and a parsed ``PubAck`` each: ~25 us), and
    its ``publish_async`` pipelines but loses a slot of its pending-acks semaphore whenever a publish
    raises (after a long outage, every publish would block).
    """

    def __init__(self, broker: NatsBroker) -> None:
        self._broker = broker
        self._client: NATS | None = None
        self._inbox = ""
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._tokens = itertools.count()

    async def publish(self, messages: Iterable[tuple[str, bytes, dict[str, str]]], timeout: float) -> None:
        """Publish ``(subject, payload, headers)`` messages; return once JetStream stored them all, else
        raise (the first error, or ``TimeoutError``): the caller publishes them again later, with their
        ``Nats-Msg-Id`` so that JetStream drops the copies of those stored."""
        for outcome in await self.publish_each(messages, timeout):
            if outcome is not None:
                raise outcome

    async def publish_each(self, messages: Iterable[tuple[str, bytes, dict[str, str]]],
                           timeout: float) -> list[BaseException | None]:
        """Publish every message whatever happens to the others; one outcome each, in order: None once
        JetStream stored it, else why not (a ``TimeoutError`` for an ack that did not come in time)."""
        outcomes: list[BaseException | None] = []
        sent: dict[int, tuple[str, asyncio.Future[None]]] = {}
        try:
            for index, (subject, payload, headers) in enumerate(messages):
                token = str(next(self._tokens))
                outcomes.append(None)
                try:
                    sent[index] = token, await self._send(token, subject, payload, headers)
                except NatsError as exc:  # refused by the client (a bad subject, too big, disconnected)
                    outcomes[index] = exc
            if sent:
                await asyncio.wait([ack for _, ack in sent.values()], timeout=timeout)
            for index, (_, ack) in sent.items():
                if not ack.done():
                    outcomes[index] = TimeoutError(f"no JetStream ack within {timeout} s")
                elif not ack.cancelled():
                    outcomes[index] = ack.exception()
            return outcomes
        finally:
            for token, ack in sent.values():  # stop waiting for acks given up on
                ack.cancel()
                self._acks.pop(token, None)

    async def _send(self, token: str, subject: str, payload: bytes, headers: dict[str, str]) -> asyncio.Future[None]:
        client = await self._subscribed()
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[token] = ack
        try:
            await client.publish(subject, payload, reply=f"{self._inbox}.{token}", headers=headers)
        except BaseException:
            del self._acks[token]
            raise
        return ack

    async def _subscribed(self) -> NATS:
        client = nats_client(self._broker)
        if client is not self._client:  # first use, or the broker connected again
            inbox = client.new_inbox()  # under the connection's own inbox prefix: its user may subscribe
            await client.subscribe(f"{inbox}.*", cb=self._on_ack)
            self._client, self._inbox = client, inbox
        return client

    async def _on_ack(self, msg: Msg) -> None:
        ack = self._acks.pop(msg.subject.rpartition(".")[2], None)
        if ack is None or ack.done():
            return  # given up on
        if msg.headers and msg.headers.get(Header.STATUS) == "503":
            ack.set_exception(NoStreamResponseError())  # no stream takes that subject
            return
        try:
            reply = json.loads(msg.data)
            if "error" in reply:
                APIError.from_error(reply["error"])  # raises the error's class
        except (APIError, ValueError) as exc:
            ack.set_exception(exc)
            return
        ack.set_result(None)


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
    gets a structured error instead of a timeout, within the limits of ``shared.payload``.
    """

    async def handler(msg: NatsMessage) -> dict[str, Any]:
        try:
            request = model.model_validate(parse_object(msg.body or b"{}"))
        except PayloadRefused as exc:  # size, depth, encoding, not JSON, not an object
            return error_reply(ApiErrorCode.VALIDATION_ERROR, exc.message)
        except ValidationError as exc:
            return _validation_reply(exc)
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


@dataclasses.dataclass(frozen=True)
class _EventPolicy(Generic[M]):
    """What ``event_handler`` and ``batch_event_handler`` do with each message (§3): parse it (poison
    is terminated, kept aside first when there is ``keep_aside``), then, once the use case ran, ack
    it, or nack it for a redelivery, or at its last allowed delivery keep it aside and terminate it."""

    model: type[M]
    service: str
    retry_delay_s: float
    keep_aside: KeepAside | None
    max_deliver: int

    async def parse(self, msg: NatsMessage, body: bytes) -> M | None:
        try:
            return self.model.model_validate_json(body)
        except ValueError as exc:
            log.error("poison_event_terminated", service=self.service, subject=msg.raw_message.subject,
                      error=str(exc)[:300])
            if self.keep_aside is not None:
                await self.keep_aside(msg, f"invalid event: {invalid_reason(exc)}", "event")
            await msg.reject()
            return None

    async def failed(self, msg: NatsMessage, exc: Exception) -> None:
        delivered = _delivered(msg)
        if self.keep_aside is not None and delivered >= self.max_deliver:
            await self.keep_aside(msg, f"failed {delivered} times, last: {type(exc).__name__}: {exc}"[:1000],
                                  "event")
            await msg.reject()
            return
        await msg.nack(delay=self.retry_delay_s)


def event_handler(
    model: type[M], func: Callable[[M], Awaitable[None]], *, service: str, retry_delay_s: float = 2.0,
    keep_aside: KeepAside | None = None, max_deliver: int = EVENT_MAX_DELIVER,
) -> Callable[[NatsMessage], Awaitable[None]]:
    """Wrap an event consumer with a deliberate ack policy (§3).

    Poison (an event that cannot be parsed) is terminated: it stays in its stream for inspection
    and is logged, but never redelivered. A failure while handling it is transient: nack with a
    delay so JetStream redelivers it later. The ack comes only once the handler has finished.
    With ``keep_aside`` (the service's ``shared.dead_letters``), poison, and an event whose last
    allowed delivery (``max_deliver``, the consumer's) failed too, are kept as dead letters first.
    """
    policy = _EventPolicy(model, service, retry_delay_s, keep_aside, max_deliver)

    async def handler(msg: NatsMessage) -> None:
        event = await policy.parse(msg, msg.body)
        if event is None:
            return
        try:
            await func(event)
        except Exception as exc:
            log.exception("event_handler_failed", service=service, subject=msg.raw_message.subject)
            await policy.failed(msg, exc)
            return
        await msg.ack()

    handler.__name__ = f"{service}_{getattr(func, '__name__', 'consumer')}"
    handler.__doc__ = func.__doc__
    return handler


def batch_event_handler(
    model: type[M], func: Callable[[list[M]], Awaitable[None]], *, service: str, retry_delay_s: float = 2.0,
    keep_aside: KeepAside | None = None, max_deliver: int = EVENT_MAX_DELIVER,
) -> Callable[[NatsBatchMessage], Awaitable[None]]:
    """``event_handler`` for a batch subscriber (``consume(..., batch_wait_s=...)``): ``func`` gets
    every event of a fetch at once, so that what each costs anyway (the database write, the publish
    round, FastStream's handling) is paid once a batch.

    Each message keeps ``event_handler``'s policy on its own: poison is terminated (and kept aside)
    without reaching ``func``; when ``func`` raises, every other message of the batch is nacked for a
    redelivery, and one at its last allowed delivery is kept aside and terminated. ``func`` must be
    idempotent per event: a redelivered batch may hold events it already handled.
    """
    policy = _EventPolicy(model, service, retry_delay_s, keep_aside, max_deliver)

    async def handler(batch: NatsBatchMessage) -> None:
        events: list[M] = []
        messages: list[NatsMessageType] = []
        for raw in batch.raw_message:
            msg = NatsMessageType(raw, raw.data, headers=raw.headers or {})
            if (event := await policy.parse(msg, raw.data)) is not None:
                events.append(event)
                messages.append(msg)
        if not events:
            return
        try:
            await func(events)
        except Exception as exc:
            log.exception("event_handler_failed", service=service, events=len(events),
                          subject=messages[0].raw_message.subject)
            for msg in messages:
                await policy.failed(msg, exc)
            return
        for msg in messages:
            await msg.ack()

    handler.__name__ = f"{service}_{getattr(func, '__name__', 'consumer')}"
    handler.__doc__ = func.__doc__
    return handler


def invalid_reason(exc: ValueError) -> str:
    """Why a message did not parse, without quoting it (pydantic's text repeats the input): a dead
    letter's reason is shown to operators, and a malformed payload may hold anything."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}"
                         for e in exc.errors(include_url=False, include_input=False))[:1000]
    return str(exc)[:1000]


def _delivered(msg: NatsMessage) -> int:
    try:
        return int(msg.raw_message.metadata.num_delivered or 1)
    except Exception:  # not a JetStream message (a handler driven directly)
        return 1


def consume(
    broker: NatsBroker,
    subject: str,
    *,
    owner: str,
    durable: str,
    handler: Callable[[NatsMessage], Awaitable[None]] | Callable[[NatsBatchMessage], Awaitable[None]],
    max_workers: int = 1,
    ack_wait_s: float = 30.0,
    max_deliver: int = EVENT_MAX_DELIVER,
    batch_size: int = 16,
    description: str | None = None,
    batch_wait_s: float | None = None,
) -> None:
    """A durable pull consumer ``<service>-<purpose>`` on an owner's stream, acked by hand.

    With ``batch_wait_s``, the handler gets a batch (``batch_event_handler``): what arrived within
    that time, up to ``batch_size``, handled one batch after another (``max_workers`` then unused).
    """
    # FastStream gives a pull subscriber nats-py's default `_INBOX.` for its fetches unless told
    # otherwise, overriding the connection's prefix: the broker's own inbox, then.
    prefix = str(broker._connection_kwargs.get("inbox_prefix") or "_INBOX")
    batched = batch_wait_s is not None
    broker.subscriber(  # type: ignore[call-overload]
        subject,
        stream=JStream(str(STREAMS[owner].name), declare=False),
        durable=durable,
        pull_sub=PullSub(batch_size=batch_size, timeout=batch_wait_s if batched else 1.0, batch=batched),
        inbox_prefix=f"{prefix}.".encode(),
        ack_policy=AckPolicy.MANUAL,
        **({} if batched else {"max_workers": max_workers}),
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


async def ensure_consumers(broker: NatsBroker) -> None:
    """Create each durable pull consumer of this broker's subscribers that the server lacks, with the
    configuration its subscriber created it with (an existing one is left as it is)."""
    js = jetstream(broker)
    for sub in broker.subscribers:
        stream = getattr(sub, "stream", None)
        config: ConsumerConfig | None = getattr(sub, "config", None)
        if stream is None or config is None or not config.durable_name:
            continue
        try:
            await js.consumer_info(stream.name, config.durable_name)
            continue
        except NotFoundError:
            pass
        subject = config.filter_subject or str(getattr(sub, "subject", ""))
        await js.add_consumer(stream.name, config=dataclasses.replace(
            config, name=config.durable_name, filter_subject=subject))
        log.warning("consumer_recreated", stream=stream.name, durable=config.durable_name)


async def restore_after_reconnect(broker: NatsBroker, every_s: float = 1.0) -> None:
    """Once the connection comes back, declare the streams and this service's durable consumers again.

    A nats-server restarted on its store finds them all; one restarted on an empty or older store (a
    lost volume, a restored backup) does not: publishes would find no stream and every fetch of a pull
    consumer would fail until someone declared them. Declaring is idempotent, so it is done after
    every reconnection; a failure is tried again a moment later.
    """
    done = nats_client(broker).stats["reconnects"]
    while True:
        await asyncio.sleep(every_s)
        client = nats_client(broker)
        reconnects = client.stats["reconnects"]
        if reconnects == done or not client.is_connected:
            continue
        try:
            await ensure_streams(jetstream(broker))
            await ensure_consumers(broker)
        except (NatsError, TimeoutError, APIError) as exc:
            log.warning("jetstream_restore_failed", error=str(exc))
            continue
        done = reconnects
        log.info("jetstream_restored", reconnects=reconnects)
