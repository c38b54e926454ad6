#!/usr/bin/env bash
# The demo: set up, then capture every report of the simulated ERP into the simulated archive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python runner.py demo "$@"
