"""What cron's cheap paths import: `--help`, `check`, `logs verify`, `credentials check`
and a run that finds its recipe locked must not load the browser or the data stack.

Each command runs in a fresh interpreter that writes its final ``sys.modules`` to a file
when it exits (runner.py ends in ``sys.exit``, which still runs ``atexit``). No timings
here: bench/startup.py prints those.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bots
from bots.lock import RecipeLock
from tests.conftest import DEMO_RECIPE, ROOT

# What a no-op path must never load: the browser, the data stack, the PDF reader, and
# fleet mode's queue (only the fleet's commands load Procrastinate and its pool).
HEAVY = {"playwright", "pandas", "numpy", "openpyxl", "RPA", "procrastinate", "psycopg_pool"}
# `--help` and `check` touch no ledger (nor its PostgreSQL driver), draw no progress bar.
NO_LEDGER = HEAVY | {"sqlalchemy", "rich", "httpx", "keyring", "keyrings", "psycopg"}
# `--help` needs click and the command definitions, nothing that validates or stores.
HELP_ONLY = NO_LEDGER | {"pydantic", "pydantic_core", "ruamel", "jinja2"}

_PROBE = """
import atexit, runpy, sys
out, argv = sys.argv[1], sys.argv[2:]
def dump():
    with open(out, "w", encoding="utf-8") as f:
        f.write("\\n".join(sorted(sys.modules)))
atexit.register(dump)
sys.argv = ["runner.py", *argv]
runpy.run_path("runner.py", run_name="__main__")
"""


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `runner.py ARGS`; its result and the top-level packages it had imported."""
    modules_file = tmp_path / "modules.txt"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(modules_file), *args],
        cwd=ROOT,
        env={**os.environ, "FLEET_LOGS_DIR": str(tmp_path / "logs"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert modules_file.exists(), f"the probe wrote no module list: {proc.stderr}"
    names = modules_file.read_text(encoding="utf-8").split()
    return proc, {name.partition(".")[0] for name in names}


def test_help_imports_only_click_and_the_command_definitions(tmp_path: Path) -> None:
    proc, loaded = _run(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "check" in proc.stdout
    assert not loaded & HELP_ONLY, f"`runner.py --help` imported {sorted(loaded & HELP_ONLY)}"


def test_check_imports_the_recipe_schema_but_not_the_browser(tmp_path: Path) -> None:
    proc, loaded = _run(tmp_path, "check", str(DEMO_RECIPE))
    assert proc.returncode == 0, proc.stderr
    assert ": ok (recipe 'demo'" in proc.stdout
    assert "pydantic" in loaded  # it did validate
    assert not loaded & NO_LEDGER, f"`runner.py check` imported {sorted(loaded & NO_LEDGER)}"


def test_logs_verify_of_an_empty_folder_imports_nothing_heavy(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    proc, loaded = _run(tmp_path, "logs", "verify", str(runs))
    # Nothing to verify is never "intact" (issue 12); no ledger there, so none is opened.
    assert proc.returncode == 1, proc.stderr
    assert "nothing to verify" in proc.stderr and proc.stdout == ""
    assert not loaded & NO_LEDGER, f"`logs verify` imported {sorted(loaded & NO_LEDGER)}"


def test_credentials_check_imports_nothing_heavy(tmp_path: Path, keyring_env: dict) -> None:
    proc, loaded = _run(tmp_path, "credentials", "check", "absent", env=keyring_env)
    assert proc.returncode == 2, proc.stderr
    assert "no credential named 'absent'" in proc.stderr
    assert not loaded & HEAVY, f"`credentials check` imported {sorted(loaded & HEAVY)}"


def test_a_locked_run_exits_75_without_loading_the_browser(
    tmp_path: Path, keyring_env: dict, clock
) -> None:
    lock = RecipeLock(tmp_path / "logs" / "locks", "demo")
    lock.acquire(wait=None, now=clock, run_id="demo-held-by-the-test")
    try:
        proc, loaded = _run(tmp_path, "run", str(DEMO_RECIPE), env=keyring_env)
    finally:
        lock.release()
    assert proc.returncode == 75, proc.stderr
    assert not loaded & HEAVY, f"a locked `run` imported {sorted(loaded & HEAVY)}"


def test_import_bots_is_cheap_and_every_public_name_resolves(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, bots; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    loaded = {name.partition(".")[0] for name in proc.stdout.split()}
    assert not loaded & HELP_ONLY, f"`import bots` imported {sorted(loaded & HELP_ONLY)}"
    # The lazy table, the type checkers' imports and __all__ name the same things.
    assert set(bots.__all__) == set(bots._EXPORTS) | {"__version__"}
    for name in bots.__all__:
        assert getattr(bots, name) is not None, name
    assert set(bots.__all__) <= set(dir(bots))


# What only a desktop session may load: none of it can even be imported without a display.
DESKTOP = {"pyautogui", "Xlib", "cv2", "PIL", "pyscreeze", "pymsgbox", "mouseinfo", "numpy"}


def test_check_of_a_desktop_recipe_imports_no_desktop_library(tmp_path: Path) -> None:
    from tests.test_desktop_driver import write_recipe

    path = write_recipe(tmp_path, "- click: icon.png\n- press: [tab, enter]")
    proc, loaded = _run(tmp_path, "check", str(path))
    assert proc.returncode == 0, proc.stderr
    assert ": ok (recipe 'desktop-test'" in proc.stdout
    assert not loaded & DESKTOP, f"`check` of a desktop recipe imported {sorted(loaded & DESKTOP)}"
