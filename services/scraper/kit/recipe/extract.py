"""Reading a recipe's list page from its HTML, without a browser (pure: unit-tested on saved pages).

The same reading the browser engine does inside the page (``engine._EXTRACT``): a value is the
text of an element (the DOM's ``textContent``) or one of its attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from services.scraper.kit.forms import find, parse_html, text_of
from services.scraper.kit.recipe.model import ListingRecipe, Value
from services.scraper.kit.recipe.rows import RawRow

FIELDS = ("number", "issue_date", "amount", "kind", "download")


@dataclass(frozen=True)
class ListRead:
    container: bool  # False: the list is not on the page
    rows: list[RawRow] = field(default_factory=list)
    next_href: str | None = None
    headers: dict[str, str | None] = field(default_factory=dict)
    count: str | None = None  # the text of the portal's own count of documents, if the recipe reads it


def read_value(root: LexborNode, value: Value) -> str | None:
    element = root.css_first(value.selector) if value.selector else root
    if element is None:
        return None
    return element.attributes.get(value.attribute) if value.attribute else text_of(element)


def row_fields(listing: ListingRecipe) -> dict[str, Value]:
    fields = {name: getattr(listing, name) for name in FIELDS}
    if listing.currency is not None:
        fields["currency"] = listing.currency
    return fields


def read_list(html: str | LexborHTMLParser, listing: ListingRecipe, headers: Mapping[str, Value]) -> ListRead:
    document = parse_html(html)
    container = find(document, listing.container)
    top = document.root
    if container is None:
        return ListRead(container=False)
    fields = row_fields(listing)
    rows = [{name: read_value(row, value) for name, value in fields.items()} for row in container.css(listing.row)]
    next_link = find(document, listing.next_page) if listing.next_page else None
    return ListRead(container=True, rows=rows,
                    next_href=next_link.attributes.get("href") if next_link is not None else None,
                    headers={name: read_value(top, value) if top is not None else None
                             for name, value in headers.items()},
                    count=read_value(top, listing.count) if top is not None and listing.count else None)
