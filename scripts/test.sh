#!/usr/bin/env bash
# The tests: set up, then run pytest (end-to-end tests drive real Chromium against sims/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
