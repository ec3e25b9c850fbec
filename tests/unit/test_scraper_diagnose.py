"""The framework reads a failed collection's page: each sandbox fault page, saved, gets its code."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.scraper.diagnose import SESSION_EXPIRED, Diagnosis, diagnose
from services.scraper.kit.witness import Evidence, HttpSeen
from shared.errors import CollectionErrorCode as C

FAULTS = Path(__file__).parent / "fixtures" / "sandbox_faults"
CLASSIC = Path(__file__).parent / "fixtures" / "sandbox_classic"


def page(name: str, folder: Path = FAULTS) -> str:
    return (folder / name).read_text(encoding="utf-8")


def code_of(html: str, **evidence: object) -> C | None:
    found = diagnose(Evidence(html=html, url="http://portal.test/x", **evidence))  # type: ignore[arg-type]
    return found.code if isinstance(found, Diagnosis) else None


@pytest.mark.parametrize(("name", "code"), [
    ("classic_maintenance.html", C.SUPPLIER_UNAVAILABLE),
    ("classic_captcha.html", C.RATE_LIMITED),
    ("classic_terms.html", C.ACTION_REQUIRED_ON_SITE),
    ("twostep_terms.html", C.ACTION_REQUIRED_ON_SITE),
    ("classic_otp.html", C.TWO_FACTOR_REQUIRED),
    ("classic_password_expired.html", C.PASSWORD_EXPIRED),
    ("classic_rate_limited.html", C.RATE_LIMITED),
    ("classic_login_error.html", C.LOGIN_FAILED),
])
def test_fault_pages_explain_the_failure(name: str, code: C) -> None:
    assert code_of(page(name)) is code


@pytest.mark.parametrize("name", ["classic_layout_changed.html", "classic_login.html"])
def test_a_changed_or_plain_page_explains_nothing(name: str) -> None:
    assert diagnose(Evidence(html=page(name))) is None


def test_ordinary_list_pages_explain_nothing() -> None:
    for name in ("invoices_page1.html", "invoices_last.html", "invoices_no_table.html"):
        assert diagnose(Evidence(html=page(name, CLASSIC), logged_in=True)) is None


def test_http_answers_come_first_and_carry_retry_after() -> None:
    limited = diagnose(Evidence(html=page("classic_login.html"),
                                document=HttpSeen("http://p/login", 429, "90")))
    assert isinstance(limited, Diagnosis) and (limited.code, limited.retry_after_s) == (C.RATE_LIMITED, 90.0)
    down = diagnose(Evidence(html="<p>Oups</p>", api_errors=[HttpSeen("http://p/api/invoices", 502)]))
    assert isinstance(down, Diagnosis) and down.code is C.SUPPLIER_UNAVAILABLE and "api/invoices" in down.detail
    assert code_of(page("classic_server_error.html"), document=HttpSeen("http://p/login", 500)) is \
        C.SUPPLIER_UNAVAILABLE


def test_a_login_page_after_logging_in_means_the_session_expired() -> None:
    assert diagnose(Evidence(html=page("classic_login.html"), logged_in=True)) is SESSION_EXPIRED
    identifier_only = '<form action="/login"><input name="username" autocomplete="username"></form>'
    assert diagnose(Evidence(html=identifier_only, logged_in=True)) is SESSION_EXPIRED
    assert diagnose(Evidence(html=identifier_only, logged_in=False)) is None


def test_footer_words_do_not_fool_it() -> None:
    html = """<main><table id="x"><tr><td>Facture</td></tr></table></main>
    <footer><a href="/cgu">CGU</a> · Mentions légales · Maintenance programmée le 12 mai
    <script>var captcha = null;</script></footer>"""
    assert diagnose(Evidence(html=html, logged_in=True)) is None


def test_english_portals_too() -> None:
    assert code_of("<h1>We'll be back soon</h1><p>The site is under maintenance.</p>") is C.SUPPLIER_UNAVAILABLE
    assert code_of('<p>Enter the verification code we sent you</p><input name="code">') is C.TWO_FACTOR_REQUIRED
    assert code_of("<p>Your password has expired.</p>") is C.PASSWORD_EXPIRED
    assert code_of('<p>Please accept the terms of use</p><input type="checkbox"> I agree') is \
        C.ACTION_REQUIRED_ON_SITE
    assert code_of('<iframe src="https://www.google.com/recaptcha/api2/anchor"></iframe>') is C.RATE_LIMITED
    assert code_of("<p>Your account is locked after too many attempts.</p>") is C.ACCOUNT_LOCKED
