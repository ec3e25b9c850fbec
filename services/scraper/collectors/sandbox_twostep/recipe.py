"""The two-step sandbox portal described as data: a cookie banner, the e-mail on one page, the
password on the next, then documents as a list of cards with an ISO date and a signed amount."""

from __future__ import annotations

from services.scraper.kit import Manifest
from services.scraper.kit.recipe import Click, Fill, ListingRecipe, LoginRecipe, Recipe, SetCookie, Submit, Value

RECIPE = Recipe(
    manifest=Manifest(
        id="sandbox-twostep",
        name="Sandbox — portail en deux étapes",
        supplier="Sandbox Répartition",
        portal_url="http://127.0.0.1:8765/twostep/",
        login_kind="email",
        frequency_hours=24,
        max_sessions=16,
    ),
    login=LoginRecipe(
        url="login",
        steps=[
            # The banner covers the whole page until a choice is made, and the portal refuses the
            # login until the cookie it sets is there: record the "necessary only" choice, as the
            # banner's script does. A browser run still clicks it away if it shows anyway.
            SetCookie(name="ts_consent", value="necessary"),
            Click(selector="#cookie-accept", optional=True),
            Fill(selector="#identifier-form input[name=username]", value="{login}"),
            Submit(selector="#identifier-next"),
            Fill(selector="#password-form input[name=password]", value="{password}"),
            Submit(selector="#password-submit"),
        ],
        success="#account-menu",
        failure="#password-error",
    ),
    listing=ListingRecipe(
        url="documents",
        container="ul.document-list",
        row="li.document",
        number=Value(selector=".doc-number"),
        # The machine-readable date beats "1 mars 2026".
        issue_date=Value(selector="time", attribute="datetime"),
        date_format="iso",
        amount=Value(selector=".doc-amount"),
        kind=Value(selector=".doc-type"),
        download=Value(selector="a.doc-pdf", attribute="href"),
        next_page="a.pager-next",
    ),
)
