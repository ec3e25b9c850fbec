"""Fault modes of the sandbox: which login triggers what, and the sessions they shape."""

from __future__ import annotations

from datetime import date

import pytest

from sandbox.data import documents_for
from sandbox.faults import SESSION_BUDGET, Fault, broken_numbers, fault_of
from sandbox.sessions import Sessions

TODAY = date(2026, 3, 15)


@pytest.mark.parametrize(("login", "fault"), [
    ("fault-slow-1", Fault.SLOW),
    ("fault-password_expired-x", Fault.PASSWORD_EXPIRED),
    ("fault-otp-3@pharmacie.test", Fault.OTP),
    ("fault-terms", Fault.TERMS),
    ("fault-session_expiry-a-b-c", Fault.SESSION_EXPIRY),
    ("fault-nonsense-1", None),
    ("pharma-1", None),
    ("my-fault-slow-1", None),
])
def test_the_mode_is_read_from_the_login(login: str, fault: Fault | None) -> None:
    assert fault_of(login) is fault


def test_every_mode_of_the_issue_exists() -> None:
    assert {f.value for f in Fault} == {
        "password_expired", "terms", "otp", "maintenance", "server_error", "rate_limited", "captcha",
        "layout_changed", "broken_download", "slow", "session_expiry"}


def test_broken_download_breaks_some_documents_not_all() -> None:
    login = "fault-broken_download-1"
    broken = broken_numbers(login, TODAY)
    numbers = {d.number for d in documents_for(login, TODAY)}
    assert broken and broken < numbers
    assert broken_numbers("pharma-1", TODAY) == frozenset()


def test_a_session_expiry_login_is_logged_out_once_per_two_logins() -> None:
    sessions = Sessions()
    first = sessions.open("fault-session_expiry-1")
    for _ in range(SESSION_BUDGET):
        assert sessions.use(first.token) is first
    assert sessions.use(first.token) is None  # logged out mid-run
    second = sessions.open("fault-session_expiry-1")
    for _ in range(SESSION_BUDGET * 10):
        assert sessions.use(second.token) is second  # the login after it holds
    third = sessions.open("fault-session_expiry-1")
    assert third.budget == SESSION_BUDGET  # the next run meets the fault again


def test_other_logins_keep_their_session_and_account_faults_block_it() -> None:
    sessions = Sessions()
    plain = sessions.open("pharma-1")
    assert plain.budget is None and plain.blocker is None
    assert sessions.open("fault-terms-1").blocker is Fault.TERMS
    assert sessions.open("fault-maintenance-1").blocker is None  # supplier-side: no session at all in practice
    assert sessions.peek(plain.token) is plain
    sessions.close(plain.token)
    assert sessions.use(plain.token) is None
