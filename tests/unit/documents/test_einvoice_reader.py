"""The hand-written CII / UBL readers on what the generator never writes: a term written twice, a line
without a product code or line id, BT-110 in two currencies, a missing currency, blank or
malformed dates, lines in a BASIC WL document.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from sandbox import einvoice as gen
from services.documents.einvoice import extract
from shared.invoice_data import Extraction

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"


def _cii(profile: gen.Profile = "en16931", spec: gen.InvoiceSpec | None = None) -> etree._Element:
    return gen.cii_tree(spec or gen.four_rates_spec(), profile)


def _ubl(spec: gen.InvoiceSpec | None = None) -> etree._Element:
    return etree.fromstring(gen.ubl_xml(spec or gen.four_rates_spec()))


def _one(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path)
    assert found is not None, path
    return found


def _read(root: etree._Element) -> Extraction:
    return extract(etree.tostring(root))


def test_a_term_written_twice_is_read_from_its_first_element() -> None:
    root = _cii()
    type_code = _one(root, f"{{{RSM}}}ExchangedDocument/{{{RAM}}}TypeCode")
    type_code.text = "381"
    second = etree.Element(f"{{{RAM}}}TypeCode")
    second.text = "380"
    type_code.addnext(second)
    result = _read(root)
    assert result.invoice is not None
    # factur-x gave ["381", "380"] here, which the kind logic read as an invoice.
    assert (result.invoice.type_code, result.invoice.kind) == ("381", "credit_note")
    assert "xsd" in {c.name for c in result.checks if not c.ok}


def test_a_blank_element_counts_as_absent() -> None:
    root = _cii()
    number = _one(root, f"{{{RSM}}}ExchangedDocument/{{{RAM}}}ID")
    blank = etree.Element(f"{{{RAM}}}ID")
    blank.text = "  "
    number.addprevious(blank)
    result = _read(root)
    assert result.invoice is not None and result.invoice.number == "FA2026-000417"


def test_cii_line_without_product_code_or_line_id() -> None:
    root = _cii()
    line = root.findall(f".//{{{RAM}}}IncludedSupplyChainTradeLineItem")[1]
    product = _one(line, f"{{{RAM}}}SpecifiedTradeProduct")
    product.remove(_one(product, f"{{{RAM}}}GlobalID"))
    document = _one(line, f"{{{RAM}}}AssociatedDocumentLineDocument")
    document.remove(_one(document, f"{{{RAM}}}LineID"))
    result = _read(root)
    assert result.invoice is not None
    second = result.invoice.lines[1]
    assert (second.id, second.product_code, second.product_scheme) == ("2", None, None)
    assert second.name == gen.four_rates_spec().lines[1].name
    assert result.invoice.lines[0].product_scheme == "0160"


def test_ubl_line_with_only_the_sellers_id() -> None:
    root = _ubl()
    item = root.findall(f"{{{CAC}}}InvoiceLine/{{{CAC}}}Item")[0]
    item.remove(_one(item, f"{{{CAC}}}StandardItemIdentification"))
    sellers = etree.Element(f"{{{CAC}}}SellersItemIdentification")
    etree.SubElement(sellers, f"{{{CBC}}}ID").text = "SKU-1"
    _one(item, f"{{{CBC}}}Name").addnext(sellers)
    result = _read(root)
    assert result.invoice is not None
    first = result.invoice.lines[0]
    # The line's own cbc:ID and the item's cbc:ID are told apart by their parent.
    assert (first.id, first.product_code, first.product_scheme) == (gen.four_rates_spec().lines[0].id, "SKU-1", None)
    assert all(c.ok for c in result.checks), result.checks


def test_tax_total_in_two_currencies_is_read_in_the_invoice_currency() -> None:
    root = _cii()
    tax_total = _one(root, f".//{{{RAM}}}SpecifiedTradeSettlementHeaderMonetarySummation/{{{RAM}}}TaxTotalAmount")
    other = etree.Element(f"{{{RAM}}}TaxTotalAmount", currencyID="CHF")
    other.text = "999.99"
    tax_total.addprevious(other)
    result = _read(root)
    assert result.invoice is not None
    assert result.invoice.totals.tax_total == gen.four_rates_spec().totals().tax_total
    ubl = _ubl()
    foreign = etree.Element(f"{{{CAC}}}TaxTotal")
    etree.SubElement(foreign, f"{{{CBC}}}TaxAmount", currencyID="CHF").text = "999.99"
    _one(ubl, f"{{{CAC}}}TaxTotal").addprevious(foreign)
    ubl_result = _read(ubl)
    assert ubl_result.invoice is not None
    assert ubl_result.invoice.totals.tax_total == gen.four_rates_spec().totals().tax_total


def test_missing_currency_is_an_incomplete_invoice() -> None:
    root = _cii()
    settlement = _one(root, f".//{{{RAM}}}ApplicableHeaderTradeSettlement")
    settlement.remove(_one(settlement, f"{{{RAM}}}InvoiceCurrencyCode"))
    result = extract(etree.tostring(root))
    assert result.invoice is None
    assert [w.code for w in result.warnings] == ["einvoice_incomplete"]
    assert "BT-5" in result.warnings[0].message


def test_blank_due_date_is_none_and_a_malformed_one_makes_the_document_unreadable() -> None:
    root = _cii()
    due = _one(root, f".//{{{RAM}}}DueDateDateTime/{{{UDT}}}DateTimeString")
    due.text = " "
    result = _read(root)
    assert result.invoice is not None and result.invoice.due_date is None
    due.text = "20261399"
    bad = _read(root)
    assert bad.invoice is None
    assert [w.code for w in bad.warnings] == ["einvoice_unreadable"]
    assert "BT-9" in bad.warnings[0].message
    ubl = _ubl()
    _one(ubl, f"{{{CBC}}}DueDate").text = "2026-4-3"  # strptime's lenient spelling still reads
    ubl_result = _read(ubl)
    assert ubl_result.invoice is not None and ubl_result.invoice.due_date == date(2026, 4, 3)


def test_basic_wl_document_carrying_lines_reads_no_lines() -> None:
    # BASIC WL has no lines (nor BT-114): under that profile they are not read, as with factur-x.
    root = _cii("en16931")
    guideline = _one(root, f".//{{{RAM}}}GuidelineSpecifiedDocumentContextParameter/{{{RAM}}}ID")
    guideline.text = "urn:factur-x.eu:1p0:basicwl"
    result = _read(root)
    assert result.invoice is not None and result.invoice.profile == "BASIC WL"
    assert result.invoice.lines == []
    assert result.invoice.totals.line_total == gen.four_rates_spec().totals().line_total
    assert {c.name for c in result.checks if not c.ok} == {"xsd"}


def test_credit_note_lines_read_credited_quantity() -> None:
    spec = gen.credit_note_spec()
    root = etree.fromstring(gen.ubl_xml(spec))
    quantity = _one(root, f"{{{CAC}}}CreditNoteLine/{{{CBC}}}CreditedQuantity")
    quantity.set("unitCode", "H87")
    quantity.text = " 3 "
    result = _read(root)
    assert result.invoice is not None
    assert (result.invoice.lines[0].quantity, result.invoice.lines[0].unit) == (Decimal(3), "H87")
