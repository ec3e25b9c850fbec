"""What recipes grew to reach real portals (issue 12, bullet 2): checks when a recipe is loaded, date
placeholders, postback forms and the portal's own count — pure, no portal."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pydantic import ValidationError

from services.scraper.collectors.sandbox_legacy import RECIPE as LEGACY
from services.scraper.collectors.sandbox_twostep import RECIPE as TWOSTEP
from services.scraper.kit.errors import InterfaceChanged
from services.scraper.kit.forms import postback, submission
from services.scraper.kit.recipe import WEBFORMS_POSTBACK, Fill, Recipe, RecipeError, load_recipe
from services.scraper.kit.recipe.http_engine import portal_count


def _twostep(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TWOSTEP.model_dump_json())
    for path, value in changes.items():
        where = data
        *parents, last = path.split(".")
        for part in parents:
            where = where[int(part)] if part.isdigit() else where[part]
        where[int(last) if last.isdigit() else last] = value
    return data


def _load_error(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "portal.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    return str(err.value)


def test_a_recipe_round_trips_through_json(tmp_path: Path) -> None:
    for recipe in (TWOSTEP, LEGACY):
        path = tmp_path / f"{recipe.manifest.id}.json"
        path.write_text(recipe.model_dump_json())
        assert load_recipe(path) == recipe


@pytest.mark.parametrize(("change", "said"), [
    ({"listing.url": "javascript:__doPostBack('grid','Page$2')"}, "listing.url"),
    ({"login.steps.0": {"action": "goto", "url": "javascript:void(0)"}}, "login.steps.0.goto.url"),
    ({"login.url": "mailto:contact@example.fr"}, "login.url"),
    ({"listing.row": "li.document["}, "listing.row"),
    ({"listing.number": {"selector": "td:nth-child(", "attribute": None}}, "listing.number.selector"),
    ({"login.steps.2": {"action": "fill", "selector": "#identifier-form input[name=username]",
                        "value": "{identifiant}"}}, "login.steps.2.fill.value"),
    ({"login.steps.4": {"action": "fill", "selector": "#password-form input[name=password]",
                        "value": "{password:%d}"}}, "login.steps.4.fill.value"),
    ({"postback": {"pattern": "__doPostBack\\('([^']*)'", "form": "form"}}, "postback"),
    ({"postback": {"pattern": "__doPostBack(", "form": "form"}}, "postback"),
])
def test_recipe_mistakes_are_load_errors_naming_the_file_and_the_place(tmp_path: Path, change: dict[str, Any],
                                                                        said: str) -> None:
    message = _load_error(tmp_path, _twostep(**change))
    assert str(tmp_path / "portal.json") in message and said in message, message


def test_an_option_loop_needs_a_search_that_submits_the_choice() -> None:
    data = json.loads(LEGACY.model_dump_json())
    data["listing"]["search"] = [s for s in data["listing"]["search"] if s["action"] != "submit"]
    with pytest.raises(ValidationError, match="each_option needs search steps"):
        Recipe.model_validate(data)


def test_dates_are_typed_as_the_portal_writes_them() -> None:
    today, earliest = date(2026, 3, 15), date(2019, 1, 1)
    assert Fill(selector="#du", value="{earliest:%d/%m/%Y}").typed("l", "p", today=today, earliest=earliest) \
        == "01/01/2019"
    assert Fill(selector="#au", value="{today:%d/%m/%Y}").typed("l", "p", today=today) == "15/03/2026"
    assert Fill(selector="#au", value="{today}").typed("l", "p", today=today) == "2026-03-15"
    assert Fill(selector="#x", value="{login}:{password}").typed("me", "s3cret") == "me:s3cret"


WEBFORM = """<html><body><form method="post" action="./Factures.aspx" id="aspnetForm">
<input type="hidden" name="__EVENTTARGET" id="__EVENTTARGET" value="">
<input type="hidden" name="__EVENTARGUMENT" id="__EVENTARGUMENT" value="">
<input type="hidden" name="__VIEWSTATE" value="vs-2">
<input type="submit" name="ctl00$Main$btnNouvelle" value="Nouvelle recherche">
<select name="ctl00$Main$ddlSite" id="Main_ddlSite"><option value="0101" selected>Centrale</option>
<option value="0102">Gare</option></select>
<input name="ctl00$Main$txtDu" id="Main_txtDu" value="15/12/2025">
<input type="submit" name="ctl00$Main$btnRechercher" id="Main_btnRechercher" value="Rechercher">
<table id="Main_gvFactures"><tr class="pager"><td><table><tr><td><span>1</span></td>
<td><a href="javascript:__doPostBack('ctl00$Main$gvFactures','Page$2')">2</a></td></tr></table></td></tr></table>
</form></body></html>"""


def test_a_postback_submits_the_form_with_its_fields_set_and_no_button() -> None:
    fields = WEBFORMS_POSTBACK.fields("javascript:__doPostBack('ctl00$Main$gvFactures','Page$2')")
    assert fields == {"__EVENTTARGET": "ctl00$Main$gvFactures", "__EVENTARGUMENT": "Page$2"}
    form = postback(WEBFORM, "http://portal.test/legacy/Factures.aspx", "form", fields,
                    {"#Main_ddlSite": "0102"})
    sent = parse_qsl(form.body, keep_blank_values=True)
    assert (form.method, form.url) == ("POST", "http://portal.test/legacy/Factures.aspx")
    assert sent == [("__EVENTTARGET", "ctl00$Main$gvFactures"), ("__EVENTARGUMENT", "Page$2"),
                    ("__VIEWSTATE", "vs-2"), ("ctl00$Main$ddlSite", "0102"), ("ctl00$Main$txtDu", "15/12/2025")]
    # Whereas Enter in a field submits as the first submit button would: a new search on WebForms.
    entered = dict(parse_qsl(submission(WEBFORM, "http://portal.test/legacy/Factures.aspx", "#Main_txtDu", {}).body))
    assert "ctl00$Main$btnNouvelle" in entered and "ctl00$Main$btnRechercher" not in entered
    assert WEBFORMS_POSTBACK.fields("Factures.aspx?page=2") is None


def test_a_postback_to_a_missing_form_is_the_portal_changing() -> None:
    with pytest.raises(InterfaceChanged):
        postback("<html><body><a href='#'>x</a></body></html>", "http://portal.test/", "form#aspnetForm", {})


@pytest.mark.parametrize(("text", "count"), [
    ("37 document(s)", 37), ("1 234 document(s) trouvé(s)", 1234), ("Documents\u00a0: 1\u202f005", 1005),
    ("0 document(s)", 0), ("Total 12.", 12),
])
def test_the_portal_count_is_its_first_number(text: str, count: int) -> None:
    assert portal_count(text, "http://portal.test/") == count


def test_a_missing_count_is_the_portal_changing() -> None:
    with pytest.raises(InterfaceChanged):
        portal_count("Aucun résultat", "http://portal.test/")
    with pytest.raises(InterfaceChanged):
        portal_count(None, "http://portal.test/")


def test_the_legacy_portal_recipe_is_short() -> None:
    import services.scraper.collectors.sandbox_legacy.recipe as module

    assert module.__file__ is not None
    lines = Path(module.__file__).read_text().splitlines()
    assert len(lines) <= 60, len(lines)
