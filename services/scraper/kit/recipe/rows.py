"""Pure conversion of the raw strings a recipe reads from a list page into invoice references."""

from __future__ import annotations

from urllib.parse import urljoin

from services.scraper.kit.errors import InterfaceChanged
from services.scraper.kit.invoice import InvoiceRef
from services.scraper.kit.recipe.model import ListingRecipe
from services.scraper.kit.values import parse_amount, parse_date, parse_kind

REQUIRED = ("number", "issue_date", "amount", "kind", "download")
_CURRENCY_SIGNS = {"€": "EUR", "$": "USD", "£": "GBP", "CHF": "CHF"}

RawRow = dict[str, str | None]


def _currency(raw: str | None, default: str) -> str:
    if not raw or not raw.strip():
        return default
    text = raw.strip()
    for sign, code in _CURRENCY_SIGNS.items():
        if sign in text:
            return code
    letters = "".join(ch for ch in text if ch.isalpha()).upper()
    return letters[:3] if len(letters) >= 3 else default


def ref_from_row(row: RawRow, listing: ListingRecipe, page_url: str, site: str | None = None) -> InvoiceRef:
    missing = [name for name in REQUIRED if not (row.get(name) or "").strip()]
    if missing:
        raise InterfaceChanged(f"document row without {', '.join(missing)}")
    amount, _negative = parse_amount(row["amount"] or "", listing.decimal_separator)
    currency_text = row.get("currency") if listing.currency else row.get("amount")
    return InvoiceRef(
        number=(row["number"] or "").strip(),
        issue_date=parse_date(row["issue_date"] or "", listing.date_format),
        # The kind says owed or refunded: the amount is kept positive whatever sign the portal shows.
        amount=amount,
        currency=_currency(currency_text, listing.default_currency),
        kind=parse_kind(row["kind"] or "", listing.kinds),
        download_url=urljoin(page_url, (row["download"] or "").strip()),
        site=site,
    )


def refs_from_rows(rows: list[RawRow], listing: ListingRecipe, page_url: str,
                   site: str | None = None) -> list[InvoiceRef]:
    """The rows of one list page; ``site``: the site (option of ``each_option``) they were listed under."""
    return [ref_from_row(row, listing, page_url, site) for row in rows]
