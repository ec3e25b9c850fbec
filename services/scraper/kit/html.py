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
# Typographic apostrophes and dashes as typed on a keyboard.
_TYPOGRAPHY = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u2010": "-", "\u2011": "-",
                             "\u2012": "-", "\u2013": "-", "\u2014": "-"})
# Portal chrome around what a page says: menus, footers, cookie banners. Their words ("CGV",
# "Accepter les cookies", "Maintenance programmée le...") say nothing about why the page is shown.
_CHROME_TAGS = frozenset({"nav", "footer", "aside"})
_CHROME_ROLES = frozenset({"navigation", "contentinfo", "menu", "menubar"})
_CHROME_MARKER = re.compile(r"cookie|footer|navbar|menu|breadcrumb|^pied|onetrust|didomi|tarteaucitron|axeptio"
                            r"|^cmp-|^nav$|^nav-", re.I)
# What a page is about: its title and headings.
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "legend"})


@dataclass
class PageFacts:
    text: str = ""  # visible text, lower-case, accents removed, spaces collapsed
    inputs: list[dict[str, str]] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    # Every id and class on the page, lower-case: widgets are recognised by them (captcha boxes).
    markers: set[str] = field(default_factory=set)
    iframe_sources: list[str] = field(default_factory=list)
    script_sources: list[str] = field(default_factory=list)
    # Folded like ``text``: the title and headings, and the visible text without the portal's chrome.
    headline: str = ""
    content: str = ""
    # Folded labels of the buttons (``<button>`` text, submit/button inputs' values).
    buttons: list[str] = field(default_factory=list)


class _FactsParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = PageFacts()
        self._hidden_depth = 0
        self._chunks: list[str] = []
        self._content: list[str] = []
        self._headline: list[str] = []
        # Open elements: (tag, chrome, heading, button); unclosed ones are dropped with their parent.
        self._open: list[tuple[str, bool, bool, bool]] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: (value or "") for name, value in attrs}
        if tag == "script" and attributes.get("src"):
            self.facts.script_sources.append(attributes["src"])
        if tag == "title":
            self._in_title = True
        if tag in _INVISIBLE:
            self._hidden_depth += 1
            return
        if tag not in _VOID:
            marks = [attributes.get("id", ""), *attributes.get("class", "").split()]
            chrome = (tag in _CHROME_TAGS or attributes.get("role", "").lower() in _CHROME_ROLES
                      or any(_CHROME_MARKER.search(m) for m in marks if m))
            self._open.append((tag, chrome, tag in _HEADINGS, tag == "button"))
            if tag == "button":
                self.facts.buttons.append("")
        elif tag == "input" and attributes.get("type", "").lower() in ("submit", "button"):
            self.facts.buttons.append(fold(attributes.get("value", "")))
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
        if tag == "title":
            self._in_title = False
        if tag in _INVISIBLE and self._hidden_depth:
            self._hidden_depth -= 1
        elif any(open_tag == tag for open_tag, *_ in self._open):
            while self._open.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._headline.append(data)
        if self._hidden_depth:
            return
        self._chunks.append(data)
        if any(chrome for _, chrome, _, _ in self._open):
            return
        self._content.append(data)
        if any(heading for _, _, heading, _ in self._open):
            self._headline.append(data)
        if any(button for *_, button in self._open) and self.facts.buttons:
            self.facts.buttons[-1] = fold(f"{self.facts.buttons[-1]} {data}")


def fold(text: str) -> str:
    """Lower-case, without accents, single spaces: ``Mot de passe  expiré`` -> ``mot de passe expire``."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", bare.translate(_TYPOGRAPHY)).strip().lower()


def page_facts(html: str) -> PageFacts:
    parser = _FactsParser()
    parser.feed(html)
    parser.close()
    parser.facts.text = fold(" ".join(parser._chunks))
    parser.facts.content = fold(" ".join(parser._content))
    parser.facts.headline = fold(" ".join(parser._headline))
    return parser.facts


def looks_like_login_page(facts: PageFacts) -> bool:
    """A password field, or a form asking who you are (the first page of a two-step login)."""
    if any(i.get("type", "").lower() == "password" for i in facts.inputs):
        return True
    if any(i.get("autocomplete", "").lower() in ("username", "email") for i in facts.inputs):
        return True
    return any(_LOGIN_HINT.search(f"{f.get('id', '')} {f.get('action', '')} {f.get('name', '')}")
               for f in facts.forms)
