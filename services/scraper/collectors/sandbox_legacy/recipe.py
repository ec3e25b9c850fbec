"""The sandbox's legacy extranet (ASP.NET WebForms) as data: page tokens, postback paging and
downloads, one pass per pharmacy site, the search widened to the whole history, the portal's count."""

from __future__ import annotations

from services.scraper.kit import Manifest
from services.scraper.kit.recipe import (
    WEBFORMS_POSTBACK,
    Fill,
    ListingRecipe,
    LoginRecipe,
    OptionLoop,
    Recipe,
    Submit,
    Value,
)

RECIPE = Recipe(
    manifest=Manifest(id="sandbox-legacy", name="Sandbox — extranet officine (WebForms)",
                      supplier="Sandbox Répartition", portal_url="http://127.0.0.1:8765/legacy/",
                      login_kind="identifier", frequency_hours=24, max_sessions=8),
    login=LoginRecipe(
        url="Login.aspx",
        steps=[Fill(selector="#Main_txtCodeClient", value="{login}"),
               Fill(selector="#Main_txtMotDePasse", value="{password}"),
               Submit(selector="#Main_btnConnexion")],
        success="#lnkDeconnexion",
        failure="#Main_lblErreur",
    ),
    listing=ListingRecipe(
        url="Factures.aspx",
        # The list opens on the last 90 days: search the whole history, site by site.
        search=[Fill(selector="#Main_txtDu", value="{earliest:%d/%m/%Y}"),
                Fill(selector="#Main_txtAu", value="{today:%d/%m/%Y}"),
                Submit(selector="#Main_btnRechercher")],
        each_option=OptionLoop(select="#Main_ddlSite", single=Value(selector="#Main_lblSite")),
        count=Value(selector="#Main_lblNombre"),
        container="#Main_gvFactures",
        row="tr.ligne, tr.ligne-alt",
        issue_date=Value(selector="td.date"),
        number=Value(selector="td.piece"),
        kind=Value(selector="td.type"),
        kinds={"FA": "invoice", "AV": "credit_note"},
        amount=Value(selector="td.montant"),
        download=Value(selector="td.pdf a", attribute="href"),
        # The pager shows page numbers: the next one is the link after the current page's number.
        next_page="tr.pager td:has(> span) + td > a",
    ),
    postback=WEBFORMS_POSTBACK,
)
