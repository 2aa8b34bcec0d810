#!/usr/bin/env bash
# Runs one pytest selection N times in a row against the local broker and keeps the temporary
# directory (service logs) of every failing run, then prints the tally. For chasing intermittent
# failures: a flaky test is a bug until shown otherwise.
#
#   scripts/repeat_test.sh 20 'tests/integration/test_features_service.py::test_a_sigkilled_worker_restarts_with_the_same_aggregates'
#
# Logs: $REPEAT_DIR (default .streamml/repeat/<time>)/run-<n>/ (pytest output and tmp_path of
# each test); passing runs' directories are removed.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: repeat_test.sh RUNS PYTEST_SELECTION [PYTEST_ARGS...]}
shift
dir=${REPEAT_DIR:-.streamml/repeat/$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$dir"
passed=0
failed=0
for n in $(seq 1 "$runs"); do
  run="$dir/run-$n"
  mkdir -p "$run"
  if .venv/bin/pytest -p no:cacheprovider -q -s --basetemp="$run/tmp" "$@" >"$run/pytest.log" 2>&1; then
    passed=$((passed + 1))
    rm -rf "$run"
    echo "run $n: passed"
  else
    failed=$((failed + 1))
    echo "run $n: FAILED (logs in $run)"
  fi
done
echo "$passed passed, $failed failed of $runs runs ($dir)"
[ "$failed" = 0 ]
