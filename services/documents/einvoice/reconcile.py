"""``reconcile``: what the e-invoice says against what the portal's list showed.

Each disagreement is a warning; nothing is overwritten (the portal and the document may each be
wrong, and the accountant decides).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.invoice_data import DataWarning, EInvoice, Extraction, Listed


def _same_number(a: str, b: str) -> bool:
    # Portals re-type numbers: case and blanks differ ("fa 2026-001" for "FA2026-001"); anything
    # more (dashes, leading zeros) is a real difference worth a look.
    return "".join(a.split()).casefold() == "".join(b.split()).casefold()


def _amount_differs(total: Any, listed: Any, invoice: EInvoice) -> bool:
    if total is None:  # no BT-112: nothing to compare
        return False
    # A credit note's BT-112 is positive; portals show it either positive or negative.
    same = abs(total) == abs(listed) if invoice.kind == "credit_note" else total == listed
    return not same


@dataclass(frozen=True, slots=True)
class _Field:
    """One comparison: the e-invoice's value, the portal's, whether they differ, and the warning if so.

    ``message`` is a ``str.format`` template given ``invoice`` and ``listed`` (the two values) and
    ``doc`` (the ``EInvoice``).
    """

    code: str
    field: str
    invoice: Callable[[EInvoice], Any]
    listed: Callable[[Listed], Any]
    differs: Callable[[Any, Any, EInvoice], bool]  # (invoice value, listed value, invoice)
    message: str


_FIELDS = (
    _Field("listed_number_differs", "number", lambda i: i.number, lambda li: li.number,
           lambda a, b, _: not _same_number(a, b),
           "the portal lists number {listed!r}, the e-invoice says {invoice!r}"),
    _Field("listed_issue_date_differs", "issue_date", lambda i: i.issue_date, lambda li: li.issue_date,
           lambda a, b, _: a != b,
           "the portal lists {listed}, the e-invoice says {invoice}"),
    _Field("listed_amount_differs", "totals.grand_total", lambda i: i.totals.grand_total, lambda li: li.amount,
           _amount_differs,
           "the portal lists {listed}, the e-invoice's total with VAT is {invoice}"),
    _Field("listed_kind_differs", "kind", lambda i: i.kind, lambda li: li.kind,
           lambda a, b, _: a != b,
           "the portal lists it as {listed}, the e-invoice as {invoice} (type code {doc.type_code})"),
)


def reconcile(extraction: Extraction, listed: Listed) -> list[DataWarning]:
    """The disagreements between ``extraction`` and ``listed``, codes ``listed_<field>_differs``."""
    invoice = extraction.invoice
    if invoice is None:
        return []
    out: list[DataWarning] = []
    for f in _FIELDS:
        ours, theirs = f.invoice(invoice), f.listed(listed)
        if f.differs(ours, theirs, invoice):
            out.append(DataWarning(code=f.code, field=f.field,
                                   message=f.message.format(invoice=ours, listed=theirs, doc=invoice)))
    return out
