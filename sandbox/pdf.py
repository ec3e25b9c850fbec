"""One small, real, byte-stable PDF per sandbox document."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from fpdf import FPDF

from sandbox.data import SUPPLIER, SandboxDocument

# A fixed creation date keeps the bytes (and so the sha256 the ledger dedups on) stable.
_CREATION_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def _french_amount(doc: SandboxDocument) -> str:
    whole, cents = f"{doc.amount:.2f}".split(".")
    # The core PDF fonts are latin-1: plain spaces, and the currency code instead of "€".
    return f"{int(whole):,}".replace(",", " ") + f",{cents} {doc.currency}"


@lru_cache(maxsize=8192)
def pdf_for(doc: SandboxDocument) -> bytes:
    pdf = FPDF()
    pdf.set_creation_date(_CREATION_DATE)
    pdf.set_title(f"{doc.number} - {SUPPLIER}")
    pdf.set_producer("sandbox")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(text=SUPPLIER, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(text="FACTURE" if doc.kind == "invoice" else "AVOIR", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    for label, value in (
        ("Pharmacie", doc.login),
        ("Numéro", doc.number),
        ("Date", doc.issue_date.strftime("%d/%m/%Y")),
        ("Montant TTC", _french_amount(doc)),
    ):
        pdf.cell(text=f"{label} : {value}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
