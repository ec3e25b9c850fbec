"""The business terms the model holds, read from a UBL 2.1 Invoice or CreditNote.

Hand-written for speed (see ``read_common``): every path below is compiled once at import.
Paths are EN 16931-3-2's UBL binding (XRechnung's UBL syntax too), relative to the root element
so one set serves both roots; where the CreditNote differs (type code, due date, line and
quantity elements) it has its own paths. Line / VAT paths are evaluated from each element.
"""

from __future__ import annotations

from lxml import etree

from services.documents.einvoice.mapping import NotAnInvoice
from services.documents.einvoice.read_common import (
    PartyPaths,
    RawInvoice,
    TermGroup,
    first_text,
    raw_invoice,
    read_line,
    read_party,
    read_vat,
    xpath,
)

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
DATE_FORMAT = "%Y-%m-%d"


def _x(path: str) -> etree.XPath:
    return xpath(path, NS)


def _header(credit_note: bool) -> TermGroup:
    """Header terms, from the root (one XPath); the CreditNote has its own type code and due date."""
    return TermGroup(
        NS,
        {
            "number": "cbc:ID",  # BT-1
            "type_code": "cbc:CreditNoteTypeCode" if credit_note else "cbc:InvoiceTypeCode",  # BT-3
            "issue_date": "cbc:IssueDate",  # BT-2
            "currency": "cbc:DocumentCurrencyCode",  # BT-5
            # BT-9: UBL 2.1's CreditNote has no DueDate; EN 16931 binds it to the payment means'.
            "due_date": "cac:PaymentMeans/cbc:PaymentDueDate" if credit_note else "cbc:DueDate",
            "buyer_reference": "cbc:BuyerReference",  # BT-10
            "preceding_invoice": "cac:BillingReference[1]/cac:InvoiceDocumentReference/cbc:ID",  # BG-3 BT-25
            "line_total": "cac:LegalMonetaryTotal/cbc:LineExtensionAmount",  # BT-106
            "tax_basis": "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount",  # BT-109
            "grand_total": "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount",  # BT-112
            "prepaid": "cac:LegalMonetaryTotal/cbc:PrepaidAmount",  # BT-113
            "rounding": "cac:LegalMonetaryTotal/cbc:PayableRoundingAmount",  # BT-114
            "due": "cac:LegalMonetaryTotal/cbc:PayableAmount",  # BT-115
        },
    )


def _line_terms(credit_note: bool) -> TermGroup:
    """Line terms, from an InvoiceLine / CreditNoteLine (one XPath)."""
    quantity = "cbc:CreditedQuantity" if credit_note else "cbc:InvoicedQuantity"
    return TermGroup(
        NS,
        {
            "id": "cbc:ID",  # BT-126
            "standard_id": "cac:Item/cac:StandardItemIdentification/cbc:ID",  # BT-157 (BT-157-1: @schemeID)
            "seller_id": "cac:Item/cac:SellersItemIdentification/cbc:ID",  # BT-155
            "name": "cac:Item/cbc:Name",  # BT-153
            "quantity": quantity,  # BT-129 (BT-130: @unitCode)
            "net_price": "cac:Price/cbc:PriceAmount",  # BT-146
            "line_total": "cbc:LineExtensionAmount",  # BT-131
            "vat_rate": "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent",  # BT-152
        },
        attributes={"standard_scheme": ("standard_id", "schemeID"), "unit": ("quantity", "unitCode")},
    )


_INVOICE_HEADER, _CREDIT_NOTE_HEADER = _header(False), _header(True)
_INVOICE_LINE, _CREDIT_NOTE_LINE = _line_terms(False), _line_terms(True)
# BT-110 is the TaxTotal/TaxAmount in the invoice currency (a second TaxTotal may give it in the
# tax currency, BT-111).
_TAX_TOTAL = _x("cac:TaxTotal/cbc:TaxAmount[@currencyID=$currency]")
_SELLER = _x("cac:AccountingSupplierParty/cac:Party")  # BG-4
_BUYER = _x("cac:AccountingCustomerParty/cac:Party")  # BG-7
_VAT = _x("cac:TaxTotal/cac:TaxSubtotal")  # BG-23
_INVOICE_LINES = _x("cac:InvoiceLine")  # BG-25, Invoice
_CREDIT_NOTE_LINES = _x("cac:CreditNoteLine")  # BG-25, CreditNote

# Party (from a cac:Party).
_PARTY = PartyPaths(
    name=_x("cac:PartyLegalEntity/cbc:RegistrationName"),  # BT-27 / BT-44
    legal_id=_x("cac:PartyLegalEntity/cbc:CompanyID"),  # BT-30 / BT-47
    legal_scheme=_x("cac:PartyLegalEntity/cbc:CompanyID/@schemeID"),
    identifiers=(_x("cac:PartyIdentification/cbc:ID"),),  # BT-29 / BT-46
    vat_id=_x("cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID"),  # BT-31 / BT-48
)

# VAT breakdown (from a TaxSubtotal).
_VAT_TERMS = TermGroup(
    NS,
    {
        "basis": "cbc:TaxableAmount",  # BT-116
        "amount": "cbc:TaxAmount",  # BT-117
        "category": "cac:TaxCategory/cbc:ID",  # BT-118
        "rate": "cac:TaxCategory/cbc:Percent",  # BT-119
    },
)


def read_ubl(root: etree._Element, *, credit_note: bool, max_lines: int) -> RawInvoice:
    """The terms of the UBL document ``root`` (a CreditNote root if ``credit_note``).

    ``NotAnInvoice`` past ``max_lines`` lines.
    """
    lines = (_CREDIT_NOTE_LINES if credit_note else _INVOICE_LINES)(root)
    if len(lines) > max_lines:
        raise NotAnInvoice(f"more than {max_lines} invoice lines")
    h = (_CREDIT_NOTE_HEADER if credit_note else _INVOICE_HEADER).read(root)
    line_terms = _CREDIT_NOTE_LINE if credit_note else _INVOICE_LINE
    currency = h.get("currency")
    return raw_invoice(
        h, date_format=DATE_FORMAT, seller=read_party(_SELLER(root), _PARTY), buyer=read_party(_BUYER(root), _PARTY),
        tax_total=first_text(_TAX_TOTAL(root, currency=currency)) if currency else None,
        rounding=h.get("rounding"),
        vat=[read_vat(node, _VAT_TERMS) for node in _VAT(root)],
        lines=[read_line(node, line_terms) for node in lines])
