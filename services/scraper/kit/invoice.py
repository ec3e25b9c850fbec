"""What a collector finds on a portal (references) and hands back (documents)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import IO, Literal

from services.scraper.kit.body import DocumentBody

DocumentKind = Literal["invoice", "credit_note"]

# What tells one document from another within an account: (site, number). Two sites of one login
# may reuse a number; ``None`` is the portal's only (or unnamed) site.
InvoiceKey = tuple[str | None, str]


@dataclass(frozen=True)
class InvoiceRef:
    """One line of a portal's invoice list, as parsed from the page."""

    number: str
    issue_date: date
    amount: Decimal
    currency: str
    kind: DocumentKind
    download_url: str
    # The site or customer account the document belongs to, as the portal names it (a short label
    # or code), when one login sees several (a pharmacy group, a customer with two sites). Blank is
    # no site: ``None``, the key every document had before sites.
    site: str | None = None

    def __post_init__(self) -> None:
        if self.site is not None:
            object.__setattr__(self, "site", self.site.strip() or None)

    @property
    def key(self) -> InvoiceKey:
        """The document's identity within its account (the ledger dedups on it)."""
        return (self.site, self.number)


class CollectedDocument:
    """An invoice or credit note with its PDF: bytes a collector holds (``content=``), or a
    download kept in a spooled file (``body=``), which nothing reads whole into memory."""

    __slots__ = ("body", "ref")

    def __init__(self, ref: InvoiceRef, content: bytes | None = None, *, body: DocumentBody | None = None) -> None:
        if (content is None) == (body is None):
            raise TypeError("a CollectedDocument needs its content or its body, not both")
        self.ref = ref
        self.body = body if body is not None else DocumentBody.of(content or b"")

    @property
    def sha256(self) -> str:
        return self.body.sha256

    @property
    def size(self) -> int:
        return self.body.size

    @property
    def content(self) -> bytes:
        """The whole PDF in memory: for small documents and tests (the store reads ``open()``)."""
        return self.body.read()

    def open(self) -> IO[bytes]:
        """The PDF from its first byte, to be read in chunks."""
        return self.body.open()

    def __repr__(self) -> str:
        return f"CollectedDocument(ref={self.ref!r}, size={self.size}, sha256={self.sha256[:12]}…)"


@dataclass(frozen=True)
class MissingDocument:
    """A listed document whose file could not be fetched: the others are still collected, and the
    run ends as ``download_failed`` so this one is tried again next time."""

    ref: InvoiceRef
    reason: str
