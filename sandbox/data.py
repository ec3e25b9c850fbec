"""Deterministic fake documents: each login is a pharmacy with its own stable set of invoices."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Literal

SUPPLIER = "Sandbox Répartition"
CREDIT_NOTE_SHARE = 0.15

SandboxKind = Literal["invoice", "credit_note"]


@dataclass(frozen=True)
class SandboxDocument:
    login: str
    number: str
    issue_date: date
    kind: SandboxKind
    amount: Decimal  # always positive: ``kind`` says whether it is owed or refunded
    currency: str = "EUR"


def _login_hash(login: str) -> str:
    return hashlib.sha256(login.encode("utf-8")).hexdigest()


def documents_for(login: str, today: date) -> list[SandboxDocument]:
    """The pharmacy's documents over the 12 months before ``today``, newest first."""
    return list(_documents(login, today))


# Portal pages and PDF downloads ask for the same list over and over during benchmarks.
@lru_cache(maxsize=4096)
def _documents(login: str, today: date) -> tuple[SandboxDocument, ...]:
    digest = _login_hash(login)
    rng = random.Random(int(digest[:16], 16))
    count = rng.randint(10, 40)
    # A fixed share rather than a coin flip per document, so every pharmacy has some credit notes.
    credit_notes = set(rng.sample(range(count), max(1, round(count * CREDIT_NOTE_SHARE))))
    drafts: list[tuple[date, SandboxKind, Decimal]] = []
    for i in range(count):
        issued = today - timedelta(days=rng.randint(0, 364))
        if i in credit_notes:
            drafts.append((issued, "credit_note", Decimal(rng.randint(500, 50_000)) / 100))
        else:
            drafts.append((issued, "invoice", Decimal(rng.randint(1_500, 600_000)) / 100))

    # Numbers follow issue order within a year, as a supplier's ledger would.
    drafts.sort(key=lambda d: d[0])
    sequences: dict[tuple[str, int], int] = {}
    documents: list[SandboxDocument] = []
    for issued, kind, amount in drafts:
        prefix = "FA" if kind == "invoice" else "AV"
        seq = sequences[prefix, issued.year] = sequences.get((prefix, issued.year), 0) + 1
        documents.append(
            SandboxDocument(
                login=login,
                number=f"{prefix}{issued.year}-{digest[:6]}-{seq:04d}",
                issue_date=issued,
                kind=kind,
                amount=amount.quantize(Decimal("0.01")),
            )
        )
    documents.reverse()
    return tuple(documents)
