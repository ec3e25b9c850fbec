"""Composition root of the documents service: every dependency is built here, nothing at import."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from functools import partial

from nats.js import JetStreamContext
from nats.js.api import ObjectInfo
from nats.js.errors import NotFoundError
from pydantic import Field

from services.documents.repository import DocumentRepository
from services.documents.service import DocumentsService, FileMissing, FileTooLarge, IsolatedExtractor
from shared import api, events
from shared.broker import api_handler, batch_event_handler, consume, jetstream, make_broker, serve_api
from shared.dead_letters import serve_dead_letters
from shared.mongo import make_mongo_client
from shared.outbox import OutboxRelay
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.subjects import INVOICE_BUCKET, Api, Events

NAME = "documents"
# Collected invoices handled at once (see the consumer below).
DOCUMENTS_BATCH = 16


class DocumentsSettings(Settings):
    # A larger file is not read: its record says so (warning file_too_large). The scraper collects up
    # to 256 MB at most; a Factur-X invoice is rarely above a few MB.
    documents_max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    # Extractions at once, each in its own child process (2 cores in the reference deployment).
    documents_concurrency: int = Field(default=2, ge=1, le=32)
    # A child that runs longer or needs more address space is killed: warning, not an outage.
    documents_extract_timeout_s: float = Field(default=20.0, gt=0)
    documents_extract_memory_mb: int = Field(default=512, ge=64)
    # Deliveries of one `invoice collected` (a failure on our side: NATS, database) before it is kept
    # aside as a dead letter; a hostile file is not a failure (it ends as a warning).
    documents_max_deliver: int = Field(default=5, ge=2)
    # Added to the niceness of the service's own process when it runs alone (``python -m
    # services.documents``; not inside ``collectors up``, one process for all): reading invoices is
    # enrichment after the fact, so on a node it shares, collecting them (the scraper, NATS, the
    # accounts) gets the CPU first and the extraction catches up when they are idle. Its workers add
    # WORKER_NICENESS on top. Across Kubernetes pods, the CPU requests decide (deploy/k8s: 250m here).
    documents_niceness: int = Field(default=10, ge=0, le=19)


class BucketFiles:
    """Reads collected files from the invoice bucket, a chunk at a time, refusing one above the limit
    before reading any of it.

    Only JetStream's direct get on the bucket's stream is used (``$JS.API.DIRECT.GET.OBJ_<bucket>``:
    the object's metadata by its subject, then each chunk by sequence): read access and nothing
    else, granted to this service in deploy/nats. A direct get answers with the stored message as it
    is, where the JetStream API's ``MSG.GET`` (nats-py's ``ObjectStore.get_info``) wraps it in JSON
    and base64 both ways. nats-py's ``ObjectStore.get`` would need a consumer on the bucket's stream,
    and appends chunk after chunk to a ``bytes`` (a copy of everything read so far per chunk:
    quadratic on a large file)."""

    def __init__(self, js: Callable[[], JetStreamContext], bucket: str = INVOICE_BUCKET) -> None:
        self.js = js  # the broker's, once connected
        self.bucket = bucket
        self.stream = f"OBJ_{bucket}"

    async def _info(self, js: JetStreamContext, key: str) -> ObjectInfo:
        meta = f"$O.{self.bucket}.M.{base64.urlsafe_b64encode(key.encode()).decode()}"
        try:
            msg = await js.get_msg(self.stream, subject=meta, direct=True)
        except NotFoundError as exc:
            raise FileMissing(key) from exc
        try:
            info: ObjectInfo = ObjectInfo.from_response(json.loads(msg.data or b""))
        except (ValueError, TypeError, KeyError) as exc:
            raise RuntimeError(f"object {key}: unreadable metadata in the bucket") from exc
        if info.deleted:
            raise FileMissing(key)
        return info

    async def read(self, key: str, max_bytes: int) -> bytes:
        js = self.js()
        info = await self._info(js, key)
        size = int(info.size or 0)
        if size > max_bytes:
            raise FileTooLarge(size)
        subject = f"$O.{self.bucket}.C.{info.nuid}"
        out, seq, digest = bytearray(), 1, hashlib.sha256()
        while len(out) < size:
            try:
                msg = await js.get_msg(self.stream, seq=seq, subject=subject, next=True, direct=True)
            except NotFoundError as exc:
                raise FileMissing(key) from exc  # fewer bytes than the metadata says: purged meanwhile
            chunk = msg.data or b""
            if not chunk or len(out) + len(chunk) > size:
                raise FileMissing(key)
            out += chunk
            digest.update(chunk)
            seq = int(msg.seq or 0) + 1
        expected = str(info.digest or "").partition("=")[2]
        if expected and base64.urlsafe_b64decode(expected + "=" * (-len(expected) % 4)) != digest.digest():
            raise RuntimeError(f"object {key}: SHA-256 differs from the bucket's metadata")
        return bytes(out)


def build(settings: DocumentsSettings) -> ServiceRuntime:
    broker = make_broker(settings.nats_url, NAME)
    db = make_mongo_client(settings.mongodb_url)[settings.database_name(NAME)]
    repo = DocumentRepository(db)
    dead_letters = serve_dead_letters(broker, db, NAME)  # events kept aside, `collectors dlq`
    # Each record's event goes out right after its insert (service._flush); the sweep only catches what
    # a crash or an outage left behind. It looks for pending entries across every record (no index
    # serves "outbox not empty"), and this collection grows with every invoice: every 10 s, not 2.
    relay = OutboxRelay(repo.invoice_data, broker, sweep_s=10.0)
    extractor = IsolatedExtractor(timeout_s=settings.documents_extract_timeout_s,
                                  memory_mb=settings.documents_extract_memory_mb)
    service = DocumentsService(repo, relay, BucketFiles(partial(jetstream, broker)), extractor,
                               max_file_bytes=settings.documents_max_file_bytes,
                               concurrency=settings.documents_concurrency)

    serve_api(broker, Api.DOCUMENTS_INVOICE_DATA, NAME,
              api_handler(api.InvoiceRef, service.invoice_data, service=NAME))
    serve_api(broker, Api.DOCUMENTS_EXPORT, NAME, api_handler(api.ExportInvoiceData, service.export, service=NAME))

    # A batch at a time: what arrived within 50 ms, up to 16 events, read in `documents_concurrency`
    # lanes, stored in one write and published in one round (per event, FastStream's handling, the
    # writes and their fsyncs cost more than reading a Factur-X invoice). The ack wait covers a batch
    # whose every file takes the child's whole timeout, lane by lane.
    per_lane = -(-DOCUMENTS_BATCH // settings.documents_concurrency)
    consume(broker, Events.INVOICE_COLLECTED.pattern, owner="scraper", durable="documents-extract",
            handler=batch_event_handler(events.InvoiceCollected, service.invoices_collected, service=NAME,
                                        keep_aside=dead_letters.keep, max_deliver=settings.documents_max_deliver),
            batch_size=DOCUMENTS_BATCH, batch_wait_s=0.05,
            ack_wait_s=per_lane * (settings.documents_extract_timeout_s + 5.0) + 60.0,
            max_deliver=settings.documents_max_deliver,
            description="Collected invoices: read the e-invoice they carry")

    rt = ServiceRuntime(NAME, broker)
    rt.on_connect.append(extractor.load)
    rt.on_connect.append(repo.create_indexes)
    rt.on_connect.append(dead_letters.store.create_indexes)
    rt.background.append(relay.run)
    rt.on_stop.append(extractor.close)  # after the broker: no extraction is running any more
    rt.extras["service"] = service
    return rt
