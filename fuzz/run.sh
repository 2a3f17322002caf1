#!/usr/bin/env bash
# Run each atheris harness for SECONDS (default 30), one after another, with libFuzzer's own
# bounds: 10 s per input, 2 GB of memory.  A crash, a hang or a failed check stops that harness
# and leaves the input in fuzz/crashes/; copy it to tests/fuzz_cases/<kind>/ as a regression case.
#   fuzz/run.sh 30        # ~2 minutes in all
set -uo pipefail
cd "$(dirname "$0")"
SECONDS_EACH="${1:-30}"
PY="${PYTHON:-../.venv/bin/python}"
mkdir -p crashes
status=0
for harness in fuzz_csv fuzz_headers fuzz_planner fuzz_xlsx; do
  corpus="corpus/${harness#fuzz_}"
  mkdir -p "$corpus" "/tmp/hostile-fuzz-corpus/${harness}"
  echo "== ${harness} (${SECONDS_EACH}s)"
  if ! "$PY" "${harness}.py" "/tmp/hostile-fuzz-corpus/${harness}" "$corpus" \
       -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
       -artifact_prefix="crashes/${harness}-" -print_final_stats=1 2>&1 | tail -n 25; then
    status=1
  fi
done
exit $status
