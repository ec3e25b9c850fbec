"""The project's own e-invoice generator: Factur-X / ZUGFeRD 2.x CII, UBL 2.1, and Factur-X PDFs.

It makes the sandbox portals' structured invoices and the fixtures the extractor is tested on, so it
is written from the standards' element names (EN 16931 semantic model, UN/CEFACT CII D16B as profiled
by Factur-X 1.0x / ZUGFeRD 2.x, OASIS UBL 2.1), never from the extractor's code, and it embeds the XML
with the ``factur-x`` package (PDF/A-3 metadata, ``/AF`` relationship).

Expected values come from the spec alone (:meth:`InvoiceSpec.totals`), computed with ``Decimal``:

* BT-131 line net amount = quantity × net price, rounded half-up to 0.01 (per line, as EN 16931's
  BR-LIN / BR-CO-10 expect lines to be exact to the cent);
* BT-106 = Σ BT-131; no document-level allowances or charges, so BT-109 = BT-106;
* BG-23, one entry per (category, rate): basis BT-116 = Σ of that rate's BT-131, VAT BT-117 =
  basis × rate / 100 rounded half-up to 0.01 **once per rate** (BR-CO-17), never per line;
* BT-110 = Σ BT-117; BT-112 = BT-109 + BT-110; BT-115 = BT-112 − BT-113 (prepaid).

Credit notes (381) carry positive amounts, as EN 16931 wants: the type code says money flows back.

What each profile carries (Factur-X 1.0x; ZUGFeRD 2.x is the same XML with its guideline id):

* MINIMUM: number, type, issue date, buyer reference, seller (name, SIREN, country, VAT id),
  buyer (name, SIREN), currency, BT-109, BT-110, BT-112, BT-115. No lines, no BG-23, no due date.
* BASIC WL: MINIMUM + seller SIRET and addresses, BG-23, due date, BT-106, BT-113, preceding invoice.
* BASIC, EN 16931, EXTENDED: BASIC WL + the lines (BG-25: id, CIP13 as BT-157 with its scheme,
  name, quantity and unit, net price, line net amount, VAT category and rate).
"""

from __future__ import annotations

import io
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Final, Literal

import facturx.facturx as _fx  # the module, not the package: its clock and file name are pinned below
from lxml import etree
from stdnum import ean, luhn
from stdnum.fr import siren as fr_siren

Profile = Literal["minimum", "basicwl", "basic", "en16931", "extended"]
Flavour = Literal["factur-x", "zugferd"]
TypeCode = Literal["380", "381", "384", "389"]

PROFILES: Final[tuple[Profile, ...]] = ("minimum", "basicwl", "basic", "en16931", "extended")
LINE_PROFILES: Final[frozenset[Profile]] = frozenset({"basic", "en16931", "extended"})
CREDIT_NOTE_TYPE_CODES: Final[frozenset[str]] = frozenset({"381"})

# BT-24 specification identifiers, from the Factur-X 1.0x and ZUGFeRD 2.0 specifications.
GUIDELINES: Final[dict[Flavour, dict[Profile, str]]] = {
    "factur-x": {
        "minimum": "urn:factur-x.eu:1p0:minimum",
        "basicwl": "urn:factur-x.eu:1p0:basicwl",
        "basic": "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
        "en16931": "urn:cen.eu:en16931:2017",
        "extended": "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended",
    },
    "zugferd": {
        "minimum": "urn:zugferd.de:2p0:minimum",
        "basicwl": "urn:zugferd.de:2p0:basicwl",
        "basic": "urn:cen.eu:en16931:2017#compliant#urn:zugferd.de:2p0:basic",
        "en16931": "urn:cen.eu:en16931:2017",
        "extended": "urn:cen.eu:en16931:2017#conformant#urn:zugferd.de:2p0:extended",
    },
}
# ZUGFeRD 2.0 names its attachment so; 2.1 and later use factur-x.xml like Factur-X.
ATTACHMENT_NAMES: Final[dict[Flavour, str]] = {"factur-x": "factur-x.xml", "zugferd": "zugferd-invoice.xml"}

GTIN_SCHEME: Final = "0160"  # ISO 6523 ICD of GS1 GTIN: a CIP13 / ACL13 is an EAN-13 in the 340 prefix
SIREN_SCHEME: Final = "0002"  # ICD of the French SIREN (BT-30 / BT-47)
SIRET_SCHEME: Final = "0009"  # ICD of the French SIRET (BT-29)
FRENCH_PHARMACY_RATES: Final[tuple[Decimal, ...]] = (Decimal("2.1"), Decimal("5.5"), Decimal("10"), Decimal("20"))

_CENT = Decimal("0.01")
_HUNDRED = Decimal(100)

_NS: Final = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
_UBL_NS: Final = {
    "Invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "CreditNote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def cents(value: Decimal) -> Decimal:
    """The rounding rule of every amount here: half-up to the cent."""
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Party:
    name: str
    siren: str | None = None  # BT-30 / BT-47, scheme 0002
    siret: str | None = None  # BT-29 seller identifier, scheme 0009 (BASIC WL and up)
    vat_id: str | None = None  # BT-31 / BT-48
    street: str = ""
    postcode: str = ""
    city: str = ""
    country: str = "FR"


@dataclass(frozen=True)
class Line:
    id: str  # BT-126
    product_code: str  # BT-157, a CIP13 / ACL13
    name: str  # BT-153
    quantity: Decimal  # BT-129
    net_price: Decimal  # BT-146, per one unit (no BT-149 base quantity)
    vat_rate: Decimal  # BT-152, percent
    unit_code: str = "C62"  # BT-130, UN/ECE rec. 20 "one"
    product_scheme: str = GTIN_SCHEME  # BT-157-1
    vat_category: str = "S"  # BT-151, standard rate

    @property
    def net_amount(self) -> Decimal:
        """BT-131, rounded per line."""
        return cents(self.quantity * self.net_price)


@dataclass(frozen=True)
class VatBreakdown:
    category: str  # BT-118
    rate: Decimal  # BT-119
    basis: Decimal  # BT-116
    amount: Decimal  # BT-117


@dataclass(frozen=True)
class Totals:
    line_total: Decimal  # BT-106
    tax_basis_total: Decimal  # BT-109
    tax_total: Decimal  # BT-110
    grand_total: Decimal  # BT-112
    prepaid: Decimal  # BT-113
    due_payable: Decimal  # BT-115
    vat_breakdown: tuple[VatBreakdown, ...]  # BG-23, ordered by category then rate


@dataclass(frozen=True)
class InvoiceSpec:
    number: str  # BT-1
    type_code: TypeCode  # BT-3
    issue_date: date  # BT-2
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    due_date: date | None = None  # BT-9
    currency: str = "EUR"  # BT-5
    buyer_reference: str | None = None  # BT-10
    preceding_invoice: str | None = None  # BT-25
    preceding_invoice_date: date | None = None  # BT-26
    prepaid: Decimal = Decimal("0.00")  # BT-113
    note: str | None = None  # BT-22
    _totals: Totals | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def is_credit_note(self) -> bool:
        return self.type_code in CREDIT_NOTE_TYPE_CODES

    def totals(self) -> Totals:
        """The expected totals (see the module docstring for the rounding rule); computed once."""
        if self._totals is None:
            object.__setattr__(self, "_totals", _compute_totals(self))
        assert self._totals is not None
        return self._totals


def _compute_totals(spec: InvoiceSpec) -> Totals:
    bases: dict[tuple[str, Decimal], Decimal] = {}
    line_total = Decimal("0.00")
    for line in spec.lines:
        amount = line.net_amount
        line_total += amount
        key = (line.vat_category, line.vat_rate)
        bases[key] = bases.get(key, Decimal("0.00")) + amount
    breakdown = tuple(
        VatBreakdown(category=category, rate=rate, basis=basis, amount=cents(basis * rate / _HUNDRED))
        for (category, rate), basis in sorted(bases.items())
    )
    tax_total = sum((b.amount for b in breakdown), Decimal("0.00"))
    grand_total = line_total + tax_total
    return Totals(
        line_total=line_total,
        tax_basis_total=line_total,
        tax_total=tax_total,
        grand_total=grand_total,
        prepaid=cents(spec.prepaid),
        due_payable=grand_total - cents(spec.prepaid),
        vat_breakdown=breakdown,
    )


# ---------------------------------------------------------------------------------------------
# What a reader of the generated XML should find, field by field, for a given profile

Syntax = Literal["minimum", "basicwl", "basic", "en16931", "extended", "ubl"]


@dataclass(frozen=True)
class ExpectedParty:
    name: str
    siren: str | None
    siret: str | None
    vat_id: str | None


@dataclass(frozen=True)
class ExpectedLine:
    id: str
    product_code: str
    product_scheme: str
    name: str
    quantity: Decimal
    unit_code: str
    net_price: Decimal
    line_total: Decimal  # BT-131
    vat_category: str
    vat_rate: Decimal


@dataclass(frozen=True)
class Expected:
    """The values :func:`cii_xml` (a profile) or :func:`ubl_xml` (``"ubl"``) write for a spec; None or
    empty where the profile has no room for the field (module docstring)."""
    number: str
    type_code: str
    issue_date: date
    currency: str
    due_date: date | None
    buyer_reference: str | None
    preceding_invoice: str | None
    preceding_invoice_date: date | None
    seller: ExpectedParty
    buyer: ExpectedParty
    line_total: Decimal | None  # BT-106
    tax_basis_total: Decimal  # BT-109
    tax_total: Decimal  # BT-110
    grand_total: Decimal  # BT-112
    prepaid: Decimal | None  # BT-113
    due_payable: Decimal  # BT-115
    vat_breakdown: tuple[VatBreakdown, ...]
    lines: tuple[ExpectedLine, ...]


def expected(spec: InvoiceSpec, syntax: Syntax = "en16931") -> Expected:
    """What a parser should read back from ``spec`` generated in ``syntax``."""
    totals = spec.totals()
    minimum = syntax == "minimum"
    with_lines = syntax == "ubl" or syntax in LINE_PROFILES
    return Expected(
        number=spec.number,
        type_code=spec.type_code,
        issue_date=spec.issue_date,
        currency=spec.currency,
        due_date=None if minimum else spec.due_date,
        buyer_reference=spec.buyer_reference,
        preceding_invoice=None if minimum else spec.preceding_invoice,
        preceding_invoice_date=None if minimum else spec.preceding_invoice_date,
        seller=ExpectedParty(name=spec.seller.name, siren=spec.seller.siren,
                             siret=None if minimum else spec.seller.siret, vat_id=spec.seller.vat_id),
        # The buyer's SIRET is never written: BT-46 is not used for it here.
        buyer=ExpectedParty(name=spec.buyer.name, siren=spec.buyer.siren, siret=None,
                            vat_id=None if minimum else spec.buyer.vat_id),
        line_total=None if minimum else totals.line_total,
        tax_basis_total=totals.tax_basis_total,
        tax_total=totals.tax_total,
        grand_total=totals.grand_total,
        prepaid=None if minimum else totals.prepaid,
        due_payable=totals.due_payable,
        vat_breakdown=() if minimum else totals.vat_breakdown,
        lines=tuple(
            ExpectedLine(id=line.id, product_code=line.product_code, product_scheme=line.product_scheme,
                         name=line.name, quantity=line.quantity, unit_code=line.unit_code, net_price=line.net_price,
                         line_total=line.net_amount, vat_category=line.vat_category, vat_rate=line.vat_rate)
            for line in spec.lines
        ) if with_lines else (),
    )


# ---------------------------------------------------------------------------------------------
# Identifiers: valid check digits (python-stdnum), so an extractor that validates them accepts ours.

def siren_from(seed: int) -> str:
    """A SIREN with a valid Luhn key, made from ``seed``."""
    body = f"{seed % 10**8:08d}"
    return body + luhn.calc_check_digit(body)


def siret_from(siren: str, establishment: int = 1) -> str:
    body = f"{siren}{establishment % 10**4:04d}"
    return body + luhn.calc_check_digit(body)


def vat_id_of(siren: str) -> str:
    return f"FR{fr_siren.to_tva(siren)}"


def cip13_from(seed: int) -> str:
    """A CIP13 (34009 + 7 digits + EAN-13 key), made from ``seed``."""
    body = f"34009{seed % 10**7:07d}"
    return body + ean.calc_check_digit(body)


# ---------------------------------------------------------------------------------------------
# CII (UN/CEFACT CrossIndustryInvoice D16B as profiled by Factur-X / ZUGFeRD 2.x)

def _amount(value: Decimal) -> str:
    return f"{cents(value):.2f}"


def _price(value: Decimal) -> str:
    # Unit prices may carry up to 4 decimals (pharmacy price lists do); never fewer than 2.
    text = f"{value.normalize():f}"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _rate(value: Decimal) -> str:
    return f"{value:.2f}"


class _Cii:
    def __init__(self) -> None:
        self.root = etree.Element(f"{{{_NS['rsm']}}}CrossIndustryInvoice", nsmap=_NS)

    @staticmethod
    def sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
        prefix, _, local = tag.partition(":")
        element = etree.SubElement(parent, f"{{{_NS[prefix]}}}{local}", attrib)
        if text is not None:
            element.text = text
        return element


def _cii_date(parent: etree._Element, tag: str, value: date, kind: str = "udt") -> None:
    holder = _Cii.sub(parent, tag)
    _Cii.sub(holder, f"{kind}:DateTimeString", value.strftime("%Y%m%d"), format="102")


def _cii_party(parent: etree._Element, tag: str, party: Party, profile: Profile, *, seller: bool) -> None:
    sub = _Cii.sub
    node = sub(parent, tag)
    if seller and party.siret and profile != "minimum":
        sub(node, "ram:GlobalID", party.siret, schemeID=SIRET_SCHEME)
    sub(node, "ram:Name", party.name)
    if party.siren:
        legal = sub(node, "ram:SpecifiedLegalOrganization")
        sub(legal, "ram:ID", party.siren, schemeID=SIREN_SCHEME)
    # MINIMUM has the seller's country only, and no buyer address at all.
    if profile == "minimum":
        if seller:
            sub(sub(node, "ram:PostalTradeAddress"), "ram:CountryID", party.country)
    else:
        address = sub(node, "ram:PostalTradeAddress")
        if party.postcode:
            sub(address, "ram:PostcodeCode", party.postcode)
        if party.street:
            sub(address, "ram:LineOne", party.street)
        if party.city:
            sub(address, "ram:CityName", party.city)
        sub(address, "ram:CountryID", party.country)
    if party.vat_id and (seller or profile != "minimum"):
        sub(sub(node, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, schemeID="VA")


def _cii_line(parent: etree._Element, line: Line, profile: Profile) -> None:
    sub = _Cii.sub
    item = sub(parent, "ram:IncludedSupplyChainTradeLineItem")
    sub(sub(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", line.id)
    product = sub(item, "ram:SpecifiedTradeProduct")
    sub(product, "ram:GlobalID", line.product_code, schemeID=line.product_scheme)
    sub(product, "ram:Name", line.name)
    agreement = sub(item, "ram:SpecifiedLineTradeAgreement")
    sub(sub(agreement, "ram:NetPriceProductTradePrice"), "ram:ChargeAmount", _price(line.net_price))
    sub(sub(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", f"{line.quantity:f}",
        unitCode=line.unit_code)
    settlement = sub(item, "ram:SpecifiedLineTradeSettlement")
    tax = sub(settlement, "ram:ApplicableTradeTax")
    sub(tax, "ram:TypeCode", "VAT")
    sub(tax, "ram:CategoryCode", line.vat_category)
    sub(tax, "ram:RateApplicablePercent", _rate(line.vat_rate))
    summation = sub(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    sub(summation, "ram:LineTotalAmount", _amount(line.net_amount))


def cii_tree(spec: InvoiceSpec, profile: Profile = "en16931", flavour: Flavour = "factur-x") -> etree._Element:
    """The invoice as a CII element tree, carrying what ``profile`` allows (module docstring)."""
    sub = _Cii.sub
    totals = spec.totals()
    cii = _Cii()
    context = sub(cii.root, "rsm:ExchangedDocumentContext")
    sub(sub(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", GUIDELINES[flavour][profile])

    document = sub(cii.root, "rsm:ExchangedDocument")
    sub(document, "ram:ID", spec.number)
    sub(document, "ram:TypeCode", spec.type_code)
    _cii_date(document, "ram:IssueDateTime", spec.issue_date)
    if spec.note and profile != "minimum":
        sub(sub(document, "ram:IncludedNote"), "ram:Content", spec.note)

    transaction = sub(cii.root, "rsm:SupplyChainTradeTransaction")
    if profile in LINE_PROFILES:
        for line in spec.lines:
            _cii_line(transaction, line, profile)

    agreement = sub(transaction, "ram:ApplicableHeaderTradeAgreement")
    if spec.buyer_reference:
        sub(agreement, "ram:BuyerReference", spec.buyer_reference)
    _cii_party(agreement, "ram:SellerTradeParty", spec.seller, profile, seller=True)
    _cii_party(agreement, "ram:BuyerTradeParty", spec.buyer, profile, seller=False)

    sub(transaction, "ram:ApplicableHeaderTradeDelivery")

    settlement = sub(transaction, "ram:ApplicableHeaderTradeSettlement")
    sub(settlement, "ram:InvoiceCurrencyCode", spec.currency)
    if profile != "minimum":
        for vat in totals.vat_breakdown:
            tax = sub(settlement, "ram:ApplicableTradeTax")
            sub(tax, "ram:CalculatedAmount", _amount(vat.amount))
            sub(tax, "ram:TypeCode", "VAT")
            sub(tax, "ram:BasisAmount", _amount(vat.basis))
            sub(tax, "ram:CategoryCode", vat.category)
            sub(tax, "ram:RateApplicablePercent", _rate(vat.rate))
        if spec.due_date:
            _cii_date(sub(settlement, "ram:SpecifiedTradePaymentTerms"), "ram:DueDateDateTime", spec.due_date)
    summation = sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    if profile != "minimum":
        sub(summation, "ram:LineTotalAmount", _amount(totals.line_total))
    sub(summation, "ram:TaxBasisTotalAmount", _amount(totals.tax_basis_total))
    sub(summation, "ram:TaxTotalAmount", _amount(totals.tax_total), currencyID=spec.currency)
    sub(summation, "ram:GrandTotalAmount", _amount(totals.grand_total))
    if profile != "minimum":
        sub(summation, "ram:TotalPrepaidAmount", _amount(totals.prepaid))
    sub(summation, "ram:DuePayableAmount", _amount(totals.due_payable))
    if spec.preceding_invoice and profile != "minimum":
        reference = sub(settlement, "ram:InvoiceReferencedDocument")
        sub(reference, "ram:IssuerAssignedID", spec.preceding_invoice)
        if spec.preceding_invoice_date:
            _cii_date(reference, "ram:FormattedIssueDateTime", spec.preceding_invoice_date, kind="qdt")
    return cii.root


def cii_xml(spec: InvoiceSpec, profile: Profile = "en16931", flavour: Flavour = "factur-x") -> bytes:
    """UTF-8 CII bytes with an XML declaration, byte-stable for a given spec and profile."""
    return bytes(etree.tostring(cii_tree(spec, profile, flavour), xml_declaration=True, encoding="UTF-8",
                                pretty_print=True))


# ---------------------------------------------------------------------------------------------
# UBL 2.1 Invoice / CreditNote (EN 16931 UBL binding)

def ubl_xml(spec: InvoiceSpec) -> bytes:
    """A UBL 2.1 Invoice, or CreditNote for a credit note type code, per EN 16931's UBL binding."""
    root_name = "CreditNote" if spec.is_credit_note else "Invoice"
    nsmap = {None: _UBL_NS[root_name], "cac": _UBL_NS["cac"], "cbc": _UBL_NS["cbc"]}
    root = etree.Element(f"{{{_UBL_NS[root_name]}}}{root_name}", nsmap=nsmap)
    totals = spec.totals()
    currency = spec.currency

    def sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
        prefix, _, local = tag.partition(":")
        element = etree.SubElement(parent, f"{{{_UBL_NS[prefix]}}}{local}", attrib)
        if text is not None:
            element.text = text
        return element

    def money(parent: etree._Element, tag: str, value: Decimal) -> None:
        sub(parent, tag, _amount(value), currencyID=currency)

    def party(tag: str, who: Party, *, seller: bool) -> None:
        node = sub(sub(root, tag), "cac:Party")
        if seller and who.siret:
            sub(sub(node, "cac:PartyIdentification"), "cbc:ID", who.siret, schemeID=SIRET_SCHEME)
        address = sub(node, "cac:PostalAddress")
        if who.street:
            sub(address, "cbc:StreetName", who.street)
        if who.city:
            sub(address, "cbc:CityName", who.city)
        if who.postcode:
            sub(address, "cbc:PostalZone", who.postcode)
        sub(sub(address, "cac:Country"), "cbc:IdentificationCode", who.country)
        if who.vat_id:
            scheme = sub(node, "cac:PartyTaxScheme")
            sub(scheme, "cbc:CompanyID", who.vat_id)
            sub(sub(scheme, "cac:TaxScheme"), "cbc:ID", "VAT")
        legal = sub(node, "cac:PartyLegalEntity")
        sub(legal, "cbc:RegistrationName", who.name)
        if who.siren:
            sub(legal, "cbc:CompanyID", who.siren, schemeID=SIREN_SCHEME)

    sub(root, "cbc:CustomizationID", GUIDELINES["factur-x"]["en16931"])
    sub(root, "cbc:ID", spec.number)
    sub(root, "cbc:IssueDate", spec.issue_date.isoformat())
    if spec.is_credit_note:
        sub(root, "cbc:CreditNoteTypeCode", spec.type_code)
    else:
        if spec.due_date:
            sub(root, "cbc:DueDate", spec.due_date.isoformat())
        sub(root, "cbc:InvoiceTypeCode", spec.type_code)
    if spec.note:
        sub(root, "cbc:Note", spec.note)
    sub(root, "cbc:DocumentCurrencyCode", currency)
    if spec.buyer_reference:
        sub(root, "cbc:BuyerReference", spec.buyer_reference)
    if spec.preceding_invoice:
        reference = sub(sub(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
        sub(reference, "cbc:ID", spec.preceding_invoice)
        if spec.preceding_invoice_date:
            sub(reference, "cbc:IssueDate", spec.preceding_invoice_date.isoformat())
    party("cac:AccountingSupplierParty", spec.seller, seller=True)
    party("cac:AccountingCustomerParty", spec.buyer, seller=False)
    if spec.is_credit_note and spec.due_date:
        # A CreditNote has no cbc:DueDate: EN 16931 maps BT-9 to the payment means' due date.
        means = sub(root, "cac:PaymentMeans")
        sub(means, "cbc:PaymentMeansCode", "30")
        sub(means, "cbc:PaymentDueDate", spec.due_date.isoformat())
    tax_total = sub(root, "cac:TaxTotal")
    money(tax_total, "cbc:TaxAmount", totals.tax_total)
    for vat in totals.vat_breakdown:
        subtotal = sub(tax_total, "cac:TaxSubtotal")
        money(subtotal, "cbc:TaxableAmount", vat.basis)
        money(subtotal, "cbc:TaxAmount", vat.amount)
        category = sub(subtotal, "cac:TaxCategory")
        sub(category, "cbc:ID", vat.category)
        sub(category, "cbc:Percent", _rate(vat.rate))
        sub(sub(category, "cac:TaxScheme"), "cbc:ID", "VAT")
    monetary = sub(root, "cac:LegalMonetaryTotal")
    money(monetary, "cbc:LineExtensionAmount", totals.line_total)
    money(monetary, "cbc:TaxExclusiveAmount", totals.tax_basis_total)
    money(monetary, "cbc:TaxInclusiveAmount", totals.grand_total)
    money(monetary, "cbc:PrepaidAmount", totals.prepaid)
    money(monetary, "cbc:PayableAmount", totals.due_payable)
    line_tag, quantity_tag = (
        ("cac:CreditNoteLine", "cbc:CreditedQuantity") if spec.is_credit_note
        else ("cac:InvoiceLine", "cbc:InvoicedQuantity")
    )
    for line in spec.lines:
        node = sub(root, line_tag)
        sub(node, "cbc:ID", line.id)
        sub(node, quantity_tag, f"{line.quantity:f}", unitCode=line.unit_code)
        money(node, "cbc:LineExtensionAmount", line.net_amount)
        item = sub(node, "cac:Item")
        sub(item, "cbc:Name", line.name)
        sub(sub(item, "cac:StandardItemIdentification"), "cbc:ID", line.product_code, schemeID=line.product_scheme)
        category = sub(item, "cac:ClassifiedTaxCategory")
        sub(category, "cbc:ID", line.vat_category)
        sub(category, "cbc:Percent", _rate(line.vat_rate))
        sub(sub(category, "cac:TaxScheme"), "cbc:ID", "VAT")
        sub(sub(node, "cac:Price"), "cbc:PriceAmount", _price(line.net_price), currencyID=currency)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


# ---------------------------------------------------------------------------------------------
# Factur-X PDF: the visible PDF plus the XML, embedded by the factur-x package

# The factur-x package stamps "now" into the PDF (/CreationDate, /ModDate, the attachment's /ModDate,
# the XMP dates) and hard-codes the attachment's file name. The ledger dedups on sha256, so we pin the
# clock to the document's issue date and the name to the caller's, by swapping the package's two
# module-level helpers and its name constant for the duration of one call. The lock keeps two threads
# (a portal in an executor, a test) from seeing each other's pins. The name constant is also what the
# package's get_facturx_xml_from_pdf looks for, so it is swapped only for another name (ZUGFeRD's):
# a reader of that function in another thread of the same process, during those few milliseconds,
# would look for the wrong name (asyncio code in one thread cannot, as nothing awaits in between).
_PIN_LOCK = threading.Lock()


@contextmanager
def _pinned_library(moment: datetime, attachment_name: str) -> Iterator[None]:
    pdf_stamp = moment.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")
    xmp_stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    original = (_fx._get_pdf_timestamp, _fx._get_metadata_timestamp, _fx.FACTURX_FILENAME)
    original_pdf_timestamp = original[0]

    def pdf_timestamp(date: datetime | None = None) -> str:
        return pdf_stamp if date is None else str(original_pdf_timestamp(date))

    with _PIN_LOCK:
        _fx._get_pdf_timestamp = pdf_timestamp
        _fx._get_metadata_timestamp = lambda: xmp_stamp
        if attachment_name != original[2]:
            _fx.FACTURX_FILENAME = attachment_name
        try:
            yield
        finally:
            _fx._get_pdf_timestamp, _fx._get_metadata_timestamp, _fx.FACTURX_FILENAME = original


def facturx_pdf(spec: InvoiceSpec, profile: Profile, visible_pdf: bytes, attachment_name: str = "factur-x.xml",
                *, flavour: Flavour = "factur-x", check_xsd: bool = False) -> bytes:
    """``visible_pdf`` with the CII of ``spec`` embedded as a PDF/A-3 associated file (``/AFRelationship
    /Data``), byte-stable: every date the library writes is the issue date at midnight UTC, and it
    writes no ``/ID`` when the visible PDF has none (fpdf2's has none).

    ``check_xsd`` is off by default: the XML comes from this module (tested against the XSDs), and
    the portal calls this on every first download, where the XSD load would dominate the cost."""
    xml = cii_xml(spec, profile, flavour)
    kind = "Avoir" if spec.is_credit_note else "Facture"
    metadata = {
        "author": spec.seller.name,
        "keywords": f"{kind}, Factur-X",
        "title": f"{spec.seller.name}: {kind} {spec.number}",
        "subject": f"{kind} {spec.number} du {spec.issue_date.isoformat()} émise par {spec.seller.name}",
    }
    moment = datetime(spec.issue_date.year, spec.issue_date.month, spec.issue_date.day, tzinfo=UTC)
    # Not generate_from_binary: it writes the new PDF into its temporary copy of the input at the
    # position where pypdf stopped reading, so the result starts with ~1 kB of the old file before
    # "%PDF-" (akretion/factur-x#24, still so in 7.8 with pypdf 7), which PDF/A forbids. Its
    # documented workaround is generate_from_file with an output path.
    with _pinned_library(moment, attachment_name), tempfile.NamedTemporaryFile(suffix=".pdf") as output:
        _fx.generate_from_file(
            io.BytesIO(visible_pdf), xml, flavor="factur-x", level=profile, check_xsd=check_xsd,
            pdf_metadata=metadata, lang="fr-FR", output_pdf_file=output.name,
        )
        return Path(output.name).read_bytes()


# ---------------------------------------------------------------------------------------------
# Ready specs for tests

SELLER: Final = Party(
    name="Sandbox Répartition",
    siren=siren_from(73282932),
    siret=siret_from(siren_from(73282932), 17),
    vat_id=vat_id_of(siren_from(73282932)),
    street="12 rue des Grossistes",
    postcode="69007",
    city="Lyon",
)
BUYER: Final = Party(
    name="Pharmacie du Marché",
    siren=siren_from(81234567),
    vat_id=vat_id_of(siren_from(81234567)),
    street="3 place du Marché",
    postcode="33000",
    city="Bordeaux",
)

_PRODUCTS: Final = (
    ("Paracétamol 500 mg cpr B/16", Decimal("2.1")),
    ("Amoxicilline 1 g cpr B/6", Decimal("2.1")),
    ("Sérum physiologique unidoses B/30", Decimal("5.5")),
    ("Bandes de contention 10 cm", Decimal("10")),
    ("Crème hydratante visage 50 ml", Decimal("20")),
    ("Ibuprofène 200 mg cpr B/20", Decimal("2.1")),
    ("Lait infantile 1er âge 800 g", Decimal("5.5")),
    ("Autotest antigénique", Decimal("10")),
    ("Shampooing doux 200 ml", Decimal("20")),
)


def four_rates_spec() -> InvoiceSpec:
    """Five lines at the four French pharmacy rates, with prices that make per-line and per-rate VAT
    rounding differ (a parser that sums per-line VAT is off by a cent here)."""
    raw = (
        ("1", 0, Decimal("3"), Decimal("1.3333")),  # 2.1 %: 3.9999 -> 4.00
        ("2", 5, Decimal("7"), Decimal("0.9857")),  # 2.1 %: 6.8999 -> 6.90; VAT 0.22 per line, 0.23 per rate
        ("3", 2, Decimal("12"), Decimal("1.2450")),  # 5.5 %: 14.94
        ("4", 3, Decimal("2"), Decimal("8.35")),  # 10 %: 16.70
        ("5", 4, Decimal("1"), Decimal("14.99")),  # 20 %: 14.99
    )
    lines = tuple(
        Line(id=line_id, product_code=cip13_from(1000 + product), name=_PRODUCTS[product][0], quantity=quantity,
             net_price=price, vat_rate=_PRODUCTS[product][1])
        for line_id, product, quantity, price in raw
    )
    return InvoiceSpec(
        number="FA2026-000417", type_code="380", issue_date=date(2026, 3, 14), due_date=date(2026, 4, 13),
        seller=SELLER, buyer=BUYER, lines=lines, buyer_reference="OFF-0042", note="Livraison du 14/03/2026",
    )


def credit_note_spec() -> InvoiceSpec:
    """A credit note (381) for two returned boxes, referring to the invoice it corrects."""
    lines = (
        Line(id="1", product_code=cip13_from(1001), name=_PRODUCTS[1][0], quantity=Decimal("2"),
             net_price=Decimal("4.27"), vat_rate=Decimal("2.1")),
        Line(id="2", product_code=cip13_from(1004), name=_PRODUCTS[4][0], quantity=Decimal("1"),
             net_price=Decimal("9.90"), vat_rate=Decimal("20")),
    )
    return InvoiceSpec(
        number="AV2026-000031", type_code="381", issue_date=date(2026, 3, 20), due_date=date(2026, 4, 19),
        seller=SELLER, buyer=BUYER, lines=lines, buyer_reference="OFF-0042",
        preceding_invoice="FA2026-000417", preceding_invoice_date=date(2026, 3, 14),
    )


def wholesaler_spec(lines: int = 200) -> InvoiceSpec:
    """A wholesaler's delivery invoice: ``lines`` lines cycling through the products and rates, with
    quantities and 4-decimal unit prices that exercise per-line rounding; part of it already paid."""
    built = []
    for n in range(lines):
        name, rate = _PRODUCTS[n % len(_PRODUCTS)]
        built.append(Line(
            id=str(n + 1), product_code=cip13_from(20_000 + n * 37), name=name, quantity=Decimal(1 + n % 12),
            net_price=Decimal(137 + (n * 7919) % 45_000) / Decimal(10_000) * 10, vat_rate=rate,
        ))
    return InvoiceSpec(
        number="FA2026-009999", type_code="380", issue_date=date(2026, 2, 27),
        due_date=date(2026, 2, 27) + timedelta(days=30), seller=SELLER, buyer=BUYER, lines=tuple(built),
        buyer_reference="OFF-0042", prepaid=Decimal("100.00"),
    )
