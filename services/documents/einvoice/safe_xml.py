"""Parsing untrusted XML with lxml: no DTD, no entities, no network, no huge trees.

An e-invoice (CII, UBL) never needs a DTD, so a document that declares one is refused outright:
that stops both the billion-laughs bomb and external entities (XXE) whatever libxml2 would do
with them, and the parser is hardened as well in case a DTD-less trick gets through.
"""

from __future__ import annotations

from lxml import etree


class UnsafeXml(ValueError):
    """The document declares a DTD or entities: refused, never expanded."""


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not thread-safe and keep error logs.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_untrusted(data: bytes) -> etree._Element:
    """The root element of ``data``; ``UnsafeXml`` for a DTD, ``etree.XMLSyntaxError`` for bad XML."""
    # Checked on the raw bytes first so an entity-heavy prolog is not even tokenised. XML is case
    # sensitive and escapes "<" in text, so these can only be markup (or inside a comment/CDATA,
    # which an e-invoice has no reason to carry either).
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise UnsafeXml("the XML declares a DTD or entities; e-invoices never do")
    root = etree.fromstring(data, parser=_parser())
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.doctype:
        raise UnsafeXml("the XML declares a DTD; e-invoices never do")
    return root


def looks_like_xml(data: bytes) -> bool:
    """Whether ``data`` starts (after a BOM and blanks) like an XML document."""
    start = data[:1024].lstrip(b"\xef\xbb\xbf").lstrip()
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 BOM
        return True
    return start.startswith(b"<")
