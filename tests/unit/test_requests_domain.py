"""Pure rules of the requests service: supplier names, portal domains, matching, the workflow."""

from __future__ import annotations

import pytest

from services.requests import domain
from shared.errors import ApiErrorCode, Conflict, ValidationFailed

# --- supplier names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Alliance Healthcare", "alliance  healthcare"),
        ("Alliance Healthcare", "ALLIANCE-HEALTHCARE"),
        ("C.E.R.P. Rouen", "cerp rouen"),
        ("Pharmacie Générale", "pharmacie generale"),
        ("L'Oréal", "loreal"),
        ("  OCP  ", "ocp"),
        ("Laboratoires Gilbert", "laboratoires\tgilbert"),
        ("Œnobiol", "Œnobiol"),
        ("Straße", "STRASSE"),
        ("ｏｃｐ", "OCP"),  # full-width letters (NFKD)
    ],
)
def test_same_supplier_written_differently_has_one_key(a: str, b: str) -> None:
    assert domain.supplier_key(a) == domain.supplier_key(b)
    assert domain.supplier_key(a)


@pytest.mark.parametrize(("a", "b"), [("OCP", "CERP"), ("Phoenix", "Phoenix Pharma"), ("Lab 1", "Lab 2")])
def test_different_suppliers_have_different_keys(a: str, b: str) -> None:
    assert domain.supplier_key(a) != domain.supplier_key(b)


def test_clean_supplier_keeps_the_name_readable() -> None:
    assert domain.clean_supplier("  Alliance \t Healthcare\n") == "Alliance Healthcare"
    assert domain.clean_supplier("Pharmacie Ge\u0301ne\u0301rale") == "Pharmacie Générale"  # NFC


@pytest.mark.parametrize("name", ["", "   ", "...", " - / "])
def test_a_supplier_without_letters_or_digits_is_refused(name: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        domain.validate_supplier(name, "fr")
    assert err.value.field == "supplier"
    assert "fournisseur" in err.value.message


def test_validate_supplier_returns_name_and_key() -> None:
    assert domain.validate_supplier(" Alliance  Healthcare ", "fr") == (
        "Alliance Healthcare", "alliancehealthcare")


def test_validation_messages_follow_the_language() -> None:
    with pytest.raises(ValidationFailed) as err:
        domain.validate_supplier(" ", "en")
    assert err.value.message == "Enter the supplier's name."


# --- portals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.alliance-healthcare.fr/espace-client", "alliance-healthcare.fr"),
        ("HTTPS://WWW.Alliance-Healthcare.FR", "alliance-healthcare.fr"),
        ("http://alliance-healthcare.fr:80/login?x=1", "alliance-healthcare.fr"),
        ("https://alliance-healthcare.fr:443", "alliance-healthcare.fr"),
        ("https://portail.ocp.fr./", "portail.ocp.fr"),
        ("http://127.0.0.1:8081/classic/", "127.0.0.1:8081"),
        ("https://pharmacie-été.fr", "pharmacie-été.fr"),
        ("  https://www.cerp.fr  ", "cerp.fr"),
    ],
)
def test_portal_domain(url: str, expected: str) -> None:
    assert domain.portal_domain(url) == expected


@pytest.mark.parametrize(
    "url",
    ["ftp://ocp.fr", "ocp.fr", "https://", "https:///path", "javascript:alert(1)", "https://oc p.fr",
     "https://ocp.fr:99999", "https://-ocp.fr", "https://ocp..fr", "mailto:a@b.fr", ""],
)
def test_unusable_portal_urls_have_no_domain(url: str) -> None:
    assert domain.portal_domain(url) is None


def test_portal_url_validation() -> None:
    assert domain.validate_portal_url(None, "fr") == (None, None)
    assert domain.validate_portal_url("   ", "fr") == (None, None)
    assert domain.validate_portal_url(" https://www.ocp.fr/x ", "fr") == ("https://www.ocp.fr/x", "ocp.fr")
    with pytest.raises(ValidationFailed) as err:
        domain.validate_portal_url("ftp://ocp.fr", "fr")
    assert err.value.field == "portal_url"
    assert "http://" in err.value.message
    with pytest.raises(ValidationFailed) as err:
        domain.validate_portal_url("https://user:secret@ocp.fr/", "en")
    assert err.value.field == "portal_url"
    assert "password" in err.value.message
    assert "secret" not in err.value.message


# --- matching -------------------------------------------------------------------------------------


def test_matching_by_supplier_key_or_portal_domain() -> None:
    key = domain.supplier_key("Alliance Healthcare")
    assert domain.matches(key, None, domain.supplier_key("alliance-healthcare"), None)
    assert domain.matches("other", "alliance-healthcare.fr", key, "alliance-healthcare.fr")
    assert not domain.matches("other", "other.fr", key, "alliance-healthcare.fr")
    assert not domain.matches("other", None, key, None)
    # a missing domain on both sides is not a match
    assert not domain.matches("other", None, key, None)
    # an empty key (announcement without a usable supplier name) matches no key
    assert not domain.matches("", None, None, None)


# --- workflow -------------------------------------------------------------------------------------

ALLOWED = {
    ("submitted", "in_progress"), ("submitted", "rejected"), ("submitted", "available"),
    ("in_progress", "available"), ("in_progress", "rejected"),
}
STATUSES = ["submitted", "in_progress", "available", "rejected"]


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_transitions(current: str, target: str) -> None:
    if (current, target) in ALLOWED:
        domain.check_transition(current, target, "fr")
        return
    with pytest.raises(Conflict) as err:
        domain.check_transition(current, target, "fr")
    assert err.value.code == ApiErrorCode.CONFLICT
    assert err.value.field == "status"


def test_transition_message_names_both_states() -> None:
    with pytest.raises(Conflict) as err:
        domain.check_transition("available", "rejected", "fr")
    assert err.value.message == "Une demande disponible ne peut pas passer à l'état « refusée »."
    with pytest.raises(Conflict) as err:
        domain.check_transition("in_progress", "submitted", "en")
    assert err.value.message == "A request that is in progress cannot become “submitted”."


def test_open_statuses() -> None:
    assert [s for s in STATUSES if domain.is_open(s)] == ["submitted", "in_progress"]


def test_rejected_needs_a_reason_and_drops_the_collector() -> None:
    assert domain.check_status_fields("rejected", "ocp", "  portail fermé ", "fr") == (None, "portail fermé")
    for reason in (None, "", "   "):
        with pytest.raises(ValidationFailed) as err:
            domain.check_status_fields("rejected", None, reason, "fr")
        assert err.value.field == "reason"
        assert err.value.message == "Indiquez le motif du refus."


def test_available_needs_a_valid_collector_and_drops_the_reason() -> None:
    assert domain.check_status_fields("available", " ocp-classic ", "why", "fr") == ("ocp-classic", None)
    with pytest.raises(ValidationFailed) as err:
        domain.check_status_fields("available", None, None, "fr")
    assert err.value.field == "collector_id"
    with pytest.raises(ValidationFailed) as err:
        domain.check_status_fields("available", "ocp classic!", None, "en")
    assert err.value.field == "collector_id"
    assert err.value.message == "Invalid collector id."


def test_in_progress_keeps_neither() -> None:
    assert domain.check_status_fields("in_progress", "ocp", "r", "fr") == (None, None)
