"""The command line. The only place that turns exceptions into exit codes.

Exit codes: 0 all archived; 1 some documents failed for business reasons; 2 usage,
recipe or credential error; 3 system failure or circuit breaker; 75 the recipe is
already running; 130/143 stopped by Ctrl-C/SIGTERM after finishing the current document.
``logs verify``: 0 the run logs are intact, 1 something was edited, cut, removed or forged.
``reconcile``: 0 the batch closes, 1 it does not. ``apply-review``: 0 every action applied
or already in effect, 1 some refused. ``audit``: 0 written with the logs intact, 1 not intact.
A ledger newer than this code: exit 2 from every command; an older one is upgraded by the
commands that write and refused, with what to run, by those that only read (exit 2).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from credentials import KeyringSettings, create_key_file, open_store

from . import __version__
from .capture import Capture, RunSummary, local_now
from .errors import EXIT_SYSTEM, EXIT_USAGE, CredentialError, FleetError, UsageError
from .ledger import FailureKind, Ledger
from .progress import progress_for
from .recipe import LoadedRecipe, load_recipe, walk_steps
from .redaction import Redactor
from .resilience import STOP_EXIT_CODES, StopFlag, install_stop_handlers
from .settings import PROJECT_ROOT, Settings

F = TypeVar("F", bound=Callable[..., Any])
LOCAL_TIME = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])  # naive: local time
_redactor = Redactor()  # one per process: every secret fetched is registered here


def _err(message: str) -> None:
    click.echo(_redactor.scrub(message), err=True)


def _out(message: str) -> None:
    click.echo(_redactor.scrub(message))


def _guard(fn: F) -> F:
    """Turn the fleet's errors into one clear message and the class's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FleetError as exc:
            _err(f"error: {exc}")
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def _resolve_recipe(recipe: str) -> Path:
    """A path, or the name of a recipe in recipes/ (``demo`` → recipes/demo.yaml)."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return PROJECT_ROOT / "recipes" / f"{recipe}.yaml"


def _report(summary: RunSummary) -> int:
    """Failures to standard error, each with what to do next; the summary line; the code."""
    for key, reason, kind in summary.failures:
        _err(f"FAILED {summary.recipe} {key} ({kind}): {reason}")
    for doc in summary.held:
        _err(f"HELD {summary.recipe} {doc.source_key}: {doc.last_error}")
    if any(kind is FailureKind.SYSTEM for *_, kind in summary.failures):
        _err("next: system errors are retried by the next run; if they persist, check the system")
    if any(kind is FailureKind.BUSINESS for *_, kind in summary.failures) or summary.held:
        _err(
            "next: business failures are not retried as they stand. Fix the recipe (a changed "
            "recipe retries them) or the data at the source, then "
            f"`python runner.py retry {summary.recipe} KEY...`"
        )
    if summary.stopped_by:
        _err(f"stopped by {summary.stopped_by}; the next run carries on from here")
    _out(summary.line())
    if summary.stopped_by:
        return STOP_EXIT_CODES.get(summary.stopped_by, EXIT_SYSTEM)
    return summary.exit_code


logs_option = click.option(
    "--logs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where run logs, staging files and the default ledger go "
    "(default: logs/, or $FLEET_LOGS_DIR).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rpa-fleet")
def main() -> None:
    """RPA bot fleet: capture reports from legacy systems into the archive system.

    Exit codes: 0 all archived, 1 some documents failed, 2 usage/recipe/credential
    error, 3 system failure.
    """


ledger_option = click.option(
    "--ledger",
    "ledger_url",
    help="SQLAlchemy URL of the ledger (default: SQLite in the logs folder, or $FLEET_LEDGER_URL).",
)


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
@_guard
def run(recipe: str, logs_dir: Path | None, ledger_url: str | None, wait: float | None) -> None:
    """Run RECIPE once: list, download, archive and confirm what is new.

    RECIPE is a path or a name in recipes/. Prints one summary line; failures go to
    standard error, each saying what to do next.
    """
    loaded = load_recipe(_resolve_recipe(recipe))
    sys.exit(_run_capture(loaded, logs_dir, ledger_url, wait))


def _run_capture(
    loaded: LoadedRecipe,
    logs_dir: Path | None,
    ledger_url: str | None,
    wait: float | None,
    **options: Any,
) -> int:
    """One Capture run (a capture or an inventory), reported; its exit code."""
    progress = progress_for(sys.stderr)
    try:
        summary = _capture(loaded, logs_dir, ledger_url, wait, progress=progress, **options)
    finally:
        progress.close()
    return _report(summary)


def _capture(
    loaded: LoadedRecipe,
    logs_dir: Path | None,
    ledger_url: str | None,
    wait: float | None,
    **options: Any,
) -> RunSummary:
    """One Capture run with the stop signals handled."""
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    store = open_store(os.environ, _redactor)
    stop = StopFlag()
    restore = install_stop_handlers(stop)
    try:
        return Capture(
            loaded, settings, store, _redactor, stop=stop, lock_wait=wait, **options
        ).run()
    finally:
        restore()


@main.command()
@click.argument("recipe")
@click.argument("keys", nargs=-1, required=True)
@logs_option
@ledger_option
@_guard
def retry(
    recipe: str, keys: tuple[str, ...], logs_dir: Path | None, ledger_url: str | None
) -> None:
    """Let the next run retry documents KEYS held after a business failure.

    Use it once the cause is fixed at the source; a changed recipe needs no retry.
    """
    loaded = load_recipe(_resolve_recipe(recipe))
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    ledger = Ledger.open(settings.ledger_url, local_now, staging_root=settings.staging_root)
    try:
        released = ledger.release_held(loaded.name, list(keys))
    finally:
        ledger.close()
    for key in keys:
        what = "will be retried by the next run" if key in released else "not failed; nothing to do"
        _out(f"{key}: {what}")


@main.command()
@click.argument("recipe")
@click.option(
    "--fixity", is_flag=True, help="Also download every item back and hash it (slow, thorough)."
)
@logs_option
@ledger_option
@click.option("--wait", "wait", type=float, default=None, help="Wait for a running capture.")
@_guard
def inventory(
    recipe: str, fixity: bool, logs_dir: Path | None, ledger_url: str | None, wait: float | None
) -> None:
    """Record what the archive says it holds, from its own list pages (RECIPE's
    `archive.inventory` steps). Reconciliation compares against it."""
    loaded = load_recipe(_resolve_recipe(recipe))
    if not loaded.recipe.archive.inventory:
        raise UsageError(f"{loaded.path}: the recipe has no `archive.inventory` steps")
    if fixity and not loaded.recipe.archive.fixity:
        raise UsageError(f"{loaded.path}: --fixity needs `archive.fixity` steps in the recipe")
    sys.exit(_run_capture(loaded, logs_dir, ledger_url, wait, action="inventory", fixity=fixity))


@main.command()
@click.argument("recipe")
@_guard
def check(recipe: str) -> None:
    """Validate RECIPE without contacting any system."""
    loaded: LoadedRecipe = load_recipe(_resolve_recipe(recipe))
    r = loaded.recipe
    steps = sum(
        len(walk_steps(s))
        for s in (
            r.source.login,
            r.source.listing,
            r.source.download,
            r.archive.login,
            r.archive.upload,
            r.archive.confirm,
        )
    )
    _out(f"{loaded.path}: ok (recipe {r.recipe!r}, {steps} steps, sha256 {loaded.digest[:12]})")


@main.command("export-bag")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="The bag's folder; must not exist yet (or be empty).",
)
@click.option("--run", "run_id", help="Bag what this run captured.")
@click.option(
    "--since",
    type=LOCAL_TIME,
    help="Bag what was captured since this date (local time), e.g. 2026-11-01.",
)
@click.option("--recipe", "recipe_name", help="Only this recipe's documents.")
@click.option(
    "--organization",
    envvar="FLEET_ORGANIZATION",
    required=True,
    help="Source-Organization for bag-info.txt: who hands the records over "
    "(or $FLEET_ORGANIZATION).",
)
@logs_option
@ledger_option
@_guard
def export_bag_command(
    out: Path,
    run_id: str | None,
    since: datetime | None,
    recipe_name: str | None,
    organization: str,
    logs_dir: Path | None,
    ledger_url: str | None,
) -> None:
    """Write the captured files as a BagIt bag (RFC 8493) with their item metadata.

    Say which documents with --run RUN_ID or --since DATE. The bag validates with the
    `bagit` package (`bagit.py --validate DIR`), and carries item-metadata.csv.
    """
    from .archival.bag import export_bag

    if (run_id is None) == (since is None):
        raise UsageError("say which documents to bag: --run RUN_ID or --since DATE (one of them)")
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    ledger = Ledger.open(
        settings.ledger_url, local_now, staging_root=settings.staging_root, migrate=False
    )
    try:
        when = since.astimezone() if since is not None else None
        documents = ledger.captured(run_id=run_id, since=when, recipe=recipe_name)
    finally:
        ledger.close()
    external_id = run_id or f"{recipe_name or 'fleet'}-since-{since:%Y%m%d}"
    summary = export_bag(
        documents,
        out,
        organization=organization,
        external_id=external_id,
        description=f"Reports captured by rpa-fleet {__version__}"
        + (f" in run {run_id}" if run_id else f" since {since:%Y-%m-%d}"),
    )
    _out(
        f"bag {summary.path}: {summary.items} items, {summary.bytes} bytes "
        f"(Payload-Oxum {summary.oxum}), validated"
    )


@main.command("reconcile")
@click.option(
    "--recipe",
    "recipes",
    multiple=True,
    help="A recipe (path or name in recipes/); repeat for more. Default: every recipe "
    "the ledger holds documents of.",
)
@click.option(
    "--since",
    type=LOCAL_TIME,
    help="Only documents first listed since this date (local time).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The workbook to write (default: logs/reconcile/<batch id>.xlsx).",
)
@click.option(
    "--no-inventory",
    is_flag=True,
    help="Compare with the newest inventory already taken instead of taking a fresh one "
    "(with fixity) from the archive.",
)
@logs_option
@ledger_option
@click.option("--wait", "wait", type=float, default=None, help="Wait for a running capture.")
@_guard
def reconcile_command(
    recipes: tuple[str, ...],
    since: datetime | None,
    out: Path | None,
    no_inventory: bool,
    logs_dir: Path | None,
    ledger_url: str | None,
    wait: float | None,
) -> None:
    """Reconcile what the sources listed, what was captured and what the archive holds,
    into a workbook for archivists (账物相符).

    Takes a fresh inventory of the archive first, reading every file back when the
    recipe has `archive.fixity` steps. Exit 0 when the batch closes (every row 一致 or
    closed by a review), 1 when it does not, 2-3 as `run`.
    """
    from .reconcile.command import reconcile

    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    progress = progress_for(sys.stderr)
    try:
        outcome = reconcile(
            settings,
            [_resolve_recipe(r) for r in recipes],
            since=since.astimezone() if since else None,
            out=out,
            inventory=None
            if no_inventory
            else lambda loaded: _capture(
                loaded,
                logs_dir,
                ledger_url,
                wait,
                action="inventory",
                fixity=bool(loaded.recipe.archive.fixity),
                progress=progress,
            ),
            progress=progress,
        )
    finally:
        progress.close()
    if outcome.inventory_failed is not None:
        sys.exit(_report(outcome.inventory_failed))
    _out(f"{outcome.line} → {outcome.path}")
    sys.exit(0 if outcome.closes else 1)


@main.command("apply-review")
@click.argument("workbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@logs_option
@ledger_option
@_guard
def apply_review(workbook: Path, logs_dir: Path | None, ledger_url: str | None) -> None:
    """Apply the actions a reviewer typed in WORKBOOK's 核对 Reconciliation sheet.

    `recapture` on a 缺失 row: the next run uploads the document again; on 未下载 or
    检测未通过: the next run tries it again. `ignore` (with a note): the row is closed.
    The whole sheet is checked first; a bad row changes nothing. Every decision is
    recorded (ledger, run log, the workbook kept as evidence). Exit 0 when every action
    was applied or already in effect, 1 when some were refused (each says why).
    """
    from .reconcile.review import Review, read_decisions

    decisions = read_decisions(workbook)
    if not decisions:
        _out(f"{workbook}: no actions in the 处理 Action column: nothing to apply")
        return
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    ledger = Ledger.open(settings.ledger_url, local_now, staging_root=settings.staging_root)
    try:
        review = Review(
            ledger,
            settings.runs_dir,
            settings.logs_dir / "evidence",
            workbook,
            clock=local_now,
            redactor=_redactor,
        )
        applied = review.apply(decisions)
    finally:
        ledger.close()
    for a in applied:
        d = a.decision
        line = f"{a.outcome.upper()} {d.action} {d.recipe}/{d.key} ({d.cell}): {a.reason}"
        (_err if a.outcome == "refused" else _out)(line)
    counts = {o: sum(a.outcome == o for a in applied) for o in ("applied", "unchanged", "refused")}
    _out(
        f"review {review.review_id}: {counts['applied']} applied, {counts['unchanged']} "
        f"already in effect, {counts['refused']} refused (log {review.log.path})"
    )
    sys.exit(1 if counts["refused"] else 0)


@main.command("audit")
@click.option(
    "--since",
    required=True,
    type=LOCAL_TIME,
    help="The period's first day (local time), e.g. 2026-11-01.",
)
@click.option(
    "--until",
    type=LOCAL_TIME,
    help="The end of the period, exclusive (default: now).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write: .html (one self-contained page) or .xlsx "
    "(default: logs/audit/audit-SINCE.html).",
)
@logs_option
@ledger_option
@_guard
def audit_command(
    since: datetime,
    until: datetime | None,
    out: Path | None,
    logs_dir: Path | None,
    ledger_url: str | None,
) -> None:
    """Write the auditor's view of a period: every run (who, host, recipe digest, start,
    end, outcome), every document event with its evidence, and whether the run logs are
    intact. Exit 0 when they are, 1 when `logs verify` finds them altered."""
    from .audit import collect, write_report

    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    path = out or settings.logs_dir / "audit" / f"audit-{since:%Y%m%d}.html"
    ledger = Ledger.open(
        settings.ledger_url, local_now, staging_root=settings.staging_root, migrate=False
    )
    try:
        report = collect(
            ledger,
            settings.runs_dir,
            since.astimezone(),
            until.astimezone() if until else None,
        )
    finally:
        ledger.close()
    write_report(report, path)
    state = "intact" if report.logs.ok else "NOT intact"
    _out(
        f"audit {path}: {len(report.runs)} runs, {len(report.events)} events; "
        f"logs {state} (index head {report.index_head or 'none'})"
    )
    if not report.logs.ok:
        _err(f"TAMPERED: {report.logs.problems[0]}")
        sys.exit(1)


@main.group("ledger")
def ledger_group() -> None:
    """Look after the ledger itself."""


@ledger_group.command("upgrade")
@logs_option
@ledger_option
@_guard
def ledger_upgrade(logs_dir: Path | None, ledger_url: str | None) -> None:
    """Bring the ledger's schema up to this version of rpa-fleet.

    Every command that writes (run, inventory, retry, reconcile, apply-review) does it
    first anyway; audit and export-bag only read, and ask for this when the ledger is
    behind. Safe to run while other processes use the ledger. Exit 2 when the ledger is
    newer than this rpa-fleet.
    """
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    ledger = Ledger(settings.ledger_url, local_now, staging_root=settings.staging_root)
    try:
        done = ledger.upgrade()
    finally:
        ledger.close()
    name = ledger.name
    if done.before == done.after:
        _out(f"ledger {name}: at version {done.after} already; nothing to do")
    else:
        _out(f"ledger {name}: upgraded from version {done.before} to {done.after}")


@main.group("logs")
def logs_group() -> None:
    """Check the run logs, which are hash-chained so that any edit shows."""


@logs_group.command("verify")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@logs_option
@_guard
def logs_verify(path: Path | None, logs_dir: Path | None) -> None:
    """Check that no run log was edited, cut, removed or forged.

    PATH is a runs folder or one run file (default: the runs folder under the logs
    folder). Exit 0 when intact, 1 when anything is wrong: each problem goes to standard
    error, the first (where the tampering starts) on the first line.
    """
    from .logchain import verify

    if path is None:
        path = Settings.from_env(os.environ, logs_dir=logs_dir).runs_dir
    report = verify(path)
    if report.ok:
        for warning in report.warnings:
            _err(f"warning: {warning}")
        _out(f"logs intact: {report.files} files, {report.records} records")
        return
    first, *rest = report.problems
    _err(f"TAMPERED: {first}")
    for problem in rest:
        _err(f"problem: {problem}")
    for warning in report.warnings:
        _err(f"warning: {warning}")
    _err(
        f"logs NOT intact: {len(report.problems)} problem(s) in {report.files} files, "
        f"{report.records} records"
    )
    sys.exit(1)


@main.command()
@logs_option
@_guard
def demo(logs_dir: Path | None) -> None:
    """Start both simulators, run recipes/demo.yaml against them, report, stop them."""
    from .demo import describe, run_demo

    stop = StopFlag()
    restore = install_stop_handlers(stop)
    try:
        summary = run_demo(dict(os.environ), logs_dir, _out, stop)
    finally:
        restore()
    for line in describe(summary):
        _out(line)
    sys.exit(_report(summary))


@main.group()
def credentials() -> None:
    """Store and check credentials in the encrypted keyring (never printed)."""


@credentials.command("init")
@_guard
def credentials_init() -> None:
    """Create the keyring master key file (owner-only), if there is none."""
    settings = KeyringSettings.from_env(os.environ)
    if settings.key:
        _out("FLEET_KEYRING_KEY is set: no key file is needed")
        return
    created = create_key_file(settings.key_file)
    _out(f"{'created' if created else 'kept the existing'} master key file {settings.key_file}")


@credentials.command("set")
@click.argument("name")
@click.option("--username", help="The username (prompted for when absent).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (for scripts)."
)
@_guard
def credentials_set(name: str, username: str | None, password_stdin: bool) -> None:
    """Store the username and password of credential NAME."""
    store = open_store(os.environ, _redactor)
    if username is None:
        username = click.prompt("username")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise CredentialError("the password is empty")
    store.set(name, username, password)
    _out(f"stored credential {name!r} for {username!r} in {store.description}")


@credentials.command("check")
@click.argument("name")
@_guard
def credentials_check(name: str) -> None:
    """Say whether credential NAME is stored (exit 2 when it is not)."""
    store = open_store(os.environ, _redactor)
    credential = store.get(name)
    _out(f"credential {name!r} is stored (username {credential.username!r})")


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(EXIT_USAGE)
