"""Collector for the sandbox's legacy WebForms extranet, written as a recipe: no code of its own."""

from __future__ import annotations

from services.scraper.collectors.sandbox_legacy.recipe import RECIPE
from services.scraper.kit import Collector
from services.scraper.kit.recipe import RecipeCollector

MANIFEST = RECIPE.manifest
COLLECTOR: Collector = RecipeCollector(RECIPE)

__all__ = ["COLLECTOR", "MANIFEST", "RECIPE"]
