#!/usr/bin/env bash
# The tests: set up, then run pytest (end-to-end tests drive real Chromium against sims/).
# The ledger's and the fleet's PostgreSQL cases run on FLEET_TEST_DATABASE_URL when the
# caller sets it; otherwise scripts/postgres.sh provides one (installing or starting
# Debian's PostgreSQL as needed) or says why not, and only those cases are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${FLEET_TEST_DATABASE_URL:-}" ]; then
  url=$(bash scripts/postgres.sh) || url=""
  if [ -n "$url" ]; then export FLEET_TEST_DATABASE_URL="$url"; fi
fi
exec .venv/bin/python -m pytest "$@"
