"""When a pharmacy is told about an account: the pure rules over a sequence of status changes and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notifier.rules import AccountState, Kind, Notice, Policy, Problem, apply_status, due_notice, is_stale
from shared.errors import CollectionErrorCode
from shared.events import AccountStatus, AccountStatusChanged

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
POLICY = Policy()
S = AccountStatus


class Account:
    """Feeds status changes to the rules as the accounts service would, remembering the state."""

    def __init__(self) -> None:
        self.state: AccountState | None = None
        self.status: AccountStatus | None = None
        self.version = 1
        self.told: list[Notice] = []
        self.now = T0

    def go(self, status: AccountStatus, code: str | None = None, *, after: timedelta = timedelta(minutes=1),
           previous: AccountStatus | None = None) -> list[Notice]:
        self.now += after
        evt = AccountStatusChanged(
            tenant_id="ph1", account_id="acc1", collector_id="ocp", collector_name="OCP", login="officine-42",
            credential_version=self.version, status=status,
            previous_status=previous if previous is not None else self.status,
            error_code=CollectionErrorCode(code) if code else None, occurred_at=self.now)
        self.status = status
        self.state, notices = apply_status(self.state, evt)
        self.told += notices
        return notices

    def sweep(self, at: timedelta) -> Notice | None:
        """Run the sweep ``at`` after T0 (as often as a real one would: twice, to show it is idempotent)."""
        assert self.state is not None
        self.now = T0 + at
        self.state, notice = due_notice(self.state, self.now, POLICY)
        self.state, again = due_notice(self.state, self.now, POLICY)
        assert again is None
        if notice:
            self.told.append(notice)
        return notice

    def kinds(self) -> list[str]:
        return [n.kind.value for n in self.told]


def test_change_into_a_user_fixable_state_is_told_at_once_with_what_to_do() -> None:
    acc = Account()
    acc.go(S.PENDING)
    acc.go(S.COLLECTING)
    [notice] = acc.go(S.ACTION_REQUIRED, "login_failed")
    assert notice.kind is Kind.ACTION_REQUIRED
    assert notice.params["code"] == "login_failed"
    assert notice.params["login"] == "officine-42" and notice.params["collector"] == "OCP"
    assert acc.state and acc.state.problem is Problem.USER_FIXABLE


def test_still_action_required_with_another_code_is_not_a_new_alert() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    acc.go(S.ACTION_REQUIRED, "password_expired")
    assert acc.go(S.ACTION_REQUIRED, "login_failed") == []


def test_a_retry_failing_the_same_way_is_not_a_new_alert_but_new_credentials_failing_are() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    acc.go(S.ACTION_REQUIRED, "action_required_on_site")
    acc.go(S.COLLECTING)  # the pharmacist clicked Retry
    assert acc.go(S.ACTION_REQUIRED, "action_required_on_site") == []
    acc.version = 2  # new credentials
    acc.go(S.PENDING)
    acc.go(S.COLLECTING)
    [again] = acc.go(S.ACTION_REQUIRED, "login_failed")
    assert again.kind is Kind.ACTION_REQUIRED
    assert len({n.key for n in acc.told}) == 2


def test_redelivered_status_change_yields_the_same_notice_key() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    evt = AccountStatusChanged(tenant_id="ph1", account_id="acc1", collector_id="ocp", status=S.ACTION_REQUIRED,
                               previous_status=S.COLLECTING, error_code=CollectionErrorCode.LOGIN_FAILED,
                               occurred_at=acc.now + timedelta(minutes=1))
    state, first = apply_status(acc.state, evt)
    # the first time it is applied, or again on a state that was never saved: the same notice
    assert [n.key for n in first] == [n.key for n in apply_status(acc.state, evt)[1]]
    assert len(first) == 1
    # again on the saved state: nothing new, nothing changed
    again_state, again = apply_status(state, evt)
    assert again == [] and again_state == state


def test_reminders_after_3_and_7_days_then_silence() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    acc.go(S.ACTION_REQUIRED, "login_failed")
    assert acc.sweep(timedelta(days=2, hours=23)) is None
    third = acc.sweep(timedelta(days=3, minutes=5))
    assert third and third.kind is Kind.ACTION_REQUIRED_REMINDER and third.params["days"] == 3
    assert acc.sweep(timedelta(days=6)) is None
    seventh = acc.sweep(timedelta(days=7, minutes=5))
    assert seventh and seventh.params["days"] == 7
    assert acc.sweep(timedelta(days=30)) is None
    assert acc.state and acc.state.due_at(POLICY) is None
    assert acc.kinds() == ["action_required", "action_required_reminder", "action_required_reminder"]


def test_new_credentials_stop_the_reminders_and_the_recovery_is_told_once() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    acc.go(S.ACTION_REQUIRED, "login_failed")
    acc.version = 2
    acc.go(S.PENDING, after=timedelta(days=1))
    assert acc.state and acc.state.due_at(POLICY) is None
    acc.go(S.COLLECTING)
    [recovered] = acc.go(S.OK)
    assert recovered.kind is Kind.RECOVERED
    assert acc.go(S.COLLECTING) == [] and acc.go(S.OK) == []
    assert acc.kinds() == ["action_required", "recovered"]


def test_transient_failure_is_told_only_once_it_has_lasted_24_hours() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    assert acc.go(S.RETRYING, "supplier_unavailable") == []
    # retries go through collecting and back: the failure's start is kept
    for hours in (1, 6, 12):
        acc.go(S.COLLECTING, after=timedelta(hours=hours))
        acc.go(S.RETRYING, "supplier_unavailable")
    assert acc.sweep(timedelta(hours=23, minutes=59)) is None
    alert = acc.sweep(timedelta(hours=24, minutes=2))
    assert alert and alert.kind is Kind.TRANSIENT_FAILURE and alert.params["hours"] == 24
    reminder = acc.sweep(timedelta(days=3, minutes=2))
    assert reminder and reminder.kind is Kind.TRANSIENT_FAILURE_REMINDER
    [recovered] = acc.go(S.OK, after=timedelta(hours=1))
    assert recovered.kind is Kind.RECOVERED
    assert acc.kinds() == ["transient_failure", "transient_failure_reminder", "recovered"]


def test_a_short_transient_failure_is_never_told_nor_its_recovery() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    acc.go(S.RETRYING, "rate_limited")
    acc.go(S.COLLECTING, after=timedelta(hours=2))
    assert acc.go(S.OK) == []
    assert acc.state and acc.state.problem is None and acc.state.due_at(POLICY) is None


def test_a_sweep_that_was_down_tells_only_the_latest_due_stage() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    acc.go(S.RETRYING, "supplier_unavailable")
    late = acc.sweep(timedelta(days=8))
    # never told before: the first notice, saying how long it has lasted
    assert late and late.kind is Kind.TRANSIENT_FAILURE and late.params["days"] == 7
    assert acc.sweep(timedelta(days=20)) is None


def test_from_transient_to_user_fixable_is_told_at_once() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    acc.go(S.RETRYING, "supplier_unavailable")
    acc.go(S.COLLECTING, after=timedelta(hours=2))
    [notice] = acc.go(S.ACTION_REQUIRED, "password_expired")
    assert notice.kind is Kind.ACTION_REQUIRED
    # the 24 h alert of the transient failure is no longer due
    assert acc.sweep(timedelta(hours=25)) is None


def test_maintenance_is_left_to_the_incident_notices() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    assert acc.go(S.MAINTENANCE, "interface_changed") == []
    assert acc.sweep(timedelta(days=10)) is None
    assert acc.go(S.OK, after=timedelta(days=10)) == []


def test_deletion_forgets_the_account() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    acc.go(S.ACTION_REQUIRED, "login_failed")
    assert acc.go(S.DELETED) == []
    assert acc.state is None


def test_a_late_event_is_stale() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    acc.go(S.OK)
    late = AccountStatusChanged(tenant_id="ph1", account_id="acc1", collector_id="ocp", status=S.RETRYING,
                                occurred_at=T0 - timedelta(minutes=1))
    assert is_stale(acc.state, late)
    assert not is_stale(None, late)


def test_state_survives_its_document_form() -> None:
    acc = Account()
    acc.go(S.COLLECTING)
    acc.go(S.RETRYING, "supplier_unavailable")
    assert acc.state is not None
    doc = acc.state.to_doc(POLICY)
    assert doc["problem"] == "transient" and doc["due_at"] == acc.state.since + timedelta(hours=24)
    assert AccountState.from_doc({**doc, "_id": "x"}) == acc.state


def test_policy_stages_follow_the_settings() -> None:
    policy = Policy(transient_after=timedelta(hours=12), reminders=(timedelta(days=2),))
    assert [s.name for s in policy.stages(Problem.TRANSIENT)] == ["alert_12h", "reminder_2d"]
    assert [s.name for s in policy.stages(Problem.USER_FIXABLE)] == ["reminder_2d"]
    assert policy.stages(Problem.INCIDENT) == ()
