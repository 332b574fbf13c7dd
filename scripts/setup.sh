#!/usr/bin/env bash
# Create .venv (if needed) and install assistcode into it with the given extras, e.g. `scripts/setup.sh test`.
# Idempotent: a second run only checks. Needs Python >= 3.11 and the package registry, nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=".venv/.assistcode-setup-${extras:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  echo "setup: installing assistcode${extras:+ [$extras]} (first run: a few minutes)" >&2
  # llama.cpp (the [local] extra) compiles on first install: portable flags so a cached wheel runs on any x86-64.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    .venv/bin/python -m pip install --quiet --editable "$spec" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -c "import assistcode" || { echo "setup: install failed" >&2; exit 1; }
  if [[ ",$extras," == *",test,"* ]]; then
    # irrCAC pins scipy==1.12 (numpy<2), which would drag the whole stack back; its code runs on current scipy.
    .venv/bin/python -m pip install --quiet --no-deps -r tests/requirements-nodeps.txt 2>&1 | grep -v "^WARNING: Location" >&2 || true
  fi
  touch "$stamp"
fi
