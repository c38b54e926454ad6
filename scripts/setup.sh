#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine: apt packages (only those missing),
# the virtual environment at .venv/, and pip (only when pyproject.toml changed).
set -euo pipefail
cd "$(dirname "$0")/.."

# libreoffice-calc-nogui: tests/test_workbook.py opens the reconciliation workbook headless
# (xlsx -> pdf) to prove it opens without repair; ~90 MB download, ~276 MB installed.
# clamav: clamscan, which the virus_scan check runs (tests/test_inspect.py and
# tests/test_e2e_virus.py give it their own EICAR signature file, offline); ~14 MB
# download, ~44 MB installed. No signatures come with it: freshclam fetches those (online).
# The desktop driver and its tests: xvfb (a virtual X server, xvfb-run), openbox (a small
# window manager: the tests run with and without one), xclip (the clipboard), x11-utils
# (xprop), xdotool (finding windows by hand when debugging a recipe), python3-tk (the
# desktop simulator, for Debian's python3), tesseract-ocr with Chinese (OCR reads).
# cron: the scheduler `runner.py crontab` writes for, and the one its end-to-end test
# starts (without recommends: no MTA is installed, cron's mail is the operator's choice).
# chromium-headless-shell: the same Chromium without its user interface, which headless runs
# take first (half the CPU per page: bots/drivers/web/browser.py); chromium for FLEET_HEADED.
APT_PACKAGES=(chromium chromium-headless-shell fonts-noto-cjk python3-venv python3-dev build-essential
  libreoffice-calc-nogui clamav xvfb xauth openbox xclip x11-utils xdotool python3-tk
  tesseract-ocr tesseract-ocr-chi-sim
  # a real Secret Service for the keyring backend tests (dbus-run-session + gnome-keyring)
  dbus gnome-keyring
  # real cron for the crontab end-to-end test (tests/test_crontab.py)
  cron)

missing=()
if command -v dpkg >/dev/null 2>&1; then
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv .venv
fi

stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  # sims: the simulators' Flask/reportlab, for the demo and the tests (not in the wheel);
  # fleet: Procrastinate and psycopg for fleet mode (FLEET_DATABASE_URL), imported only
  # by the fleet's commands, so the demo never loads them (PostgreSQL is not needed for
  # it: scripts/postgres.sh, which only the test command runs, sets that up)
  .venv/bin/python -m pip install -q -e '.[test,sims,fleet]'
  # pyautogui's python3-xlib 0.15 and python-xlib 0.33 share the Xlib/ package: the
  # newer one last (0.15 breaks without ~/.Xauthority, see ../shared/PLATFORM.md).
  .venv/bin/python -m pip install -q --force-reinstall --no-deps 'python-xlib==0.33'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
