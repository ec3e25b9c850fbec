"""Chaos: while accounts of every sandbox style collect, SIGKILL the scraper, the scheduler, the
accounts service, the notifier and nats-server at seeded random moments, restart each, then check
that nothing was lost, duplicated or left stuck.

Bounded form (the default run, CI): one kill of each target. Long form (README):

    COLLECTORS_CHAOS_KILLS=30 COLLECTORS_CHAOS_SEED=7 pytest -m chaos -s

The seed is printed with the figures; the same seed replays the same plan of kills.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from shared.subjects import SERVICES, Api
from tests.chaos.harness import (
    TARGETS,
    ChaosPlatform,
    Kill,
    account_views,
    create_accounts,
    plan_accounts,
    settled,
)

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(1800)]

ACCOUNTS = int(os.environ.get("COLLECTORS_CHAOS_ACCOUNTS", "54"))
KILLS = int(os.environ.get("COLLECTORS_CHAOS_KILLS", str(len(TARGETS))))
SEED = int(os.environ.get("COLLECTORS_CHAOS_SEED", str(random.SystemRandom().randrange(1_000_000))))
# After the last restart, every account must reach its final status within this bound.
SETTLE_S = float(os.environ.get("COLLECTORS_CHAOS_SETTLE_S", "180"))

# Production code paths, with the bounds that decide recovery shortened to what a test can wait:
# a job's ack wait (a dead worker's jobs go elsewhere after it), the scheduler's lease.
ENV = {
    "COLLECTORS_ACK_WAIT_S": "20",
    "COLLECTORS_HEARTBEAT_S": "3",
    "COLLECTORS_RETRY_DELAY_S": "1",
    "COLLECTORS_LEASE_TTL_S": "120",
    "COLLECTORS_LOG_LEVEL": "INFO",
}


def kill_plan(seed: int, kills: int) -> list[tuple[float, str, float]]:
    """(pause before the kill, target, time down) for each kill: every target at least once, then
    random ones, in a seeded random order."""
    rng = random.Random(seed)
    targets = list(TARGETS) + [rng.choice(TARGETS) for _ in range(max(0, kills - len(TARGETS)))]
    rng.shuffle(targets)
    return [(rng.uniform(0.5, 4.0), target, rng.uniform(0.2, 2.0)) for target in targets[:kills]]


async def test_no_invoice_lost_or_doubled_no_account_stuck(tmp_path: Path, mongodb_url: str | None) -> None:
    today = date.today()
    planned = plan_accounts(ACCOUNTS, SEED)
    platform = ChaosPlatform(tmp_path / "platform", mongodb_url=mongodb_url, env_overrides=ENV)
    print(f"\nchaos seed {SEED}: {len(planned)} accounts, {KILLS} kills, data in {platform.root}")
    await platform.start()
    kills: list[Kill] = []
    exit_codes: dict[str, int | None] = {}
    try:
        accounts = await create_accounts(platform, planned)
        chaos_started = time.monotonic()
        rng = random.Random(SEED + 1)
        for pause, target, down in kill_plan(SEED, KILLS):
            await asyncio.sleep(pause)
            if KILLS > len(TARGETS):
                # The long form outlasts one round of collection: keep collections running by
                # asking for new runs of accounts that are done (each must still add nothing twice).
                views = await account_views(platform, {p.tenant_id for p in planned})
                done = [a for a, v in views.items() if v["status"] == "ok"]
                for account_id in rng.sample(done, min(len(done), 10)):
                    await platform.call(Api.ACCOUNTS_RETRY, {"tenant_id": accounts[account_id].tenant_id,
                                                             "account_id": account_id})
            kill = Kill(target, time.monotonic() - chaos_started, down)
            platform.kill(target)
            await asyncio.sleep(down)
            platform.restart(target)
            kill.recovered_s = await platform.wait_answers(target, timeout=90)
            kills.append(kill)
        last_restart = time.monotonic()

        async def all_settled() -> dict[str, dict[str, object]]:
            views = await account_views(platform, {p.tenant_id for p in planned})
            # An account the service no longer knows is as unsettled as a stuck one.
            return {a: views.get(a, {"status": "missing"}) for a, plan in accounts.items()
                    if a not in views or not settled(views[a], plan)}

        unsettled = await all_settled()
        while unsettled and time.monotonic() - last_restart < SETTLE_S:
            await asyncio.sleep(1.0)
            unsettled = await all_settled()
        settle_s = time.monotonic() - last_restart

        # The ledger, through the API, account by account.
        ledger: Counter[tuple[str, str, str]] = Counter()
        for account_id, plan in accounts.items():
            reply = await platform.call(Api.SCRAPER_INVOICES_LIST, {"tenant_id": plan.tenant_id,
                                                                    "account_id": account_id})
            for inv in reply["invoices"]:
                ledger[plan.tenant_id, account_id, inv["number"]] += 1
        events = await platform.invoice_events()
        expected = {(p.tenant_id, a, n) for a, p in accounts.items() for n in p.expected_numbers(today)}

        notices: Counter[tuple[str, str, str]] = Counter()
        for tenant in sorted({p.tenant_id for p in planned}):
            reply = await platform.call(Api.NOTIFIER_HISTORY, {"tenant_id": tenant})
            for n in reply["notifications"]:
                notices[str(n.get("account_id")), n["kind"], n["channel"]] += 1
    finally:
        exit_codes = await platform.stop()

    missing_ledger = expected - set(ledger)
    missing_events = expected - set(events)
    doubled_ledger = {k: c for k, c in ledger.items() if c > 1}
    doubled_events = {k: c for k, c in events.items() if c > 1}
    unexpected = (set(ledger) | set(events)) - expected
    doubled_notices = {k: c for k, c in notices.items() if c > 1}
    fault_accounts = {a for a, p in accounts.items() if p.status != "ok"}
    alerted = {a for (a, kind, _), _c in notices.items() if kind.startswith("action_required")}
    by_target: dict[str, list[float]] = {}
    for k in kills:
        by_target.setdefault(k.target, []).append(k.recovered_s)
    print(f"chaos seed {SEED}: kills {len(kills)} "
          f"({', '.join(f'{t} {len(v)}' for t, v in sorted(by_target.items()))}); "
          f"invoices expected {len(expected)}, in ledger {sum(ledger.values())} "
          f"(missing {len(missing_ledger)}, doubled {len(doubled_ledger)}), "
          f"events {sum(events.values())} (missing {len(missing_events)}, doubled {len(doubled_events)}); "
          f"accounts {len(accounts)}, unsettled {len(unsettled)}; "
          f"worst restart-to-answer {max((k.recovered_s for k in kills), default=0):.1f} s "
          f"({', '.join(f'{t} {max(v):.1f} s' for t, v in sorted(by_target.items()))}); "
          f"all accounts final {settle_s:.1f} s after the last restart; "
          f"notifications {sum(notices.values())}, doubled {len(doubled_notices)}")
    for k in kills:
        print(f"  kill {k.target:<9} at {k.at:6.1f} s, down {k.down_s:.1f} s, "
              f"answered {k.recovered_s:.1f} s after restart")
    assert not unsettled, {a: (v["status"], v.get("error_code"), accounts[a]) for a, v in unsettled.items()}
    assert not missing_ledger and not doubled_ledger and not unexpected, (
        sorted(missing_ledger)[:5], doubled_ledger, sorted(unexpected)[:5])
    assert not missing_events and not doubled_events, (sorted(missing_events)[:5], doubled_events)
    assert not doubled_notices, doubled_notices
    assert fault_accounts <= alerted, fault_accounts - alerted
    # Every service stopped cleanly at the end, whatever it went through.
    assert all(code in (0, None) for name, code in exit_codes.items() if name in SERVICES), exit_codes
