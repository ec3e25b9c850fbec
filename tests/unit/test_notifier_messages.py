"""What the pharmacist reads in a notification, in French and English, and the preference checks."""

from __future__ import annotations

import pytest

from services.notifier import messages
from services.notifier.preferences import validate_emails, validate_webhook_url
from shared.errors import USER_FIXABLE, CollectionErrorCode, ValidationFailed

FIXABLE = sorted(USER_FIXABLE)

# What each user-fixable error tells the pharmacist to do, in each language.
ACTION = {
    CollectionErrorCode.LOGIN_FAILED: ("mettez à jour votre mot de passe dans Collecteurs → Modifier",
                                       "update your password in Collectors → Edit"),
    CollectionErrorCode.PASSWORD_EXPIRED: ("mettez à jour votre mot de passe dans Collecteurs → Modifier",
                                           "update your password in Collectors → Edit"),
    CollectionErrorCode.ACCOUNT_LOCKED: ("débloquer", "unlock"),
    CollectionErrorCode.ACTION_REQUIRED_ON_SITE: ("conditions à accepter", "terms to accept"),
    CollectionErrorCode.TWO_FACTOR_REQUIRED: ("validation en deux étapes", "two-step verification"),
}


def test_every_user_fixable_code_has_its_own_action() -> None:
    assert set(ACTION) == USER_FIXABLE


@pytest.mark.parametrize("code", FIXABLE)
def test_action_required_in_french(code: CollectionErrorCode) -> None:
    r = messages.action_required(code, "pharma@example.fr", "OCP", "fr")
    assert r.subject == "Action requise – OCP, pharma@example.fr"
    assert "« pharma@example.fr »" in r.body
    assert "vos factures OCP" in r.body
    assert ACTION[code][0].lower() in r.body.lower()
    assert r.body.startswith("Bonjour")
    assert "Collectors" not in r.body  # no English leaking into the French text


@pytest.mark.parametrize("code", FIXABLE)
def test_action_required_in_english(code: CollectionErrorCode) -> None:
    r = messages.action_required(code, "pharma@example.fr", "OCP", "en")
    assert r.subject == "Action required – OCP, pharma@example.fr"
    assert "“pharma@example.fr”" in r.body
    assert "your OCP invoices" in r.body
    assert ACTION[code][1].lower() in r.body.lower()
    assert "Collecteurs" not in r.body


@pytest.mark.parametrize("code", FIXABLE)
def test_each_error_says_what_happened_differently(code: CollectionErrorCode) -> None:
    bodies = {c: messages.action_required(c, "x", "OCP", "fr").body for c in FIXABLE}
    assert list(bodies.values()).count(bodies[code]) == 1


def test_login_failed_french_text() -> None:
    body = messages.action_required(CollectionErrorCode.LOGIN_FAILED, "12345", "Alliance", "fr").body
    assert body == (
        "Bonjour,\n\nNous ne pouvons plus récupérer vos factures Alliance pour le compte « 12345 » : "
        "le portail du fournisseur a refusé l'identifiant ou le mot de passe.\n\n"
        "Mettez à jour votre mot de passe dans Collecteurs → Modifier : la collecte reprendra aussitôt.\n\n"
        "D'ici là, la collecte de ce compte est en pause."
    )


def test_french_is_the_default() -> None:
    assert messages.action_required(CollectionErrorCode.LOGIN_FAILED, "a", "OCP") == \
        messages.action_required(CollectionErrorCode.LOGIN_FAILED, "a", "OCP", "fr")
    assert messages.recovered("a", "OCP") == messages.recovered("a", "OCP", "fr")


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_unknown_or_missing_code_gets_a_generic_message(lang: str) -> None:
    for code in (None, CollectionErrorCode.INTERNAL_ERROR):
        r = messages.action_required(code, "a", "OCP", lang)
        assert ("Collecteurs" if lang == "fr" else "Collectors") in r.body


def test_missing_login_and_collector_read_naturally() -> None:
    fr = messages.action_required(CollectionErrorCode.LOGIN_FAILED, "", "", "fr")
    assert fr.subject == "Action requise"
    assert "récupérer vos factures pour votre compte :" in fr.body
    en = messages.recovered("", "", "en")
    assert en.subject == "Collection restored"
    assert "of your invoices for your account works again" in en.body


def test_recovered_in_french_and_english() -> None:
    fr = messages.recovered("pharma@example.fr", "OCP", "fr")
    assert fr.subject == "Collecte rétablie – OCP, pharma@example.fr"
    assert "fonctionne à nouveau" in fr.body
    assert "« pharma@example.fr »" in fr.body
    en = messages.recovered("pharma@example.fr", "OCP", "en")
    assert en.subject == "Collection restored – OCP, pharma@example.fr"
    assert "works again" in en.body
    assert "no action is needed" in en.body


# --- the other notifications ----------------------------------------------------------------------

LANGS = ["fr", "en"]
ENGLISH_ONLY = ("Collectors", "Hello", "Good news")
FRENCH_ONLY = ("Collecteurs", "Bonjour", "Bonne nouvelle")


def _one_language(r: messages.Rendered, lang: str) -> None:
    """No words of the other language leak into a message."""
    for word in (ENGLISH_ONLY if lang == "fr" else FRENCH_ONLY):
        assert word not in r.subject + r.body, (lang, word)


@pytest.mark.parametrize("lang", LANGS)
def test_reminder_names_the_account_the_duration_and_what_to_do(lang: str) -> None:
    r = messages.action_required_reminder(CollectionErrorCode.LOGIN_FAILED, "officine-42", "OCP", 7, lang)
    assert "OCP" in r.subject and "officine-42" in r.subject
    assert ("7 jours" if lang == "fr" else "7 days") in r.body
    assert ACTION[CollectionErrorCode.LOGIN_FAILED][0 if lang == "fr" else 1].lower() in r.body.lower()
    _one_language(r, lang)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("code", ["supplier_unavailable", "rate_limited", "interface_changed", "download_failed",
                                  "internal_error", None])
def test_transient_failure_says_nothing_is_to_be_done(lang: str, code: str | None) -> None:
    r = messages.transient_failure(code, "officine-42", "OCP", 25, lang)
    assert r.subject == ("Collecte interrompue – OCP, officine-42" if lang == "fr"
                         else "Collection interrupted – OCP, officine-42")
    assert ("plus de 25 heures" if lang == "fr" else "more than 25 hours") in r.body
    assert ("Vous n'avez rien à faire" if lang == "fr" else "You have nothing to do") in r.body
    reminder = messages.transient_failure(code, "officine-42", "OCP", 72, lang, reminder=True)
    assert ("3 jours" if lang == "fr" else "3 days") in reminder.body
    assert reminder.subject != r.subject
    _one_language(r, lang)
    _one_language(reminder, lang)


def test_transient_failures_explain_the_cause() -> None:
    bodies = {code: messages.transient_failure(code, "a", "OCP", 30, "fr").body
              for code in ("supplier_unavailable", "rate_limited", "interface_changed")}
    assert len(set(bodies.values())) == 3
    assert "indisponible" in bodies["supplier_unavailable"]


@pytest.mark.parametrize("lang", LANGS)
def test_incident_notices_name_the_supplier_and_every_account(lang: str) -> None:
    r = messages.incident_declared(CollectionErrorCode.INTERFACE_CHANGED, "OCP", ["12345", "67890"], lang)
    assert r.subject == ("Incident fournisseur – OCP" if lang == "fr" else "Supplier incident – OCP")
    assert "12345" in r.body and "67890" in r.body
    one = messages.incident_declared(CollectionErrorCode.SUPPLIER_UNAVAILABLE, "OCP", ["12345"], lang)
    assert ("le compte « 12345 »" if lang == "fr" else "the account “12345”") in one.body
    over = messages.incident_resolved("OCP", ["12345"], lang)
    assert "OCP" in over.subject and "12345" in over.body
    for msg in (r, one, over):
        _one_language(msg, lang)


def test_request_available_gives_the_words_to_activate_it() -> None:
    fr = messages.request_available("labo gilbert", "Laboratoires Gilbert", "Gilbert — espace pro", "email", "fr")
    assert fr.subject == "Collecteur disponible – labo gilbert"
    assert ("ouvrez Collecteurs, choisissez le portail « Laboratoires Gilbert » puis le collecteur "
            "« Gilbert — espace pro », saisissez votre adresse e-mail et votre mot de passe") in fr.body
    assert "Valider" in fr.body
    en = messages.request_available("labo gilbert", "Laboratoires Gilbert", "Gilbert", "identifier", "en")
    assert "open Collectors" in en.body and "enter your login and your password" in en.body
    _one_language(fr, "fr")
    _one_language(en, "en")


@pytest.mark.parametrize("lang", LANGS)
def test_request_rejected_gives_the_reason(lang: str) -> None:
    r = messages.request_rejected("Labo X", "Le portail ne publie pas de factures.", lang)
    assert "Labo X" in r.subject
    assert "Le portail ne publie pas de factures." in r.body
    _one_language(r, lang)


def test_an_unknown_language_falls_back_to_french() -> None:
    assert messages.recovered("a", "OCP", "de") == messages.recovered("a", "OCP", "fr")


# --- preference checks ----------------------------------------------------------------------------


def test_emails_are_trimmed_and_deduplicated() -> None:
    assert validate_emails([" a@example.fr ", "A@example.fr", "b@example.com"], "fr") == [
        "a@example.fr", "b@example.com"]
    assert validate_emails([], "fr") == []


@pytest.mark.parametrize("bad", ["not-an-email", "a@b", "a@@b.fr", "a b@c.fr", "@c.fr", "a@.fr"])
def test_implausible_emails_are_refused(bad: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        validate_emails(["ok@example.fr", bad], "fr")
    assert err.value.field == "emails"
    assert err.value.message == f"L'adresse e-mail « {bad} » n'est pas valide."


def test_at_most_five_emails() -> None:
    validate_emails([f"p{i}@example.fr" for i in range(5)], "fr")
    with pytest.raises(ValidationFailed) as err:
        validate_emails([f"p{i}@example.fr" for i in range(6)], "en")
    assert err.value.message == "You can give at most 5 email addresses."


def test_empty_email() -> None:
    with pytest.raises(ValidationFailed) as err:
        validate_emails(["  "], "fr")
    assert "vide" in err.value.message


@pytest.mark.parametrize("url", ["https://hooks.example.fr/collectors", "http://10.0.0.5:8080/x?y=1"])
def test_webhook_urls_accepted(url: str) -> None:
    assert validate_webhook_url(f" {url} ", "fr") == url


def test_empty_webhook_removes_it() -> None:
    assert validate_webhook_url("  ", "fr") is None


@pytest.mark.parametrize("url", ["ftp://example.fr", "example.fr/hook", "https://", "https://exa mple.fr",
                                 "https://example.fr:0x1", "javascript:alert(1)"])
def test_webhook_urls_refused(url: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        validate_webhook_url(url, "fr")
    assert err.value.field == "webhook_url"
    assert "http://" in err.value.message


def test_webhook_url_with_credentials_refused_without_echoing_them() -> None:
    with pytest.raises(ValidationFailed) as err:
        validate_webhook_url("https://bob:s3cret@hooks.example.fr/x", "en")
    assert err.value.message == "The webhook address must not contain a login or a password."
    assert "s3cret" not in err.value.message
