"""The webhook signature: HMAC-SHA256 over "<t>.<body>", checked as a receiver would."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.notifier import signing

BODY = b'{"id":"n1","type":"action_required"}'
SECRET = "whsec_test"


def test_header_is_timestamp_and_hmac_of_timestamp_dot_body() -> None:
    header = signing.signature_header(SECRET, BODY, 1_700_000_000)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_verify_accepts_a_fresh_genuine_call() -> None:
    header = signing.signature_header(SECRET, BODY, 1_700_000_000)
    assert signing.verify(SECRET, BODY, header, now=1_700_000_100)


@pytest.mark.parametrize("tamper", [
    lambda h, b, s: (h, b + b" ", s),  # body changed
    lambda h, b, s: (h, b, "whsec_other"),  # another tenant's secret
    lambda h, b, s: (h.replace("t=1700000000", "t=1700000001"), b, s),  # timestamp changed
    lambda h, b, s: ("v1=" + h.split("v1=")[1], b, s),  # no timestamp
    lambda h, b, s: ("t=abc,v1=00", b, s),  # garbage
    lambda h, b, s: ("", b, s),
])
def test_verify_refuses_tampered_calls(tamper: object) -> None:
    header = signing.signature_header(SECRET, BODY, 1_700_000_000)
    h, b, s = tamper(header, BODY, SECRET)  # type: ignore[operator]
    assert not signing.verify(s, b, h, now=1_700_000_000)


def test_verify_refuses_a_replay_outside_the_tolerance() -> None:
    header = signing.signature_header(SECRET, BODY, 1_700_000_000)
    assert not signing.verify(SECRET, BODY, header, now=1_700_000_000 + 301)
    assert signing.verify(SECRET, BODY, header, now=1_700_000_000 + 299)


def test_secrets_are_random_and_recognisable() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b and a.startswith("whsec_") and len(a) > 40
