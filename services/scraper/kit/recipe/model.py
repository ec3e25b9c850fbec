"""A recipe: a portal described as data (login steps, list pages, fields, pagination, downloads).

One generic engine (``engine.py``) runs any recipe, so a simple portal is a few dozen lines of
description and no code. Recipes are pydantic models: write them in Python, or load them from JSON
with ``Recipe.model_validate_json``; ``Recipe.model_json_schema()`` documents every field.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from services.scraper.kit.invoice import DocumentKind
from services.scraper.kit.manifest import Manifest

# What a Fill value may stand for: the account's credentials, and dates (``{today:%d/%m/%Y}``) for a
# search over the whole history (``{earliest}``: the listing's ``earliest``).
PLACEHOLDERS = ("{login}", "{password}", "{today}", "{earliest}")
_PLACEHOLDER = re.compile(r"\{(?P<name>[^{}:]*)(?::(?P<format>[^{}]*))?\}")
_CREDENTIALS = frozenset({"login", "password"})
_DATES = frozenset({"today", "earliest"})
_EMPTY = LexborHTMLParser("<html></html>")


def _selector(text: str) -> str:
    """A CSS selector both engines can run: checked when the recipe is loaded, not on a portal."""
    if not text.strip():
        raise ValueError("empty selector")
    try:
        _EMPTY.css(text)
    except SelectolaxError:
        raise ValueError(f"{text!r} is not a CSS selector that can be parsed") from None
    return text


def _portal_path(text: str) -> str:
    """A page of the portal: relative to its URL, or an http(s) URL. A ``javascript:`` href is no
    page to open: a link that runs a form submission is described by ``Recipe.postback``."""
    scheme = urlsplit(text.strip()).scheme.lower()
    if scheme and scheme not in ("http", "https"):
        raise ValueError(f"{text!r} is not a page to open ({scheme}: URL); a javascript: postback link is "
                         "followed through Recipe.postback")
    return text


Selector = Annotated[str, AfterValidator(_selector)]
PortalPath = Annotated[str, AfterValidator(_portal_path)]


def _placeholders(text: str) -> str:
    for match in _PLACEHOLDER.finditer(text):
        name, fmt = match.group("name"), match.group("format")
        if name in _CREDENTIALS and fmt is None:
            continue
        if name in _DATES:
            if fmt is not None:
                try:
                    date(2026, 1, 2).strftime(fmt)
                except ValueError:
                    raise ValueError(f"{match.group(0)!r}: not a strftime format") from None
            continue
        raise ValueError(f"unknown placeholder {match.group(0)!r} (known: {', '.join(PLACEHOLDERS)}, dates with "
                         "a strftime format such as {today:%d/%m/%Y})")
    return text


Template = Annotated[str, AfterValidator(_placeholders)]


class _Strict(BaseModel):
    # A misspelt key in a recipe must fail loudly when it is loaded, not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Goto(_Strict):
    """Open a URL (relative to the portal URL)."""

    action: Literal["goto"] = "goto"
    url: PortalPath


class Click(_Strict):
    """Click an element; ``optional`` ones (cookie banners, pop-ups) are clicked only if shown."""

    action: Literal["click"] = "click"
    selector: Selector
    optional: bool = False


class Fill(_Strict):
    """Type into a field, or choose the option of a ``<select>`` with that value; ``{login}`` and
    ``{password}`` stand for the account's credentials, ``{today}`` and ``{earliest}`` for dates
    (``{today:%d/%m/%Y}``: as the portal writes them; ISO without a format)."""

    action: Literal["fill"] = "fill"
    selector: Selector
    value: Template

    def typed(self, login: str, password: str, *, today: date | None = None, earliest: date | None = None) -> str:
        """The text typed for this account (on ``today``, for a history starting at ``earliest``)."""
        def one(match: re.Match[str]) -> str:
            name, fmt = match.group("name"), match.group("format")
            if name in _CREDENTIALS:
                return login if name == "login" else password
            day = (today or date.today()) if name == "today" else (earliest or EARLIEST)
            return day.strftime(fmt) if fmt else day.isoformat()
        return _PLACEHOLDER.sub(one, self.value)


class Submit(_Strict):
    """Click what sends a form and wait for the page it leads to."""

    action: Literal["submit"] = "submit"
    selector: Selector


class WaitFor(_Strict):
    """Wait until an element is on the page (for pages drawn by JavaScript)."""

    action: Literal["wait_for"] = "wait_for"
    selector: Selector


class SetCookie(_Strict):
    """Set a cookie on the portal as its scripts would: the choice a cookie banner records, say.
    Both engines then agree (an HTTP client runs no script; a page no longer shows the banner)."""

    action: Literal["set_cookie"] = "set_cookie"
    name: str = Field(min_length=1)
    value: str


Step = Annotated[Goto | Click | Fill | Submit | WaitFor | SetCookie, Field(discriminator="action")]


class LoginRecipe(_Strict):
    url: PortalPath = Field(default="login", description="First page of the login, relative to the portal URL")
    steps: list[Step] = Field(min_length=1)
    success: Selector = Field(description="Selector of an element only a logged-in pharmacy sees")
    failure: Selector | None = Field(default=None, description="Selector of the portal's 'wrong credentials' message")

    @model_validator(mode="after")
    def _types_the_password(self) -> LoginRecipe:
        if not any(isinstance(s, Fill) and "{password}" in s.value for s in self.steps):
            raise ValueError("the login steps never fill in {password}")
        return self


class Value(_Strict):
    """Where one value of a row is: an element inside the row (or the row itself), its text or an
    attribute."""

    selector: Selector | None = None
    attribute: str | None = None


def _french_kinds() -> dict[str, DocumentKind]:
    return {"Facture": "invoice", "Avoir": "credit_note"}


EARLIEST = date(2000, 1, 1)


class OptionLoop(_Strict):
    """Collect once per option of a ``<select>`` (the sites of a pharmacy group, sub-accounts): the
    option is chosen in the search form, and its label is recorded as each document's ``site``."""

    select: Selector = Field(description="Selector of the <select>; its options are read on the list page")
    record: Literal["text", "value"] = Field(default="text", description="What names the site: the option's "
                                             "text or its value")
    single: Value | None = Field(default=None, description="Where the only site is named when the portal "
                                 "shows no selector (one site): recorded the same way")


class ListingRecipe(_Strict):
    url: PortalPath = Field(description="First list page, relative to the portal URL")
    search: list[Step] = Field(
        default_factory=list,
        description="Steps on the list page before it is read: open a search, fill a date range from "
                    "{earliest} to {today}, choose options, submit")
    earliest: date = Field(default=EARLIEST, description="The date {earliest} stands for: where the whole "
                           "history starts (a date before the portal's first document)")
    each_option: OptionLoop | None = None
    count: Value | None = Field(default=None, description="The portal's own count of the documents listed "
                                "(its first number): every one must have been read")
    container: Selector = Field(description="Selector of what holds the rows: its absence means the page changed")
    row: Selector = Field(description="Selector of one document, inside the container")
    number: Value
    issue_date: Value
    amount: Value
    kind: Value
    download: Value = Field(description="Usually an <a> and its href")
    currency: Value | None = None
    default_currency: str = "EUR"
    date_format: str = Field(default="%d/%m/%Y", description="strptime format, 'iso' or 'fr_long' (1 mars 2026)")
    decimal_separator: Literal[",", "."] = ","
    kinds: dict[str, DocumentKind] = Field(
        default_factory=_french_kinds,
        description="Label shown by the portal -> document kind (compared without case or accents)")
    next_page: Selector | None = Field(default=None, description="Selector of the link to the next list page "
                                       "(a postback link too: see Recipe.postback)")
    max_pages: int = Field(default=200, ge=1)

    @model_validator(mode="after")
    def _options_are_submitted(self) -> ListingRecipe:
        if self.each_option is not None and not any(isinstance(s, Submit | Click) for s in self.search):
            raise ValueError("each_option needs search steps that submit the chosen option (a submit or click)")
        return self


class Postback(_Strict):
    """Links whose effect is a form submission (ASP.NET's ``javascript:__doPostBack('grid','Page$2')``):
    an href matching ``pattern`` submits the form ``form`` as it is on the page, with each named group
    of the pattern as the field of that name, and no button. Used for list pages, downloads (then a
    POST answering the PDF) and clicks."""

    pattern: str = Field(description="Regular expression searched in the href; its named groups are fields")
    form: Selector = Field(default="form", description="Selector of the form submitted")

    @model_validator(mode="after")
    def _compiles(self) -> Postback:
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"postback pattern {self.pattern!r}: {exc}") from None
        if not compiled.groupindex:
            raise ValueError("a postback pattern needs named groups: (?P<field>...) for each field sent")
        return self

    def fields(self, href: str) -> dict[str, str] | None:
        """The fields this link submits, or None if it is no postback of this kind."""
        found = re.search(self.pattern, href)
        return {name: value or "" for name, value in found.groupdict().items()} if found else None


# ASP.NET WebForms: __doPostBack(target, argument) sets two hidden fields and submits the page's form.
# (Python group names cannot hold "$" but these two field names need none.)
WEBFORMS_POSTBACK = Postback(
    pattern=r"__doPostBack\(\s*'(?P<__EVENTTARGET>[^']*)'\s*,\s*'(?P<__EVENTARGUMENT>[^']*)'\s*\)",
    form="form")


class DownloadRecipe(_Strict):
    # Headers some portals demand on downloads (a CSRF token from a <meta>, say), read from the
    # list page: header name -> where its value is.
    headers: dict[str, Value] = Field(default_factory=dict)


class Recipe(_Strict):
    manifest: Manifest
    login: LoginRecipe
    listing: ListingRecipe
    download: DownloadRecipe = DownloadRecipe()
    postback: Postback | None = Field(default=None, description="How a javascript: link submits a form "
                                      "(WEBFORMS_POSTBACK for ASP.NET)")
    # Pages drawn by JavaScript: wait for elements to appear instead of expecting them at load.
    scripted: bool = False
    engine: Literal["auto", "http", "browser"] = Field(
        default="auto",
        description="http: read the portal without a page (forms submitted as a browser would, no "
                    "rendering: several times cheaper); browser: drive a real page; auto: http unless "
                    "the recipe needs scripts (scripted, wait_for, or a click that is not optional)")

    @property
    def over_http(self) -> bool:
        if self.engine != "auto":
            return self.engine == "http"
        needs_scripts = any(isinstance(s, WaitFor) or (isinstance(s, Click) and not s.optional)
                            for s in self.login.steps)
        return not (self.scripted or needs_scripts)

    @property
    def reads_forms(self) -> bool:
        """The list is reached through forms (a search, options, postbacks): its pages are read over
        HTTP whichever engine logs in (a page submits the same forms; reading them is cheaper)."""
        listing = self.listing
        return bool(listing.search or listing.each_option or listing.count or self.postback)

    @model_validator(mode="after")
    def _http_can_run_it(self) -> Recipe:
        if self.engine == "http" and (self.scripted or any(isinstance(s, WaitFor) for s in self.login.steps)):
            raise ValueError("engine 'http' cannot run pages drawn by scripts (scripted, wait_for)")
        if self.scripted and self.reads_forms:
            raise ValueError("search steps, each_option, count and postback read the list over HTTP: "
                             "not for pages drawn by scripts (scripted)")
        if any(isinstance(s, WaitFor) for s in self.listing.search):
            raise ValueError("wait_for is for pages drawn by scripts: not in search steps")
        return self


class RecipeError(ValueError):
    """A recipe that cannot be loaded: the file, and where in it and why."""


def load_recipe(path: str | Path) -> Recipe:
    """A recipe from a JSON file, checked as it is loaded: an unknown key or placeholder, a selector
    that cannot be parsed, a ``javascript:`` href used as a page are errors naming the file and the
    place in it, not failures on a portal."""
    where = Path(path)
    try:
        return Recipe.model_validate_json(where.read_bytes())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
                             for error in exc.errors())
        raise RecipeError(f"{where}: {problems}") from None
