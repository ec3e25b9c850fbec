from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest

from services.scheduler import policy
from services.scheduler.due_index import DueIndex
from shared.errors import CollectionErrorCode as C

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAILY = policy.Cadence()


@pytest.mark.parametrize("failures,delay", [(1, timedelta(minutes=15)), (2, timedelta(hours=1)),
                                            (3, timedelta(hours=6)), (4, timedelta(hours=24)),
                                            (9, timedelta(hours=24))])
def test_transient_failures_back_off(failures: int, delay: timedelta) -> None:
    decision = policy.after_failure(NOW, C.SUPPLIER_UNAVAILABLE, failures)
    assert (decision.next_run_at, decision.pause_reason) == (NOW + delay, None)


@pytest.mark.parametrize("code", [c for c in C if c.user_fixable])
def test_user_fixable_failures_pause_instead_of_retrying(code: C) -> None:
    decision = policy.after_failure(NOW, code, 1)
    assert (decision.next_run_at, decision.pause_reason) == (None, code.value)


def test_a_locked_account_waits_a_day_even_if_the_user_retries() -> None:
    decision = policy.after_failure(NOW, C.ACCOUNT_LOCKED, 1)
    assert decision.not_before == NOW + timedelta(hours=24)
    assert policy.run_at_once(NOW + timedelta(hours=1), decision.not_before) == NOW + timedelta(hours=24)
    assert policy.run_at_once(NOW + timedelta(hours=30), decision.not_before) == NOW + timedelta(hours=30)


def test_retry_after_is_honoured() -> None:
    assert policy.after_failure(NOW, C.RATE_LIMITED, 1, retry_after_s=3 * 3600).next_run_at == NOW + timedelta(hours=3)


def test_internal_errors_alert_operators_after_two_retries() -> None:
    assert [policy.after_failure(NOW, C.INTERNAL_ERROR, n).alert_operators for n in (1, 2, 3)] == [False, False, True]


def test_an_account_keeps_its_slot_and_runs_once_per_period() -> None:
    fraction = policy.slot_fraction(7)
    first = policy.next_slot(NOW, fraction, DAILY)
    assert NOW < first <= NOW + timedelta(hours=24)
    assert policy.next_slot(first, fraction, DAILY) == first + timedelta(hours=24)
    # After a run (whenever it happened), the next one is the same slot, at least half a day away.
    nxt = policy.after_success(first + timedelta(minutes=3), fraction, DAILY)
    assert nxt == first + timedelta(hours=24)
    assert policy.after_success(first - timedelta(minutes=1), fraction, DAILY) == first + timedelta(hours=24)


def test_a_collectors_accounts_are_spread_evenly_over_the_day() -> None:
    per_minute = Counter()
    for seq in range(1, 100_001):
        at = policy.next_slot(NOW, policy.slot_fraction(seq), DAILY)
        per_minute[int((at - NOW).total_seconds() // 60) % 1440] += 1
    mean = 100_000 / 1440
    assert len(per_minute) == 1440
    assert max(per_minute.values()) / mean <= 1.05


def test_runs_stay_inside_the_collectors_window() -> None:
    cadence = policy.Cadence(24, policy.Window.parse("22:00-06:00"))
    assert cadence.window is not None and cadence.window.minutes == 480
    for seq in range(1, 500):
        at = policy.next_slot(NOW, policy.slot_fraction(seq), cadence).astimezone(policy.PARIS).time()
        assert at >= time(22) or at < time(6)
    with pytest.raises(ValueError):
        policy.Window.parse("25h")


def test_weekly_collectors_run_every_seventh_day() -> None:
    cadence = policy.Cadence(24 * 7, policy.Window.parse("08:00-18:00"))
    first = policy.next_slot(NOW, 0.3, cadence)
    assert policy.next_slot(first, 0.3, cadence) - first == timedelta(days=7)


def test_incidents_need_a_large_share_and_a_few_accounts() -> None:
    assert policy.is_incident(3, 4)
    assert not policy.is_incident(2, 2)  # too few to tell the portal from two bad days
    assert not policy.is_incident(3, 10)


def test_the_due_index_returns_due_accounts_oldest_first() -> None:
    index = DueIndex()
    index.set("b", NOW + timedelta(seconds=2))
    index.set("a", NOW + timedelta(seconds=1))
    index.set("c", NOW + timedelta(hours=1))
    index.set("b", NOW + timedelta(seconds=3))  # rescheduled: the older entry is stale
    index.set("d", NOW)
    index.set("d", None)  # unscheduled
    due = index.pop_due(NOW + timedelta(seconds=5), limit=10)
    assert [e.account_id for e in due] == ["a", "b"]
    assert index.next_due() == NOW + timedelta(hours=1)
    assert len(index) == 1
