"""Why a collection failed, read from what its page shows: the same rules for every collector.

A collector that stops because an element is missing usually stopped in front of something else:
a maintenance page, a captcha, terms to accept, a one-time code form... This module recognises those
pages (in French and English) and the HTTP answers that came with them. It is pure: evidence in,
diagnosis out, so every rule is unit-tested on saved pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

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

# Phrases are compared on folded text (lower-case, no accents).
MAINTENANCE = ("maintenance en cours", "en maintenance", "cause de maintenance", "operation de maintenance",
               "temporairement indisponible", "momentanement indisponible", "service indisponible",
               "site indisponible", "under maintenance", "maintenance in progress",
               "temporarily unavailable", "service unavailable")
TOO_MANY = ("trop de requetes", "trop de tentatives de connexion", "too many requests")
CAPTCHA_TEXT = ("je ne suis pas un robot", "i'm not a robot", "i am not a robot", "captcha",
                "verifiez que vous etes humain", "verify you are human")
CAPTCHA_SOURCES = ("recaptcha", "hcaptcha", "turnstile", "captcha")
PASSWORD_EXPIRED = ("mot de passe a expire", "mot de passe est expire", "mot de passe expire",
                    "renouveler votre mot de passe", "password has expired", "password expired",
                    "password is expired")
OTP_TEXT = ("code de verification", "code a usage unique", "verification en deux etapes",
            "double authentification", "authentification a deux facteurs", "code recu par sms",
            "two-factor", "2-step verification", "verification code", "one-time code")
OTP_INPUT_NAMES = frozenset({"otp", "totp", "mfa", "mfa_code", "otp_code", "code_otp", "verification_code",
                             "2fa", "one_time_code"})
TERMS = ("conditions generales", "conditions d'utilisation", "cgu", "cgv", "terms of use",
         "terms and conditions", "terms of service")
ACCEPT = ("j'accepte", "accepter", "acceptez", "i agree", "i accept", "accept the", "agree to")
LOCKED = ("compte bloque", "compte verrouille", "compte suspendu", "compte a ete bloque",
          "account locked", "account is locked", "account has been locked", "account suspended")
BAD_CREDENTIALS = ("mot de passe incorrect", "identifiant ou mot de passe incorrect",
                   "identifiants incorrects", "identifiants invalides", "mot de passe errone",
                   "invalid credentials", "incorrect password", "invalid password",
                   "invalid username or password", "incorrect username or password")


def _has(text: str, phrases: tuple[str, ...]) -> bool:
    return any(phrase in text for phrase in phrases)


def _is_captcha(facts: PageFacts) -> bool:
    return (_has(facts.text, CAPTCHA_TEXT)
            or any("captcha" in marker for marker in facts.markers)
            or any(any(s in src.lower() for s in CAPTCHA_SOURCES) for src in facts.iframe_sources))


def _asks_for_otp(facts: PageFacts) -> bool:
    return (any(i.get("autocomplete", "").lower() == "one-time-code"
                or i.get("name", "").lower() in OTP_INPUT_NAMES for i in facts.inputs)
            or _has(facts.text, OTP_TEXT))


def _asks_new_password(facts: PageFacts) -> bool:
    return _has(facts.text, PASSWORD_EXPIRED)


def _asks_to_accept_terms(facts: PageFacts) -> bool:
    words = set(facts.text.replace("'", " ").split())
    mentions_terms = any(p in facts.text for p in TERMS if " " in p) or bool(words & {"cgu", "cgv"})
    return mentions_terms and _has(facts.text, ACCEPT)


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
    if _has(facts.text, MAINTENANCE):
        return Diagnosis(Code.SUPPLIER_UNAVAILABLE, f"maintenance page{where}")
    if _has(facts.text, TOO_MANY):
        return Diagnosis(Code.RATE_LIMITED, f"too many requests page{where}")
    if _has(facts.text, LOCKED):
        return Diagnosis(Code.ACCOUNT_LOCKED, f"account locked page{where}")
    if _asks_new_password(facts):
        return Diagnosis(Code.PASSWORD_EXPIRED, f"password change required{where}")
    if _asks_for_otp(facts):
        return Diagnosis(Code.TWO_FACTOR_REQUIRED, f"one-time code required{where}")
    if _asks_to_accept_terms(facts):
        return Diagnosis(Code.ACTION_REQUIRED_ON_SITE, f"terms to accept{where}")
    if looks_like_login_page(facts):
        if evidence.logged_in:
            return SESSION_EXPIRED
        if _has(facts.text, BAD_CREDENTIALS):
            return Diagnosis(Code.LOGIN_FAILED, f"login rejected{where}")
    return None
