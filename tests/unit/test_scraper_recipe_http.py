"""Reading portals without a browser: forms submitted as a browser would, a recipe's list pages
read from saved HTML (the same pages the browser engine is tested on), the recipe's engine choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.scraper.collectors.sandbox_twostep import RECIPE
from services.scraper.kit import InterfaceChanged, InvoiceRef
from services.scraper.kit.forms import submission
from services.scraper.kit.recipe import Click, Fill, Submit, WaitFor
from services.scraper.kit.recipe.extract import read_list
from services.scraper.kit.recipe.rows import refs_from_rows

FIXTURES = Path(__file__).parent / "fixtures"
URL = "http://127.0.0.1:8765/twostep/documents"

FORM = """
<form id="f" method="post" action="/session">
  <input type="hidden" name="csrf" value="t0k3n">
  <input name="login" value="prefilled">
  <input type="password" name="password">
  <input type="checkbox" name="remember" checked>
  <input type="checkbox" name="newsletter" value="yes">
  <input type="radio" name="lang" value="fr" checked><input type="radio" name="lang" value="en">
  <select name="site"><option value="a">A</option><option value="b" selected>B</option></select>
  <select name="region"><option>Nord</option><option>Sud</option></select>
  <textarea name="note">hello</textarea>
  <input name="off" value="x" disabled>
  <input value="no name">
  <input type="submit" name="go" value="Entrer" id="go">
  <button type="submit" name="other" value="2" id="other">Autre</button>
</form>
<form id="search" action="find"><input name="q" value="a b"><button id="find">OK</button></form>
<input name="outside" id="outside">
"""


def test_a_form_is_sent_as_a_browser_sends_it() -> None:
    form = submission(FORM, "http://portal.test/login?x=1", "#go",
                      {"input[name=login]": "pharma-1", "input[name=password]": "s3cret"})
    assert form.method == "POST" and form.url == "http://portal.test/session"
    assert form.fields == [("csrf", "t0k3n"), ("login", "pharma-1"), ("password", "s3cret"), ("remember", "on"),
                           ("lang", "fr"), ("site", "b"), ("region", "Nord"), ("note", "hello"), ("go", "Entrer")]


def test_only_the_button_clicked_is_sent() -> None:
    form = submission(FORM, "http://portal.test/login", "#other", {})
    assert ("other", "2") in form.fields and not any(name == "go" for name, _ in form.fields)
    # Submitting from a field (Enter in it) clicks the form's first submit button, as browsers do.
    form = submission(FORM, "http://portal.test/login", "input[name=login]", {})
    assert ("go", "Entrer") in form.fields and not any(name == "other" for name, _ in form.fields)


def test_a_get_form_puts_its_fields_in_the_url() -> None:
    form = submission(FORM, "http://portal.test/app/home#top", "#find", {"input[name=q]": "doliprane 1000"})
    assert form.method == "GET" and form.url == "http://portal.test/app/find?q=doliprane+1000"


def test_what_cannot_be_submitted_is_an_interface_change() -> None:
    with pytest.raises(InterfaceChanged, match="#nope"):
        submission(FORM, "http://portal.test/", "#nope", {})
    with pytest.raises(InterfaceChanged, match="#missing"):
        submission(FORM, "http://portal.test/", "#go", {"#missing": "x"})
    with pytest.raises(InterfaceChanged, match="not in the form"):
        submission(FORM, "http://portal.test/", "#go", {"#outside": "x"})
    with pytest.raises(InterfaceChanged, match="not inside a form"):
        submission(FORM, "http://portal.test/", "#outside", {})


def test_the_sandbox_login_forms() -> None:
    page = (FIXTURES / "sandbox_twostep" / "password.html").read_text(encoding="utf-8")
    form = submission(page, "http://127.0.0.1:8765/twostep/login/password", "#password-submit",
                      {"#password-form input[name=password]": "demo"})
    assert form.method == "POST" and form.url == "http://127.0.0.1:8765/twostep/login/password"
    assert form.fields == [("password", "demo")]


def read(name: str) -> tuple[list[InvoiceRef], str | None]:
    html = (FIXTURES / "sandbox_twostep" / name).read_text(encoding="utf-8")
    found = read_list(html, RECIPE.listing, {})
    if not found.container:
        raise InterfaceChanged("no list")
    return refs_from_rows(found.rows, RECIPE.listing, URL), found.next_href


def test_a_list_page_read_without_a_browser() -> None:
    refs, next_href = read("documents_page1.html")
    assert len(refs) == 8 and next_href == "/twostep/documents?page=2"
    credit_notes = [r for r in refs if r.kind == "credit_note"]
    assert credit_notes and all(r.amount > 0 for r in credit_notes)  # shown as −52,21 €, kept positive
    html = (FIXTURES / "sandbox_twostep" / "documents_page1.html").read_text(encoding="utf-8")
    rows = read_list(html, RECIPE.listing, {}).rows
    assert rows[0]["download"] and rows[0]["download"].startswith("/twostep/documents/")
    refs_last, next_last = read("documents_last.html")
    assert len(refs_last) == 7 and next_last is None
    assert not read_list((FIXTURES / "sandbox_twostep" / "password.html").read_text(encoding="utf-8"),
                         RECIPE.listing, {}).container


def test_the_engine_is_chosen_by_what_the_recipe_needs() -> None:
    assert RECIPE.over_http  # forms and lists: no page needed
    steps = [*RECIPE.login.steps, WaitFor(selector="#account-menu")]
    assert not RECIPE.model_copy(update={"login": RECIPE.login.model_copy(update={"steps": steps})}).over_http
    assert not RECIPE.model_copy(update={"scripted": True}).over_http
    clicking = [Click(selector="#js-button"), Fill(selector="#p", value="{password}"), Submit(selector="#s")]
    assert not RECIPE.model_copy(update={"login": RECIPE.login.model_copy(update={"steps": clicking})}).over_http
    assert not RECIPE.model_copy(update={"engine": "browser"}).over_http
    with pytest.raises(ValidationError, match="engine 'http'"):
        type(RECIPE).model_validate({**RECIPE.model_dump(), "engine": "http", "scripted": True})
