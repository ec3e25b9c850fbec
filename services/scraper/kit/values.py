"""Pure parsing of the values a portal shows: amounts, dates, document kinds.

Anything unreadable raises :class:`InterfaceChanged`: a portal that suddenly shows amounts or dates
another way has changed, and the collector must be looked at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from services.scraper.kit.errors import InterfaceChanged
from services.scraper.kit.html import fold
from services.scraper.kit.invoice import DocumentKind

ISO = "iso"
FRENCH_LONG = "fr_long"  # "1er mars 2026", "25 décembre 2025"
_MONTHS = {name: i + 1 for i, name in enumerate(
    ("janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre",
     "novembre", "decembre"))}
_MINUS = "-\u2212\u2013"  # hyphen-minus, minus sign, en dash
_KEEP = re.compile(r"[^0-9,.\-\u2212\u2013()]")


def parse_amount(text: str, decimal_separator: str = ",") -> tuple[Decimal, bool]:
    """``"1 234,56 €"`` -> ``(Decimal("1234.56"), False)``; the flag tells a negative amount
    (``-``, ``−`` or accounting parentheses)."""
    kept = _KEEP.sub("", text)
    negative = kept.startswith(tuple(_MINUS)) or (kept.startswith("(") and kept.endswith(")"))
    digits = kept.strip("()" + _MINUS)
    thousands = "." if decimal_separator == "," else ","
    digits = digits.replace(thousands, "").replace(decimal_separator, ".")
    try:
        value = Decimal(digits).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise InterfaceChanged(f"unexpected amount {text!r}") from None
    return abs(value), negative


def parse_date(text: str, fmt: str = "%d/%m/%Y") -> date:
    value = text.strip()
    try:
        if fmt == ISO:
            return date.fromisoformat(value[:10])
        if fmt == FRENCH_LONG:
            day, month, year = fold(value).replace("1er", "1").split()
            return date(int(year), _MONTHS[month], int(day))
        return datetime.strptime(value, fmt).date()
    except (ValueError, KeyError):
        raise InterfaceChanged(f"unexpected date {text!r}") from None


def parse_kind(text: str, labels: Mapping[str, DocumentKind]) -> DocumentKind:
    """The kind a label stands for, compared without case or accents."""
    wanted = fold(text)
    for label, kind in labels.items():
        if fold(label) == wanted:
            return kind
    raise InterfaceChanged(f"unexpected document type {text!r}")
