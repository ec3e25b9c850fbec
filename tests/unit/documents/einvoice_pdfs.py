"""PDFs built object by object with pypdf, for the attachment walk and the hostile-file tests."""

from __future__ import annotations

import io
from collections.abc import Callable

from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    TextStringObject,
)


def _write(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def with_attachments(*files: tuple[str, bytes]) -> bytes:
    """A one-page PDF with ``files`` in its EmbeddedFiles name tree (pypdf's own writer)."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    for name, data in files:
        writer.add_attachment(name, data)
    return _write(writer)


def _filespec(writer: PdfWriter, name: str, data: bytes) -> IndirectObject:
    stream = DecodedStreamObject()
    stream.set_data(data)
    stream[NameObject("/Type")] = NameObject("/EmbeddedFile")
    ef = DictionaryObject({NameObject("/F"): writer._add_object(stream)})
    spec = DictionaryObject({
        NameObject("/Type"): NameObject("/Filespec"),
        NameObject("/F"): TextStringObject(name),
        NameObject("/UF"): TextStringObject(name),
        NameObject("/EF"): ef,
    })
    return writer._add_object(spec)


def _custom(build: Callable[[PdfWriter, DictionaryObject], None]) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    build(writer, writer._root_object)
    return _write(writer)


def nested_name_tree(name: str, data: bytes, depth: int = 3) -> bytes:
    """The attachment in a leaf ``depth`` levels of /Kids down (pypdf's reader looks one level)."""

    def build(writer: PdfWriter, root: DictionaryObject) -> None:
        node = writer._add_object(DictionaryObject({
            NameObject("/Names"): ArrayObject([TextStringObject(name), _filespec(writer, name, data)]),
        }))
        for _ in range(depth):
            node = writer._add_object(DictionaryObject({NameObject("/Kids"): ArrayObject([node])}))
        root[NameObject("/Names")] = DictionaryObject({NameObject("/EmbeddedFiles"): node})

    return _custom(build)


def page_annotation(name: str, data: bytes) -> bytes:
    """The attachment as a FileAttachment annotation of page 1 only."""

    def build(writer: PdfWriter, root: DictionaryObject) -> None:
        annot = writer._add_object(DictionaryObject({
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/FileAttachment"),
            NameObject("/Rect"): ArrayObject([NumberObject(0), NumberObject(0), NumberObject(10), NumberObject(10)]),
            NameObject("/FS"): _filespec(writer, name, data),
        }))
        writer.pages[0][NameObject("/Annots")] = ArrayObject([annot])

    return _custom(build)


def looping_name_tree() -> bytes:
    """An EmbeddedFiles name tree whose node is its own kid."""

    def build(writer: PdfWriter, root: DictionaryObject) -> None:
        node = DictionaryObject()
        ref = writer._add_object(node)
        node[NameObject("/Kids")] = ArrayObject([ref, ref])
        root[NameObject("/Names")] = DictionaryObject({NameObject("/EmbeddedFiles"): ref})

    return _custom(build)


def looping_page_tree() -> bytes:
    """A page tree whose root lists itself among its kids (and its page's /Parent closes the loop)."""

    def build(writer: PdfWriter, root: DictionaryObject) -> None:
        pages_ref = root.raw_get("/Pages")
        pages = pages_ref.get_object()
        pages[NameObject("/Kids")].append(pages_ref)
        pages[NameObject("/Count")] = NumberObject(2)

    return _custom(build)


def deep_name_tree(depth: int) -> bytes:
    """A name tree ``depth`` levels deep with nothing in it (each node a new object, no loop)."""
    return nested_name_tree("other.txt", b"x", depth=depth)


def big_pdf(size: int) -> bytes:
    """A well-formed PDF of about ``size`` bytes: one page whose content stream is padding."""
    padding = max(0, size - 600)
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents 4 0 R>>",
        b"<</Length %d>>\nstream\n" % padding + b"%" * padding + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def flate_bomb(name: str, decoded_size: int) -> bytes:
    """A small PDF whose attachment ``name`` inflates to ``decoded_size`` bytes of XML-looking blanks."""

    def build(writer: PdfWriter, root: DictionaryObject) -> None:
        stream = DecodedStreamObject()
        stream.set_data(b"<" + b" " * (decoded_size - 1))
        encoded = stream.flate_encode(level=9)
        encoded[NameObject("/Type")] = NameObject("/EmbeddedFile")
        spec = DictionaryObject({
            NameObject("/Type"): NameObject("/Filespec"),
            NameObject("/F"): TextStringObject(name),
            NameObject("/EF"): DictionaryObject({NameObject("/F"): writer._add_object(encoded)}),
        })
        root[NameObject("/AF")] = ArrayObject([writer._add_object(spec)])

    return _custom(build)


def af_then_name_tree(af: tuple[str, bytes], named: tuple[str, bytes]) -> bytes:
    """``af`` in the catalog's /AF array (walked first), ``named`` in the EmbeddedFiles name tree:
    a name tree alone is sorted by name, so it cannot put zugferd-invoice.xml before factur-x.xml."""

    def build(writer: PdfWriter, root: DictionaryObject) -> None:
        root[NameObject("/AF")] = ArrayObject([_filespec(writer, *af)])
        leaf = writer._add_object(DictionaryObject({
            NameObject("/Names"): ArrayObject([TextStringObject(named[0]), _filespec(writer, *named)]),
        }))
        root[NameObject("/Names")] = DictionaryObject({NameObject("/EmbeddedFiles"): leaf})

    return _custom(build)
