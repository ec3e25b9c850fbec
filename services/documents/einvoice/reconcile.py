"""``reconcile``: what the e-invoice says against what the portal's list showed.

Each disagreement is a warning; nothing is overwritten (the portal and the document may each be
wrong, and the accountant decides).
"""

from __future__ import annotations

from shared.invoice_data import DataWarning, Extraction, Listed


def _same_number(a: str, b: str) -> bool:
    # Portals re-type numbers: case and blanks differ ("fa 2026-001" for "FA2026-001"); anything
    # more (dashes, leading zeros) is a real difference worth a look.
    return "".join(a.split()).casefold() == "".join(b.split()).casefold()


def reconcile(extraction: Extraction, listed: Listed) -> list[DataWarning]:
    """The disagreements between ``extraction`` and ``listed``, codes ``listed_<field>_differs``."""
    invoice = extraction.invoice
    if invoice is None:
        return []
    out: list[DataWarning] = []
    if not _same_number(invoice.number, listed.number):
        out.append(
            DataWarning(
                code="listed_number_differs",
                field="number",
                message=f"the portal lists number {listed.number!r}, the e-invoice says {invoice.number!r}",
            )
        )
    if invoice.issue_date != listed.issue_date:
        out.append(
            DataWarning(
                code="listed_issue_date_differs",
                field="issue_date",
                message=f"the portal lists {listed.issue_date}, the e-invoice says {invoice.issue_date}",
            )
        )
    total = invoice.totals.grand_total
    if total is not None:
        # A credit note's BT-112 is positive; portals show it either positive or negative.
        same = abs(total) == abs(listed.amount) if invoice.kind == "credit_note" else total == listed.amount
        if not same:
            out.append(
                DataWarning(
                    code="listed_amount_differs",
                    field="totals.grand_total",
                    message=f"the portal lists {listed.amount}, the e-invoice's total with VAT is {total}",
                )
            )
    if invoice.kind != listed.kind:
        out.append(
            DataWarning(
                code="listed_kind_differs",
                field="kind",
                message=f"the portal lists a {listed.kind}, the e-invoice is a {invoice.kind} "
                f"(type code {invoice.type_code})",
            )
        )
    return out
