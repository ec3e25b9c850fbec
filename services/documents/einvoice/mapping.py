"""From the business terms ``read_cii`` / ``read_ubl`` read (strings, as written) to the typed model.

Written here for both syntaxes: amounts as ``Decimal`` exactly as written (a value that is not a
number is a ``bad_number`` warning and None), SIREN/SIRET from the identifier schemes (0002 SIREN,
0009 SIRET, ISO 6523), the line's product code and scheme, and ``NotAnInvoice`` when a required
term (number, type, date, currency) is missing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal

from services.documents.einvoice.read_common import RawInvoice, RawLine, RawParty, RawVat
from shared.invoice_data import DataWarning, EInvoice, Line, Party, Totals, VatBreakdown

SIREN_SCHEME = "0002"
SIRET_SCHEME = "0009"


class NotAnInvoice(ValueError):
    """A required business term (number, type, date, currency) is missing or unreadable, or too many lines."""


class _Reader:
    """Turns written values into numbers, collecting a warning for each unreadable one."""

    def __init__(self) -> None:
        self.warnings: list[DataWarning] = []

    def decimal(self, text: str | None, field: str, part: str | None = None) -> Decimal | None:
        """``text`` as a number; None and a warning naming ``field`` (``field.part``) if it is not one."""
        if text is None:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            if part is not None:
                field = f"{field}.{part}"
            self.warnings.append(
                DataWarning(code="bad_number", message=f"{field}: {text!r} is not a number", field=field)
            )
            return None
        return number


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def _digits(value: str | None, length: int) -> str | None:
    if value is None:
        return None
    compact = value.replace(" ", "")
    return compact if len(compact) == length and compact.isdigit() else None


def _party(raw: RawParty) -> Party:
    siren: str | None = None
    siret: str | None = None
    candidates: list[tuple[str | None, str | None]] = [(raw.legal_scheme, raw.legal_id)]
    candidates += [(scheme, _text(value)) for scheme, value in raw.identifiers.items()]
    for scheme, value in candidates:
        if scheme == SIREN_SCHEME and siren is None:
            siren = _digits(value, 9)
        elif scheme == SIRET_SCHEME and siret is None:
            siret = _digits(value, 14)
    if siren is None and siret is not None:
        siren = siret[:9]  # a SIRET is the SIREN followed by a 5-digit establishment number
    return Party(name=raw.name, siren=siren, siret=siret, vat_id=raw.vat_id)


def _lines(raw: list[RawLine], r: _Reader) -> list[Line]:
    lines = []
    for index, item in enumerate(raw, start=1):
        field = f"lines[{index}]"
        standard = item.standard_id
        lines.append(
            Line(
                id=item.id or str(index),
                product_code=standard or item.seller_id,
                product_scheme=item.standard_scheme if standard else None,
                name=item.name,
                quantity=r.decimal(item.quantity, field, "quantity"),
                unit=item.unit,
                net_price=r.decimal(item.net_price, field, "net_price"),
                line_total=r.decimal(item.line_total, field, "line_total"),
                vat_rate=r.decimal(item.vat_rate, field, "vat_rate"),
            )
        )
    return lines


def _vat(raw: list[RawVat], r: _Reader) -> list[VatBreakdown]:
    out = []
    for index, item in enumerate(raw, start=1):
        field = f"vat_breakdown[{index}]"
        basis = r.decimal(item.basis, field, "basis")
        amount = r.decimal(item.amount, field, "amount")
        if basis is None or amount is None:
            continue  # the warning says which; a breakdown without its amounts says nothing
        out.append(
            VatBreakdown(
                category=item.category or "",
                rate=r.decimal(item.rate, field, "rate"),
                basis=basis,
                amount=amount,
            )
        )
    return out


def to_invoice(
    raw: RawInvoice,
    *,
    syntax: Literal["CII", "UBL"],
    profile: str | None,
    kind: Literal["invoice", "credit_note"],
) -> tuple[EInvoice, list[DataWarning], Decimal | None]:
    """The model, the warnings about unreadable values, and BT-114 (rounding, for the checks)."""
    r = _Reader()
    number, type_code, issue_date, currency = raw.number, raw.type_code, raw.issue_date, raw.currency
    missing = [
        name
        for name, value in (("BT-1", number), ("BT-3", type_code), ("BT-2", issue_date), ("BT-5", currency))
        if value is None
    ]
    if missing or number is None or type_code is None or issue_date is None or currency is None:
        raise NotAnInvoice(f"required business terms missing: {', '.join(missing)}")
    invoice = EInvoice(
        syntax=syntax,
        profile=profile,
        number=number,
        type_code=type_code,
        kind=kind,
        issue_date=issue_date,
        currency=currency,
        due_date=raw.due_date,
        buyer_reference=raw.buyer_reference,
        preceding_invoice=raw.preceding_invoice,
        seller=_party(raw.seller),
        buyer=_party(raw.buyer),
        totals=Totals(
            line_total=r.decimal(raw.line_total, "totals.line_total"),
            tax_basis=r.decimal(raw.tax_basis, "totals.tax_basis"),
            tax_total=r.decimal(raw.tax_total, "totals.tax_total"),
            grand_total=r.decimal(raw.grand_total, "totals.grand_total"),
            prepaid=r.decimal(raw.prepaid, "totals.prepaid"),
            due=r.decimal(raw.due, "totals.due"),
        ),
        vat_breakdown=_vat(raw.vat, r),
        lines=_lines(raw.lines, r),
    )
    rounding = r.decimal(raw.rounding, "totals.rounding")
    return invoice, r.warnings, rounding
