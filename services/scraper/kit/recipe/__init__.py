"""Declarative collectors: a :class:`Recipe` describes a simple portal, :class:`RecipeCollector`
runs it. See ``docs/collector-guide.md``."""

from services.scraper.kit.recipe.engine import RecipeCollector
from services.scraper.kit.recipe.model import (
    EARLIEST,
    WEBFORMS_POSTBACK,
    Click,
    DownloadRecipe,
    Fill,
    Goto,
    ListingRecipe,
    LoginRecipe,
    OptionLoop,
    Postback,
    Recipe,
    RecipeError,
    SetCookie,
    Step,
    Submit,
    Value,
    WaitFor,
    load_recipe,
)
from services.scraper.kit.recipe.rows import ref_from_row, refs_from_rows

__all__ = [
    "EARLIEST",
    "WEBFORMS_POSTBACK",
    "Click",
    "DownloadRecipe",
    "Fill",
    "Goto",
    "ListingRecipe",
    "LoginRecipe",
    "OptionLoop",
    "Postback",
    "Recipe",
    "RecipeCollector",
    "RecipeError",
    "SetCookie",
    "Step",
    "Submit",
    "Value",
    "WaitFor",
    "load_recipe",
    "ref_from_row",
    "refs_from_rows",
]
