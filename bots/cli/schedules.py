"""Commands that hand the recipes' schedules to the machine's scheduler: crontab, systemd.

Both print (or write) what to install and change nothing on the machine themselves:
installing a crontab or enabling a timer is the operator's decision."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import EXIT_OK, RecipeError, UsageError
from ..settings import PROJECT_ROOT, Settings
from .app import Console, _load, main, pass_console

if TYPE_CHECKING:
    from ..recipe import LoadedRecipe
    from ..scheduling.environment import RunEnvironment


def _scheduled_recipes(console: Console, names: tuple[str, ...]) -> list[LoadedRecipe]:
    """The recipes named (each must have a schedule), or every recipe in recipes/ that has
    one. A recipe in recipes/ that does not load is named on standard error and left out:
    it would fail every night, and the others should not wait for it."""
    if names:
        loaded = [_load(name) for name in names]
        for recipe in loaded:
            if recipe.recipe.schedule is None:
                raise UsageError(
                    f"{recipe.path}: the recipe has no `schedule:` section; add one "
                    '(e.g. `schedule: {every: day, at: "02:30"}`) or leave it out'
                )
        return loaded
    from ..recipe import load_recipe

    found = []
    for path in sorted((PROJECT_ROOT / "recipes").glob("*.y*ml")):
        try:
            recipe = load_recipe(path)
        except RecipeError as exc:
            console.err(f"warning: {path} left out: {exc}")
            continue
        if recipe.recipe.schedule is not None:
            found.append(recipe)
    return found


def _environment(recipes: list[LoadedRecipe]) -> RunEnvironment:
    from ..scheduling.environment import run_environment

    names = [name for recipe in recipes for name in recipe.recipe.env]
    return run_environment(os.environ, names)


@main.command()
@click.argument("recipes", nargs=-1)
@click.option(
    "--mailto",
    metavar="ADDRESS",
    help="Add MAILTO=ADDRESS: where cron mails a failed run's errors (default: the "
    "crontab's owner; an empty value mails nothing).",
)
@pass_console
def crontab(console: Console, recipes: tuple[str, ...], mailto: str | None) -> int:
    """Print a crontab that runs every scheduled recipe in recipes/ (or RECIPES).

    Each line runs `runner.py run RECIPE --scheduled` with absolute paths, the project's
    virtual environment and, for a desktop recipe, xvfb-run; the output goes to
    logs/cron/RECIPE.log and to cron, which mails it: nothing on success, the summary and
    the errors on failure. Install it with `crontab FILE`.
    """
    from ..scheduling.commands import project_python
    from ..scheduling.cron import CronOptions, crontab_text
    from ..timezones import local_zone

    loaded = _scheduled_recipes(console, recipes)
    options = CronOptions(
        root=PROJECT_ROOT,
        python=project_python(),
        logs_dir=Settings.from_env(os.environ).logs_dir,
        machine_zone=local_zone(),
        now=datetime.now(UTC),
        mailto=mailto,
    )
    text = crontab_text(loaded, _environment(loaded), options)
    if not loaded:
        text += "\n# (no recipe in recipes/ has a `schedule:` section)\n"
    console.out(text.rstrip("\n"))
    return EXIT_OK


SYSTEM_DIR = Path("/etc/systemd/system")
USER_DIR = Path("~/.config/systemd/user")


@main.command()
@click.argument("recipes", nargs=-1)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write rpa-fleet-RECIPE.service and .timer here (e.g. /etc/systemd/system) "
    "instead of printing them.",
)
@click.option(
    "--user",
    "user_units",
    is_flag=True,
    help="Units for the user's own systemd (systemctl --user) rather than the system's.",
)
@pass_console
def systemd(
    console: Console, recipes: tuple[str, ...], directory: Path | None, user_units: bool
) -> int:
    """Print (or write with --dir) a systemd service and timer per scheduled recipe.

    The service runs `runner.py run RECIPE --scheduled` once (Type=oneshot) in the
    project's folder; the timer fires it in the recipe's own time zone, with
    Persistent=true so that a run missed while the machine was off happens at boot.
    """
    from ..scheduling.commands import project_python
    from ..scheduling.systemd import UnitOptions, recipe_units
    from ..timezones import local_zone

    loaded = _scheduled_recipes(console, recipes)
    if not loaded:
        raise UsageError("no recipe in recipes/ has a `schedule:` section: no units to write")
    options = UnitOptions(
        root=PROJECT_ROOT,
        python=project_python(),
        machine_zone=local_zone(),
        now=datetime.now(UTC),
        run_as=None if user_units else getpass.getuser(),
    )
    environment = _environment(loaded)
    units = [recipe_units(recipe, environment, options) for recipe in loaded]
    if directory is None:
        for unit in units:
            console.out(f"# {unit.name}.service\n{unit.service}\n# {unit.name}.timer\n{unit.timer}")
        return EXIT_OK
    directory.mkdir(parents=True, exist_ok=True)
    for unit in units:
        (directory / f"{unit.name}.service").write_text(unit.service, encoding="utf-8")
        (directory / f"{unit.name}.timer").write_text(unit.timer, encoding="utf-8")
        console.out(f"wrote {directory / unit.name}.service and .timer")
    systemctl = "systemctl --user" if user_units else "systemctl"
    home = (USER_DIR if user_units else SYSTEM_DIR).expanduser()
    console.out("next:")
    if directory.resolve() != home.resolve():
        written = " ".join(
            f"{directory / unit.name}.{kind}" for unit in units for kind in ("service", "timer")
        )
        console.out(f"  cp {written} {home}/")
    timers = " ".join(f"{unit.name}.timer" for unit in units)
    console.out(f"  {systemctl} daemon-reload && {systemctl} enable --now {timers}")
    if user_units:
        console.out(f"  loginctl enable-linger {getpass.getuser()}   # run while logged out")
    return EXIT_OK
