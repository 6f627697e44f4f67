#!/usr/bin/env bash
# Runs the unit suite RUNS times in a row while HOGS busy processes load the CPUs,
# to shake out tests that race against background threads. Prints one line per run
# and a summary; exits 1 when any run failed. Ends only the hogs it started.
#   tests/under_load.sh [RUNS] [HOGS]        (make unit-under-load RUNS=10)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
hogs=${2:-2}
logs=$(mktemp -d "${TMPDIR:-/tmp}/rayline-under-load.XXXXXX")
pids=()
stop_hogs() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; }
trap stop_hogs EXIT
for _ in $(seq "$hogs"); do
  python3 -c 'while True: pass' &
  pids+=($!)
done
failed=0
for run in $(seq "$runs"); do
  start=$(date +%s)
  if uv run pytest tests/unit -q -p no:cacheprovider >"$logs/run-$run.log" 2>&1; then
    outcome=passed
  else
    outcome=FAILED
    failed=$((failed + 1))
  fi
  summary=$(grep -E '^[0-9]+ (passed|failed)|[0-9]+ failed' "$logs/run-$run.log" | tail -1)
  echo "run $run/$runs: $outcome in $(( $(date +%s) - start )) s ($summary)"
  [ "$outcome" = passed ] || grep -E '^(FAILED|ERROR) ' "$logs/run-$run.log" | sed 's/^/    /'
done
echo "under load ($hogs busy processes): $((runs - failed))/$runs runs green; logs in $logs"
[ "$failed" -eq 0 ]
