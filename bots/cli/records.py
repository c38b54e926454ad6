"""Commands over what runs left behind: export-bag, reconcile, apply-review, audit, logs."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import __version__
from ..errors import EXIT_OK, UsageError
from ..settings import Settings
from .app import (
    LOCAL_TIME,
    Console,
    _ledger,
    _resolve_recipe,
    ledger_option,
    logs_option,
    main,
    pass_console,
    report,
)

if TYPE_CHECKING:
    from ..ledger import Document, Ledger
    from ..logchain import KnownRun, VerifyReport


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
@click.option(
    "--staging",
    "elsewhere",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Another machine's staging folder (mounted, or copied from it); repeat for more. "
    "A staged file not on this machine is taken from there when its SHA-256 is the one "
    "recorded at capture.",
)
@logs_option
@ledger_option
@pass_console
def export_bag_command(
    console: Console,
    out: Path,
    run_id: str | None,
    since: datetime | None,
    recipe_name: str | None,
    organization: str,
    elsewhere: tuple[Path, ...],
    logs_dir: Path | None,
    ledger_url: str | None,
) -> int:
    """Write the captured files as a BagIt bag (RFC 8493) with their item metadata.

    Say which documents with --run RUN_ID or --since DATE. The bag validates with the
    `bagit` package (`bagit.py --validate DIR`), and carries item-metadata.csv.

    In a fleet, a document's staged file is on the machine whose worker downloaded it,
    unless FLEET_STAGING_DIR names storage every worker shares. Files not here are looked
    for under each --staging DIR; any still missing are named with the host that captured
    them.
    """
    from ..archival.bag import export_bag

    if (run_id is None) == (since is None):
        raise UsageError("say which documents to bag: --run RUN_ID or --since DATE (one of them)")
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    ledger = _ledger(settings, migrate=False)
    try:
        when = since.astimezone() if since is not None else None
        documents = ledger.captured(run_id=run_id, since=when, recipe=recipe_name)
        holders = _holders(ledger, documents)
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
        labels=_field_labels({d.recipe for d in documents}),
        staging_root=settings.staging_root,
        elsewhere=[p.resolve() for p in elsewhere],
        holders=holders,
    )
    console.out(
        f"bag {summary.path}: {summary.items} items, {summary.bytes} bytes "
        f"(Payload-Oxum {summary.oxum}), validated"
    )
    return EXIT_OK


def _holders(ledger: Ledger, documents: list[Document]) -> dict[tuple[str, str], str]:
    """For each document whose staged file is not here: where it was captured, in words."""
    import socket

    from ..ledger import queries

    absent = [d for d in documents if d.staged_path and not Path(d.staged_path).is_file()]
    said: dict[tuple[str, str], str] = {}
    for recipe in sorted({d.recipe for d in absent}):
        runs = queries.capture_runs(ledger, recipe)
        for doc in (d for d in absent if d.recipe == recipe):
            found = runs.get(doc.source_key)
            if found is None:
                continue
            run, host, log_path = found
            mine = " (this host: another logs folder)" if host == socket.gethostname() else ""
            folder = Path(log_path).parent.parent / "staging"
            said[(recipe, doc.source_key)] = (
                f"downloaded on {host}{mine} by run {run}, whose staging folder is "
                f"{folder} unless FLEET_STAGING_DIR was set there"
            )
    return said


def _field_labels(recipes: set[str]) -> dict[str, dict[str, str]]:
    """Each recipe's own metadata fields -> labels, from its file in recipes/ when there
    is one that loads; without it, those fields are headed by their names."""
    from ..errors import RecipeError
    from ..recipe import load_recipe
    from ..settings import PROJECT_ROOT

    labels = {}
    for name in sorted(recipes):
        path = PROJECT_ROOT / "recipes" / f"{name}.yaml"
        try:
            labels[name] = load_recipe(path).recipe.metadata_profile.labels()
        except RecipeError:
            continue  # no such file, or one that no longer loads: names it is
    return labels


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
@pass_console
def reconcile_command(
    console: Console,
    recipes: tuple[str, ...],
    since: datetime | None,
    out: Path | None,
    no_inventory: bool,
    logs_dir: Path | None,
    ledger_url: str | None,
    wait: float | None,
) -> int:
    """Reconcile what the sources listed, what was captured and what the archive holds,
    into a workbook for archivists (账物相符).

    Takes a fresh inventory of the archive first, reading every file back when the
    recipe has `archive.fixity` steps. Exit 0 when the batch closes (every row 一致 or
    closed by a review), 1 when it does not, 2-3 as `run`.
    """
    from ..progress import progress_for
    from ..reconcile.command import reconcile
    from .runs import pipeline_run

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
            else lambda loaded: pipeline_run(
                console,
                "inventory",
                loaded,
                logs_dir,
                ledger_url,
                wait,
                fixity=bool(loaded.recipe.archive.fixity),
                progress=progress,
            ),
            progress=progress,
            redactor=console.redactor,
        )
    finally:
        progress.close()
    if outcome.inventory_failed is not None:
        return report(console, outcome.inventory_failed)
    console.out(f"{outcome.line} → {outcome.path}")
    return 0 if outcome.closes else 1


@main.command("apply-review")
@click.argument("workbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@logs_option
@ledger_option
@pass_console
def apply_review(
    console: Console, workbook: Path, logs_dir: Path | None, ledger_url: str | None
) -> int:
    """Apply the actions a reviewer typed in WORKBOOK's 核对 Reconciliation sheet.

    `recapture` on a 缺失 row: the next run uploads the document again; on 未下载 or
    检测未通过: the next run tries it again. `ignore` (with a note): the row is closed.
    The whole sheet is checked first; a bad row changes nothing. Every decision is
    recorded (ledger, run log, the workbook kept as evidence). Exit 0 when every action
    was applied or already in effect, 1 when some were refused (each says why).
    """
    from ..reconcile.review import Review, read_decisions

    decisions = read_decisions(workbook)
    if not decisions:
        console.out(f"{workbook}: no actions in the 处理 Action column: nothing to apply")
        return EXIT_OK
    from ..pipeline.context import local_now

    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    review = Review(settings, workbook, clock=local_now, redactor=console.redactor)
    applied = review.apply(decisions)
    for a in applied:
        d = a.decision
        line = f"{a.outcome.upper()} {d.action} {d.recipe}/{d.key} ({d.cell}): {a.reason}"
        (console.err if a.outcome == "refused" else console.out)(line)
    counts = {o: sum(a.outcome == o for a in applied) for o in ("applied", "unchanged", "refused")}
    console.out(
        f"review {review.review_id}: {counts['applied']} applied, {counts['unchanged']} "
        f"already in effect, {counts['refused']} refused (log {review.log_path})"
    )
    return 1 if counts["refused"] else 0


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
@pass_console
def audit_command(
    console: Console,
    since: datetime,
    until: datetime | None,
    out: Path | None,
    logs_dir: Path | None,
    ledger_url: str | None,
) -> int:
    """Write the auditor's view of a period: every run (who, host, recipe digest, start,
    end, outcome), every document event with its evidence, and whether the run logs are
    intact. Exit 0 when they are, 1 when `logs verify` finds them altered."""
    from ..audit import collect, write_report

    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    path = out or settings.logs_dir / "audit" / f"audit-{since:%Y%m%d}.html"
    ledger = _ledger(settings, migrate=False)
    try:
        found = collect(
            ledger,
            settings.runs_dir,
            since.astimezone(),
            until.astimezone() if until else None,
        )
    finally:
        ledger.close()
    write_report(found, path)
    state = "intact" if found.logs.ok else "NOT intact"
    console.out(
        f"audit {path}: {len(found.runs)} runs, {len(found.events)} events; "
        f"logs {state} (index head {found.index_head or 'none'})"
    )
    if not found.logs.ok:
        console.err(f"TAMPERED: {found.logs.problems[0]}")
        return 1
    return EXIT_OK


@main.group("logs")
def logs_group() -> None:
    """Check the run logs, which are hash-chained so that any edit shows."""


@logs_group.command("verify")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@logs_option
@ledger_option
@click.option(
    "--anchor",
    help="An index head kept from `logs anchor` (SEQ:SHA256), or the file it was "
    "appended to (its last one counts): the logs must still match it.",
)
@click.option("--no-ledger", is_flag=True, help="Do not cross-check the ledger's runs table.")
@click.option(
    "--fleet",
    is_flag=True,
    help="List every run of every host the ledger knows, with whether its log was verified "
    "here; PATHS are then other machines' logs folders (collected copies), verified too.",
)
@pass_console
def logs_verify(
    console: Console,
    paths: tuple[Path, ...],
    logs_dir: Path | None,
    ledger_url: str | None,
    anchor: str | None,
    no_ledger: bool,
    fleet: bool,
) -> int:
    """Check that no run log was edited, cut, removed or forged.

    PATH is a logs folder, a runs folder or one run file (default: the runs folder under
    the logs folder). A folder is cross-checked with the ledger's runs table (the ledger
    of that logs folder, or --ledger): a run the ledger knows whose log or index line is
    gone is named, and so is a log that is not what its worker recorded in the ledger
    when the run closed. Exit 0 when intact, 1 when anything is wrong, a folder with no
    run logs included: each problem goes to standard error, the first (where the
    tampering starts) on the first line. Exit 2 for a path or anchor that does not exist.

    With --fleet (a ledger shared by machines: FLEET_DATABASE_URL), this machine's logs
    and every logs folder given (copies of other machines') are verified against the one
    ledger, and every run of every host is listed: verified here, open (no closing
    record: killed, or still going), or not here (give that machine's logs folder).
    """
    from ..logchain import runs_folder

    if fleet:
        return _verify_fleet(console, paths, logs_dir, ledger_url, anchor)
    if len(paths) > 1:
        raise UsageError("give one PATH (or --fleet with other machines' logs folders)")
    path = paths[0] if paths else None
    if path is None:
        settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
        path = settings.runs_dir
    elif not path.exists():
        raise UsageError(f"{path}: no such runs folder or run file")
    else:
        runs = runs_folder(path)
        folder = runs.parent if runs.is_dir() else runs.parent.parent
        settings = Settings.from_env(os.environ, logs_dir=folder, ledger_url=ledger_url)
    known, note = None, None
    if not no_ledger and path.is_dir():
        known, note = _known_runs(settings, explicit=ledger_url is not None)
    checked = _verify_here(path, settings, known, anchor)
    if note is not None:
        checked.warnings.append(note)
    return _print_verified(console, checked)


def _verify_here(
    path: Path, settings: Settings, known: list[KnownRun] | None, anchor: str | None
) -> VerifyReport:
    """``path`` verified; as this machine's own (its host's runs) when it is its runs folder."""
    import socket

    from ..logchain import runs_folder, verify

    own = path.is_dir() and runs_folder(path).resolve() == settings.runs_dir.resolve()
    host = socket.gethostname() if own else None
    return verify(path, known_runs=known, anchor=anchor, host=host)


def _print_verified(console: Console, checked: VerifyReport, what: str = "logs") -> int:
    if checked.ok:
        for warning in checked.warnings:
            console.err(f"warning: {warning}")
        console.out(f"{what} intact: {checked.files} files, {checked.records} records")
        return EXIT_OK
    first, *rest = checked.problems
    console.err(f"TAMPERED: {first}")
    for problem in rest:
        console.err(f"problem: {problem}")
    for warning in checked.warnings:
        console.err(f"warning: {warning}")
    console.err(
        f"{what} NOT intact: {len(checked.problems)} problem(s) in {checked.files} files, "
        f"{checked.records} records"
    )
    return 1


def _verify_fleet(
    console: Console,
    others: tuple[Path, ...],
    logs_dir: Path | None,
    ledger_url: str | None,
    anchor: str | None,
) -> int:
    """``logs verify --fleet``: this machine's logs and ``others``, and every run listed."""
    from ..logchain import fleet_rows, runs_folder

    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    known, note = _known_runs(settings, explicit=ledger_url is not None)
    if known is None:
        raise UsageError(f"--fleet lists the runs the ledger knows, and {note}")
    for other in others:
        if not other.is_dir():
            raise UsageError(f"{other}: no such logs or runs folder")
    folders: list[tuple[Path, VerifyReport]] = []
    here = settings.runs_dir
    if here.is_dir():
        folders.append((here, _verify_here(here, settings, known, anchor)))
    for other in others:
        runs = runs_folder(other)
        if runs.resolve() == here.resolve():
            continue
        folders.append((runs, _verify_here(runs, settings, known, None)))
    code = EXIT_OK
    for folder, checked in folders:
        code = max(code, _print_verified(console, checked, f"{folder}:"))
    rows = fleet_rows(known, folders)
    hosts = sorted({row.host for row in rows})
    for host in hosts:
        mine = [row for row in rows if row.host == host]
        console.out(f"host {host}: {len(mine)} run(s)")
        for row in mine:
            console.out(f"  {row.run_id}  {row.action}  {row.status}")
    missing = [row for row in rows if row.folder is None]
    counts = {s: sum(1 for r in rows if r.state == s) for s in ("verified", "open", "BROKEN")}
    console.out(
        f"fleet: {len(rows)} run(s) on {len(hosts)} host(s): {counts['verified']} verified "
        f"here, {counts['open']} open (killed, or still going), {len(missing)} not here, "
        f"{counts['BROKEN']} NOT intact"
    )
    if note is not None:
        console.err(f"warning: {note}")
    return code


def _known_runs(settings: Settings, *, explicit: bool) -> tuple[list[KnownRun] | None, str | None]:
    """The ledger's runs; or None and a warning when the default SQLite ledger is not
    there (a runs folder copied without it). A ledger named with --ledger must open."""
    url = settings.ledger_url
    if url.startswith("sqlite:///") and not explicit and "FLEET_LEDGER_URL" not in os.environ:
        file = Path(url.removeprefix("sqlite:///"))
        if not file.is_file():
            return None, f"no ledger at {file}: runs not cross-checked with it"
    from ..ledger import queries  # only now: with no ledger, no database stack either
    from ..logchain import KnownRun
    from ..runlog import LogSeal

    ledger = _ledger(settings, migrate=False)
    try:
        rows = queries.run_logs(ledger)
    finally:
        ledger.close()
    known = []
    for row in rows:
        sealed = (row["log_lines"], row["log_first_prev"], row["log_last_hash"])
        seal = None
        if None not in sealed:
            seal = LogSeal(Path(row["log_path"]).name, *sealed)
        known.append(
            KnownRun(
                row["run_id"],
                row["log_path"],
                row["outcome"],
                host=row["host"],
                action=row["action"],
                seal=seal,
            )
        )
    return known, None


@logs_group.command("anchor")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@logs_option
@click.option(
    "--append",
    "append_to",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also append a dated line with the head to this file (keep it elsewhere).",
)
@pass_console
def logs_anchor(
    console: Console, path: Path | None, logs_dir: Path | None, append_to: Path | None
) -> int:
    """Print the index head (SEQ:SHA256), to keep where the logs' writers cannot reach.

    `logs verify --anchor HEAD` later checks the logs against it: a rewrite of run files
    and index together, however consistent, cannot keep it. The logs are verified first;
    exit 1 (nothing printed) when they are not intact.
    """
    from ..logchain import anchor_of, runs_folder, verify

    path = runs_folder(path) if path is not None else None
    if path is None:
        path = Settings.from_env(os.environ, logs_dir=logs_dir).runs_dir
    checked = verify(path)
    if not checked.ok:
        console.err(f"TAMPERED: {checked.problems[0]}")
        console.err("logs NOT intact: run `logs verify`; no anchor taken")
        return 1
    head = anchor_of(path)
    if append_to is not None:
        when = datetime.now().astimezone().isoformat(timespec="seconds")
        with open(append_to, "a", encoding="utf-8") as f:
            f.write(f"{when} {path.resolve()} {head}\n")
    console.out(head)
    return EXIT_OK


@main.group("ledger")
def ledger_group() -> None:
    """Look after the ledger itself."""


@ledger_group.command("upgrade")
@logs_option
@ledger_option
@pass_console
def ledger_upgrade(console: Console, logs_dir: Path | None, ledger_url: str | None) -> int:
    """Bring the ledger's schema up to this version of rpa-fleet.

    Every command that writes (run, inventory, retry, reconcile, apply-review) does it
    first anyway; audit and export-bag only read, and ask for this when the ledger is
    behind. Safe to run while other processes use the ledger. Exit 2 when the ledger is
    newer than this rpa-fleet.

    In fleet mode (FLEET_DATABASE_URL set) this is the one migrate command: it also
    applies the queue's schema (Procrastinate's) to that database, or upgrades it to the
    installed Procrastinate, under one lock so that machines upgrading at once take turns.
    """
    from ..ledger import Ledger
    from ..pipeline.context import local_now

    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    if settings.fleet_url is not None:
        from ..fleet.installed import require_fleet_packages

        require_fleet_packages()
    ledger = Ledger(settings.ledger_url, local_now, staging_root=settings.staging_root)
    try:
        if settings.fleet_url is None:
            done, queue = ledger.upgrade(), None
        else:
            from ..fleet.schema import migrate

            done, queue = migrate(settings.fleet_url, ledger.upgrade)
    finally:
        ledger.close()
    if done.before == done.after:
        console.out(f"ledger {ledger.name}: at version {done.after} already; nothing to do")
    else:
        console.out(f"ledger {ledger.name}: upgraded from version {done.before} to {done.after}")
    if queue is not None:
        console.out(f"queue {ledger.name}: {queue.describe()}")
    return EXIT_OK
