"""UBL 2.1 Invoice and CreditNote, from the sandbox generator, factur-x's generator and by hand."""

from __future__ import annotations

import copy
import datetime
from decimal import Decimal

from facturx.generate_xml import generate_ubl_xml

from sandbox import einvoice as gen
from services.documents.einvoice import extract
from tests.unit.documents.einvoice_expect import assert_matches


def test_invoice_every_field() -> None:
    spec = gen.four_rates_spec()
    result = extract(gen.ubl_xml(spec))
    assert result.source == "ubl"
    assert_matches(result.invoice, spec, "en16931", syntax="UBL")
    assert result.warnings == []
    assert all(c.ok for c in result.checks)
    assert any(c.name == "xsd" and "UBL-Invoice-2.1" in (c.detail or "") for c in result.checks)


def test_credit_note_root() -> None:
    spec = gen.credit_note_spec()
    result = extract(gen.ubl_xml(spec))
    assert_matches(result.invoice, spec, "en16931", syntax="UBL")
    assert result.invoice is not None and result.invoice.kind == "credit_note"
    assert any(c.name == "xsd" and c.ok and "CreditNote" in (c.detail or "") for c in result.checks)


def test_wholesaler_200_lines() -> None:
    spec = gen.wholesaler_spec(200)
    result = extract(gen.ubl_xml(spec))
    assert_matches(result.invoice, spec, "en16931", syntax="UBL")
    assert all(c.ok for c in result.checks)


def test_factur_x_package_ubl_credit_note() -> None:
    data = {
        "BT-1": "AV-9", "BT-2": datetime.date(2026, 9, 20), "BT-3": "381", "BT-5": "EUR",
        "BT-72": datetime.date(2026, 9, 20), "BG-3": [{"BT-25": "FA-8"}],
        "BG-4": {"name": "Labo", "legal_identifier": "552100554", "legal_identifier_schemeid": "0002",
                 "vat_identifier": "FR12552100554", "country_code": "FR"},
        "BG-7": {"name": "Pharmacie", "country_code": "FR"},
        "BG-23": [{"BT-116": "10.00", "BT-117": "0.55", "BT-118": "S", "BT-119": "5.50"}],
        "BG-25": [{"BT-126": "1", "BT-129": "1", "BT-130": "C62", "BT-131": "10.00", "BT-146": "10.00",
                   "BT-151": "S", "BT-152": "5.50", "BT-153": "Sérum"}],
        "BT-106": "10.00", "BT-109": "10.00", "BT-110": "0.55", "BT-112": "10.55", "BT-115": "10.55",
    }
    result = extract(generate_ubl_xml(copy.deepcopy(data), level="en16931", check_schematron=False))
    inv = result.invoice
    assert inv is not None
    assert (inv.syntax, inv.kind, inv.type_code, inv.preceding_invoice) == ("UBL", "credit_note", "381", "FA-8")
    assert inv.vat_breakdown[0].rate == Decimal("5.50")
    assert all(c.ok for c in result.checks)


# Written by hand from EN 16931's UBL binding and XRechnung 3.0's customization id.
XRECHNUNG_UBL = b"""<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
 <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0</cbc:CustomizationID>
 <cbc:ID>XR-1</cbc:ID>
 <cbc:IssueDate>2026-09-02</cbc:IssueDate>
 <cbc:DueDate>2026-10-02</cbc:DueDate>
 <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
 <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
 <cbc:BuyerReference>04011000-12345-03</cbc:BuyerReference>
 <cac:AccountingSupplierParty><cac:Party>
  <cac:PartyIdentification><cbc:ID schemeID="0009">12345678900017</cbc:ID></cac:PartyIdentification>
  <cac:PostalAddress><cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
  <cac:PartyTaxScheme><cbc:CompanyID>FR32123456789</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
  <cac:PartyLegalEntity><cbc:RegistrationName>Lieferant GmbH</cbc:RegistrationName></cac:PartyLegalEntity>
 </cac:Party></cac:AccountingSupplierParty>
 <cac:AccountingCustomerParty><cac:Party>
  <cac:PostalAddress><cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
  <cac:PartyLegalEntity><cbc:RegistrationName>Apotheke</cbc:RegistrationName></cac:PartyLegalEntity>
 </cac:Party></cac:AccountingCustomerParty>
 <cac:TaxTotal><cbc:TaxAmount currencyID="EUR">19.00</cbc:TaxAmount>
  <cac:TaxSubtotal><cbc:TaxableAmount currencyID="EUR">100.00</cbc:TaxableAmount>
   <cbc:TaxAmount currencyID="EUR">19.00</cbc:TaxAmount>
   <cac:TaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>19</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:TaxCategory>
  </cac:TaxSubtotal></cac:TaxTotal>
 <cac:LegalMonetaryTotal>
  <cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
  <cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount>
  <cbc:TaxInclusiveAmount currencyID="EUR">119.00</cbc:TaxInclusiveAmount>
  <cbc:PayableAmount currencyID="EUR">119.00</cbc:PayableAmount>
 </cac:LegalMonetaryTotal>
 <cac:InvoiceLine><cbc:ID>1</cbc:ID>
  <cbc:InvoicedQuantity unitCode="H87">4</cbc:InvoicedQuantity>
  <cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
  <cac:Item><cbc:Name>Verband</cbc:Name>
   <cac:StandardItemIdentification><cbc:ID schemeID="0160">4012345678901</cbc:ID></cac:StandardItemIdentification>
   <cac:ClassifiedTaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>19</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:ClassifiedTaxCategory>
  </cac:Item>
  <cac:Price><cbc:PriceAmount currencyID="EUR">25.00</cbc:PriceAmount></cac:Price>
 </cac:InvoiceLine>
</Invoice>
"""


def test_hand_written_xrechnung() -> None:
    result = extract(XRECHNUNG_UBL)
    inv = result.invoice
    assert result.source == "ubl"
    assert inv is not None
    assert (inv.profile, inv.number, inv.issue_date, inv.due_date) == (
        "XRECHNUNG", "XR-1", datetime.date(2026, 9, 2), datetime.date(2026, 10, 2))
    assert (inv.seller.name, inv.seller.siret, inv.seller.siren) == ("Lieferant GmbH", "12345678900017", "123456789")
    assert (inv.totals.line_total, inv.totals.grand_total, inv.totals.due) == (
        Decimal("100.00"), Decimal("119.00"), Decimal("119.00"))
    line = inv.lines[0]
    assert (line.product_code, line.product_scheme, line.quantity, line.unit, line.net_price, line.vat_rate) == (
        "4012345678901", "0160", Decimal(4), "H87", Decimal("25.00"), Decimal(19))
    assert all(c.ok for c in result.checks), result.checks
