"""What an extraction must say about an invoice the sandbox generator made from a spec.

The expected values come from the spec (sandbox/einvoice.py computes its totals from the lines
with its own rounding rule), never from the extractor: what each profile carries is the
generator's documented list (MINIMUM: header and totals; BASIC WL: + SIRET, BG-23, due date,
BT-106, BT-113, preceding invoice; BASIC and up: + lines).
"""

from __future__ import annotations

import io
from decimal import Decimal

from pypdf import PdfWriter

from sandbox import einvoice as gen
from shared.invoice_data import EInvoice

PROFILE_NAMES = {"minimum": "MINIMUM", "basicwl": "BASIC WL", "basic": "BASIC", "en16931": "EN 16931",
                 "extended": "EXTENDED"}


def blank_pdf(pages: int = 1) -> bytes:
    """A plain PDF without attachments (the visible part of a Factur-X)."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def assert_matches(invoice: EInvoice | None, spec: gen.InvoiceSpec, profile: gen.Profile, syntax: str = "CII") -> None:
    assert invoice is not None
    t = spec.totals()
    wl = profile != "minimum"
    assert invoice.syntax == syntax
    assert invoice.number == spec.number
    assert invoice.type_code == spec.type_code
    assert invoice.kind == ("credit_note" if spec.is_credit_note else "invoice")
    assert invoice.issue_date == spec.issue_date
    assert invoice.currency == spec.currency
    assert invoice.buyer_reference == spec.buyer_reference
    assert invoice.due_date == (spec.due_date if wl else None)
    assert invoice.preceding_invoice == (spec.preceding_invoice if wl else None)
    # Seller: name, SIREN, VAT id always; SIRET from BASIC WL on.
    assert invoice.seller.name == spec.seller.name
    assert invoice.seller.siren == spec.seller.siren
    assert invoice.seller.vat_id == spec.seller.vat_id
    assert invoice.seller.siret == (spec.seller.siret if wl else None)
    assert invoice.buyer.name == spec.buyer.name
    assert invoice.buyer.siren == spec.buyer.siren
    # Totals, compared as exact Decimals.
    assert invoice.totals.tax_basis == t.tax_basis_total
    assert invoice.totals.tax_total == t.tax_total
    assert invoice.totals.grand_total == t.grand_total
    assert invoice.totals.due == t.due_payable
    assert invoice.totals.line_total == (t.line_total if wl else None)
    assert invoice.totals.prepaid == (t.prepaid if wl else None)
    if wl:
        assert invoice.totals.prepaid == t.prepaid
        got = sorted((v.category, v.rate, v.basis, v.amount) for v in invoice.vat_breakdown)
        want = sorted((v.category, v.rate, v.basis, v.amount) for v in t.vat_breakdown)
        assert got == want
    else:
        assert invoice.vat_breakdown == []
    if profile in gen.LINE_PROFILES:
        assert len(invoice.lines) == len(spec.lines)
        for got_line, want in zip(invoice.lines, spec.lines, strict=True):
            assert got_line.id == want.id
            assert got_line.product_code == want.product_code
            assert got_line.product_scheme == want.product_scheme
            assert got_line.name == want.name
            assert got_line.quantity == want.quantity
            assert got_line.unit == want.unit_code
            assert got_line.net_price == want.net_price
            assert got_line.line_total == want.net_amount
            assert got_line.vat_rate == want.vat_rate
    else:
        assert invoice.lines == []


def exact_text(value: Decimal | None) -> str:
    """How the model holds an amount: the digits as written (``4.00`` stays ``4.00``)."""
    assert value is not None
    return f"{value:f}"
