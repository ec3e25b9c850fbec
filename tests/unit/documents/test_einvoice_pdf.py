"""Finding the e-invoice in a PDF: the standard attachment names, their priority, where they hide."""

from __future__ import annotations

import pytest

from sandbox import einvoice as gen
from services.documents.einvoice import extract
from tests.unit.documents import einvoice_pdfs as pdfs
from tests.unit.documents.einvoice_expect import assert_matches, blank_pdf


@pytest.mark.parametrize("profile", gen.PROFILES)
def test_factur_x_pdf_of_every_profile(profile: gen.Profile) -> None:
    spec = gen.four_rates_spec()
    result = extract(gen.facturx_pdf(spec, profile, blank_pdf()), filename="FA2026-000417.pdf")
    assert (result.source, result.attachment) == ("factur-x", "factur-x.xml")
    assert_matches(result.invoice, spec, profile)
    assert result.warnings == []


def test_zugferd_pdf() -> None:
    spec = gen.credit_note_spec()
    pdf = gen.facturx_pdf(spec, "en16931", blank_pdf(), attachment_name="zugferd-invoice.xml", flavour="zugferd")
    result = extract(pdf)
    assert (result.source, result.attachment) == ("zugferd", "zugferd-invoice.xml")
    assert_matches(result.invoice, spec, "en16931")


@pytest.mark.parametrize(("name", "source"), [("ZUGFeRD-invoice.xml", "zugferd"), ("FACTUR-X.XML", "factur-x"),
                                              ("xrechnung.xml", "xrechnung")])
def test_names_are_case_insensitive(name: str, source: str) -> None:
    xml = gen.cii_xml(gen.four_rates_spec(), "en16931")
    result = extract(pdfs.with_attachments(("notes.txt", b"hello"), (name, xml)))
    assert (result.source, result.attachment) == (source, name)
    assert result.invoice is not None


def test_factur_x_wins_over_zugferd_whatever_the_order() -> None:
    fx = ("factur-x.xml", gen.cii_xml(gen.four_rates_spec(), "en16931"))
    zf = ("zugferd-invoice.xml", gen.cii_xml(gen.credit_note_spec(), "en16931", "zugferd"))
    xr = ("xrechnung.xml", gen.cii_xml(gen.wholesaler_spec(2), "en16931"))
    for pdf in (pdfs.af_then_name_tree(zf, fx), pdfs.af_then_name_tree(fx, zf), pdfs.with_attachments(zf, fx)):
        result = extract(pdf)
        assert result.source == "factur-x"
        assert result.invoice is not None and result.invoice.number == "FA2026-000417"
    # And ZUGFeRD over XRechnung.
    for pdf in (pdfs.af_then_name_tree(xr, zf), pdfs.af_then_name_tree(zf, xr)):
        assert extract(pdf).source == "zugferd"


def test_other_xml_attachments_are_not_e_invoices() -> None:
    xml = gen.cii_xml(gen.four_rates_spec(), "en16931")
    result = extract(pdfs.with_attachments(("invoice.xml", xml)))
    assert result.source == "none"
    assert [w.code for w in result.warnings] == ["no_einvoice"]


def test_nested_name_tree_and_page_annotation() -> None:
    xml = gen.cii_xml(gen.four_rates_spec(), "basic")
    nested = extract(pdfs.nested_name_tree("factur-x.xml", xml, depth=4))
    assert nested.source == "factur-x" and nested.invoice is not None
    annotated = extract(pdfs.page_annotation("factur-x.xml", xml))
    assert annotated.source == "factur-x" and annotated.invoice is not None


def test_plain_pdf_has_no_e_invoice() -> None:
    result = extract(blank_pdf(3))
    assert result.source == "none"
    assert result.invoice is None
    assert [w.code for w in result.warnings] == ["no_einvoice"]


def test_ubl_in_an_xrechnung_attachment() -> None:
    spec = gen.credit_note_spec()
    result = extract(pdfs.with_attachments(("xrechnung.xml", gen.ubl_xml(spec))))
    assert (result.source, result.attachment) == ("xrechnung", "xrechnung.xml")
    assert_matches(result.invoice, spec, "en16931", syntax="UBL")
