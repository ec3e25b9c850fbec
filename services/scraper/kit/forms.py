"""HTML forms submitted as a browser submits them, without a browser (pure: unit-tested).

Logging in over HTTP (``kit.portal_http``) means sending what the browser would: the fields typed
in, and every other field of the form as the page set it (hidden CSRF tokens, pre-checked boxes,
selected options), to the form's action with its method. The rules are the HTML standard's
"constructing the entry list", for the controls portals use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from services.scraper.kit.errors import InterfaceChanged

_NOT_SENT = frozenset({"submit", "button", "reset", "image", "file"})
_CHECKABLE = frozenset({"checkbox", "radio"})


@dataclass(frozen=True)
class FormSubmission:
    method: str  # "GET" or "POST"
    url: str  # for a GET, with the fields as its query
    fields: list[tuple[str, str]]


def parse_html(html: str) -> LexborHTMLParser:
    return LexborHTMLParser(html)


def find(document: LexborHTMLParser, selector: str) -> LexborNode | None:
    """The first element ``selector`` matches; an invalid selector is the recipe's fault, said so."""
    try:
        return document.css_first(selector)
    except ValueError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from None


def text_of(node: LexborNode) -> str:
    """What the DOM's ``textContent`` gives: every descendant text, as is."""
    return node.text(deep=True, separator="", strip=False)


def _form_of(node: LexborNode) -> LexborNode | None:
    current: LexborNode | None = node
    while current is not None and current.tag != "form":
        current = current.parent
    return current


def _attr(node: LexborNode, name: str) -> str | None:
    value = node.attributes.get(name)
    return value if value is not None else (name if name in node.attributes else None)


def _entries(control: LexborNode, submitter: LexborNode) -> list[tuple[str, str]]:
    name = control.attributes.get("name")
    if not name or _attr(control, "disabled") is not None:
        return []
    if control.tag == "select":
        options = control.css("option")
        chosen = [o for o in options if _attr(o, "selected") is not None]
        if not chosen and options and _attr(control, "multiple") is None:
            chosen = options[:1]
        return [(name, o.attributes.get("value") or text_of(o).strip()) for o in chosen]
    if control.tag == "textarea":
        return [(name, text_of(control))]
    kind = (control.attributes.get("type") or ("submit" if control.tag == "button" else "text")).lower()
    value = control.attributes.get("value") or ""
    if control.mem_id == submitter.mem_id and kind in ("submit", "image"):
        return [(f"{name}.x", "0"), (f"{name}.y", "0")] if kind == "image" else [(name, value)]
    if kind in _NOT_SENT:
        return []
    if kind in _CHECKABLE:
        return [(name, value or "on")] if _attr(control, "checked") is not None else []
    return [(name, value)]


def submission(html: str, page_url: str, submitter: str, fills: Mapping[str, str]) -> FormSubmission:
    """What a browser sends when ``submitter`` (selector of the button clicked, or of any field of
    the form) submits its form, after each value of ``fills`` (selector -> text) was typed into the
    field its selector finds."""
    document = parse_html(html)
    clicked = find(document, submitter)
    if clicked is None:
        raise InterfaceChanged(f"element {submitter!r} not found at {page_url}")
    form = _form_of(clicked)
    if form is None:
        raise InterfaceChanged(f"{submitter!r} is not inside a form at {page_url}")
    typed: dict[int, str] = {}
    for selector, value in fills.items():
        field = find(document, selector)
        if field is None:
            raise InterfaceChanged(f"element {selector!r} not found at {page_url}")
        its_form = _form_of(field)
        if its_form is None or its_form.mem_id != form.mem_id:
            raise InterfaceChanged(f"{selector!r} is not in the form {submitter!r} submits at {page_url}")
        if not field.attributes.get("name"):
            raise InterfaceChanged(f"{selector!r} has no name: a browser would not send it")
        typed[field.mem_id] = value
    fields: list[tuple[str, str]] = []
    for control in form.css("input, select, textarea, button"):
        if control.mem_id in typed and control.attributes.get("name"):
            fields.append((str(control.attributes["name"]), typed[control.mem_id]))
        else:
            fields += _entries(control, clicked)
    method = (clicked.attributes.get("formmethod") or form.attributes.get("method") or "get").upper()
    action = clicked.attributes.get("formaction") or form.attributes.get("action") or page_url
    url = urljoin(page_url, action)
    if method != "POST":
        parts = urlsplit(url)
        return FormSubmission("GET", urlunsplit(parts._replace(query=urlencode(fields), fragment="")), fields)
    return FormSubmission("POST", url, fields)
