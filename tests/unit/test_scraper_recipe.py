"""Recipes as data: what a recipe may say, and how the rows it reads become invoice references."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.scraper.collectors.sandbox_twostep import RECIPE
from services.scraper.kit import InterfaceChanged
from services.scraper.kit.recipe import Fill, ListingRecipe, LoginRecipe, Recipe, RecipeCollector, Submit, Value
from services.scraper.kit.recipe.rows import ref_from_row

LISTING = RECIPE.listing
PAGE = "http://127.0.0.1:8765/twostep/documents?page=2"


def test_the_sandbox_recipe_round_trips_through_json() -> None:
    again = Recipe.model_validate_json(RECIPE.model_dump_json())
    assert again == RECIPE
    assert RecipeCollector(again).manifest.id == "sandbox-twostep"
    schema = Recipe.model_json_schema()
    assert {"manifest", "login", "listing"} <= set(schema["properties"])


def test_a_misspelt_key_is_refused() -> None:
    raw = RECIPE.model_dump(mode="json")
    raw["listing"]["nxt_page"] = "a.next"
    with pytest.raises(ValidationError, match="nxt_page"):
        Recipe.model_validate(raw)


def test_a_login_that_never_types_the_password_is_refused() -> None:
    with pytest.raises(ValidationError, match="password"):
        LoginRecipe(steps=[Fill(selector="#u", value="{login}"), Submit(selector="button")], success="#menu")


def test_rows_become_references() -> None:
    ref = ref_from_row({"number": " AV2026-1 ", "issue_date": "2026-03-01", "amount": "\u221252,21\u00a0€",
                        "kind": "Avoir", "download": "/twostep/documents/AV2026-1/download"}, LISTING, PAGE)
    assert (ref.number, ref.issue_date, ref.amount, ref.currency, ref.kind) == (
        "AV2026-1", date(2026, 3, 1), Decimal("52.21"), "EUR", "credit_note")
    assert ref.download_url == "http://127.0.0.1:8765/twostep/documents/AV2026-1/download"


def test_currency_from_a_field_or_the_amount() -> None:
    listing = ListingRecipe(url="l", container="t", row="tr", number=Value(), issue_date=Value(), amount=Value(),
                            kind=Value(), download=Value(), currency=Value(selector=".cur"),
                            date_format="%d/%m/%Y", decimal_separator=".")
    row = {"number": "1", "issue_date": "01/03/2026", "amount": "12.50", "kind": "Facture", "download": "a.pdf",
           "currency": "CHF"}
    assert ref_from_row(row, listing, PAGE).currency == "CHF"
    assert ref_from_row({**row, "currency": None}, listing, PAGE).currency == "EUR"
    dollars = {"number": "1", "issue_date": "2026-03-01", "amount": "$ 12,00", "kind": "Facture", "download": "x"}
    assert ref_from_row(dollars, LISTING, PAGE).currency == "USD"


@pytest.mark.parametrize("missing", ["number", "issue_date", "amount", "kind", "download"])
def test_a_row_without_a_value_is_an_interface_change(missing: str) -> None:
    row = {"number": "FA-1", "issue_date": "2026-03-01", "amount": "1,00 €", "kind": "Facture", "download": "x"}
    row[missing] = "  " if missing != "download" else None  # type: ignore[assignment]
    with pytest.raises(InterfaceChanged, match=missing):
        ref_from_row(row, LISTING, PAGE)  # type: ignore[arg-type]
