"""From factur-x's parsed dictionary (keys are EN 16931 business terms) to the typed model.

factur-x's ``parse_ubl_cii_xml`` does the XPath work for both syntaxes; what it lacks and is
written here: amounts as ``Decimal`` (it gives strings or floats), SIREN/SIRET from the
identifier schemes (0002 SIREN, 0009 SIRET, ISO 6523), the profile and the invoice kind.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from services.documents.einvoice.limits import Limits
from shared.invoice_data import DataWarning, EInvoice, Line, Party, Totals, VatBreakdown

SIREN_SCHEME = "0002"
SIRET_SCHEME = "0009"


class NotAnInvoice(ValueError):
    """A required business term (number, type, date, currency) is missing or unreadable."""


class _Reader:
    """Reads values out of the dictionary, collecting a warning for each unreadable one."""

    def __init__(self) -> None:
        self.warnings: list[DataWarning] = []

    def text(self, value: Any) -> str | None:
        if isinstance(value, list):  # factur-x gives a list when a term is written twice
            value = value[0] if value else None
        if value is None:
            return None
        text = str(value).strip()
        return text or None

    def decimal(self, value: Any, field: str) -> Decimal | None:
        text = self.text(value)
        if text is None:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            self.warnings.append(
                DataWarning(code="bad_number", message=f"{field}: {text!r} is not a number", field=field)
            )
            return None
        return number

    def date(self, value: Any) -> date | None:
        if isinstance(value, list):
            value = value[0] if value else None
        return value if isinstance(value, date) else None


def _digits(value: str | None, length: int) -> str | None:
    if value is None:
        return None
    compact = value.replace(" ", "")
    return compact if len(compact) == length and compact.isdigit() else None


def _party(raw: Any, r: _Reader) -> Party:
    if not isinstance(raw, dict):
        return Party()
    siren: str | None = None
    siret: str | None = None
    legal = r.text(raw.get("legal_identifier"))
    legal_scheme = r.text(raw.get("legal_identifier_schemeid"))
    ids_raw = raw.get("identifiers")
    ids: dict[Any, Any] = ids_raw if isinstance(ids_raw, dict) else {}
    candidates: list[tuple[str | None, str | None]] = [(legal_scheme, legal)]
    candidates += [(str(k) if k is not None else None, r.text(v)) for k, v in ids.items()]
    for scheme, value in candidates:
        if scheme == SIREN_SCHEME and siren is None:
            siren = _digits(value, 9)
        elif scheme == SIRET_SCHEME and siret is None:
            siret = _digits(value, 14)
    if siren is None and siret is not None:
        siren = siret[:9]  # a SIRET is the SIREN followed by a 5-digit establishment number
    return Party(name=r.text(raw.get("name")), siren=siren, siret=siret, vat_id=r.text(raw.get("vat_identifier")))


def _lines(raw: Any, r: _Reader, limits: Limits) -> list[Line]:
    if not isinstance(raw, list):
        return []
    if len(raw) > limits.max_lines:
        raise NotAnInvoice(f"more than {limits.max_lines} invoice lines")
    lines = []
    for index, item in enumerate(raw, start=1):
        field = f"lines[{index}]"
        standard = r.text(item.get("BT-157"))
        lines.append(
            Line(
                id=r.text(item.get("BT-126")) or str(index),
                product_code=standard or r.text(item.get("BT-155")),
                product_scheme=r.text(item.get("BT-157-1")) if standard else None,
                name=r.text(item.get("BT-153")),
                quantity=r.decimal(item.get("BT-129"), f"{field}.quantity"),
                unit=r.text(item.get("BT-130")),
                net_price=r.decimal(item.get("BT-146"), f"{field}.net_price"),
                line_total=r.decimal(item.get("BT-131"), f"{field}.line_total"),
                vat_rate=r.decimal(item.get("BT-152"), f"{field}.vat_rate"),
            )
        )
    return lines


def _vat(raw: Any, r: _Reader) -> list[VatBreakdown]:
    if not isinstance(raw, list):
        return []
    out = []
    for index, item in enumerate(raw, start=1):
        field = f"vat_breakdown[{index}]"
        basis = r.decimal(item.get("BT-116"), f"{field}.basis")
        amount = r.decimal(item.get("BT-117"), f"{field}.amount")
        if basis is None or amount is None:
            continue  # the warning says which; a breakdown without its amounts says nothing
        out.append(
            VatBreakdown(
                category=r.text(item.get("BT-118")) or "",
                rate=r.decimal(item.get("BT-119"), f"{field}.rate"),
                basis=basis,
                amount=amount,
            )
        )
    return out


def to_invoice(
    raw: dict[str, Any],
    *,
    syntax: Literal["CII", "UBL"],
    profile: str | None,
    kind: Literal["invoice", "credit_note"],
    limits: Limits,
) -> tuple[EInvoice, list[DataWarning], Decimal | None]:
    """The model, the warnings about unreadable values, and BT-114 (rounding, for the checks)."""
    r = _Reader()
    number = r.text(raw.get("BT-1"))
    type_code = r.text(raw.get("BT-3"))
    issue_date = r.date(raw.get("BT-2"))
    currency = r.text(raw.get("BT-5"))
    missing = [
        name
        for name, value in (("BT-1", number), ("BT-3", type_code), ("BT-2", issue_date), ("BT-5", currency))
        if value is None
    ]
    if missing or number is None or type_code is None or issue_date is None or currency is None:
        raise NotAnInvoice(f"required business terms missing: {', '.join(missing)}")
    preceding = raw.get("BG-3")
    preceding_id = r.text(preceding[0].get("BT-25")) if isinstance(preceding, list) and preceding else None
    invoice = EInvoice(
        syntax=syntax,
        profile=profile,
        number=number,
        type_code=type_code,
        kind=kind,
        issue_date=issue_date,
        currency=currency,
        due_date=r.date(raw.get("BT-9")),
        buyer_reference=r.text(raw.get("BT-10")),
        preceding_invoice=preceding_id,
        seller=_party(raw.get("BG-4"), r),
        buyer=_party(raw.get("BG-7"), r),
        totals=Totals(
            line_total=r.decimal(raw.get("BT-106"), "totals.line_total"),
            tax_basis=r.decimal(raw.get("BT-109"), "totals.tax_basis"),
            tax_total=r.decimal(raw.get("BT-110"), "totals.tax_total"),
            grand_total=r.decimal(raw.get("BT-112"), "totals.grand_total"),
            prepaid=r.decimal(raw.get("BT-113"), "totals.prepaid"),
            due=r.decimal(raw.get("BT-115"), "totals.due"),
        ),
        vat_breakdown=_vat(raw.get("BG-23"), r),
        lines=_lines(raw.get("BG-25"), r, limits),
    )
    rounding = r.decimal(raw.get("BT-114"), "totals.rounding")
    return invoice, r.warnings, rounding
