"""Reading pages without a browser: the visible text and a few telltale elements of an HTML page."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser

_INVISIBLE = frozenset({"script", "style", "template", "noscript", "head"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                   "track", "wbr"})
_LOGIN_HINT = re.compile(r"log-?in|sign-?in|connexion|auth|identifi", re.I)
_SPACES = re.compile(r"\s+")


@dataclass
class PageFacts:
    text: str = ""  # visible text, lower-case, accents removed, spaces collapsed
    inputs: list[dict[str, str]] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    # Every id and class on the page, lower-case: widgets are recognised by them (captcha boxes).
    markers: set[str] = field(default_factory=set)
    iframe_sources: list[str] = field(default_factory=list)


class _FactsParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = PageFacts()
        self._hidden_depth = 0
        self._chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: (value or "") for name, value in attrs}
        if tag in _INVISIBLE:
            self._hidden_depth += 1
            return
        if "id" in attributes:
            self.facts.markers.add(attributes["id"].lower())
        self.facts.markers.update(c.lower() for c in attributes.get("class", "").split())
        if tag == "input":
            self.facts.inputs.append(attributes)
        elif tag == "form":
            self.facts.forms.append(attributes)
        elif tag == "iframe":
            self.facts.iframe_sources.append(attributes.get("src", ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _INVISIBLE:
            self.handle_starttag(tag, attrs)
            if tag not in _VOID:
                self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE and self._hidden_depth:
            self._hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self._chunks.append(data)


def fold(text: str) -> str:
    """Lower-case, without accents, single spaces: ``Mot de passe  expiré`` -> ``mot de passe expire``."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", bare).strip().lower().replace("\u2019", "'")


def page_facts(html: str) -> PageFacts:
    parser = _FactsParser()
    parser.feed(html)
    parser.close()
    parser.facts.text = fold(" ".join(parser._chunks))
    return parser.facts


def looks_like_login_page(facts: PageFacts) -> bool:
    """A password field, or a form asking who you are (the first page of a two-step login)."""
    if any(i.get("type", "").lower() == "password" for i in facts.inputs):
        return True
    if any(i.get("autocomplete", "").lower() in ("username", "email") for i in facts.inputs):
        return True
    return any(_LOGIN_HINT.search(f"{f.get('id', '')} {f.get('action', '')} {f.get('name', '')}")
               for f in facts.forms)
