"""Bounds on what the extractor accepts, so a hostile document costs bounded time and memory."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    # A supplier invoice PDF is tens of kB to a few MB; anything past this is refused before a
    # single byte is parsed (parsing a 100 MB PDF would build its whole xref and object cache).
    max_document_bytes: int = 32 * 1024 * 1024
    # A 200-line wholesaler CII is ~300 kB; 16 MB leaves room for EXTENDED with embedded notes.
    max_xml_bytes: int = 16 * 1024 * 1024
    # PDF objects visited while looking for attachments (name tree nodes, file specs, pages,
    # annotations): bounds a looping or absurdly deep object graph.
    max_pdf_nodes: int = 10_000
    # Pages whose annotations are searched for FileAttachment annotations (a Factur-X file is
    # attached at document level; page attachments are a fallback, the first pages suffice).
    max_pages_scanned: int = 50
    # Invoice lines read into the model; past it the document is refused with a warning.
    max_lines: int = 20_000


DEFAULT_LIMITS = Limits()
