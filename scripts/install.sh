#!/usr/bin/env bash
# Installs what streamml needs on this machine: the virtual environment with the project and its
# dev tools, and the Debian packages its tests use (kcat, prometheus, chromium) when run as root.
# Kafka itself is fetched from Maven Central on first `streamml kafka start`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.installed

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
  touch "$STAMP"
fi

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "warning: ${missing[*]} not installed; run: sudo apt-get install ${missing[*]}" >&2
  fi
fi
command -v java >/dev/null 2>&1 || { echo "error: java (OpenJDK 17+) is required for the local broker" >&2; exit 1; }
command -v mvn >/dev/null 2>&1 || { echo "error: mvn (Maven) is required to fetch Kafka" >&2; exit 1; }
