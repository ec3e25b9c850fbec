from datetime import UTC, datetime, timedelta

import pytest

from services.scheduler import policy
from shared.errors import CollectionErrorCode

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("failures,delay", [(1, timedelta(minutes=15)), (2, timedelta(hours=1)),
                                            (3, timedelta(hours=6)), (4, timedelta(hours=24)),
                                            (9, timedelta(hours=24))])
def test_transient_failures_back_off(failures: int, delay: timedelta) -> None:
    assert policy.after_failure(NOW, CollectionErrorCode.SUPPLIER_UNAVAILABLE, failures) == (NOW + delay, None)


@pytest.mark.parametrize("code", [c for c in CollectionErrorCode if c.user_fixable])
def test_user_fixable_failures_pause_instead_of_retrying(code: CollectionErrorCode) -> None:
    assert policy.after_failure(NOW, code, 1) == (None, code.value)


def test_retry_after_is_honoured() -> None:
    nxt, _ = policy.after_failure(NOW, CollectionErrorCode.RATE_LIMITED, 1, retry_after_s=3 * 3600)
    assert nxt == NOW + timedelta(hours=3)


def test_success_runs_again_at_the_collector_frequency() -> None:
    assert policy.after_success(NOW, 24) == NOW + timedelta(hours=24)
