"""HTML forms submitted as a browser submits them, without a browser (pure: unit-tested).

Logging in over HTTP (``kit.portal_http``) means sending what the browser would: the fields typed
in, and every other field of the form as the page set it (hidden CSRF tokens, pre-checked boxes,
selected options), to the form's action with its method, in the page's character encoding. The
rules are the HTML standard's "form submission algorithm" and "constructing the entry list", for
the controls portals use (``tests/integration/test_scraper_forms_chromium.py`` checks them against
what Chromium sends).

Not covered: controls the parser associates with a form they are not inside (``<form>`` misplaced
in a ``<table>``), and multipart bodies (a form's ``enctype`` is ignored: sent urlencoded).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from services.scraper.kit.errors import InterfaceChanged
from services.scraper.kit.reply import encoding_name

_LISTED = "input, select, textarea, button"
_NOT_SENT = frozenset({"submit", "button", "reset", "image"})
_CHECKABLE = frozenset({"checkbox", "radio"})
# Types whose value loses its line breaks (the standard's value sanitization algorithm).
_ONE_LINE = frozenset({"text", "search", "tel", "password", "url", "email"})
_ASCII_WHITESPACE = re.compile(r"[\t\n\f\r ]+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class FormSubmission:
    method: str  # "GET" or "POST"
    url: str  # for a GET, with the fields as its query
    fields: list[tuple[str, str]]
    charset: str = "utf-8"  # what the fields are encoded in (the page's, or the form's accept-charset)
    referrer: str = ""  # the page the form is on (a browser's Referer and Origin come from it)

    @property
    def body(self) -> str:
        """The fields urlencoded as a browser sends them (what a POST carries)."""
        return form_body(self.fields, self.charset)


def form_body(fields: Sequence[tuple[str, str]], charset: str = "utf-8") -> str:
    """``application/x-www-form-urlencoded`` in ``charset``; a character it cannot hold is sent as an
    HTML character reference (``&#960;``), as browsers do."""
    return urlencode(list(fields), encoding=charset, errors="xmlcharrefreplace")


def parse_html(html: str | LexborHTMLParser) -> LexborHTMLParser:
    """A page's parsed document; one already parsed is taken as it is (no second parse)."""
    return html if isinstance(html, LexborHTMLParser) else LexborHTMLParser(html)


def find(document: LexborHTMLParser, selector: str) -> LexborNode | None:
    """The first element ``selector`` matches; an invalid selector is the recipe's fault, said so."""
    try:
        return document.css_first(selector)
    except ValueError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from None


def text_of(node: LexborNode) -> str:
    """What the DOM's ``textContent`` gives: every descendant text, as is."""
    return node.text(deep=True, separator="", strip=False)


def _has(node: LexborNode, name: str) -> bool:
    return name in node.attributes


def _get(node: LexborNode, name: str) -> str | None:
    """An attribute's value ("" when present without one), None when absent."""
    if name not in node.attributes:
        return None
    return node.attributes[name] or ""


def _input_type(node: LexborNode) -> str:
    return (_get(node, "type") or "text").strip().lower()


def _is_submit_button(node: LexborNode) -> bool:
    if node.tag == "button":  # a missing or unknown type is "submit"
        return (_get(node, "type") or "").strip().lower() not in ("reset", "button")
    return node.tag == "input" and _input_type(node) in ("submit", "image")


def _form_owner(node: LexborNode, document: LexborHTMLParser) -> LexborNode | None:
    """The form a control belongs to: the one its ``form`` attribute names, else the one it is in."""
    form_id = _get(node, "form")
    if form_id is not None:
        named = next((n for n in document.css("[id]") if n.attributes.get("id") == form_id), None)
        return named if named is not None and named.tag == "form" else None
    current = node.parent
    while current is not None and current.tag != "form":
        current = current.parent
    return current


def _disabled(node: LexborNode) -> bool:
    """Disabled itself, or inside a disabled fieldset (except in that fieldset's first legend)."""
    if _has(node, "disabled"):
        return True
    child, parent = node, node.parent
    while parent is not None:
        if parent.tag == "fieldset" and _has(parent, "disabled"):
            legend = next((c for c in parent.iter() if c.tag == "legend"), None)
            if legend is None or legend.mem_id != child.mem_id:
                return True
        child, parent = parent, parent.parent
    return False


def _option_disabled(option: LexborNode) -> bool:
    parent = option.parent
    return _has(option, "disabled") or (parent is not None and parent.tag == "optgroup" and _has(parent, "disabled"))


def _option_value(option: LexborNode) -> str:
    value = _get(option, "value")
    return value if value is not None else _ASCII_WHITESPACE.sub(" ", text_of(option)).strip("\t\n\f\r ")


def _chosen_options(select: LexborNode) -> list[LexborNode]:
    options = select.css("option")
    chosen = [o for o in options if _has(o, "selected")]
    if _has(select, "multiple"):
        return chosen
    if chosen:
        return chosen[-1:]  # one selected at most: the parser keeps the last
    size = (_get(select, "size") or "").strip()
    if size.isdigit() and int(size) > 1:
        return []  # a list box may show its options with none selected
    return [o for o in options if not _option_disabled(o)][:1]  # a drop-down shows its first


def _entries(control: LexborNode, submitter: LexborNode | None, charset: str) -> list[tuple[str, str]]:
    if _disabled(control):
        return []
    name = _get(control, "name") or ""
    is_submitter = submitter is not None and control.mem_id == submitter.mem_id
    if control.tag == "input" and _input_type(control) == "image":
        if not is_submitter:
            return []
        prefix = f"{name}." if name else ""
        return [(f"{prefix}x", "0"), (f"{prefix}y", "0")]
    if not name:
        return []
    if control.tag == "button" or (control.tag == "input" and _input_type(control) in _NOT_SENT):
        if not (is_submitter and _is_submit_button(control)):
            return []
        value = _get(control, "value")
        # An <input type=submit> without a value sends the label it shows (Chromium's: "Submit").
        return [(name, value if value is not None else ("" if control.tag == "button" else "Submit"))]
    if control.tag == "select":
        return [(name, _option_value(o)) for o in _chosen_options(control) if not _option_disabled(o)]
    if control.tag == "textarea":
        return [(name, text_of(control))]
    kind = _input_type(control)
    value = _get(control, "value")
    if kind in _CHECKABLE:
        return [(name, "on" if value is None else value)] if _has(control, "checked") else []
    if kind == "file":
        return [(name, "")]  # no file chosen: an empty file name
    if kind == "hidden" and name.lower() == "_charset_":
        return [(name, charset)]
    value = value or ""
    if kind in _ONE_LINE:
        value = value.replace("\r", "").replace("\n", "")
    return [(name, value.strip() if kind in ("url", "email") else value)]


def _crlf(text: str) -> str:
    return _LINE_BREAK.sub("\r\n", text)


def _form_charset(form: LexborNode, page_charset: str) -> str:
    for label in (_get(form, "accept-charset") or "").split():
        found = encoding_name(label)
        if found is not None:
            return found
    return page_charset


def submission(html: str, page_url: str, submitter: str, fills: Mapping[str, str], *,
               charset: str = "utf-8") -> FormSubmission:
    """What a browser sends when ``submitter`` (selector of the button clicked, or of a field of the
    form, where Enter is pressed) submits its form, after each value of ``fills`` (selector -> text)
    was typed into the field its selector finds. ``charset``: the page's (``HttpReply.charset``).

    Enter in a field submits as the form's first submit button would (the HTML standard's implicit
    submission): a form submitted by a script, with no button, is :func:`postback`."""
    document = parse_html(html)
    clicked = find(document, submitter)
    if clicked is None:
        raise InterfaceChanged(f"element {submitter!r} not found at {page_url}")
    form = _form_owner(clicked, document)
    if form is None:
        raise InterfaceChanged(f"{submitter!r} is not inside a form at {page_url}")
    controls = _controls(document, form)
    # A button clicked submits with itself; Enter in a field "clicks" the form's first submit button.
    button: LexborNode | None = clicked if _is_submit_button(clicked) else next(
        (c for c in controls if _is_submit_button(c)), None)
    if button is not None and _disabled(button) and button.mem_id != clicked.mem_id:
        button = None
    return _submitted(document, form, controls, button, page_url, fills, {}, charset)


def postback(html: str, page_url: str, form_selector: str, fields: Mapping[str, str],
             fills: Mapping[str, str] | None = None, *, charset: str = "utf-8") -> FormSubmission:
    """What a page's script sends when it sets ``fields`` (name -> value: a hidden field's value is
    replaced, a name the form lacks is added) and submits the form ``form_selector`` with no button
    (``form.submit()``: ASP.NET's ``__doPostBack``), after ``fills`` (selector -> text) were typed."""
    document = parse_html(html)
    form = find(document, form_selector)
    if form is None or form.tag != "form":
        raise InterfaceChanged(f"form {form_selector!r} not found at {page_url}")
    return _submitted(document, form, _controls(document, form), None, page_url, fills or {}, fields, charset)


def _controls(document: LexborHTMLParser, form: LexborNode) -> list[LexborNode]:
    return [c for c in document.css(_LISTED) if (owner := _form_owner(c, document)) is not None
            and owner.mem_id == form.mem_id]


def _submitted(document: LexborHTMLParser, form: LexborNode, controls: list[LexborNode], button: LexborNode | None,
               page_url: str, fills: Mapping[str, str], by_name: Mapping[str, str], charset: str) -> FormSubmission:
    typed: dict[int, str] = {}
    for selector, value in fills.items():
        field = find(document, selector)
        if field is None:
            raise InterfaceChanged(f"element {selector!r} not found at {page_url}")
        if not any(c.mem_id == field.mem_id for c in controls):
            raise InterfaceChanged(f"{selector!r} is not in the form submitted at {page_url}")
        if not field.attributes.get("name"):
            raise InterfaceChanged(f"{selector!r} has no name: a browser would not send it")
        typed[field.mem_id] = value
    form_charset = _form_charset(form, encoding_name(charset) or "utf-8")
    if form_charset.startswith("utf-16"):  # a UTF-16 page sends its forms in UTF-8, as browsers do
        form_charset = "utf-8"
    # A radio button checked unchecks the others of its group: the parser leaves the last one.
    radios = [c for c in controls if c.tag == "input" and _input_type(c) == "radio" and _has(c, "checked")]
    last_checked = {_get(c, "name"): c.mem_id for c in radios}
    unchecked = {c.mem_id for c in radios if last_checked[_get(c, "name")] != c.mem_id}
    fields: list[tuple[str, str]] = []
    for control in controls:
        if control.mem_id in unchecked:
            continue
        if control.mem_id in typed and not _disabled(control):
            fields.append((str(control.attributes["name"]), typed[control.mem_id]))
        else:
            fields += _entries(control, button, form_charset)
    if by_name:
        # A script sets fields by name: the form's own field of that name, else one more field.
        fields = [(name, by_name.get(name, value)) for name, value in fields]
        fields += [(name, value) for name, value in by_name.items() if all(name != n for n, _ in fields)]
    fields = [(_crlf(name), _crlf(value)) for name, value in fields]
    # The button's formmethod and formaction win over the form's (even empty: then GET, the page).
    method = _get(button, "formmethod") if button is not None else None
    if method is None:
        method = _get(form, "method") or "get"
    action = _get(button, "formaction") if button is not None else None
    if action is None:
        action = _get(form, "action") or ""
    action = action.strip(" \t\n\f\r") or page_url
    url = urljoin(page_url, action)
    referrer = urlunsplit(urlsplit(page_url)._replace(fragment=""))
    if method.strip().upper() != "POST":
        parts = urlsplit(url)
        query = form_body(fields, form_charset)
        return FormSubmission("GET", urlunsplit(parts._replace(query=query, fragment="")), fields, form_charset,
                              referrer)
    return FormSubmission("POST", url, fields, form_charset, referrer)
