from datetime import UTC, datetime, timedelta

import pytest

from services.accounts import domain
from services.accounts.messages import status_message
from shared.errors import CollectionErrorCode, ValidationFailed
from shared.events import AccountStatus


def test_email_logins_are_checked_for_email_collectors() -> None:
    assert domain.validate_login("  compta@pharmacie.fr ", "email", "fr") == "compta@pharmacie.fr"
    with pytest.raises(ValidationFailed) as err:
        domain.validate_login("compta", "email", "fr")
    assert err.value.field == "login"
    assert "adresse e-mail" in err.value.message
    with pytest.raises(ValidationFailed, match="email address"):
        domain.validate_login("compta", "email", "en")


@pytest.mark.parametrize("login", ["", "   ", "a\x00b", "line\nbreak"])
def test_bad_identifiers_are_refused(login: str) -> None:
    with pytest.raises(ValidationFailed):
        domain.validate_login(login, "identifier", "fr")


@pytest.mark.parametrize("password", ["", "   ", "x" * (domain.MAX_PASSWORD_LENGTH + 1)])
def test_bad_passwords_are_refused_without_echoing_them(password: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        domain.validate_password(password, "fr")
    assert err.value.field == "password"
    assert password.strip() == "" or password not in err.value.message


def test_login_key_folds_case_and_unicode_forms() -> None:
    assert domain.login_key("Pharma-É") == domain.login_key("pharma-e\u0301")


def test_failures_split_into_user_fixable_and_transient() -> None:
    assert domain.status_after_failure(CollectionErrorCode.LOGIN_FAILED) is AccountStatus.ACTION_REQUIRED
    assert domain.status_after_failure(CollectionErrorCode.TWO_FACTOR_REQUIRED) is AccountStatus.ACTION_REQUIRED
    assert domain.status_after_failure(CollectionErrorCode.SUPPLIER_UNAVAILABLE) is AccountStatus.RETRYING
    assert domain.status_after_failure(CollectionErrorCode.DOWNLOAD_FAILED) is AccountStatus.RETRYING


def test_stale_results_are_recognised() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert domain.is_stale(2, None, domain.AttemptStamp(1, t0))
    assert domain.is_stale(1, t0, domain.AttemptStamp(1, t0 - timedelta(seconds=1)))
    assert not domain.is_stale(1, t0, domain.AttemptStamp(1, t0))
    assert not domain.is_stale(1, None, domain.AttemptStamp(1, t0))


@pytest.mark.parametrize("code", list(CollectionErrorCode))
def test_every_error_has_a_french_and_an_english_message(code: CollectionErrorCode) -> None:
    status = domain.status_after_failure(code)
    fr, en = status_message(status, code, "fr"), status_message(status, code, "en")
    assert fr and en and fr != en


def test_login_failed_tells_what_to_do_in_french() -> None:
    msg = status_message(AccountStatus.ACTION_REQUIRED, CollectionErrorCode.LOGIN_FAILED, "fr")
    assert "Collecteurs → Modifier" in msg
    assert status_message(AccountStatus.OK, None, "fr").startswith("Collecte opérationnelle")
