"""Why a collection failed, read from what its page shows: the same rules for every collector.

A collector that stops because an element is missing usually stopped in front of something else:
a maintenance page, a captcha, terms to accept, a one-time code form... This module recognises those
pages (in French and English) and the HTTP answers that came with them. It is pure: evidence in,
diagnosis out, so every rule is unit-tested on saved pages.

What a page says is read outside its chrome (menus, footers, cookie banners: ``PageFacts.content``),
with its title and headings apart, and together with its form fields: a password form with a "new" or
"confirm" field, a short one-time-code input, a checkbox and an accept button. The phrases, grouped by
meaning, are in ``fault_phrases``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from services.scraper import fault_phrases as P
from services.scraper.kit.html import PageFacts, looks_like_login_page, page_facts
from services.scraper.kit.http import retry_after_seconds
from services.scraper.kit.witness import Evidence, HttpSeen
from shared.errors import CollectionErrorCode as Code


@dataclass(frozen=True)
class Diagnosis:
    code: Code
    detail: str
    retry_after_s: float | None = None


class _SessionExpired:
    def __repr__(self) -> str:
        return "SESSION_EXPIRED"


# The page is a login form although the collector had logged in: log in again and carry on.
SESSION_EXPIRED: Final = _SessionExpired()


def _says(text: str, patterns: tuple[re.Pattern[str], ...]) -> bool:
    return any(pattern.search(text) for pattern in patterns)


def _is_captcha(facts: PageFacts) -> bool:
    """A captcha widget, recognised by its markup or script even when the page says nothing about it."""
    return (any(P.CAPTCHA_MARKERS.search(marker) for marker in facts.markers)
            or any(P.CAPTCHA_SOURCES.search(src.lower()) for src in (*facts.iframe_sources, *facts.script_sources))
            or _says(facts.content, P.CAPTCHA_TEXT))


def _blocked(facts: PageFacts) -> Code | None:
    """Locked out: for good (account_locked), or until a delay runs out (rate_limited, like too many tries)."""
    if _says(facts.content, P.LOCKED) and not _says(facts.content, P.UNTIL_ACTION):
        return Code.RATE_LIMITED if _says(facts.content, P.TEMPORARY) else Code.ACCOUNT_LOCKED
    return Code.RATE_LIMITED if _says(facts.content, P.TOO_MANY) else None


def _password_fields(facts: PageFacts) -> list[dict[str, str]]:
    return [i for i in facts.inputs if i.get("type", "").lower() == "password"]


def _asks_new_password(facts: PageFacts) -> bool:
    """The password ran out, or a form wants a new one (a login form has a single password field)."""
    if _says(facts.content, P.PASSWORD_EXPIRED):
        return True
    fields = _password_fields(facts)
    if not fields:
        return False
    if _says(facts.content, P.PASSWORD_CHANGE):
        return True
    names = [f"{i.get('name', '')} {i.get('id', '')} {i.get('autocomplete', '')}".lower() for i in fields]
    return len(fields) >= 2 and any(P.NEW_PASSWORD_FIELD.search(name) for name in names[1:])


def _code_inputs(facts: PageFacts) -> list[dict[str, str]]:
    """Visible inputs that may take a short code (text, tel, number)."""
    return [i for i in facts.inputs if i.get("type", "text").lower() in ("text", "tel", "number", "")]


def _asks_for_otp(facts: PageFacts) -> bool:
    """A one-time code input (by its autocomplete or name), or a single short code field with the words."""
    inputs = _code_inputs(facts)
    if any(i.get("autocomplete", "").lower() == "one-time-code" or P.OTP_INPUT_NAMES.search(i.get("name", "").lower())
           for i in inputs):
        return True
    if not _says(facts.content, P.OTP_TEXT):
        return False
    # The words alone, without a password field: not a login form that merely mentions a code.
    return not _password_fields(facts)


def _asks_to_accept_terms(facts: PageFacts) -> bool:
    """Terms (or a data-processing consent) named outside the chrome, and words, or a checkbox and a button,
    to accept them with. A login form's "remember me" box next to a "Terms" link is not that."""
    if not _says(facts.content, P.TERMS_TOPIC):
        return False
    if _says(f"{facts.content} {' '.join(facts.buttons)}", P.ACCEPT):
        return True
    has_checkbox = any(i.get("type", "").lower() == "checkbox" for i in facts.inputs)
    return has_checkbox and bool(facts.buttons) and not _password_fields(facts)


def _is_outage(facts: PageFacts) -> bool:
    """Maintenance, a planned outage or a server error page, whatever status it was served with."""
    return (_says(facts.headline, P.OUTAGE_HEADLINE)
            or _says(facts.content, P.MAINTENANCE + P.UNAVAILABLE + P.SERVER_ERROR))


def _http_failure(evidence: Evidence) -> Diagnosis | None:
    answers: list[HttpSeen] = [*evidence.api_errors]
    if evidence.document is not None:
        answers.append(evidence.document)
    for seen in answers:
        if seen.status == 429:
            return Diagnosis(Code.RATE_LIMITED, f"HTTP 429 from {seen.url}", retry_after_seconds(seen.retry_after))
    for seen in answers:
        if seen.status >= 500:
            return Diagnosis(Code.SUPPLIER_UNAVAILABLE, f"HTTP {seen.status} from {seen.url}",
                             retry_after_seconds(seen.retry_after))
    return None


def diagnose(evidence: Evidence) -> Diagnosis | _SessionExpired | None:
    """What stopped the collection, or None when the page explains nothing (the portal changed)."""
    facts = page_facts(evidence.html)
    where = f" (at {evidence.url})" if evidence.url else ""
    http = _http_failure(evidence)
    if http is not None and http.code is Code.RATE_LIMITED:
        return http
    if _is_captcha(facts):
        return Diagnosis(Code.RATE_LIMITED, f"captcha challenge{where}")
    if http is not None:
        return http
    # Then what the page asks of the account, before its words about the service: a password change
    # or a code form may well mention a "problème technique"; a maintenance page asks nothing.
    blocked = _blocked(facts)
    if blocked is Code.RATE_LIMITED:
        return Diagnosis(Code.RATE_LIMITED, f"too many attempts page{where}")
    if blocked is Code.ACCOUNT_LOCKED:
        return Diagnosis(Code.ACCOUNT_LOCKED, f"account locked page{where}")
    if _asks_new_password(facts):
        return Diagnosis(Code.PASSWORD_EXPIRED, f"password change required{where}")
    if _asks_for_otp(facts):
        return Diagnosis(Code.TWO_FACTOR_REQUIRED, f"one-time code required{where}")
    if _asks_to_accept_terms(facts):
        return Diagnosis(Code.ACTION_REQUIRED_ON_SITE, f"terms to accept{where}")
    if _is_outage(facts):
        return Diagnosis(Code.SUPPLIER_UNAVAILABLE, f"maintenance or error page{where}")
    if looks_like_login_page(facts):
        if evidence.logged_in:
            return SESSION_EXPIRED
        if _says(facts.content, P.BAD_CREDENTIALS):
            return Diagnosis(Code.LOGIN_FAILED, f"login rejected{where}")
    return None
