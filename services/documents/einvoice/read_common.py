"""What ``read_cii`` and ``read_ubl`` hand to ``mapping``: the business terms as written (strings).

The readers are hand-written rather than factur-x's ``parse_ubl_cii_xml`` for speed: factur-x
compiles and evaluates ~280 XPath strings per document (every EN 16931 term, most of which the
model does not hold), which was ~75 % of extraction CPU. Here each path the model needs is an
``etree.XPath`` compiled once at import, and the per-line / per-rate paths are relative ones
evaluated on each line or tax element.

Reading rules, the ones factur-x applied (so ``mapping`` keeps its semantics):

- a term is the stripped text of the first element on its path whose text is not blank (a term
  written twice gives the first value; a blank element counts as absent);
- an attribute (unit code, scheme id) is the first one found on its path, as written;
- a date is parsed with the syntax's format (CII ``102``: ``YYYYMMDD``, UBL ``YYYY-MM-DD``) and a
  malformed one raises ``ValueError``: the document is reported unreadable, as before;
- amounts stay strings here; ``mapping`` makes them ``Decimal`` (or a ``bad_number`` warning).

Where factur-x failed or misread on a malformed document, the readers do not: a blank date is
absent (factur-x raised), dates the model does not hold are not parsed at all, a missing BT-5 is
a missing required term (``einvoice_incomplete``, was a ``KeyError``), and BT-5 or BT-3 written
twice gives the first (factur-x put the list into its BT-110 XPath, or stringified it for BT-3).
On every sandbox document and factur-x-generated one the result is the same as factur-x's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from lxml import etree


@dataclass(slots=True)
class RawParty:  # BG-4 seller / BG-7 buyer
    name: str | None = None  # BT-27 / BT-44
    legal_id: str | None = None  # BT-30 / BT-47 (legal registration id)
    legal_scheme: str | None = None  # its scheme id, e.g. "0002" (SIREN)
    # BT-29 / BT-46 identifiers by scheme id (None: no scheme), in document order; a scheme written
    # twice keeps its first position and its last value (factur-x's dictionary did the same).
    identifiers: dict[str | None, str] = field(default_factory=dict)
    vat_id: str | None = None  # BT-31 / BT-48


@dataclass(slots=True)
class RawVat:  # BG-23
    basis: str | None  # BT-116
    amount: str | None  # BT-117
    category: str | None  # BT-118
    rate: str | None  # BT-119


@dataclass(slots=True)
class RawLine:  # BG-25
    id: str | None  # BT-126
    standard_id: str | None  # BT-157
    standard_scheme: str | None  # BT-157-1
    seller_id: str | None  # BT-155
    name: str | None  # BT-153
    quantity: str | None  # BT-129
    unit: str | None  # BT-130
    net_price: str | None  # BT-146
    line_total: str | None  # BT-131
    vat_rate: str | None  # BT-152


@dataclass(slots=True)
class RawInvoice:
    number: str | None  # BT-1
    type_code: str | None  # BT-3
    issue_date: date | None  # BT-2
    currency: str | None  # BT-5
    due_date: date | None  # BT-9
    buyer_reference: str | None  # BT-10
    preceding_invoice: str | None  # BT-25 (first BG-3)
    seller: RawParty
    buyer: RawParty
    line_total: str | None  # BT-106
    tax_basis: str | None  # BT-109
    tax_total: str | None  # BT-110 (in the invoice currency)
    grand_total: str | None  # BT-112
    prepaid: str | None  # BT-113
    rounding: str | None  # BT-114
    due: str | None  # BT-115
    vat: list[RawVat]
    lines: list[RawLine]


def raw_invoice(h: dict[str, str], *, date_format: str, seller: RawParty, buyer: RawParty, tax_total: str | None,
                rounding: str | None, vat: list[RawVat], lines: list[RawLine]) -> RawInvoice:
    """A ``RawInvoice`` from the header terms ``h`` (``TermGroup.read``, same names in both syntaxes)
    and what each syntax reads its own way."""
    return RawInvoice(
        number=h.get("number"),
        type_code=h.get("type_code"),
        issue_date=parse_date(h.get("issue_date"), date_format, "BT-2"),
        currency=h.get("currency"),
        due_date=parse_date(h.get("due_date"), date_format, "BT-9"),
        buyer_reference=h.get("buyer_reference"),
        preceding_invoice=h.get("preceding_invoice"),
        seller=seller,
        buyer=buyer,
        line_total=h.get("line_total"),
        tax_basis=h.get("tax_basis"),
        tax_total=tax_total,
        grand_total=h.get("grand_total"),
        prepaid=h.get("prepaid"),
        rounding=rounding,
        due=h.get("due"),
        vat=vat,
        lines=lines,
    )


def xpath(path: str, namespaces: dict[str, str]) -> etree.XPath:
    """A path compiled once (at import, by the reader modules)."""
    return etree.XPath(path, namespaces=namespaces, regexp=False, smart_strings=False)


def _clark(step: str, namespaces: dict[str, str]) -> str:
    """``{namespace}local`` of a path step such as ``ram:ID[@schemeID='VA']``."""
    prefix, _, local = step.split("[", 1)[0].partition(":")
    return f"{{{namespaces[prefix]}}}{local}"


class TermGroup:
    """Several terms under one element, read with one XPath (the union of their paths).

    One evaluation per line instead of one per term: a 200-line invoice has ten terms a line, and
    each XPath call costs about as much as the union of them all. The union's result is in
    document order, so each term still gets the first non-blank text on its own path. An element
    is told apart by its tag, or where two paths end in the same tag (UBL's ``cbc:ID``), by its
    parent's tag; a one-step path's parent is the context element itself.
    ``attributes`` name terms read from an attribute of another term's elements (the unit code
    of the quantity): the first such attribute, as written.
    """

    def __init__(
        self,
        namespaces: dict[str, str],
        terms: dict[str, str],
        attributes: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self._xpath = xpath(" | ".join(terms.values()), namespaces)
        ends: dict[str, list[tuple[str | None, str]]] = {}
        for term, path in terms.items():
            steps = path.split("/")
            parent = _clark(steps[-2], namespaces) if len(steps) > 1 else None
            ends.setdefault(_clark(steps[-1], namespaces), []).append((parent, term))
        self._by_tag: dict[str, str] = {}
        self._by_parent: dict[tuple[str | None, str], str] = {}
        for tag, found in ends.items():
            if len(found) == 1:
                self._by_tag[tag] = found[0][1]
            else:
                if len({parent for parent, _ in found}) != len(found):
                    raise ValueError(f"paths ending in {tag} are told apart only by their parent")
                for parent, term in found:
                    self._by_parent[(parent, tag)] = term
        self._attributes: dict[str, list[tuple[str, str]]] = {}
        for name, (term, attribute) in (attributes or {}).items():
            self._attributes.setdefault(term, []).append((name, attribute))

    def read(self, node: etree._Element) -> dict[str, str]:
        """Each term found under ``node``: its text stripped (an attribute may be ``""``)."""
        out: dict[str, str] = {}
        by_tag, attributes = self._by_tag, self._attributes
        for element in self._xpath(node):
            tag = element.tag
            term = by_tag.get(tag)
            if term is None:
                parent = element.getparent()
                key = (parent.tag if parent is not None and parent is not node else None, tag)
                term = self._by_parent.get(key) or self._by_parent[(None, tag)]
            if term not in out:
                text = element.text
                if text:
                    text = text.strip()
                    if text:
                        out[term] = str(text)
            for name, attribute in attributes.get(term, ()):
                if name not in out:
                    value = element.get(attribute)
                    if value is not None:
                        out[name] = str(value).strip()
        return out


@dataclass(frozen=True, slots=True)
class PartyPaths:
    """A syntax's paths for a party's terms (BG-4 / BG-7), relative to the party element.

    Each is compiled once at import by the reader module (``xpath``); ``read_party`` only
    evaluates them.
    """

    name: etree.XPath  # BT-27 / BT-44
    legal_id: etree.XPath  # BT-30 / BT-47
    legal_scheme: etree.XPath  # its @schemeID
    # BT-29 / BT-46: evaluated in this order and their results concatenated (CII: GlobalID, then ID).
    identifiers: tuple[etree.XPath, ...]
    vat_id: etree.XPath  # BT-31 / BT-48


def read_party(found: list[etree._Element], paths: PartyPaths) -> RawParty:
    """The terms of the first party element in ``found`` (an empty ``RawParty`` if none)."""
    if not found:
        return RawParty()
    node = found[0]
    ids: list[etree._Element] = []
    for path in paths.identifiers:
        ids += path(node)
    return RawParty(
        name=first_text(paths.name(node)),
        legal_id=first_text(paths.legal_id(node)),
        legal_scheme=first_attribute(paths.legal_scheme(node)),
        identifiers=identifiers(ids),
        vat_id=first_text(paths.vat_id(node)),
    )


def read_vat(node: etree._Element, terms: TermGroup) -> RawVat:
    """A VAT breakdown (BG-23) from its element, ``terms`` naming basis, amount, category and rate."""
    t = terms.read(node)
    return RawVat(basis=t.get("basis"), amount=t.get("amount"), category=t.get("category"), rate=t.get("rate"))


def read_line(node: etree._Element, terms: TermGroup) -> RawLine:
    """A line (BG-25) from its element, ``terms`` naming ``RawLine``'s fields (an empty scheme or
    unit attribute counts as absent)."""
    t = terms.read(node)
    get = t.get
    return RawLine(
        id=get("id"),
        standard_id=get("standard_id"),
        standard_scheme=get("standard_scheme") or None,
        seller_id=get("seller_id"),
        name=get("name"),
        quantity=get("quantity"),
        unit=get("unit") or None,
        net_price=get("net_price"),
        line_total=get("line_total"),
        vat_rate=get("vat_rate"),
    )


def first_text(found: Any) -> str | None:
    """The stripped text of the first element in ``found`` with non-blank text; None if none."""
    for node in found:
        text = node.text
        if text:
            text = text.strip()
            if text:
                return str(text)
    return None


def first_attribute(found: Any) -> str | None:
    """The first attribute value in ``found`` (an XPath result of ``.../@name``), stripped; None if none."""
    for value in found:
        text = str(value).strip()
        return text or None
    return None


def identifiers(found: Any) -> dict[str | None, str]:
    """Identifier elements by their ``schemeID`` (None without one), for those with text."""
    out: dict[str | None, str] = {}
    for node in found:
        text = node.text
        if text:
            out[node.get("schemeID") or None] = str(text)
    return out


def parse_date(text: str | None, fmt: str, term: str) -> date | None:
    """``text`` in ``fmt`` (``%Y%m%d`` or ``%Y-%m-%d``); ``ValueError`` naming ``term`` if it is not a date."""
    if text is None:
        return None
    try:
        if fmt == "%Y%m%d":
            digits = text if len(text) == 8 else ""
        else:  # %Y-%m-%d
            digits = text[:4] + text[5:7] + text[8:] if len(text) == 10 and text[4] == text[7] == "-" else ""
        if digits.isascii() and digits.isdigit():  # the usual spelling, without strptime's cost
            return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        return datetime.strptime(text, fmt).date()  # the odd spellings strptime also accepts
    except ValueError as exc:
        raise ValueError(f"{term}: {text!r} is not a date ({fmt}): {exc}") from None
