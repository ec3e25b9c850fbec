"""The three portal styles over HTTP: logins, pages, CSRF, cookie consent and every fault mode's
answer (statuses, Retry-After, blocker pages)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import aiohttp
import pytest

from sandbox.data import documents_for
from sandbox.faults import RETRY_AFTER_S, broken_numbers
from sandbox.portal import SandboxPortal, start_portal

TODAY = date(2026, 3, 15)


@pytest.fixture
async def portal() -> AsyncIterator[SandboxPortal]:
    p = await start_portal(today=TODAY, slow_s=0.2)
    yield p
    await p.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe: keep cookies of an IP-address host (the portal listens on 127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def classic_login(portal: SandboxPortal, http: aiohttp.ClientSession, login: str,
                        password: str = "demo") -> aiohttp.ClientResponse:
    return await http.post(f"{portal.url}/classic/login", data={"login": login, "password": password})


async def test_index_lists_the_three_styles(portal: SandboxPortal, http: aiohttp.ClientSession) -> None:
    html = await (await http.get(portal.url + "/")).text()
    for prefix in ("classic", "twostep", "spa"):
        assert f'href="/{prefix}/"' in html
    assert "fault-MODE-" in html


async def test_classic_supplier_side_faults(portal: SandboxPortal, http: aiohttp.ClientSession) -> None:
    limited = await classic_login(portal, http, "fault-rate_limited-1")
    assert limited.status == 429 and limited.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert (await classic_login(portal, http, "fault-server_error-1")).status == 500
    maintenance = await classic_login(portal, http, "fault-maintenance-1")
    assert maintenance.status == 200 and "Maintenance en cours" in await maintenance.text()
    captcha = await classic_login(portal, http, "fault-captcha-1")
    assert "pas un robot" in await captcha.text()


@pytest.mark.parametrize("mode", ["password_expired", "terms", "otp"])
async def test_classic_account_side_faults_block_every_page(portal: SandboxPortal, http: aiohttp.ClientSession,
                                                            mode: str) -> None:
    response = await classic_login(portal, http, f"fault-{mode}-1")
    assert response.url.path == f"/classic/account/{mode}"
    again = await http.get(f"{portal.url}/classic/invoices")
    assert again.url.path == f"/classic/account/{mode}"


async def test_classic_wrong_password_and_layout_change(portal: SandboxPortal, http: aiohttp.ClientSession) -> None:
    wrong = await classic_login(portal, http, "fault-terms-1", "nope")
    assert 'id="login-error"' in await wrong.text()
    renamed = await (await classic_login(portal, http, "fault-layout_changed-1")).text()
    assert 'id="invoice-list"' in renamed and 'id="invoices"' not in renamed and 'class="invoice-row"' not in renamed


async def test_classic_broken_download(portal: SandboxPortal, http: aiohttp.ClientSession) -> None:
    login = "fault-broken_download-1"
    await classic_login(portal, http, login)
    broken = broken_numbers(login, TODAY)
    statuses = {}
    for doc in documents_for(login, TODAY)[:6]:
        reply = await http.get(f"{portal.url}/classic/invoices/{doc.number}.pdf")
        statuses[doc.number] = (reply.status, (await reply.read())[:4])
    assert {n for n, (status, _) in statuses.items() if status == 500} == broken & set(statuses)
    assert all(body == b"%PDF" for status, body in statuses.values() if status == 200)


async def test_classic_session_expiry_logs_out_mid_run(portal: SandboxPortal, http: aiohttp.ClientSession) -> None:
    login = "fault-session_expiry-1"
    first = await classic_login(portal, http, login)
    assert first.url.path == "/classic/invoices"  # request 1 of the session
    docs = documents_for(login, TODAY)
    for doc in docs[:3]:
        assert (await http.get(f"{portal.url}/classic/invoices/{doc.number}.pdf")).status == 200
    gone = await http.get(f"{portal.url}/classic/invoices/{docs[3].number}.pdf")
    assert gone.url.path == "/classic/login"
    await classic_login(portal, http, login)
    for doc in docs:
        assert (await http.get(f"{portal.url}/classic/invoices/{doc.number}.pdf")).status == 200


async def test_twostep_needs_a_cookie_choice_then_two_pages(portal: SandboxPortal,
                                                            http: aiohttp.ClientSession) -> None:
    login = "pharma-42@pharmacie.test"
    refused = await http.post(f"{portal.url}/twostep/login", data={"username": login})
    assert "cookies" in await refused.text() and refused.url.path == "/twostep/login"
    http.cookie_jar.update_cookies({"ts_consent": "necessary"})
    step1 = await http.post(f"{portal.url}/twostep/login", data={"username": login})
    assert step1.url.path == "/twostep/login/password" and login in await step1.text()
    wrong = await http.post(f"{portal.url}/twostep/login/password", data={"password": "nope"})
    assert 'id="password-error"' in await wrong.text()
    ok = await http.post(f"{portal.url}/twostep/login/password", data={"password": "demo"})
    page = await ok.text()
    assert ok.url.path == "/twostep/documents" and 'id="account-menu"' in page
    assert page.count('class="document"') == 8 and "\u2212" in (page + await (await http.get(
        f"{portal.url}/twostep/documents?page=2")).text())  # credit notes carry a minus sign


async def test_twostep_faults(portal: SandboxPortal, http: aiohttp.ClientSession) -> None:
    http.cookie_jar.update_cookies({"ts_consent": "all"})

    async def identify(login: str) -> aiohttp.ClientResponse:
        return await http.post(f"{portal.url}/twostep/login", data={"username": login})

    assert (await identify("fault-maintenance-1@x.fr")).status == 503
    limited = await identify("fault-rate_limited-1@x.fr")
    assert limited.status == 429 and limited.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert "pas un robot" in await (await identify("fault-captcha-1@x.fr")).text()
    renamed = await (await identify("fault-layout_changed-1@x.fr")).text()
    assert 'name="secret"' in renamed and 'name="password"' not in renamed
    await identify("fault-otp-1@x.fr")
    otp = await http.post(f"{portal.url}/twostep/login/password", data={"password": "demo"})
    assert otp.url.path == "/twostep/account/otp" and "one-time-code" in await otp.text()


async def spa_login(portal: SandboxPortal, http: aiohttp.ClientSession, login: str,
                    password: str = "demo") -> tuple[int, dict[str, Any]]:
    session = await (await http.get(f"{portal.url}/spa/api/session")).json()
    reply = await http.post(f"{portal.url}/spa/api/login", json={"login": login, "password": password},
                            headers={"X-CSRF-Token": session["csrf_token"]})
    return reply.status, await reply.json()


async def test_spa_shell_and_csrf(portal: SandboxPortal, http: aiohttp.ClientSession) -> None:
    shell = await (await http.get(f"{portal.url}/spa/")).text()
    assert 'src=' not in shell and "X-CSRF-Token" in shell and "{{" not in shell
    await http.get(f"{portal.url}/spa/api/session")
    forged = await http.post(f"{portal.url}/spa/api/login", json={"login": "a", "password": "demo"},
                             headers={"X-CSRF-Token": "forged"})
    assert forged.status == 403 and (await forged.json())["error"] == "csrf_failed"
    status, body = await spa_login(portal, http, "pharma-42")
    assert status == 200 and body["next"] is None
    token = body["csrf_token"]
    assert (await http.get(f"{portal.url}/spa/api/invoices")).status == 403  # no token, no data
    listing = await (await http.get(f"{portal.url}/spa/api/invoices?page=2",
                                    headers={"X-CSRF-Token": token})).json()
    assert listing["page"] == 2 and listing["total"] == len(documents_for("pharma-42", TODAY))
    pdf = await http.get(portal.url + listing["items"][0]["pdf_url"], headers={"X-CSRF-Token": token})
    assert (await pdf.read()).startswith(b"%PDF")


async def test_spa_faults(portal: SandboxPortal, http: aiohttp.ClientSession) -> None:
    assert await spa_login(portal, http, "pharma-1", "nope") == (
        401, {"error": "invalid_credentials", "message": "Identifiant ou mot de passe incorrect."})
    status, body = await spa_login(portal, http, "fault-captcha-1")
    assert (status, body["error"]) == (403, "captcha_required")
    for mode in ("password_expired", "terms", "otp"):
        status, body = await spa_login(portal, http, f"fault-{mode}-1")
        assert status == 200 and body["next"] == mode
    for mode, expected in (("maintenance", 503), ("server_error", 500), ("rate_limited", 429)):
        _, body = await spa_login(portal, http, f"fault-{mode}-1")
        reply = await http.get(f"{portal.url}/spa/api/invoices", headers={"X-CSRF-Token": body["csrf_token"]})
        assert reply.status == expected
        if mode == "rate_limited":
            assert reply.headers["Retry-After"] == str(RETRY_AFTER_S)
    _, body = await spa_login(portal, http, "fault-layout_changed-1")
    renamed = await (await http.get(f"{portal.url}/spa/api/invoices",
                                    headers={"X-CSRF-Token": body["csrf_token"]})).json()
    assert "number" not in renamed["items"][0] and "ref" in renamed["items"][0]
