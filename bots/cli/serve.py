"""Commands that keep recipes on their schedules: serve, status, resume."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import EXIT_OK, EXIT_USAGE, FleetError, UsageError
from ..settings import PROJECT_ROOT, Settings
from .app import Console, _ledger, _resolve_recipe, ledger_option, logs_option, main, pass_console

if TYPE_CHECKING:
    from ..scheduling.serve import ScheduledRecipe
    from ..scheduling.timetable import Timetable

ISO_TIME = click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S"])


def recipe_paths(names: tuple[str, ...]) -> list[Path]:
    """The recipes named, or every recipe in recipes/."""
    if names:
        return [_resolve_recipe(name) for name in names]
    return sorted((PROJECT_ROOT / "recipes").glob("*.yaml"))


def timetable_of(path: Path) -> tuple[str, Timetable | None]:
    """A recipe's name and timetable (None: no schedule); ``FleetError`` (file:line)
    when it does not load."""
    from ..recipe import load_recipe
    from ..scheduling.timetable import Timetable

    loaded = load_recipe(path)
    return loaded.name, Timetable.for_recipe(loaded)


def load_scheduled(
    paths: list[Path], extra: list[str], log: logging.Logger
) -> list[ScheduledRecipe]:
    """The scheduled recipes among ``paths``; one that does not load is logged and left
    out (the others keep their schedules), and one without a schedule is skipped."""
    from ..recipe import load_recipe
    from ..scheduling.commands import display_size, run_command
    from ..scheduling.serve import ScheduledRecipe
    from ..scheduling.timetable import Timetable

    found = []
    for path in paths:
        try:
            loaded = load_recipe(path)
        except FleetError as exc:
            log.error("%s: does not load, so it is not scheduled: %s", path, exc)
            continue
        timetable = Timetable.for_recipe(loaded)
        if timetable is None:
            continue
        found.append(
            ScheduledRecipe(
                name=loaded.name,
                path=loaded.path,
                timetable=timetable,
                pause_after=timetable.schedule.pause_after,
                # serve makes a desktop recipe's display itself (see process_launcher)
                command=run_command(loaded, "--quiet", *extra, display=False),
                screen=display_size(loaded),
            )
        )
    return found


def _logger(settings: Settings) -> logging.Logger:
    """serve's log: standard error (a terminal, systemd's journal) and logs/serve/serve.log."""
    log = logging.getLogger("rpa_fleet.serve")
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    folder = settings.logs_dir / "serve"
    folder.mkdir(parents=True, exist_ok=True)
    form = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    for handler in (
        logging.StreamHandler(sys.stderr),
        logging.FileHandler(folder / "serve.log", encoding="utf-8"),
    ):
        handler.setFormatter(form)
        log.addHandler(handler)
    return log


@main.command()
@click.argument("recipes", nargs=-1)
@logs_option
@ledger_option
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="How many recipes may run at once (one run per recipe, always).",
)
@click.option(
    "--fleet",
    is_flag=True,
    help="Fleet mode (FLEET_DATABASE_URL): hand each due run to the fleet's workers (a "
    "listing job) instead of running it here. Run one serve per fleet.",
)
@click.option("--once", is_flag=True, help="Run what is due now (missed runs too), then exit.")
@click.option(
    "--now",
    "now",
    type=ISO_TIME,
    default=None,
    help="With --once: the moment to decide at (ISO-8601; naive means UTC), for tests.",
)
@pass_console
def serve(
    console: Console,
    recipes: tuple[str, ...],
    logs_dir: Path | None,
    ledger_url: str | None,
    max_parallel: int,
    fleet: bool,
    once: bool,
    now: datetime | None,
) -> int:
    """Keep the scheduled recipes (every recipe in recipes/ with a `schedule:`, or those
    named) running on time, until SIGTERM.

    Missed runs (the machine was off) are found in the ledger and handled by each
    recipe's `on_missed`; a recipe failing `pause_after` runs in a row is paused
    (`runner.py status` shows it, `runner.py resume` ends it). SIGTERM lets the runs
    finish their current documents, then exits; SIGHUP reloads the recipes.
    """
    from ..scheduling.book import ScheduleBook
    from ..scheduling.serve import FixedClock, Server, SystemClock, process_launcher

    if now is not None and not once:
        raise UsageError("--now goes with --once (a clock set by hand cannot move)")
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    if fleet:
        from .fleet import fleet_settings

        settings = fleet_settings(logs_dir, ledger_url)  # exit 2 without FLEET_DATABASE_URL
    log = _logger(settings)
    extra = ["--logs-dir", str(settings.logs_dir), "--ledger", settings.ledger_url]
    paths = recipe_paths(recipes)
    ledger = _ledger(settings)
    clock = SystemClock() if now is None else FixedClock(now)
    server = Server(
        recipes=lambda: load_scheduled(paths, extra, log),
        book=ScheduleBook(ledger, "serve"),
        clock=clock,
        launcher=(_fleet_launcher(settings, log) if fleet else process_launcher(settings.logs_dir)),
        max_parallel=max_parallel,
    )
    restore = server.install_signals()
    try:
        if once:
            server.once()
        else:
            log.info("serve: %d recipe file(s), up to %d at once", len(paths), max_parallel)
            server.serve_forever()
    finally:
        restore()
        ledger.close()
    if not server.known:
        console.err("no scheduled recipes: add a `schedule:` section to a recipe")
        return EXIT_USAGE
    return EXIT_OK


def _fleet_launcher(settings: Settings, log: logging.Logger) -> Any:
    """Each due run deferred as a listing job (bots.fleet): the workers do the rest.
    What the run then does is in its run log and the ledger, not in serve's exit codes:
    `pause_after` counts only runs that could not be handed over."""
    from ..fleet.process import defer_run
    from ..recipe import load_recipe
    from ..scheduling.serve import Handed

    def launch(recipe: ScheduledRecipe) -> Handed:
        job = defer_run(settings, load_recipe(recipe.path))
        if job is None:
            log.info("%s: a listing is already waiting in the fleet's queue", recipe.name)
        else:
            log.info("%s: handed to the fleet (listing job %s)", recipe.name, job)
        return Handed()

    return launch


@main.command()
@click.argument("recipes", nargs=-1)
@logs_option
@ledger_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for monitoring tools.")
@pass_console
def status(
    console: Console,
    recipes: tuple[str, ...],
    logs_dir: Path | None,
    ledger_url: str | None,
    as_json: bool,
) -> int:
    """Per recipe: the last run, the next due time, documents pending or held, and
    whether it is paused. Exit 0 when all is well, 1 when a recipe is paused, broken,
    or holds documents that need a person."""
    from ..ledger import queries
    from ..scheduling import status as report
    from ..scheduling.book import ScheduleBook

    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    ledger = _ledger(settings, migrate=True)  # a new site's ledger: empty, not an error
    now = datetime.now(UTC)
    statuses = []
    try:
        book = ScheduleBook(ledger, "status")
        seen = set()
        for path in recipe_paths(recipes):
            try:
                name, timetable = timetable_of(path)
            except FleetError as exc:
                statuses.append(report.RecipeStatus(path.stem, str(path), problem=str(exc)))
                continue
            seen.add(name)
            entry = report.recipe_status(book, name, timetable, now)
            entry.path = str(path)
            statuses.append(entry)
        if not recipes:  # recipes the ledger knows whose file is gone
            for name in sorted(set(queries.recipes(ledger)) - seen):
                entry = report.recipe_status(book, name, None, now)
                entry.problem = "no recipe file in recipes/ (removed or renamed?)"
                statuses.append(entry)
    finally:
        ledger.close()
    if as_json:
        console.out(report.as_json(statuses, now))
    else:
        for line in report.as_lines(statuses):
            console.out(line)
    return EXIT_OK if all(s.healthy for s in statuses) else 1


@main.command()
@click.argument("recipe")
@logs_option
@ledger_option
@pass_console
def resume(console: Console, recipe: str, logs_dir: Path | None, ledger_url: str | None) -> int:
    """End RECIPE's pause (after its cause is fixed): its schedule applies again."""
    from ..scheduling.book import ScheduleBook
    from ..scheduling.decide import resume as resume_recipe

    name, _ = timetable_of(_resolve_recipe(recipe))
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    ledger = _ledger(settings)
    try:
        book = ScheduleBook(ledger, "resume")
        was = book.standing(name)
        if was.paused:
            resume_recipe(book, name, datetime.now(UTC))
    finally:
        ledger.close()
    console.out(f"{name}: {'resumed' if was.paused else 'was not paused; nothing to do'}")
    return EXIT_OK
