"""Reading an invoice file from the Object Store one slice at a time, for the download API.

Only the scraper may read the bucket (deploy/nats): clients get a file through
``collectors.api.scraper.invoice_download``, checked against their tenant, in replies small enough for
NATS's max_payload. nats-py's ``ObjectStore.get`` reads a whole object into memory, and a slice in the
middle of a file would mean reading every chunk before it again for each reply; instead each reply
ends with a cursor (the object's nuid, the stream sequence of the next chunk, and that chunk's offset
in the file) from which the next request resumes with one ``next_by_subj`` lookup per chunk.
A cursor is only a hint: the chunks it can reach are those of the object the ledger names for the
caller's tenant, and a stale or forged one makes the reader start again from the first chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore

from shared.subjects import INVOICE_BUCKET

STREAM = f"OBJ_{INVOICE_BUCKET}"


@dataclass(frozen=True)
class Slice:
    data: bytes
    size: int
    next_offset: int
    cursor: str | None


@dataclass(frozen=True)
class _Position:
    seq: int  # look for the object's next chunk from this stream sequence on
    start: int  # offset in the file of that chunk's first byte


def _parse(cursor: str | None, nuid: str, offset: int) -> _Position:
    if cursor is not None:
        owner, seq, start = cursor.split(":")
        if owner == nuid and int(start) <= offset and int(seq) >= 1:
            return _Position(int(seq), int(start))
    return _Position(1, 0)  # no usable cursor: walk from the object's first chunk


async def read_slice(js: JetStreamContext, store: ObjectStore, name: str, offset: int, cursor: str | None,
                     limit: int, *, bucket: str = INVOICE_BUCKET) -> Slice:
    """At most ``limit`` bytes of object ``name`` of ``bucket`` (the store's) from ``offset`` (raises
    ObjectNotFoundError when the object is gone, ValueError when ``offset`` is past its end)."""
    info = await store.get_info(name)
    size = int(info.size or 0)
    if offset > size:
        raise ValueError(f"offset {offset} is past the end of the file ({size} bytes)")
    nuid = str(info.nuid)
    subject = f"$O.{bucket}.C.{nuid}"
    pos = _parse(cursor, nuid, offset)
    may_restart = pos.seq > 1
    out = bytearray()
    while offset + len(out) < size and len(out) < limit:
        try:
            msg = await js.get_msg(f"OBJ_{bucket}", seq=pos.seq, subject=subject, next=True)
        except NotFoundError:
            if not may_restart or out:
                raise  # the object has fewer bytes than its metadata says
            may_restart = False  # a cursor past the object's chunks: start again, once
            pos = _Position(1, 0)
            continue
        seq, chunk = int(msg.seq or 0), msg.data or b""
        if not chunk:
            raise NotFoundError  # an empty chunk would never move us forward
        skip = offset + len(out) - pos.start  # bytes of this chunk before the ones we want
        if skip < len(chunk):
            take = chunk[skip:skip + limit - len(out)]
            out += take
            if skip + len(take) < len(chunk):
                pos = _Position(seq, pos.start)  # the rest of this chunk is the next slice's
                break
        pos = _Position(seq + 1, pos.start + len(chunk))
    next_offset = offset + len(out)
    done = next_offset >= size
    return Slice(bytes(out), size, next_offset, None if done else f"{nuid}:{pos.seq}:{pos.start}")
