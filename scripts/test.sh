#!/usr/bin/env bash
# The test command: install, lint (ruff), type-check (mypy --strict), then pytest against a real
# local Kafka broker. The broker is stopped at the end (even when tests fail) if this script
# started it. Extra arguments go to pytest, e.g. `scripts/test.sh -m "not chaos"`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh
VENV=.venv

echo "== ruff"
"$VENV/bin/ruff" check schemas services tests scripts
echo "== mypy"
"$VENV/bin/mypy"
echo "== schemas up to date"
"$VENV/bin/python" -m schemas.generate --check

started_broker=0
if ! "$VENV/bin/streamml" kafka status | grep -q '"running": true'; then
  started_broker=1
fi
stop_broker() {
  if [ "$started_broker" = 1 ]; then
    "$VENV/bin/streamml" kafka stop || true
  fi
}
trap stop_broker EXIT
echo "== kafka"
"$VENV/bin/streamml" kafka start

echo "== pytest"
# pytest exits 5 when it collected no test: with `set -e` that fails the run, as it should.
"$VENV/bin/pytest" "$@"
