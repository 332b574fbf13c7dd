#!/usr/bin/env bash
# Set up (first run only) and run `assistcode demo`. Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh local
exec .venv/bin/assistcode demo "$@"
