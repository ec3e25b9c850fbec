"""The embedded e-invoice of a PDF: a bounded walk over its attachments (pypdf reads the objects).

Written here rather than taken from pypdf's ``PdfReader.attachments`` because that reads only one
level of the EmbeddedFiles name tree, not the PDF/A-3 ``/AF`` array nor page FileAttachment
annotations, and trusts the object graph: a hostile PDF can make a name tree or a page tree loop.
Every node visited here is counted and remembered, so a cycle or a huge tree ends in ``PdfTooComplex``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

from services.documents.einvoice.limits import Limits
from shared.invoice_data import DataSource

# The names the standards give the embedded XML, lower-cased, best first: Factur-X wins when a
# PDF carries two (a Factur-X 1.x file often keeps a ZUGFeRD name for older German readers).
EINVOICE_NAMES: dict[str, DataSource] = {
    "factur-x.xml": "factur-x",
    "zugferd-invoice.xml": "zugferd",
    "xrechnung.xml": "xrechnung",
}


class PdfTooComplex(ValueError):
    """The PDF's object graph loops or is larger than the limits allow."""


class _Walker:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.seen: set[tuple[int, int]] = set()
        self.visited = 0

    def enter(self, obj: Any, tree: str | None = None) -> Any | None:
        """The resolved object, or None when it was already visited (a file spec shared by /AF and
        the name tree, as Factur-X writes it). A node of ``tree`` seen twice is a loop: refused."""
        self.visited += 1
        if self.visited > self.limits.max_pdf_nodes:
            raise PdfTooComplex(f"more than {self.limits.max_pdf_nodes} PDF objects visited")
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in self.seen:
                if tree is not None:
                    raise PdfTooComplex(f"the {tree} loops (object {obj.idnum} reached twice)")
                return None
            self.seen.add(key)
            return obj.get_object()
        return obj

    def name_tree(self, node: Any, depth: int = 0) -> Iterator[DictionaryObject]:
        """The file specifications of a name tree (``/Names`` pairs and nested ``/Kids``)."""
        if depth > 64:
            raise PdfTooComplex("name tree deeper than 64 levels")
        resolved = self.enter(node, "name tree")
        if not isinstance(resolved, DictionaryObject):
            return
        names = self.enter(resolved.get("/Names"))
        if isinstance(names, ArrayObject):
            # [name_1, filespec_1, name_2, filespec_2, ...]
            for value in list(names)[1::2]:
                spec = self.enter(value)
                if isinstance(spec, DictionaryObject):
                    yield spec
        kids = self.enter(resolved.get("/Kids"))
        if isinstance(kids, ArrayObject):
            for kid in kids:
                yield from self.name_tree(kid, depth + 1)

    def pages(self, node: Any, depth: int = 0) -> Iterator[DictionaryObject]:
        """Leaf pages of a page tree, each once, however the tree loops."""
        if depth > 64:
            raise PdfTooComplex("page tree deeper than 64 levels")
        resolved = self.enter(node, "page tree")
        if not isinstance(resolved, DictionaryObject):
            return
        kids = self.enter(resolved.get("/Kids"))
        if isinstance(kids, ArrayObject):
            for kid in kids:
                yield from self.pages(kid, depth + 1)
        elif resolved.get("/Type") == "/Page":
            yield resolved


def _spec_name(spec: DictionaryObject) -> str | None:
    for key in ("/UF", "/F"):
        value = spec.get(key)
        if value is not None:
            return str(value.get_object())
    return None


def _file_specs(reader: PdfReader, limits: Limits) -> Iterator[DictionaryObject]:
    walker = _Walker(limits)
    root = walker.enter(reader.trailer.raw_get("/Root"))
    if not isinstance(root, DictionaryObject):
        return
    # PDF/A-3 associated files (where Factur-X puts its XML), then the EmbeddedFiles name tree.
    associated = walker.enter(root.get("/AF"))
    if isinstance(associated, ArrayObject):
        for item in associated:
            spec = walker.enter(item)
            if isinstance(spec, DictionaryObject):
                yield spec
    names = walker.enter(root.get("/Names"))
    if isinstance(names, DictionaryObject) and "/EmbeddedFiles" in names:
        yield from walker.name_tree(names.raw_get("/EmbeddedFiles"))
    for count, page in enumerate(walker.pages(root.raw_get("/Pages") if "/Pages" in root else None)):
        if count >= limits.max_pages_scanned:
            break
        annots = walker.enter(page.get("/Annots"))
        if not isinstance(annots, ArrayObject):
            continue
        for item in annots:
            annot = walker.enter(item)
            if isinstance(annot, DictionaryObject) and annot.get("/Subtype") == "/FileAttachment":
                spec = walker.enter(annot.get("/FS"))
                if isinstance(spec, DictionaryObject):
                    yield spec


def _content(spec: DictionaryObject, limits: Limits) -> bytes:
    ef = spec.get("/EF")
    ef = ef.get_object() if ef is not None else None
    if not isinstance(ef, DictionaryObject):
        raise ValueError("the attachment has no embedded file stream")
    for key in ("/UF", "/F"):
        if key in ef:
            stream = ef[key].get_object()
            if not isinstance(stream, StreamObject):
                break
            declared = stream.get("/Length")
            if isinstance(declared, int) and declared > limits.max_xml_bytes:
                raise ValueError(f"the attachment is larger than {limits.max_xml_bytes} bytes")
            data = _bounded_decode(stream, limits.max_xml_bytes)
            if len(data) > limits.max_xml_bytes:
                raise ValueError(f"the attachment is larger than {limits.max_xml_bytes} bytes")
            return data
    raise ValueError("the attachment has no embedded file stream")


def _bounded_decode(stream: StreamObject, limit: int) -> bytes:
    """The stream's bytes, inflating at most ``limit`` + 1 bytes of a plain FlateDecode stream.

    Hand-written for the common case (an embedded XML is a FlateDecode stream without predictor):
    pypdf's get_data() inflates up to its own 75 MB ceiling first, so a 67 kB PDF could cost
    70 MB of memory before the size check. Other filters go through pypdf, then the check.
    """
    filters = stream.get("/Filter")
    filters = filters.get_object() if filters is not None else None
    names = [str(f) for f in filters] if isinstance(filters, ArrayObject) else [str(filters)] if filters else []
    if names == ["/FlateDecode"] and stream.get("/DecodeParms") is None:
        inflater = zlib.decompressobj()
        try:
            return inflater.decompress(stream._data, limit + 1)
        except zlib.error as exc:
            raise ValueError(f"the attachment's compressed data is corrupt: {exc}") from exc
    return bytes(stream.get_data())


def open_pdf(data: bytes) -> PdfReader:
    # strict=False: real invoices have small xref errors pypdf can repair.
    return PdfReader(BytesIO(data), strict=False)


def find_einvoice(reader: PdfReader, limits: Limits) -> tuple[str, DataSource, DictionaryObject] | None:
    """(name as written, source, file spec) of the best e-invoice attachment, or None."""
    best: tuple[int, str, DataSource, DictionaryObject] | None = None
    ranks = list(EINVOICE_NAMES)
    for spec in _file_specs(reader, limits):
        name = _spec_name(spec)
        if name is None:
            continue
        key = name.strip().lower()
        if key in EINVOICE_NAMES:
            rank = ranks.index(key)
            if best is None or rank < best[0]:
                best = (rank, name, EINVOICE_NAMES[key], spec)
                if rank == 0:
                    break
    if best is None:
        return None
    return best[1], best[2], best[3]


def read_attachment(spec: DictionaryObject, limits: Limits) -> bytes:
    return _content(spec, limits)
