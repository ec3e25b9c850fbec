"""Declarative collectors: a :class:`Recipe` describes a simple portal, :class:`RecipeCollector`
runs it. See ``docs/collector-guide.md``."""

from services.scraper.kit.recipe.engine import RecipeCollector
from services.scraper.kit.recipe.model import (
    Click,
    DownloadRecipe,
    Fill,
    Goto,
    ListingRecipe,
    LoginRecipe,
    Recipe,
    SetCookie,
    Step,
    Submit,
    Value,
    WaitFor,
)
from services.scraper.kit.recipe.rows import ref_from_row, refs_from_rows

__all__ = [
    "Click",
    "DownloadRecipe",
    "Fill",
    "Goto",
    "ListingRecipe",
    "LoginRecipe",
    "Recipe",
    "RecipeCollector",
    "SetCookie",
    "Step",
    "Submit",
    "Value",
    "WaitFor",
    "ref_from_row",
    "refs_from_rows",
]
