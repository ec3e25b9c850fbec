"""What a collector finds on a portal (references) and hands back (documents)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

DocumentKind = Literal["invoice", "credit_note"]


@dataclass(frozen=True)
class InvoiceRef:
    """One line of a portal's invoice list, as parsed from the page."""

    number: str
    issue_date: date
    amount: Decimal
    currency: str
    kind: DocumentKind
    download_url: str


@dataclass(frozen=True)
class CollectedDocument:
    """An invoice or credit note with its PDF."""

    ref: InvoiceRef
    content: bytes
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.content).hexdigest())

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class MissingDocument:
    """A listed document whose file could not be fetched: the others are still collected, and the
    run ends as ``download_failed`` so this one is tried again next time."""

    ref: InvoiceRef
    reason: str
