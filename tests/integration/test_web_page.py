"""The "Collecteurs" page in Chromium against a real platform (issue 15's "Done when").

One platform for the module: nats-server, accounts, scheduler, scraper (on the sandbox portal),
notifier, requests and the web service under uvicorn on a free port. Each test is a pharmacy of its
own (its own tenant), signed in through ``/signin?token=`` with a token signed by this module's key,
and drives the page as the help page tells a pharmacist to: nothing is reloaded unless the test says
so, so what appears after "Valider" came through the page's Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.async_api import Browser, BrowserContext, Page, expect

from sandbox.data import documents_for
from sandbox.portal import start_portal
from services.accounts.app import build as build_accounts
from services.accounts.crypto import Keyring, new_key_entry
from services.notifier.app import build as build_notifier
from services.requests.app import build as build_requests
from services.scheduler.app import build as build_scheduler
from services.scraper.app import build as build_scraper
from services.web.app import create_app, nats_backend
from services.web.auth import Verifier
from shared.natsserver import NatsServer, wait_jetstream_ready
from shared.runtime import ServiceRuntime
from shared.settings import (
    AccountsSettings,
    NotifierSettings,
    SchedulerSettings,
    ScraperSettings,
    Settings,
    WebSettings,
)
from shared.subjects import Api
from tests.integration.helpers import eventually, services_running

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ISSUER, AUDIENCE = "collectors-test", "collectors-web-test"
# Short: a page that does not show what it should within a few seconds is a failure, not a wait.
TIMEOUT_MS = 15_000
# The README's picture: rewritten only when asked (COLLECTORS_UPDATE_SCREENSHOT=1 pytest ...), so a test
# run leaves the checkout as it was; otherwise the test still takes it, into its temporary directory.
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "collecteurs.png"
UPDATE_SCREENSHOT = os.environ.get("COLLECTORS_UPDATE_SCREENSHOT") == "1"
_tenants = count(1)
expect.set_options(timeout=TIMEOUT_MS)
_script_errors: dict[Page, list[str]] = {}  # what each signed-in page logged, read by no_script_errors


@dataclass
class Platform:
    base_url: str
    key: Ed25519PrivateKey

    def token(self, *, tenant: str | None, role: str = "pharmacy", minutes: int = 30) -> str:
        """A token as the platform's identity provider signs it (PyJWT, not the service's own helper)."""
        now = datetime.now(UTC)
        claims: dict[str, Any] = {"sub": f"test:{tenant or 'operator'}", "role": role, "iss": ISSUER,
                                  "aud": AUDIENCE, "iat": now, "exp": now + timedelta(minutes=minutes)}
        if tenant is not None:
            claims["tenant"] = tenant
        return jwt.encode(claims, self.key, algorithm="EdDSA")

    def operator(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=10,
                                 headers={"Authorization": f"Bearer {self.token(tenant=None, role='operator')}"})


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    nats = NatsServer(store_dir=tmp_path_factory.mktemp("nats"))
    nats.start()
    portal = await start_portal()
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    try:
        await wait_jetstream_ready(nats.url)
        common: dict[str, Any] = {"nats_url": nats.url, "mongodb_url": None, "db_prefix": "webpage"}
        runtimes: list[ServiceRuntime] = [
            build_accounts(AccountsSettings(**common), keyring=Keyring.parse(new_key_entry("web1"))),
            build_scheduler(SchedulerSettings(**common)),
            build_scraper(ScraperSettings(**common, sandbox_url=portal.url, concurrency=4)),
            build_notifier(NotifierSettings(**common)),
            build_requests(Settings(**common)),
        ]
        async with services_running(runtimes, nats.url) as client:

            async def catalog_ready() -> bool:
                reply = await client.call(Api.ACCOUNTS_CATALOG, {"tenant_id": "x"})
                return {"sandbox-classic", "sandbox-twostep"} <= {c["id"] for c in reply["collectors"]}

            await eventually(catalog_ready, what="the sandbox collectors in the catalog")
            key = Ed25519PrivateKey.generate()
            settings = WebSettings(**common, web_jwt_issuer=ISSUER, web_jwt_audience=AUDIENCE)
            verifier = Verifier(issuer=ISSUER, audience=AUDIENCE, public_key=key.public_key())
            app = create_app(settings, nats_backend(settings), verifier=verifier)
            sock = _free_socket()
            port = sock.getsockname()[1]
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            base_url = f"http://127.0.0.1:{port}"

            async def web_up() -> bool:
                async with httpx.AsyncClient() as http:
                    with contextlib.suppress(httpx.HTTPError):
                        return (await http.get(f"{base_url}/health")).status_code == 200
                return False

            await eventually(web_up, what="the web service")
            try:
                yield Platform(base_url, key)
            finally:
                server.should_exit = True
                await asyncio.wait_for(serving, 10)
    finally:
        if serving is not None and not serving.done():
            serving.cancel()
        await portal.close()
        nats.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        await ctx.close()


async def signed_in(platform: Platform, context: BrowserContext, tenant: str, lang: str = "") -> Page:
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Uncaught exceptions and console errors (a CSP refusal is one); an API refusal the page shows
    # (409 for a third account) is logged by Chromium as a failed resource, which is no script error.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    await page.goto(f"{platform.base_url}/signin?token={platform.token(tenant=tenant)}")
    if lang:
        await page.goto(f"{platform.base_url}/?lang={lang}")
    await expect(page.locator("#catalog .collector").first).to_be_visible()
    # The page listens to its events and has read everything once since (what a person sees within a
    # second of opening it); what the test does next is then seen live.
    await expect(page.locator('body[data-live="open"]')).to_have_count(1)
    _script_errors[page] = errors
    return page


def no_script_errors(page: Page) -> None:
    errors = _script_errors.pop(page)
    assert errors == [], errors


def tenant(name: str = "") -> str:
    """A pharmacy of its own (the platform is fresh for the module: a readable name is unique enough)."""
    return name or f"pharma-{next(_tenants)}"


def collector(page: Page, collector_id: str) -> Any:
    return page.locator(f'#catalog .collector[data-collector-id="{collector_id}"]')


async def activate(page: Page, collector_id: str, login: str, password: str) -> None:
    item = collector(page, collector_id)
    await item.locator("button.activate").click()
    form = item.locator("form")
    await form.get_by_label(re.compile("^(Identifiant|Adresse e-mail)$")).fill(login)
    await form.get_by_label("Mot de passe").fill(password)
    await form.get_by_role("button", name="Valider").click()


def account_card(page: Page, login: str) -> Any:
    return page.locator("#accounts .account").filter(has=page.get_by_role("heading", name=re.compile(re.escape(login))))


# --- the help page, step by step -------------------------------------------------------------------


async def test_activation_shows_the_invoices_as_they_arrive(platform: Platform, context: BrowserContext) -> None:
    page = await signed_in(platform, context, tenant())
    # The catalog, grouped by supplier, each collector with the login it asks for.
    group = page.locator("#catalog .supplier-group").filter(has=page.get_by_role("heading", name="Sandbox Répartition"))
    classic = group.locator('.collector[data-collector-id="sandbox-classic"]')
    await expect(classic).to_contain_text("Demande : Identifiant")
    await expect(collector(page, "sandbox-twostep")).to_contain_text("Demande : Adresse e-mail")
    await expect(collector(page, "sandbox-twostep").locator("input[name=login]")).to_have_attribute("type", "email")
    await expect(page.locator("#invoices-empty")).to_be_visible()

    await activate(page, "sandbox-classic", "officine-web-1", "demo")
    card = account_card(page, "officine-web-1")
    await expect(card).to_be_visible()
    # The invoices come in through the event stream: no reload in this test.
    expected = documents_for("officine-web-1", date.today())
    rows = page.locator("#invoices tbody tr")
    await expect(rows).to_have_count(len(expected))
    await expect(card.locator(".badge")).to_have_text("À jour")
    await expect(card.locator(".invoice-count")).to_have_text(str(len(expected)))
    assert await card.locator(".account-facts dd").first.inner_text() != "jamais"
    numbers = set(await page.locator("#invoices tbody th").all_inner_texts())
    assert numbers == {d.number for d in expected}

    # The download link gives the PDF (same session cookie, through the web service and the scraper).
    href = await rows.first.get_by_role("link").get_attribute("href")
    assert href is not None and href.startswith("/api/v1/invoices/") and href.endswith("/pdf")
    response = await page.request.get(f"{platform.base_url}{href}")
    assert response.status == 200 and (await response.body()).startswith(b"%PDF")
    no_script_errors(page)


async def test_wrong_password_then_modifier_resumes(platform: Platform, context: BrowserContext) -> None:
    page = await signed_in(platform, context, tenant())
    await activate(page, "sandbox-classic", "officine-web-2", "pas-le-bon")
    card = account_card(page, "officine-web-2")
    await expect(card.locator(".badge")).to_have_text("Action requise")
    message = card.locator(".account-message")
    await expect(message).to_contain_text("mot de passe")
    await expect(message).to_contain_text("Modifier")
    await expect(page.locator("#invoices tbody tr")).to_have_count(0)

    await card.get_by_role("button", name="Modifier").click()
    edit = card.locator("form.edit-form")
    await expect(edit.get_by_label("Identifiant")).to_have_value("officine-web-2")
    await edit.get_by_label("Mot de passe").fill("demo")
    await edit.get_by_role("button", name="Valider").click()
    await expect(edit).to_be_hidden()
    expected = documents_for("officine-web-2", date.today())
    await expect(page.locator("#invoices tbody tr")).to_have_count(len(expected))
    await expect(card.locator(".badge")).to_have_text("À jour")
    await expect(message).not_to_contain_text("mot de passe")
    no_script_errors(page)


async def test_two_accounts_on_a_collector_then_the_third_is_refused(
        platform: Platform, context: BrowserContext, tmp_path_factory: pytest.TempPathFactory) -> None:
    page = await signed_in(platform, context, tenant("pharmacie-des-tilleuls"))  # shown in the screenshot
    await activate(page, "sandbox-classic", "officine-web-3a", "demo")
    button = collector(page, "sandbox-classic").locator("button.activate")
    await expect(button).to_have_text("Ajouter un autre compte")  # the second account is offered
    await activate(page, "sandbox-classic", "officine-web-3b", "demo")
    await expect(page.locator("#accounts .account")).to_have_count(2)

    await activate(page, "sandbox-classic", "officine-web-3c", "demo")
    alert = collector(page, "sandbox-classic").get_by_role("alert")
    await expect(alert).to_contain_text("deux comptes")
    await expect(page.locator("#accounts .account")).to_have_count(2)

    total = sum(len(documents_for(login, date.today())) for login in ("officine-web-3a", "officine-web-3b"))
    await expect(page.locator("#invoices tbody tr")).to_have_count(total)
    await expect(page.locator('#accounts .account[data-status="ok"]')).to_have_count(2)
    # The next run, planned by the scheduler once a collection ended, shows without a reload too.
    await page.wait_for_function("""() => [...document.querySelectorAll('#accounts .account-facts')].every(
        (facts) => { const [last, next] = facts.querySelectorAll('dd'); return next.textContent !== last.textContent; }
    )""", timeout=TIMEOUT_MS)
    # The page the README shows: two accounts, their invoices, the request column.
    await collector(page, "sandbox-classic").get_by_role("button", name="Annuler").click()
    await page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
    shot = SCREENSHOT if UPDATE_SCREENSHOT else tmp_path_factory.mktemp("screenshot") / SCREENSHOT.name
    shot.parent.mkdir(exist_ok=True)
    await page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    no_script_errors(page)


async def test_a_requested_collector_becomes_available_and_the_pharmacy_is_told(
        platform: Platform, context: BrowserContext) -> None:
    page = await signed_in(platform, context, tenant())
    side = page.locator("aside")
    await side.get_by_label("Fournisseur").fill("Laboratoire Exemple Web")
    await side.get_by_label("Adresse du portail (facultatif)").fill("https://portail.labo-exemple.fr")
    await side.get_by_label("Commentaire (facultatif)").fill("Factures mensuelles")
    await side.get_by_role("button", name="Envoyer la demande").click()
    request = side.locator("#requests .request").filter(has_text="Laboratoire Exemple Web")
    await expect(request.locator(".badge")).to_have_text("Envoyée")
    await expect(side.locator("#request-ok")).to_have_text("Demande envoyée.")

    # An operator, through the API with its own token, marks it available.
    async with platform.operator() as operator:
        listing = (await operator.get("/api/v1/operator/requests")).json()["requests"]
        [mine] = [r for r in listing if r["supplier"] == "Laboratoire Exemple Web"]
        reply = await operator.post(f"/api/v1/operator/requests/{mine['id']}/status",
                                    json={"status": "available", "collector_id": "sandbox-twostep"})
        assert reply.status_code == 200, reply.text

    await expect(request.locator(".badge")).to_have_text("Disponible")
    notice = side.locator("#notices .notice")
    await expect(notice).to_have_count(1)
    await expect(notice).to_contain_text("Laboratoire Exemple Web")
    no_script_errors(page)


async def test_delete_asks_for_confirmation_and_works_from_the_keyboard(platform: Platform,
                                                                        context: BrowserContext) -> None:
    page = await signed_in(platform, context, tenant())
    await activate(page, "sandbox-classic", "officine-web-4", "demo")
    card = account_card(page, "officine-web-4")
    await expect(card.locator(".badge")).to_have_text("À jour")

    dialog = page.locator("#delete-dialog")
    await card.get_by_role("button", name="Supprimer").focus()
    await page.keyboard.press("Enter")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("officine-web-4")
    await page.keyboard.press("Escape")  # changed their mind: nothing happens
    await expect(dialog).to_be_hidden()
    assert await page.evaluate("document.activeElement.textContent") == "Supprimer"
    await page.reload()  # the server still has the account, not only the page
    await expect(card.locator(".badge")).to_have_text("À jour")

    await card.get_by_role("button", name="Supprimer").focus()
    await page.keyboard.press("Enter")
    await expect(dialog).to_be_visible()
    assert await page.evaluate("document.activeElement.textContent") == "Annuler"  # the safe choice first
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(card).to_have_count(0)
    await expect(page.locator("#accounts-empty")).to_be_visible()
    await page.reload()
    await expect(page.locator("#catalog .collector").first).to_be_visible()
    await expect(page.locator("#accounts .account")).to_have_count(0)
    no_script_errors(page)


# --- around the page ------------------------------------------------------------------------------


async def test_search_filters_the_catalog_as_you_type(platform: Platform, context: BrowserContext) -> None:
    page = await signed_in(platform, context, tenant())
    collectors = page.locator("#catalog .collector")
    everything = await collectors.count()
    assert everything >= 4
    await page.get_by_label("Rechercher un fournisseur ou un collecteur").press_sequentially("etape")
    visible = page.locator("#catalog .collector:visible")
    await expect(visible).to_have_count(1)  # "deux étapes", accents folded
    await expect(visible).to_have_attribute("data-collector-id", "sandbox-twostep")
    await page.get_by_label("Rechercher un fournisseur ou un collecteur").fill("zzz-aucun")
    await expect(visible).to_have_count(0)
    await expect(page.locator("#catalog-empty")).to_have_text("Aucun collecteur ne correspond à votre recherche.")
    await page.get_by_label("Rechercher un fournisseur ou un collecteur").fill("")
    await expect(visible).to_have_count(everything)
    no_script_errors(page)


async def test_english_tablet_width_and_signing_out(platform: Platform, browser: Browser) -> None:
    ctx = await browser.new_context(viewport={"width": 768, "height": 1024})
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = await ctx.new_page()
        response = await page.goto(f"{platform.base_url}/")
        assert response is not None and response.status == 401
        await expect(page.get_by_role("heading", level=1)).to_have_text("Connexion requise")
        assert "script-src 'self'" in (await response.all_headers())["content-security-policy"]

        page = await signed_in(platform, ctx, tenant(), lang="en")
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await expect(collector(page, "sandbox-classic").locator("button.activate")).to_have_text("Activate")
        twostep = collector(page, "sandbox-twostep")
        await expect(twostep).to_contain_text("Asks for: Email address")
        await twostep.get_by_role("button", name="Activate").click()
        login = "comptabilite.grande-pharmacie-centrale@demo.test"  # long: the tables must not widen the page
        await twostep.get_by_label("Email address").fill(login)
        await twostep.get_by_label("Password").fill("demo")
        await twostep.get_by_role("button", name="Confirm").click()
        card = account_card(page, login)
        await expect(card.locator(".badge")).to_have_text("Up to date")
        await expect(page.locator("#invoices tbody tr")).to_have_count(len(documents_for(login, date.today())))
        # At 768 px the request column goes under the page and nothing scrolls sideways.
        main_box = await page.locator("main").bounding_box()
        side_box = await page.locator("aside").bounding_box()
        assert main_box is not None and side_box is not None
        assert side_box["y"] >= main_box["y"] + main_box["height"]
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        no_script_errors(page)
        # Signing out (a POST with the CSRF header) ends the session: the page asks to sign in again.
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in required")
        assert not [c for c in await ctx.cookies() if c["name"] == "collectors_session"]
    finally:
        await ctx.close()


# WCAG 2.x contrast, computed from the standard's definitions (relative luminance of sRGB, large text
# = 24 px, or 18.66 px bold), on every visible element that holds text of its own.
CONTRAST_FAILURES = """() => {
  const rgba = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const failures = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.checkVisibility() || el.disabled) continue;
    const style = getComputedStyle(el);
    const fg = lum(rgba(style.color)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const what = `${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}"`;
    if (ratio < needed) failures.push(`${what} ${ratio.toFixed(2)}`);
  }
  return failures;
}"""


async def test_keyboard_only_and_contrast(platform: Platform, context: BrowserContext) -> None:
    page = await signed_in(platform, context, tenant())
    # From the search box, Tab reaches the two-step collector's "Activer", with a visible focus ring.
    await page.get_by_label("Rechercher un fournisseur ou un collecteur").focus()
    target = collector(page, "sandbox-twostep").locator("button.activate")
    for _ in range(20):
        await page.keyboard.press("Tab")
        if await target.evaluate("(b) => b === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the collector's Activer button")
    ring = await target.evaluate("(b) => [getComputedStyle(b).outlineStyle, getComputedStyle(b).outlineWidth]")
    assert ring == ["solid", "3px"], ring
    await page.keyboard.press("Enter")  # opens the form, the login field focused
    await page.keyboard.type("compta@pharmacie.example")
    await page.keyboard.press("Tab")
    await page.keyboard.type("pas-le-bon")
    await page.keyboard.press("Enter")
    card = account_card(page, "compta@pharmacie.example")
    await expect(card.locator(".badge")).to_have_text("Action requise")

    # Two more states on the page, each with its badge: the portal down, terms to accept on the portal.
    await activate(page, "sandbox-classic", "fault-maintenance-1", "demo")
    await activate(page, "sandbox-classic", "fault-terms-1", "demo")
    await expect(account_card(page, "fault-maintenance-1").locator(".badge")).to_have_text("Nouvel essai prévu")
    terms = account_card(page, "fault-terms-1")
    await expect(terms.locator(".badge")).to_have_text("Action requise")
    # Once done on the portal, "Relancer" asks for a collection now (not offered after a bad password).
    await expect(card.get_by_role("button", name="Relancer")).to_be_hidden()
    async with page.expect_response(lambda r: "/retry" in r.url and r.request.method == "POST") as retried:
        await terms.get_by_role("button", name="Relancer").click()
    assert (await retried.value).status == 200

    # What the pharmacy typed comes back from the API as text, never as markup.
    typed = '<img src=x onerror="window.injected=1">Laboratoire <b>Contraste</b>'
    await page.locator("aside").get_by_label("Fournisseur").fill(typed)
    await page.locator("aside").get_by_role("button", name="Envoyer la demande").click()
    await expect(page.locator("#requests .request-supplier")).to_have_text(typed)
    assert await page.locator("#requests img, #requests b").count() == 0
    assert await page.evaluate("window.injected === undefined")
    assert await page.evaluate(CONTRAST_FAILURES) == []
    no_script_errors(page)
