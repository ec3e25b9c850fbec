"""CII e-invoices of every profile (Factur-X 1.x and ZUGFeRD 2.0 guideline ids), read field by field.

Fixtures come from the project's independent generator (sandbox/einvoice.py) and from factur-x's
own generator; MINIMUM and BASIC ids are also checked on XML written here from the specification.
"""

from __future__ import annotations

import copy
import datetime
from decimal import Decimal

import pytest
from facturx.generate_xml import generate_cii_xml

from sandbox import einvoice as gen
from services.documents.einvoice import extract
from tests.unit.documents.einvoice_expect import PROFILE_NAMES, assert_matches, exact_text

SPECS = {"four_rates": gen.four_rates_spec, "credit_note": gen.credit_note_spec}


@pytest.mark.parametrize("flavour", ["factur-x", "zugferd"])
@pytest.mark.parametrize("profile", gen.PROFILES)
@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_every_profile_reads_every_field(spec_name: str, profile: gen.Profile, flavour: gen.Flavour) -> None:
    spec = SPECS[spec_name]()
    result = extract(gen.cii_xml(spec, profile, flavour))
    assert result.source == "cii"
    assert result.attachment is None
    assert result.invoice is not None
    assert result.invoice.profile == PROFILE_NAMES[profile]
    assert_matches(result.invoice, spec, profile)
    assert result.warnings == []
    assert {c.name for c in result.checks} >= {"totals", "xsd"}
    assert all(c.ok for c in result.checks), result.checks


def test_four_vat_rates_are_four_breakdowns_with_exact_amounts() -> None:
    spec = gen.four_rates_spec()
    result = extract(gen.cii_xml(spec, "en16931"))
    assert result.invoice is not None
    rates = sorted(v.rate for v in result.invoice.vat_breakdown if v.rate is not None)
    assert rates == [Decimal("2.1"), Decimal("5.5"), Decimal("10"), Decimal("20")]
    # Amounts keep the digits as written: 2 decimals, trailing zeros included.
    assert all(exact_text(v.amount).split(".")[1].__len__() == 2 for v in result.invoice.vat_breakdown)
    assert {c.name for c in result.checks} >= {"lines_sum", "totals", "due", "vat_sum", "vat_2.1", "vat_5.5",
                                               "vat_10", "vat_20", "xsd"}


def test_credit_note_kind_and_preceding_invoice() -> None:
    spec = gen.credit_note_spec()
    result = extract(gen.cii_xml(spec, "en16931"))
    assert result.invoice is not None
    assert result.invoice.type_code == "381"
    assert result.invoice.kind == "credit_note"
    assert result.invoice.preceding_invoice == "FA2026-000417"
    assert result.invoice.totals.grand_total is not None and result.invoice.totals.grand_total > 0


@pytest.mark.parametrize("profile", ["basic", "en16931", "extended"])
def test_wholesaler_200_lines(profile: gen.Profile) -> None:
    spec = gen.wholesaler_spec(200)
    result = extract(gen.cii_xml(spec, profile))
    assert_matches(result.invoice, spec, profile)
    assert result.invoice is not None and len(result.invoice.lines) == 200
    assert all(c.ok for c in result.checks), [c for c in result.checks if not c.ok]
    # Prepaid 100.00: BT-115 = BT-112 - BT-113, checked.
    assert any(c.name == "due" and c.ok for c in result.checks)


def test_minimum_with_prepaid_does_not_fail_the_due_check() -> None:
    # MINIMUM cannot carry BT-113, so BT-115 < BT-112 there is not an error.
    result = extract(gen.cii_xml(gen.wholesaler_spec(3), "minimum"))
    assert result.warnings == []
    assert "due" not in {c.name for c in result.checks}


def _facturx_dict(level_bt24: str | None = None) -> dict[str, object]:
    return {
        "BT-1": "FX-77", "BT-2": datetime.date(2026, 9, 15), "BT-3": "380", "BT-5": "EUR",
        "BT-9": datetime.date(2026, 10, 15), "BT-10": "REF-1", "BT-72": datetime.date(2026, 9, 14),
        "BG-4": {"name": "Labo SAS", "legal_identifier": "552100554", "legal_identifier_schemeid": "0002",
                 "vat_identifier": "FR12552100554", "country_code": "FR", "identifiers": {"0009": "55210055400013"}},
        "BG-7": {"name": "Pharmacie Test", "legal_identifier": "443061841", "legal_identifier_schemeid": "0002",
                 "country_code": "FR"},
        "BG-23": [{"BT-116": "200.00", "BT-117": "40.00", "BT-118": "S", "BT-119": "20.00"},
                  {"BT-116": "100.00", "BT-117": "2.10", "BT-118": "S", "BT-119": "2.10"}],
        "BG-25": [
            {"BT-126": "1", "BT-129": "4", "BT-130": "C62", "BT-131": "200.00", "BT-146": "50.00", "BT-151": "S",
             "BT-152": "20.00", "BT-153": "Crème", "BT-157": "3401560000001", "BT-157-1": "0160"},
            {"BT-126": "2", "BT-129": "10", "BT-130": "C62", "BT-131": "100.00", "BT-146": "10.00", "BT-151": "S",
             "BT-152": "2.10", "BT-153": "Comprimés", "BT-155": "SKU-9"},
        ],
        "BT-106": "300.00", "BT-109": "300.00", "BT-110": "42.10", "BT-112": "342.10", "BT-113": "42.10",
        "BT-115": "300.00",
    }


@pytest.mark.parametrize(("level", "name"), [("basicwl", "BASIC WL"), ("en16931", "EN 16931"),
                                              ("extended", "EXTENDED")])
def test_factur_x_package_generator(level: str, name: str) -> None:
    xml = generate_cii_xml(copy.deepcopy(_facturx_dict()), level=level, check_schematron=False)
    result = extract(xml)
    inv = result.invoice
    assert inv is not None and inv.profile == name
    assert (inv.number, inv.issue_date, inv.due_date, inv.buyer_reference) == (
        "FX-77", datetime.date(2026, 9, 15), datetime.date(2026, 10, 15), "REF-1")
    assert (inv.seller.siren, inv.seller.siret, inv.seller.vat_id) == ("552100554", "55210055400013", "FR12552100554")
    assert inv.totals.prepaid == Decimal("42.10") and inv.totals.due == Decimal("300.00")
    if level != "basicwl":
        assert [(line.product_code, line.product_scheme) for line in inv.lines] == [
            ("3401560000001", "0160"), ("SKU-9", None)]
    assert all(c.ok for c in result.checks), result.checks


# Written by hand from the Factur-X 1.0.07 specification (MINIMUM and BASIC, which factur-x's
# generator does not produce): the smallest documents the XSDs accept.
_HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
 xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
 xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100">
<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>{gid}</ram:ID>
</ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
<rsm:ExchangedDocument><ram:ID>MIN-1</ram:ID><ram:TypeCode>{code}</ram:TypeCode>
<ram:IssueDateTime><udt:DateTimeString format="102">20260901</udt:DateTimeString></ram:IssueDateTime>
</rsm:ExchangedDocument>
<rsm:SupplyChainTradeTransaction>
<ram:ApplicableHeaderTradeAgreement>
<ram:SellerTradeParty><ram:Name>Grossiste</ram:Name>
<ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">123456789</ram:ID></ram:SpecifiedLegalOrganization>
<ram:PostalTradeAddress><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>
<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">FR32123456789</ram:ID></ram:SpecifiedTaxRegistration>
</ram:SellerTradeParty>
<ram:BuyerTradeParty><ram:Name>Pharmacie</ram:Name></ram:BuyerTradeParty>
</ram:ApplicableHeaderTradeAgreement>
<ram:ApplicableHeaderTradeDelivery/>
<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
<ram:SpecifiedTradeSettlementHeaderMonetarySummation>
<ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>
<ram:TaxTotalAmount currencyID="EUR">5.50</ram:TaxTotalAmount>
<ram:GrandTotalAmount>105.50</ram:GrandTotalAmount>
<ram:DuePayableAmount>105.50</ram:DuePayableAmount>
</ram:SpecifiedTradeSettlementHeaderMonetarySummation>
</ram:ApplicableHeaderTradeSettlement>
</rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""


def test_hand_written_minimum() -> None:
    result = extract(_HEADER.format(gid="urn:factur-x.eu:1p0:minimum", code="380").encode())
    inv = result.invoice
    assert inv is not None
    assert (inv.profile, inv.number, inv.kind, inv.currency) == ("MINIMUM", "MIN-1", "invoice", "EUR")
    assert (inv.seller.name, inv.seller.siren, inv.seller.siret, inv.seller.vat_id) == (
        "Grossiste", "123456789", None, "FR32123456789")
    assert exact_text(inv.totals.tax_total) == "5.50"
    assert [c.name for c in result.checks] == ["totals", "xsd"]
    assert all(c.ok for c in result.checks)


@pytest.mark.parametrize(("gid", "profile"), [
    ("urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0", "XRECHNUNG"),
    ("urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic", "BASIC"),
    ("urn:zugferd.de:2p0:minimum", "MINIMUM"),
    ("urn:example:custom", "urn:example:custom"),
])
def test_profile_from_guideline_id(gid: str, profile: str) -> None:
    result = extract(_HEADER.format(gid=gid, code="396").encode())
    assert result.invoice is not None
    assert result.invoice.profile == profile
    assert result.invoice.kind == "credit_note"  # 396: factored credit note
    if profile == "urn:example:custom":
        assert [w.code for w in result.warnings] == ["xsd_not_checked"]


def test_a_seller_identifier_given_as_ram_id_is_read_like_a_global_id() -> None:
    """BT-29 may come as ``ram:ID`` (the seller's own identifier, with a scheme) instead of
    ``ram:GlobalID``: a SIRET given that way is still the seller's SIRET."""
    xml = gen.cii_xml(gen.four_rates_spec(), "en16931")
    moved = xml.replace(b'<ram:GlobalID schemeID="0009">73282932000173</ram:GlobalID>',
                        b'<ram:ID schemeID="0009">73282932000173</ram:ID>', 1)
    assert moved != xml
    result = extract(moved)
    assert result.invoice is not None
    assert result.invoice.seller.siret == "73282932000173"
    assert result.invoice.seller.siren == "732829320"


def test_an_empty_unit_code_is_no_unit_not_an_empty_one() -> None:
    """``unitCode=""`` on a line's quantity says nothing: the line has no unit (None), as when the
    attribute is missing, rather than a unit named ``""``."""
    xml = gen.cii_xml(gen.four_rates_spec(), "en16931")
    emptied = xml.replace(b'unitCode="C62"', b'unitCode=""', 1)
    assert emptied != xml
    result = extract(emptied)
    assert result.invoice is not None
    assert result.invoice.lines[0].unit is None
    assert result.invoice.lines[1].unit == "C62"  # the others keep theirs
