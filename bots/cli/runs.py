"""Commands that run a recipe: run, inventory, retry, check, demo."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..childenv import environ_lock
from ..errors import EXIT_LOCKED, EXIT_OK, EXIT_USAGE, UsageError
from ..settings import Settings
from .app import (
    Console,
    _ledger,
    _load,
    ledger_option,
    logs_option,
    main,
    pass_console,
    report,
)

if TYPE_CHECKING:
    from credentials import Credential

    from ..pipeline import RunSummary
    from ..recipe import LoadedRecipe


@main.command()
@click.argument("recipe")
@logs_option
@ledger_option
@click.option(
    "--wait",
    "wait",
    type=float,
    default=None,
    is_flag=False,
    flag_value=3600.0,
    help="If the recipe is already running, wait for it (up to SECONDS, default 3600) "
    "instead of exiting 75 at once.",
    metavar="[SECONDS]",
)
@click.option(
    "--scheduled",
    is_flag=True,
    help="Started by cron or systemd: run only when the recipe's schedule says it is due "
    "(holidays, missed runs, pauses), record the outcome, print nothing on success.",
)
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@click.option(
    "--fleet",
    is_flag=True,
    help="Fleet mode (FLEET_DATABASE_URL): hand the run to the fleet's workers (a listing "
    "job, then a job per few documents) instead of doing it here; returns at once.",
)
@click.option(
    "--virtual-display",
    is_flag=True,
    help="For a desktop recipe: run on a private Xvfb of its `screen:` size, made for this "
    "run and stopped after it (what systemd units use: SIGTERM reaches the run, which "
    "finishes its document before the display goes).",
)
@pass_console
def run(
    console: Console,
    recipe: str,
    logs_dir: Path | None,
    ledger_url: str | None,
    wait: float | None,
    scheduled: bool,
    quiet: bool,
    fleet: bool,
    virtual_display: bool,
) -> int:
    """Run RECIPE once: list, download, archive and confirm what is new.

    RECIPE is a path or a name in recipes/. Prints one summary line; failures go to
    standard error, each saying what to do next.
    """
    loaded = _load(recipe)
    if fleet and scheduled:
        raise UsageError(
            "--fleet with --scheduled: a fleet's schedules are kept by one "
            "`runner.py serve --fleet`; cron may call `run RECIPE --fleet` at fixed times"
        )
    if fleet:
        return _deferred(console, loaded, logs_dir, ledger_url, quiet)
    if scheduled:
        return _scheduled(console, loaded, logs_dir, ledger_url, wait, virtual_display)
    if quiet:
        summary = pipeline_run(
            console, "capture", loaded, logs_dir, ledger_url, wait, own_display=virtual_display
        )
        return summary.exit_code if summary.exit_code == EXIT_OK else report(console, summary)
    return _reported(
        console, "capture", loaded, logs_dir, ledger_url, wait, own_display=virtual_display
    )


def _deferred(
    console: Console,
    loaded: LoadedRecipe,
    logs_dir: Path | None,
    ledger_url: str | None,
    quiet: bool,
) -> int:
    """Hand the run to the fleet: a listing job (at most one waits per recipe)."""
    from ..fleet.process import defer_run
    from .fleet import fleet_settings

    settings = fleet_settings(logs_dir, ledger_url)
    job = defer_run(settings, loaded)
    if job is None:
        console.err(f"{loaded.name}: a listing is already waiting in the fleet's queue")
    elif not quiet:
        console.out(f"{loaded.name}: handed to the fleet (listing job {job})")
    return EXIT_OK


@contextmanager
def _own_display(loaded: LoadedRecipe, wanted: bool) -> Iterator[None]:
    """DISPLAY set to a private Xvfb of the recipe's screen size while the run goes on
    (nothing unless ``wanted``, or for a recipe with no desktop system)."""
    from ..scheduling.commands import display_size
    from ..virtualdisplay import virtual_display

    size = display_size(loaded) if wanted else None
    if size is None:
        yield
        return
    saved = {name: os.environ.get(name) for name in ("DISPLAY", "XDG_SESSION_TYPE")}
    with virtual_display(screen=f"{size}x24") as display:
        with environ_lock:
            os.environ.update(display.env({}))
        try:
            yield
        finally:
            with environ_lock:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value


def _scheduled(
    console: Console,
    loaded: LoadedRecipe,
    logs_dir: Path | None,
    ledger_url: str | None,
    wait: float | None,
    own_display: bool,
) -> int:
    """A run cron or systemd started: due now (or owed, by `on_missed`)? Then run and
    count the outcome; otherwise exit 0 in silence. A cron line per UTC offset and
    systemd's catch-up after a boot both end up here, so this is where they agree."""
    from datetime import UTC, datetime

    from ..errors import FleetError, Locked
    from ..scheduling.book import ScheduleBook
    from ..scheduling.decide import decide, record_decision, record_finish
    from ..scheduling.timetable import Timetable

    timetable = Timetable.for_recipe(loaded)
    if timetable is None:
        raise UsageError(
            f"{loaded.path}: the recipe has no `schedule:` section; run it without --scheduled"
        )
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    ledger = _ledger(settings)
    try:
        book = ScheduleBook(ledger, "systemd" if "INVOCATION_ID" in os.environ else "cron")
        pause_after = timetable.schedule.pause_after
        now = datetime.now(UTC)
        decision = decide(
            timetable, book.standing(loaded.name), book.last_started(loaded.name), now
        )
        if decision.kind == "missed_skip":  # worth a record; "not due" (the other
            record_decision(book, loaded.name, decision, now)  # offset's line) is not
        if not decision.run:
            return EXIT_OK
        record_decision(book, loaded.name, decision, now)
        try:
            summary = pipeline_run(
                console, "capture", loaded, logs_dir, ledger_url, wait, own_display=own_display
            )
            code = summary.exit_code
        except Locked:
            code = EXIT_LOCKED  # the run before is still at work: nothing to say
            summary = None
        except FleetError as exc:  # the group prints it; a pause is said here
            standing = record_finish(
                book, loaded.name, pause_after, exc.exit_code, datetime.now(UTC)
            )
            if standing.paused:
                console.err(f"PAUSED {loaded.name}: {standing.paused_reason}")
            raise
        standing = record_finish(
            book,
            loaded.name,
            pause_after,
            code,
            datetime.now(UTC),
            due=decision.due,
        )
    finally:
        ledger.close()
    if summary is not None and code != EXIT_OK:
        report(console, summary)
    if standing.paused:
        console.err(f"PAUSED {loaded.name}: {standing.paused_reason}")
    return EXIT_OK if code == EXIT_LOCKED else code


def _reported(
    console: Console,
    action: str,
    loaded: LoadedRecipe,
    logs_dir: Path | None,
    ledger_url: str | None,
    wait: float | None,
    **options: Any,
) -> int:
    """One run (a capture or an inventory) with a progress bar on a terminal, reported;
    its exit code."""
    from ..progress import progress_for

    progress = progress_for(sys.stderr)
    try:
        summary = pipeline_run(
            console, action, loaded, logs_dir, ledger_url, wait, progress=progress, **options
        )
    finally:
        progress.close()
    return report(console, summary)


class _KeyringOnDemand:
    """The credential store, opened when the run first asks for a credential: a run that
    finds its recipe locked (cron's no-op path) pays no Argon2 derivation. The master key
    is proven by the first credential decrypted, not by a derivation of its own."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._store: Any = None

    def get(self, name: str) -> Credential:
        if self._store is None:
            from credentials import open_store

            self._store = open_store(os.environ, self.console.redactor, check_key=False)
        credential: Credential = self._store.get(name)
        return credential


def pipeline_run(
    console: Console,
    action: str,
    loaded: LoadedRecipe,
    logs_dir: Path | None,
    ledger_url: str | None,
    wait: float | None,
    own_display: bool = False,
    **options: Any,
) -> RunSummary:
    """One run of the pipeline (``capture`` or ``inventory``) with the stop signals
    handled: SIGTERM and Ctrl-C finish the document in hand, then stop. ``own_display``:
    a desktop recipe gets a private Xvfb for the run (made only when a run happens, not
    when a scheduled firing finds nothing due)."""
    from .. import pipeline
    from ..resilience import StopFlag, install_stop_handlers

    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    store = _KeyringOnDemand(console)
    stop = StopFlag()
    restore = install_stop_handlers(stop)
    work = pipeline.capture if action == "capture" else pipeline.inventory
    try:
        with _own_display(loaded, own_display):
            return work(
                loaded, settings, store, console.redactor, stop=stop, lock_wait=wait, **options
            )
    finally:
        restore()


@main.command()
@click.argument("recipe")
@click.argument("keys", nargs=-1, required=True)
@logs_option
@ledger_option
@pass_console
def retry(
    console: Console,
    recipe: str,
    keys: tuple[str, ...],
    logs_dir: Path | None,
    ledger_url: str | None,
) -> int:
    """Take documents KEYS up again once the cause is fixed, from whatever state they are in.

    A held document is released; one failed or uploaded with an archive id the archive
    does not bear out (reading it back found nothing) forgets that id, and the next run
    looks it up with `find` before uploading it again. Each key's line says what was
    done. A changed recipe retries its held documents without this.
    """
    from ..pipeline.retry import retry_document

    loaded = _load(recipe)
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    can_find = bool(loaded.recipe.archive.find)
    ledger = _ledger(settings)
    code = EXIT_OK
    try:
        for key in keys:
            doc = ledger.get(loaded.name, key)
            if doc is None:
                console.out(f"{key}: not in the ledger for recipe {loaded.name}; nothing done")
                code = EXIT_USAGE
                continue
            done = retry_document(ledger, doc, can_find=can_find)
            if done.refused:
                code = EXIT_USAGE
            console.out(f"{key}: {done.said}")
    finally:
        ledger.close()
    return code


@main.command()
@click.argument("recipe")
@click.option(
    "--fixity", is_flag=True, help="Also download every item back and hash it (slow, thorough)."
)
@logs_option
@ledger_option
@click.option("--wait", "wait", type=float, default=None, help="Wait for a running capture.")
@pass_console
def inventory(
    console: Console,
    recipe: str,
    fixity: bool,
    logs_dir: Path | None,
    ledger_url: str | None,
    wait: float | None,
) -> int:
    """Record what the archive says it holds, from its own list pages (RECIPE's
    `archive.inventory` steps). Reconciliation compares against it."""
    loaded = _load(recipe)
    if not loaded.recipe.archive.inventory:
        raise UsageError(f"{loaded.path}: the recipe has no `archive.inventory` steps")
    if fixity and not loaded.recipe.archive.fixity:
        raise UsageError(f"{loaded.path}: --fixity needs `archive.fixity` steps in the recipe")
    return _reported(console, "inventory", loaded, logs_dir, ledger_url, wait, fixity=fixity)


@main.command()
@click.argument("recipe")
@pass_console
def check(console: Console, recipe: str) -> int:
    """Validate RECIPE without contacting any system."""
    from ..recipe import walk_steps

    loaded = _load(recipe)
    r = loaded.recipe
    sections = [r.source.login, r.archive.login, r.archive.upload, r.archive.confirm]
    sections += [r.source.listing or [], r.source.detail or [], r.source.download or []]
    for item in r.source.listings or []:
        sections += [item.steps, item.detail or [], item.download or []]
    steps = sum(len(walk_steps(s)) for s in sections)
    console.out(
        f"{loaded.path}: ok (recipe {r.recipe!r}, {steps} steps, sha256 {loaded.digest[:12]})"
    )
    return EXIT_OK


@main.command()
@logs_option
@click.option(
    "--desktop",
    is_flag=True,
    help="Capture from the desktop client simulator (recipes/demo-desktop.yaml), in a "
    "private virtual display, instead of the web ERP.",
)
@pass_console
def demo(console: Console, logs_dir: Path | None, desktop: bool) -> int:
    """Start the simulators, run recipes/demo.yaml against them, report, stop them."""
    from ..demo import describe, run_demo
    from ..resilience import StopFlag, install_stop_handlers

    stop = StopFlag()
    restore = install_stop_handlers(stop)
    try:
        summary = run_demo(dict(os.environ), logs_dir, console.out, stop, desktop=desktop)
    finally:
        restore()
    for line in describe(summary):
        console.out(line)
    return report(console, summary)
