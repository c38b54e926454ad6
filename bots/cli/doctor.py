"""``runner.py doctor``: a preflight, one line per check (see bots/doctor.py)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..settings import PROJECT_ROOT, Settings
from .app import Console, _resolve_recipe, ledger_option, logs_option, main, pass_console


@main.command()
@click.argument("recipes", nargs=-1)
@click.option(
    "--login",
    is_flag=True,
    help="Also log in to every system with the recipe's login steps (contacts the systems; "
    "writes nothing).",
)
@logs_option
@ledger_option
@pass_console
def doctor(
    console: Console,
    recipes: tuple[str, ...],
    login: bool,
    logs_dir: Path | None,
    ledger_url: str | None,
) -> int:
    """Check that RECIPES (default: every recipes/*.yaml) can run on this machine.

    One line per check: ok, warn or FAIL with the fix. Changes nothing (the ledger is
    not upgraded). Exit 0: nothing would fail; 2: configuration to correct (a recipe,
    a credential, the keyring, a ledger behind its schema); 3: the machine (browser,
    display, ledger or logs folder, disk space, a login that fails).
    """
    from .. import doctor as checks

    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    paths = [_resolve_recipe(r) for r in recipes] or sorted(
        (PROJECT_ROOT / "recipes").glob("*.yaml")
    )
    found: list[checks.Check] = []

    def say(*new: checks.Check) -> None:
        for check in new:
            found.append(check)
            console.out(check.line())

    recipe_checks, loaded = checks.recipes(paths)
    say(*recipe_checks)
    drivers = checks.drivers_of(loaded)
    if "web" in drivers:
        say(checks.browser(os.environ))
    if "desktop" in drivers:
        say(*checks.display(os.environ))
    keyring_checks, store = checks.keyring(os.environ, console.redactor)
    say(*keyring_checks)
    if store is not None:
        say(*checks.credentials_present(loaded, store))
        if login:
            say(*checks.logins(loaded, store, settings, console.redactor))
    say(checks.ledger(settings))
    say(checks.logs(settings))
    failures = sum(c.status == "FAIL" for c in found)
    warnings = sum(c.status == "warn" for c in found)
    console.out(f"doctor: {failures} failure(s), {warnings} warning(s), {len(found)} checks")
    return checks.exit_code(found)
