"""Hostile and broken documents: each ends with a clear warning, quickly, without raising."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest

from sandbox import einvoice as gen
from services.documents.einvoice import DEFAULT_LIMITS, Limits, extract
from services.documents.einvoice.safe_xml import parse_untrusted
from shared.invoice_data import Extraction
from tests.unit.documents import einvoice_pdfs as pdfs
from tests.unit.documents.einvoice_expect import blank_pdf

QUICK_S = 5.0  # generous on a shared 2-core machine; each case takes milliseconds


def _timed(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Extraction:
    started = time.monotonic()
    result = extract(data, limits=limits)
    assert time.monotonic() - started < QUICK_S
    assert result.source == "none"
    assert result.invoice is None
    assert len(result.warnings) == 1 and result.warnings[0].message
    return result


def _code(result: Extraction) -> str:
    return result.warnings[0].code


def test_100_mb_pdf_is_refused_before_parsing() -> None:
    data = pdfs.big_pdf(100 * 1024 * 1024)
    assert len(data) >= 100 * 1024 * 1024 - 1024
    tracemalloc.start()
    try:
        result = _timed(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _code(result) == "document_too_large"
    assert peak < 1024 * 1024  # nothing of the 100 MB was copied or parsed into objects


def test_a_big_pdf_under_a_raised_limit_is_parsed_without_trouble() -> None:
    # The limit is the policy, not a crutch: a 40 MB plain PDF parses fine when allowed.
    result = _timed(pdfs.big_pdf(40 * 1024 * 1024), Limits(max_document_bytes=64 * 1024 * 1024))
    assert _code(result) == "no_einvoice"


def test_name_tree_loop() -> None:
    result = _timed(pdfs.looping_name_tree())
    assert _code(result) == "pdf_too_complex"
    assert "loops" in result.warnings[0].message


def test_page_tree_loop() -> None:
    result = _timed(pdfs.looping_page_tree())
    assert _code(result) == "pdf_too_complex"


def test_absurdly_deep_name_tree() -> None:
    assert _code(_timed(pdfs.deep_name_tree(200))) == "pdf_too_complex"


def test_node_budget() -> None:
    # A legitimate-looking tree that is just too big for the budget.
    assert _code(_timed(pdfs.deep_name_tree(30), Limits(max_pdf_nodes=20))) == "pdf_too_complex"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
>&lol9;</rsm:CrossIndustryInvoice>
"""


def _xxe(secret: Path, padding: int = 0) -> bytes:
    # ``padding`` puts the DTD after 8 kB of comment: the refusal does not depend on where it sits.
    return (b'<?xml version="1.0"?>\n' + b"<!--" + b" " * padding + b"-->\n"
            + f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'.encode()
            + b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100">'
            + b"<rsm:ExchangedDocument>&xxe;</rsm:ExchangedDocument></rsm:CrossIndustryInvoice>")


@pytest.mark.parametrize("padding", [0, 8000])
def test_billion_laughs(padding: int) -> None:
    data = BILLION_LAUGHS.replace(b"<!DOCTYPE", b"<!--" + b" " * padding + b"-->\n<!DOCTYPE", 1)
    result = _timed(data)
    assert _code(result) == "xml_unsafe"


@pytest.mark.parametrize("padding", [0, 8000])
def test_external_entity_is_not_read(tmp_path: Path, padding: int) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a")
    result = _timed(_xxe(secret, padding))
    assert _code(result) == "xml_unsafe"
    assert "TOP-SECRET" not in result.model_dump_json()


def test_hardened_parser_leaves_entities_unresolved(tmp_path: Path) -> None:
    # Below the refusal: even parsed, the file:// entity's content never enters the tree.
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a")
    from lxml import etree

    from services.documents.einvoice import safe_xml

    root = etree.fromstring(_xxe(secret, 8000), parser=safe_xml._parser())
    assert b"TOP-SECRET" not in etree.tostring(root)
    with pytest.raises(safe_xml.UnsafeXml):
        parse_untrusted(_xxe(secret, 8000))


def test_xxe_inside_a_factur_x_attachment(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a")
    result = _timed(pdfs.with_attachments(("factur-x.xml", _xxe(secret))))
    assert _code(result) == "xml_unsafe"
    assert result.attachment == "factur-x.xml"


def test_attachment_that_is_not_xml() -> None:
    result = _timed(pdfs.with_attachments(("factur-x.xml", b"\x89PNG\r\n\x1a\n" + os.urandom(512))))
    assert _code(result) == "attachment_not_xml"


def test_attachment_that_is_xml_but_not_an_invoice() -> None:
    assert _code(_timed(pdfs.with_attachments(("factur-x.xml", b"<html><body/></html>")))) == "not_an_einvoice"


def test_attachment_over_the_xml_limit() -> None:
    big = b"<x>" + b" " * 2048 + b"</x>"
    result = _timed(pdfs.with_attachments(("factur-x.xml", big)), Limits(max_xml_bytes=1024))
    assert _code(result) == "attachment_unreadable"


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
def test_truncated_factur_x(fraction: float) -> None:
    pdf = gen.facturx_pdf(gen.four_rates_spec(), "en16931", blank_pdf())
    assert _code(_timed(pdf[: int(len(pdf) * fraction)])) == "pdf_unreadable"


def test_decompression_bomb_inflates_no_further_than_the_xml_limit() -> None:
    bomb = pdfs.flate_bomb("factur-x.xml", 70_000_000)  # 67 kB inflating to 70 MB
    tracemalloc.start()
    try:
        result = _timed(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _code(result) == "attachment_unreadable"
    # zlib grows its output buffer by doubling: at most twice the limit, never the 70 MB.
    assert peak < 2 * DEFAULT_LIMITS.max_xml_bytes + 8 * 1024 * 1024


def test_truncated_xml() -> None:
    xml = gen.cii_xml(gen.four_rates_spec(), "en16931")
    assert _code(_timed(xml[: len(xml) // 2])) == "xml_unreadable"


def test_random_bytes() -> None:
    rng = __import__("random").Random(14)
    noise = bytes(rng.getrandbits(8) for _ in range(20_000))
    assert _code(_timed(noise.replace(b"<", b"").replace(b"%PDF", b""))) == "unknown_format"
    assert _code(_timed(b"%PDF-1.7\n" + noise)) == "pdf_unreadable"
    assert _code(_timed(b"")) == "unknown_format"


def test_invoice_without_required_terms() -> None:
    xml = gen.cii_xml(gen.four_rates_spec(), "en16931").replace(b"FA2026-000417", b"")
    assert _code(_timed(xml)) == "einvoice_incomplete"


def test_too_many_lines() -> None:
    xml = gen.cii_xml(gen.wholesaler_spec(30), "en16931")
    assert _code(_timed(xml, Limits(max_lines=20))) == "einvoice_incomplete"
