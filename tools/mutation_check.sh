#!/usr/bin/env bash
# Test mutation check (issue 11): each guard below is switched off in a copy of the repository, the
# tests meant to catch it run there, and the script reports which failed. A mutation no test catches
# is reported as such ("NOT CAUGHT") and makes the script exit 1.
#
#   tools/mutation_check.sh                 # every mutation, on HEAD
#   tools/mutation_check.sh claim-guard     # some of them
#   MUTATION_SOURCE=worktree tools/mutation_check.sh   # on the working tree (tracked + untracked files)
#   BASELINE=1 tools/mutation_check.sh      # the same tests, nothing switched off: they must all pass
#
# The copy runs with PYTHONPATH=<copy>, ahead of the venv's editable install (which maps to this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY="$ROOT/.venv/bin/python"

# name | file | sed expression | tests (pytest paths, then optionally -k EXPR) | what is switched off
#   [| why no test can catch it: then "not caught" is expected and does not fail the script]
MUTATIONS=(
  'outbox-sweep|shared/outbox.py|s/^\( *\)await self\.flush({})$/\1pass  # MUTATION: no sweep/|tests/integration/test_accounts.py -k crash_between_write_and_publish or crash_after_publishing|the outbox relay'"'"'s periodic sweep (OutboxRelay.run)'
  'unique-accounts|services/accounts/repository.py|s/unique=True/unique=False/|tests/integration/test_accounts.py -k racing_creates or same_login_twice or login_taken|the accounts'"'"' unique indexes (one account per slot, one login per collector)'
  'unique-notifier|services/notifier/repository.py|s/unique=True/unique=False/|tests/integration/test_notifier_alerts.py tests/integration/test_notifier_requests.py|the notifier'"'"'s unique indexes (one notification per notice and channel, one state per account)'
  'unique-requests|services/requests/repository.py|s/unique=True/unique=False/|tests/integration/test_notifier_requests.py tests/integration/test_notifier_alerts.py -k request|the requests'"'"' unique indexes (one open request per supplier, per portal domain)'
  'unique-incidents|services/scheduler/repository.py|s/unique=True/unique=False/|tests/integration/test_scheduler.py -k incident|the scheduler'"'"'s unique index on open incidents'
  'unique-ledger|services/scraper/ledger.py|s/unique=True/unique=False/|tests/integration/test_standin_races.py tests/integration/test_pipeline.py tests/integration/test_scraper_workers.py|the ledger'"'"'s unique index (tenant, account, number)|redundant: an invoice'"'"'s _id is a hash of (tenant, account, number), so _id already guards it'
  'run-end-guard|services/accounts/service.py|s/evt.credential_version, \*\*still_open,/evt.credential_version,/|tests/integration/test_accounts.py -k start_racing|the accounts'"'"' write guard that a run whose result landed meanwhile is not shown collecting again (chaos seed 606)'
  'claim-guard|services/scheduler/repository.py|s/UpdateOne({"_id": account_id, "next_run_at": {"\$lte": now}, "active": True, "paused": None,/UpdateOne({"_id": account_id, "active": True, "paused": None,/|tests/integration/test_scheduler.py -k two_replicas or restart|the scheduler'"'"'s claim guard (claim_and_queue claims only a run still due)'
  'slot-handover|services/scheduler/service.py|s/^        await self\._dispatch_waiting(collector_id)$/        pass  # MUTATION: no handover/|tests/integration/test_scheduler.py -k never_more|the scheduler'"'"'s handover of a freed session slot to the longest-waiting run (_release)'
  'stores-in-flight|services/scraper/runner.py|s/^STORES_IN_FLIGHT = 4$/STORES_IN_FLIGHT = 1/|tests/unit/test_scraper_runner.py -k few_at|a run'"'"'s documents stored a few at a time (runner._Stores)'
)

wanted=("$@")
status=0
summary=()
for entry in "${MUTATIONS[@]}"; do
  IFS='|' read -r name files expr tests what expected <<<"$entry"
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " == *" $name "* ]]; then continue; fi
  copy=$(mktemp -d "${TMPDIR:-/tmp}/mutation-$name.XXXXXX")
  if [ "${MUTATION_SOURCE:-HEAD}" = worktree ]; then
    git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$copy"
  else
    git archive HEAD | tar -xf - -C "$copy"
  fi
  cp "$copy/$files" "$copy/.original"
  [ "${BASELINE:-0}" = 1 ] || (cd "$copy" && sed -i "$expr" $files)
  if [ "${BASELINE:-0}" != 1 ] && cmp -s "$copy/.original" "$copy/$files"; then
    echo "== $name: the mutation did not apply to $files (the code changed?)" >&2
    summary+=("$name: MUTATION DID NOT APPLY"); status=1; rm -rf "$copy"; continue
  fi
  where=$(cd "$copy" && PYTHONPATH="$copy" "$PY" -c 'import shared; print(shared.__file__)')
  [[ "$where" == "$copy/"* ]] || { echo "the copy's code is not the one imported ($where)" >&2; exit 2; }
  [ "${BASELINE:-0}" = 1 ] && echo "== $name (baseline: nothing off)" || echo "== $name: $what off ($files)"
  diff "$copy/.original" "$copy/$files" | grep '^[<>]' || true
  # tests: paths, then an optional "-k EXPR" (the rest of the field)
  paths=${tests%% -k *}; kexpr=""; [[ "$tests" == *" -k "* ]] && kexpr=${tests#* -k }
  args=(-p no:cacheprovider -q -rf --timeout=300)
  [ -n "$kexpr" ] && args+=(-k "$kexpr")
  # shellcheck disable=SC2086
  out=$(cd "$copy" && PYTHONPATH="$copy" MONGODB_URL="" "$PY" -m pytest "${args[@]}" $paths 2>&1) || true
  failed=$(grep -E '^FAILED ' <<<"$out" | sed -E 's/^FAILED ([^ ]+).*/\1/' || true)
  tail=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error)' <<<"$out" | tail -1)
  if [ "${BASELINE:-0}" = 1 ]; then
    if [ -n "$failed" ]; then summary+=("$name: BASELINE FAILS: $(tr '\n' ' ' <<<"$failed")"); status=1
    else summary+=("$name: baseline passes ($tail)"); fi
  elif [ -n "$failed" ]; then
    # A failure counts only if the same tests pass once the guard is back (else: a flaky test).
    cp "$copy/.original" "$copy/$files"
    # shellcheck disable=SC2046
    again=$(cd "$copy" && PYTHONPATH="$copy" MONGODB_URL="" "$PY" -m pytest -p no:cacheprovider -q -rf \
      --timeout=300 $(tr '\n' ' ' <<<"$failed") 2>&1) || true
    flaky=$(grep -E '^FAILED ' <<<"$again" | sed -E 's/^FAILED ([^ ]+).*/\1/' || true)
    caught=$(grep -vxF -f <(printf '%s\n' "$flaky") <<<"$failed" || true)
    [ -z "$flaky" ] || echo "   failing without the mutation too (flaky, not counted): $(tr '\n' ' ' <<<"$flaky")"
    if [ -n "$caught" ]; then
      summary+=("$name: caught by $(wc -l <<<"$caught") test(s): $(tr '\n' ' ' <<<"$caught")")
    else
      summary+=("$name: NOT CAUGHT (its failures also fail without it: $(tr '\n' ' ' <<<"$flaky"))"); status=1
    fi
  elif [ -n "$expected" ]; then
    summary+=("$name: not caught, as expected ($expected)")
  else
    summary+=("$name: NOT CAUGHT ($tail)"); status=1
  fi
  echo "   $tail"
  rm -rf "$copy"
done
echo
printf '%s\n' "${summary[@]}"
exit $status
