"""The business terms the model holds, read from a CII invoice (rsm:CrossIndustryInvoice, D16B).

Hand-written for speed (see ``read_common``): every path below is compiled once at import.
Paths are EN 16931-3-3's CII binding, the ones Factur-X 1.x and ZUGFeRD 2.x use in every profile
(MINIMUM to EXTENDED) and XRechnung's CII syntax; they are evaluated from the root element, and
the line / VAT ones from each line / tax element.
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
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
DATE_FORMAT = "%Y%m%d"  # udt:DateTimeString format="102"

_DOC = "rsm:ExchangedDocument"
_TX = "rsm:SupplyChainTradeTransaction"
_AGREEMENT = f"{_TX}/ram:ApplicableHeaderTradeAgreement"
_SETTLEMENT = f"{_TX}/ram:ApplicableHeaderTradeSettlement"
_SUM = f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"


def _x(path: str) -> etree.XPath:
    return xpath(path, NS)


# Header terms, from the root (one XPath).
_HEADER = TermGroup(
    NS,
    {
        "number": f"{_DOC}/ram:ID",  # BT-1
        "type_code": f"{_DOC}/ram:TypeCode",  # BT-3
        "issue_date": f"{_DOC}/ram:IssueDateTime/udt:DateTimeString",  # BT-2
        "currency": f"{_SETTLEMENT}/ram:InvoiceCurrencyCode",  # BT-5
        "due_date": f"{_SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",  # BT-9
        "buyer_reference": f"{_AGREEMENT}/ram:BuyerReference",  # BT-10
        "preceding_invoice": f"{_SETTLEMENT}/ram:InvoiceReferencedDocument[1]/ram:IssuerAssignedID",  # BG-3 BT-25
        "line_total": f"{_SUM}/ram:LineTotalAmount",  # BT-106
        "tax_basis": f"{_SUM}/ram:TaxBasisTotalAmount",  # BT-109
        "grand_total": f"{_SUM}/ram:GrandTotalAmount",  # BT-112
        "prepaid": f"{_SUM}/ram:TotalPrepaidAmount",  # BT-113
        "rounding": f"{_SUM}/ram:RoundingAmount",  # BT-114
        "due": f"{_SUM}/ram:DuePayableAmount",  # BT-115
    },
)
# BT-110 is the TaxTotalAmount in the invoice currency: with a tax currency (BT-6) the element is
# written twice, once per currency.
_TAX_TOTAL = _x(f"{_SUM}/ram:TaxTotalAmount[@currencyID=$currency]")
_SELLER = _x(f"{_AGREEMENT}/ram:SellerTradeParty")  # BG-4
_BUYER = _x(f"{_AGREEMENT}/ram:BuyerTradeParty")  # BG-7
_VAT = _x(f"{_SETTLEMENT}/ram:ApplicableTradeTax")  # BG-23
_LINES = _x(f"{_TX}/ram:IncludedSupplyChainTradeLineItem")  # BG-25

# Party (from a SellerTradeParty / BuyerTradeParty).
_PARTY = PartyPaths(
    name=_x("ram:Name"),  # BT-27 / BT-44
    legal_id=_x("ram:SpecifiedLegalOrganization/ram:ID"),  # BT-30 / BT-47
    legal_scheme=_x("ram:SpecifiedLegalOrganization/ram:ID/@schemeID"),
    # BT-29 / BT-46: GlobalID (with a scheme id: 0009 SIRET...) then ID (the seller's own, usually none).
    identifiers=(_x("ram:GlobalID"), _x("ram:ID")),
    vat_id=_x("ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),  # BT-31 / BT-48
)

# VAT breakdown (from an ApplicableTradeTax).
_VAT_TERMS = TermGroup(
    NS,
    {
        "basis": "ram:BasisAmount",  # BT-116
        "amount": "ram:CalculatedAmount",  # BT-117
        "category": "ram:CategoryCode",  # BT-118
        "rate": "ram:RateApplicablePercent",  # BT-119
    },
)

# Line (from an IncludedSupplyChainTradeLineItem).
_LINE_TERMS = TermGroup(
    NS,
    {
        "id": "ram:AssociatedDocumentLineDocument/ram:LineID",  # BT-126
        "standard_id": "ram:SpecifiedTradeProduct/ram:GlobalID",  # BT-157 (BT-157-1: @schemeID)
        "seller_id": "ram:SpecifiedTradeProduct/ram:SellerAssignedID",  # BT-155
        "name": "ram:SpecifiedTradeProduct/ram:Name",  # BT-153
        "quantity": "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity",  # BT-129 (BT-130: @unitCode)
        "net_price": "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount",  # BT-146
        "line_total": (  # BT-131
            "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount"
        ),
        "vat_rate": "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent",  # BT-152
    },
    attributes={"standard_scheme": ("standard_id", "schemeID"), "unit": ("quantity", "unitCode")},
)


def read_cii(root: etree._Element, *, xsd_level: str | None, max_lines: int) -> RawInvoice:
    """The terms of the CII document ``root``; ``NotAnInvoice`` past ``max_lines`` lines.

    BASIC WL has no lines and no rounding amount (BT-114): under that profile neither is read,
    as factur-x did (it filtered its field table by level).
    """
    basic_wl = xsd_level == "basicwl"
    lines = [] if basic_wl else _LINES(root)
    if len(lines) > max_lines:
        raise NotAnInvoice(f"more than {max_lines} invoice lines")
    h = _HEADER.read(root)
    currency = h.get("currency")
    return raw_invoice(
        h, date_format=DATE_FORMAT, seller=read_party(_SELLER(root), _PARTY), buyer=read_party(_BUYER(root), _PARTY),
        tax_total=first_text(_TAX_TOTAL(root, currency=currency)) if currency else None,
        rounding=None if basic_wl else h.get("rounding"),
        vat=[read_vat(node, _VAT_TERMS) for node in _VAT(root)],
        lines=[read_line(node, _LINE_TERMS) for node in lines])
