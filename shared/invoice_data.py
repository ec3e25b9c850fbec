"""Structured invoice data read from a collected document (issue 14): the contract.

Like shared/events.py this is a public contract: events (``invoice data extracted``) and API
replies carry these models, so changes are additive. Amounts are ``Decimal`` exactly as the
e-invoice wrote them (``"12.50"`` stays ``12.50``; JSON carries them as strings, so no float ever
rounds a cent). Field comments give the EN 16931 business term (BT-/BG-) each field holds.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    # Frozen: an extraction is a record of what a document said; nothing downstream edits it.
    # extra="ignore": a consumer on an older version still reads a newer producer's payload.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Party(_Frozen):
    name: str | None = None
    siren: str | None = None  # 9 digits: scheme 0002, or the first nine of a SIRET
    siret: str | None = None  # 14 digits: scheme 0009
    vat_id: str | None = None  # BT-31 / BT-48, e.g. "FR32123456789"


class Totals(_Frozen):
    line_total: Decimal | None = None  # BT-106
    tax_basis: Decimal | None = None  # BT-109 (total without VAT)
    tax_total: Decimal | None = None  # BT-110
    grand_total: Decimal | None = None  # BT-112 (with VAT)
    prepaid: Decimal | None = None  # BT-113
    due: Decimal | None = None  # BT-115


class VatBreakdown(_Frozen):  # BG-23
    category: str  # BT-118, e.g. "S", "Z", "E", "AE"
    rate: Decimal | None = None  # BT-119, percent ("2.10" for 2.1 %)
    basis: Decimal  # BT-116
    amount: Decimal  # BT-117


class Line(_Frozen):  # BG-25
    id: str  # BT-126
    product_code: str | None = None  # BT-157 (standard id, e.g. a CIP13/GTIN) or else BT-155 (seller's id)
    product_scheme: str | None = None  # scheme id as written, e.g. "0160" (GTIN); None for a seller's id
    name: str | None = None  # BT-153
    quantity: Decimal | None = None  # BT-129
    unit: str | None = None  # BT-130 (UN/ECE rec. 20, e.g. "C62")
    net_price: Decimal | None = None  # BT-146
    line_total: Decimal | None = None  # BT-131
    vat_rate: Decimal | None = None  # BT-152


class EInvoice(_Frozen):
    syntax: Literal["CII", "UBL"]
    # "MINIMUM", "BASIC WL", "BASIC", "EN 16931", "EXTENDED", "XRECHNUNG", or the raw guideline id
    # (BT-24) when it is none of those.
    profile: str | None = None
    number: str  # BT-1
    type_code: str  # BT-3: 380 invoice, 381 credit note, 384 corrective, 389 self-billed...
    kind: Literal["invoice", "credit_note"]
    issue_date: date  # BT-2
    currency: str  # BT-5
    due_date: date | None = None  # BT-9
    buyer_reference: str | None = None  # BT-10
    preceding_invoice: str | None = None  # BT-25
    seller: Party  # BG-4
    buyer: Party  # BG-7
    totals: Totals  # BG-22
    vat_breakdown: list[VatBreakdown] = []  # BG-23
    lines: list[Line] = []  # BG-25


class DataWarning(_Frozen):
    code: str  # stable, machine-readable, e.g. "check_totals_failed", "listed_amount_differs"
    message: str  # for a person
    field: str | None = None  # the model field concerned, when there is one


class Check(_Frozen):
    name: str  # "lines_sum", "totals", "due", "vat_<rate>", "xsd"
    ok: bool
    detail: str | None = None


DataSource = Literal["factur-x", "zugferd", "xrechnung", "cii", "ubl", "none", "text"]


class Extraction(_Frozen):
    source: DataSource
    attachment: str | None = None  # the embedded file's name, for a PDF
    invoice: EInvoice | None = None
    checks: list[Check] = []
    warnings: list[DataWarning] = []


class Listed(_Frozen):
    """What the portal's list showed for the document (the ``invoice collected`` event)."""

    number: str
    issue_date: date
    amount: Decimal
    kind: Literal["invoice", "credit_note"]
