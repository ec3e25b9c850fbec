"""One small, real, byte-stable PDF per sandbox document, a Factur-X one for some portal styles.

Which portal style serves what (each style stands for a different supplier):

* ``classic``: every document is a Factur-X PDF, profile EN 16931 (lines with CIP13 codes);
* ``legacy``: Factur-X BASIC for invoices, BASIC WL (no lines) for credit notes, as an old ERP would;
* ``twostep``: a ZUGFeRD 2.0 BASIC file (attachment ``zugferd-invoice.xml``) for about half the
  documents, chosen by the document's number, and plain PDFs for the others;
* ``spa``, and any caller that names no style: plain PDFs, byte-identical to what the sandbox served
  before it had e-invoices.

The visible page of a Factur-X PDF is the plain PDF's page. Its XML agrees with the portal's list:
same number, issue date, kind (380 invoice, 381 credit note) and amount (BT-112 = the listed amount,
nothing prepaid), with lines derived deterministically from the document that sum to it exactly
(:func:`invoice_spec_for`). A credit note refers (BT-25) to the invoice of the same pharmacy, year and
sequence number (AV2026-x-0003 -> FA2026-x-0003): plausible, though the portal does not link the two
and that invoice may be outside the listed window.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Final

from fpdf import FPDF

from sandbox.data import SUPPLIER, SandboxDocument
from sandbox.einvoice import (
    ATTACHMENT_NAMES,
    FRENCH_PHARMACY_RATES,
    SELLER,
    Flavour,
    InvoiceSpec,
    Line,
    Party,
    Profile,
    cents,
    cip13_from,
    facturx_pdf,
    siren_from,
    vat_id_of,
)

# A fixed creation date keeps the bytes (and so the sha256 the ledger dedups on) stable.
_CREATION_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def _french_amount(doc: SandboxDocument) -> str:
    whole, cents = f"{doc.amount:.2f}".split(".")
    # The core PDF fonts are latin-1: plain spaces, and the currency code instead of "€".
    return f"{int(whole):,}".replace(",", " ") + f",{cents} {doc.currency}"


# Enough for every document of a whole pipeline benchmark (`--prepare`), ~10 kB each.
@lru_cache(maxsize=32768)
def pdf_for(doc: SandboxDocument, style: str | None = None) -> bytes:
    """The PDF ``style``'s portal serves for ``doc`` (module docstring). Cached: the Factur-X ones
    cost a few milliseconds each, and benchmarks download the same documents over and over."""
    einvoice = einvoice_for(doc, style)
    if einvoice is None:
        return _visible_pdf(doc)
    flavour, profile = einvoice
    return facturx_pdf(invoice_spec_for(doc), profile, _visible_pdf(doc), ATTACHMENT_NAMES[flavour],
                       flavour=flavour)


def einvoice_for(doc: SandboxDocument, style: str | None) -> tuple[Flavour, Profile] | None:
    """Which e-invoice ``style`` embeds in ``doc``'s PDF, or None for a plain PDF."""
    if style == "classic":
        return "factur-x", "en16931"
    if style == "legacy":
        return "factur-x", "basic" if doc.kind == "invoice" else "basicwl"
    if style == "twostep" and _digest(doc)[0] % 2 == 0:
        return "zugferd", "basic"
    return None


def _visible_pdf(doc: SandboxDocument) -> bytes:
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


# --- The e-invoice behind a document -------------------------------------------------------------

# (name, VAT rate) of what a wholesaler delivers to a pharmacy, per rate.
_PRODUCTS: Final[dict[Decimal, tuple[str, ...]]] = {
    Decimal("2.1"): ("Paracétamol 1 g cpr B/8", "Amoxicilline 500 mg gél B/12", "Lévothyroxine 75 µg cpr B/30",
                     "Metformine 850 mg cpr B/30"),
    Decimal("5.5"): ("Lait infantile 2e âge 800 g", "Protections urinaires B/14", "Sérum physiologique B/40"),
    Decimal("10"): ("Paracétamol 500 mg cpr B/16 (non remb.)", "Bas de contention classe 2", "Autotest antigénique"),
    Decimal("20"): ("Crème solaire SPF 50 200 ml", "Shampooing doux 250 ml", "Brosse à dents souple",
                    "Baume lèvres 4 g"),
}
_ONE = Decimal(1)
_HUNDRED = Decimal(100)


def _digest(doc: SandboxDocument) -> bytes:
    # Two sites of a legacy login reuse numbers: the amount and date keep their documents apart.
    key = f"{doc.login}|{doc.number}|{doc.issue_date.isoformat()}|{doc.kind}|{doc.amount}"
    return hashlib.sha256(key.encode("utf-8")).digest()


def _grand_total(lines: list[Line]) -> Decimal:
    bases: dict[Decimal, Decimal] = {}
    for line in lines:
        bases[line.vat_rate] = bases.get(line.vat_rate, Decimal(0)) + line.net_amount
    return sum((basis + cents(basis * rate / _HUNDRED) for rate, basis in bases.items()), Decimal("0.00"))


def _closing_basis(rest: Decimal, rate: Decimal) -> Decimal | None:
    """A net amount B with B + VAT(B) == rest exactly, if one exists: VAT rounding skips some totals."""
    guess = (rest / (_ONE + rate / _HUNDRED)).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
    for step in (0, 1, -1, 2, -2):
        basis = guess + Decimal(step) / _HUNDRED
        if basis > 0 and basis + cents(basis * rate / _HUNDRED) == rest:
            return basis
    return None


def _lines_for(doc: SandboxDocument) -> tuple[Line, ...]:
    """Lines whose BT-112 is exactly ``doc.amount``: a few lines at random rates take up to about 60 % of
    it, then one line alone at its rate closes the total. When no net amount closes it at that rate
    (per-rate VAT rounding skips some totals), the first line's price moves down by a cent and we try
    again, so the search always ends (at worst with the closing line alone)."""
    digest = _digest(doc)
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    rates = list(FRENCH_PHARMACY_RATES)
    closing_rate = rng.choice(rates)
    others = [rate for rate in rates if rate != closing_rate]
    count = rng.randint(0, 5) if doc.amount >= 20 else 0
    share = doc.amount * Decimal(rng.randint(20, 60)) / _HUNDRED / max(count, 1)
    drafts: list[Line] = []
    for n in range(count):
        rate = rng.choice(others)
        quantity = Decimal(rng.randint(1, 6))
        price = (share / quantity / (_ONE + rate / _HUNDRED)).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
        if price <= 0:
            continue
        drafts.append(Line(id=str(n + 1), product_code=cip13_from(rng.randrange(10**7)),
                           name=rng.choice(_PRODUCTS[rate]), quantity=quantity, net_price=price, vat_rate=rate))
    closing_name = rng.choice(_PRODUCTS[closing_rate])
    closing_code = cip13_from(rng.randrange(10**7))
    basis = None
    while drafts and basis is None:
        basis = _closing_basis(doc.amount - _grand_total(drafts), closing_rate)
        if basis is None:
            first = drafts[0]
            if first.net_price <= Decimal("0.01"):
                drafts.pop(0)
            else:
                drafts[0] = replace(first, net_price=first.net_price - Decimal("0.01"))
    # Alone, the closing line may hit a skipped total at every rate: then a one-cent line at 2.1 %
    # (0.01 with VAT) moves the rest, and the closing line takes another rate.
    cent = 0
    while basis is None:
        drafts = [] if cent == 0 else [
            Line(id="1", product_code=closing_code, name=_PRODUCTS[Decimal("2.1")][0], quantity=_ONE,
                 net_price=Decimal(cent) / _HUNDRED, vat_rate=Decimal("2.1"))]
        for rate in [closing_rate, *others] if cent == 0 else [r for r in rates if r != Decimal("2.1")]:
            basis = _closing_basis(doc.amount - _grand_total(drafts), rate)
            if basis is not None:
                closing_rate, closing_name = rate, _PRODUCTS[rate][0]
                break
        cent += 1
    closing = Line(id="", product_code=closing_code, name=closing_name, quantity=_ONE, net_price=basis,
                   vat_rate=closing_rate)
    # Line ids in order, whatever was dropped.
    return tuple(replace(line, id=str(i + 1)) for i, line in enumerate([*drafts, closing]))


def _buyer_for(login: str) -> Party:
    seed = int.from_bytes(hashlib.sha256(login.encode("utf-8")).digest()[:8], "big")
    siren = siren_from(seed)
    return Party(name=f"Pharmacie {login}", siren=siren, vat_id=vat_id_of(siren), street="1 place de la Mairie",
                 postcode=f"{10000 + seed % 85000:05d}", city="Sandbox-sur-Loire")


@lru_cache(maxsize=8192)
def invoice_spec_for(doc: SandboxDocument) -> InvoiceSpec:
    """The e-invoice of ``doc``: agrees with the portal's list (module docstring)."""
    preceding = None
    if doc.kind == "credit_note" and doc.number.startswith("AV"):
        preceding = "FA" + doc.number[2:]
    return InvoiceSpec(
        number=doc.number,
        type_code="380" if doc.kind == "invoice" else "381",
        issue_date=doc.issue_date,
        due_date=doc.issue_date + timedelta(days=30),
        currency=doc.currency,
        buyer_reference=doc.login,
        preceding_invoice=preceding,
        seller=Party(name=SUPPLIER, siren=SELLER.siren, siret=SELLER.siret, vat_id=SELLER.vat_id,
                     street=SELLER.street, postcode=SELLER.postcode, city=SELLER.city),
        buyer=_buyer_for(doc.login),
        lines=_lines_for(doc),
    )
