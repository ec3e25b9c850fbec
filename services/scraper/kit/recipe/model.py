"""A recipe: a portal described as data (login steps, list pages, fields, pagination, downloads).

One generic engine (``engine.py``) runs any recipe, so a simple portal is a few dozen lines of
description and no code. Recipes are pydantic models: write them in Python, or load them from JSON
with ``Recipe.model_validate_json``; ``Recipe.model_json_schema()`` documents every field.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.scraper.kit.invoice import DocumentKind
from services.scraper.kit.manifest import Manifest

PLACEHOLDERS = ("{login}", "{password}")
_PLACEHOLDER = re.compile(r"\{(login|password)\}")


class _Strict(BaseModel):
    # A misspelt key in a recipe must fail loudly when it is loaded, not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Goto(_Strict):
    """Open a URL (relative to the portal URL)."""

    action: Literal["goto"] = "goto"
    url: str


class Click(_Strict):
    """Click an element; ``optional`` ones (cookie banners, pop-ups) are clicked only if shown."""

    action: Literal["click"] = "click"
    selector: str
    optional: bool = False


class Fill(_Strict):
    """Type into a field; ``{login}`` and ``{password}`` stand for the account's credentials."""

    action: Literal["fill"] = "fill"
    selector: str
    value: str

    def typed(self, login: str, password: str) -> str:
        """The text typed for this account."""
        return _PLACEHOLDER.sub(lambda m: login if m.group(1) == "login" else password, self.value)


class Submit(_Strict):
    """Click what sends a form and wait for the page it leads to."""

    action: Literal["submit"] = "submit"
    selector: str


class WaitFor(_Strict):
    """Wait until an element is on the page (for pages drawn by JavaScript)."""

    action: Literal["wait_for"] = "wait_for"
    selector: str


class SetCookie(_Strict):
    """Set a cookie on the portal as its scripts would: the choice a cookie banner records, say.
    Both engines then agree (an HTTP client runs no script; a page no longer shows the banner)."""

    action: Literal["set_cookie"] = "set_cookie"
    name: str = Field(min_length=1)
    value: str


Step = Annotated[Goto | Click | Fill | Submit | WaitFor | SetCookie, Field(discriminator="action")]


class LoginRecipe(_Strict):
    url: str = Field(default="login", description="First page of the login, relative to the portal URL")
    steps: list[Step] = Field(min_length=1)
    success: str = Field(description="Selector of an element only a logged-in pharmacy sees")
    failure: str | None = Field(default=None, description="Selector of the portal's 'wrong credentials' message")

    @model_validator(mode="after")
    def _types_the_password(self) -> LoginRecipe:
        if not any(isinstance(s, Fill) and "{password}" in s.value for s in self.steps):
            raise ValueError("the login steps never fill in {password}")
        return self


class Value(_Strict):
    """Where one value of a row is: an element inside the row (or the row itself), its text or an
    attribute."""

    selector: str | None = None
    attribute: str | None = None


def _french_kinds() -> dict[str, DocumentKind]:
    return {"Facture": "invoice", "Avoir": "credit_note"}


class ListingRecipe(_Strict):
    url: str = Field(description="First list page, relative to the portal URL")
    container: str = Field(description="Selector of what holds the rows: its absence means the page changed")
    row: str = Field(description="Selector of one document, inside the container")
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
    next_page: str | None = Field(default=None, description="Selector of the link to the next list page")
    max_pages: int = Field(default=200, ge=1)


class DownloadRecipe(_Strict):
    # Headers some portals demand on downloads (a CSRF token from a <meta>, say), read from the
    # list page: header name -> where its value is.
    headers: dict[str, Value] = Field(default_factory=dict)


class Recipe(_Strict):
    manifest: Manifest
    login: LoginRecipe
    listing: ListingRecipe
    download: DownloadRecipe = DownloadRecipe()
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

    @model_validator(mode="after")
    def _http_can_run_it(self) -> Recipe:
        if self.engine == "http" and (self.scripted or any(isinstance(s, WaitFor) for s in self.login.steps)):
            raise ValueError("engine 'http' cannot run pages drawn by scripts (scripted, wait_for)")
        return self
