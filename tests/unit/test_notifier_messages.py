"""What the pharmacist reads in a notification, in French and English, and the preference checks."""

from __future__ import annotations

import pytest

from services.notifier import messages
from services.notifier.service import validate_emails, validate_webhook_url
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
