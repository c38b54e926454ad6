"""``runner.py try RECIPE SECTION``: one section of a recipe, against the real systems,
step by step, recording nothing.

A trial opens no ledger, writes no run log (so nothing reaches the log index), keeps no
evidence and sends the archive nothing that commits: its upload stops just before the
request that would (``StepContext.on_commit``) unless ``--commit`` is given. What a
section needs first is done first, as a run would (the section's system logged in; for
`download`, the listing and the row), with the stage runner's retries; the section
itself runs once, with no retry, and stops at its first failure with what the page
showed then. Every step prints its line, what its selectors matched and its time.
Downloads go to a temporary folder, removed afterwards (``--keep`` keeps them).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..drivers import Driver, SessionConfig, StepContext, TableCursor, registry
from ..errors import EXIT_OK, FleetError, RecipeRuntimeError, UsageError
from ..files import StagedFile
from ..recipe import LoadedRecipe
from ..recipe.model import ListingPlan
from ..recipe.steps import StepBase, assigned, of_kind
from ..resilience import StopFlag
from ..templating import TemplateProblem, render
from .printer import StepPrinter, show_diagnosis
from .sections import Section, steps_of

if TYPE_CHECKING:
    from ..archival.preingest import Prepared
    from ..cli.app import Console
    from ..ledger import Document
    from ..pipeline.run import Credentials
    from ..pipeline.stages import StageRunner, System

VALUE_CHARS = 40  # a listed field's value, as shown in the rows printed
READ_CHARS = 300  # a value a step read (a digest, an id), as shown


class CommitWithheld(Exception):
    """Raised where the driver would send the request that commits an upload."""


@dataclass(frozen=True)
class TrialOptions:
    row: str | None = None  # the listed row's key (download, upload, find, detail)
    listing: str | None = None  # which of the recipe's `listings` (default: all, or the first)
    archive_id: str | None = (
        None  # the archive's item (confirm, fixity; default: inventory's first)
    )
    commit: bool = False  # let the upload commit
    shots: Path | None = None  # a picture after every step
    keep: Path | None = None  # where downloads stay (default: a temporary folder, removed)
    timeout: float | None = None  # the step timeout instead of the recipe's


class Trial:
    """Sessions on a recipe's systems, opened as a section needs them, traced."""

    def __init__(
        self,
        loaded: LoadedRecipe,
        env: Mapping[str, str],
        store: Credentials,
        console: Console,
        options: TrialOptions,
        stop_before: StepBase | None = None,
    ) -> None:
        from ..pipeline.context import local_now
        from ..pipeline.run import declared_env
        from ..pipeline.stages import StageRunner

        if options.timeout is not None:
            timeouts = loaded.recipe.timeouts.model_copy(update={"step": options.timeout})
            recipe = loaded.recipe.model_copy(update={"timeouts": timeouts})
            loaded = dataclasses.replace(loaded, recipe=recipe)
        self.loaded, self.env, self.store = loaded, env, store
        self.console, self.options, self.stop_before = console, options, stop_before
        started = local_now()
        self.vars: dict[str, Any] = {
            "env": declared_env(env, loaded),
            "today": started.date().isoformat(),
            "now": started.isoformat(timespec="seconds"),
            "vars": loaded.recipe.vars,
        }
        self.events = StepPrinter(console, loaded)
        self.stages: StageRunner = StageRunner(
            loaded.recipe.retry, self.events, StopFlag(), self.vars
        )
        self.drivers: dict[str, Driver] = {}
        self.systems: dict[str, System] = {}
        self.active: System | None = None
        self.staging = options.keep or Path(tempfile.mkdtemp(prefix="rpa-try-"))
        if options.shots is not None:
            options.shots.mkdir(parents=True, exist_ok=True)

    # -- sessions ----------------------------------------------------------------------

    def system(self, name: str) -> System:
        """The session on ``name`` (source, archive), opened the first time."""
        from ..pipeline.run import resolve_systems, setting_renderer
        from ..pipeline.stages import System

        if name in self.systems:
            return self.systems[name]
        target = resolve_systems(self.loaded, self.store, self.vars, (name,))[name]
        spec = target.spec
        printer = StepPrinter(self.console, self.loaded, self.options.shots, self.stop_before)
        if spec.driver not in self.drivers:
            self.drivers[spec.driver] = registry.get(spec.driver).start(self.env)
        session = self.drivers[spec.driver].open(
            SessionConfig(
                system=spec.system,
                spec=spec,
                target=target.target,
                recipe=self.loaded,
                emit=printer.event,
                on_success=self.stages.success_hook(spec.system),
                render=setting_renderer(self.loaded, self.vars, name),
                trace=printer,
            )
        )
        printer.session = session
        system = System(spec.system, spec, target.target, session, target.credential)
        self.systems[name] = system
        return system

    def close(self, log_out: bool = True) -> None:
        """Log out as a person would (the systems count sessions), close the browsers,
        and remove what was downloaded unless it was asked to be kept."""
        try:
            for system in self.systems.values() if log_out else ():
                if system.logged_in and system.spec.logout:
                    self.heading(system, "logout", "leaving as a person would")
                    self.stages.logout(system)
        finally:
            for driver in self.drivers.values():
                driver.close()
            if self.options.keep is None:
                shutil.rmtree(self.staging, ignore_errors=True)

    def fresh(self, name: str) -> None:
        """Leave ``name``'s session (logged out as a person would, in case its login got
        that far) so that the next section on it opens a new one: a login run a second
        time must find the login page, not the session the first left behind."""
        system = self.systems.pop(name, None)
        if system is None:
            return
        try:
            if system.spec.logout:
                self.heading(system, "logout", "to start the login again in a new session")
                system.logged_in = True  # stopped inside its login: it may well be
                self.stages.logout(system)
        finally:
            system.session.close()

    def heading(self, system: System, section: str, why: str = "") -> None:
        self.active = system  # what runs from here on: the one to look at if it fails
        self.console.out(f"{system.name}: {section}" + (f" ({why})" if why else ""))

    # -- what sections need first ----------------------------------------------------

    def logged_in(self, name: str) -> System:
        system = self.system(name)
        if not system.logged_in:
            self.heading(system, "login", "to get there")
            self.stages.login(system)
        return system

    def plans(self) -> list[ListingPlan]:
        plans = self.loaded.recipe.source.plans()
        if self.options.listing is None:
            return plans
        chosen = [p for p in plans if p.name == self.options.listing]
        if not chosen:
            known = ", ".join(p.name for p in plans if p.name) or "(none: the recipe has `list`)"
            raise UsageError(f"no listing {self.options.listing!r}; listings are: {known}")
        return chosen

    def list_vars(self, plan: ListingPlan) -> dict[str, Any]:
        source = self.loaded.recipe.source
        window = {
            "start": _setting(self.loaded, source.window.start, self.vars, "source.window.start"),
            "end": _setting(self.loaded, source.window.end, self.vars, "source.window.end"),
        }
        return {**self.vars, "window": window, "listing": plan.name}

    def row(self) -> tuple[ListingPlan, dict[str, Any], str]:
        """The row to work on: ``--row KEY`` (its key as the ledger would have it), else
        the first listed."""
        from ..pipeline.listing import walk_table

        source = self.logged_in("source")
        for plan in self.plans():
            self.heading(source, f"list {plan.name}".rstrip(), "to find the row")
            rows = walk_table(
                self.stages, source, "list", plan.steps, self.list_vars(plan), "listing"
            )
            for row in rows:
                key = row_key(self.loaded, plan, self.vars, row)
                if self.options.row is None or key == self.options.row:
                    self.console.out(f"  the row: {key}" + _listed(row))
                    return plan, row, key
        wanted = f"no row {self.options.row!r}" if self.options.row else "no row"
        raise UsageError(f"{wanted} is listed by {self.loaded.path}'s listing")

    def detail(self, plan: ListingPlan, row: dict[str, Any], key: str) -> dict[str, str]:
        if not plan.detail:
            return {}
        source = self.logged_in("source")
        self.heading(source, "detail", "to get there")
        variables = {**self.vars, "row": row, "listing": plan.name}
        self.stages.run(
            source,
            "detail",
            lambda: source.session.run(plan.detail, StepContext(variables, "detail", key=key)),
            key,
        )
        return {n: str(variables[n]) for n in assigned(plan.detail) if variables.get(n) is not None}

    def download(self, plan: ListingPlan, row: dict[str, Any], key: str) -> StagedFile:
        source = self.logged_in("source")
        self.heading(source, "download", "to get there")
        context = self.download_context(plan, row, key)
        outcome = self.stages.run(
            source, "download", lambda: source.session.run(plan.download, context), key
        )
        return self.downloaded(outcome.downloaded, "source.download")

    def download_context(self, plan: ListingPlan, row: dict[str, Any], key: str) -> StepContext:
        from ..files import key_folder

        folder = self.staging / key_folder(key)
        variables = {**self.vars, "row": row, "listing": plan.name}
        return StepContext(variables, phase="download", key=key, staging_dir=folder)

    def downloaded(self, staged: StagedFile | None, where: str) -> StagedFile:
        if staged is None:
            raise RecipeRuntimeError(
                str(self.loaded.path),
                f"{where}: the steps ran but no `download` step applied (check their `when`)",
            )
        kept = "" if self.options.keep else " (removed when try ends; --keep DIR keeps it)"
        self.console.out(
            f"  file: {staged.path} ({staged.size} bytes, SHA-256 {staged.sha256}); "
            f"the source named it {staged.original!r}{kept}"
        )
        return staged

    def prepared(self) -> tuple[ListingPlan, Document, Prepared]:
        """A row, its file, and its checks and metadata, as the upload would get them."""
        plan, row, key = self.row()
        detail = self.detail(plan, row, key)
        row = {**row, **detail}
        staged = self.download(plan, row, key)
        doc, prepared = prepare(self.loaded, self.vars, self.env, plan, row, key, staged)
        for check in prepared.checks:
            if check.outcome.value != "pass":
                self.console.out(f"  check {check.line()}")
        if not prepared.metadata:
            failed = "; ".join(c.line() for c in prepared.failed)
            raise UsageError(f"no metadata for {key}: {failed}")
        shown = ", ".join(f"{k}={v!r}" for k, v in prepared.metadata.items())
        self.console.out(f"  metadata: {shown}")
        return plan, doc, prepared

    def archive_id(self) -> str:
        """``--archive-id``, else the first item of the archive's inventory."""
        if self.options.archive_id:
            return self.options.archive_id
        from ..pipeline.listing import walk_table

        archive = self.logged_in("archive")
        steps = self.loaded.recipe.archive.inventory
        if not steps:
            raise UsageError(
                "give --archive-id: the recipe has no archive.inventory to take one from"
            )
        self.heading(archive, "inventory", "to take an item; --archive-id to choose")
        rows = walk_table(self.stages, archive, "inventory", steps, dict(self.vars), "inventory")
        if not rows:
            raise UsageError("the archive's inventory lists nothing: give --archive-id")
        table = of_kind(steps, "table")[0].args
        item = render(table.key, {**self.vars, "row": rows[0]})
        self.console.out(f"  the item: {item}")
        return item


def row_key(
    loaded: LoadedRecipe, plan: ListingPlan, variables: dict[str, Any], row: dict[str, Any]
) -> str:
    """A listed row's source key, as a run records it (the listing's prefix, then its
    table's key)."""
    template = of_kind(plan.steps, "table")[0].args.key
    try:
        return plan.prefix + render(template, {**variables, "listing": plan.name, "row": row})
    except TemplateProblem as exc:
        raise RecipeRuntimeError(str(loaded.path), f"table key: {exc}") from exc


def prepare(
    loaded: LoadedRecipe,
    variables: dict[str, Any],
    env: Mapping[str, str],
    plan: ListingPlan,
    row: dict[str, Any],
    key: str,
    staged: StagedFile,
) -> tuple[Document, Prepared]:
    """The checks and metadata a run would give this file, with no ledger: the document
    as the ledger would hold it once downloaded, and what the checks made of it."""
    from ..archival.preingest import prepare as prepare_document
    from ..ledger import Document, State
    from ..pipeline.context import local_now
    from ..settings import Settings

    doc = Document(
        recipe=loaded.name,
        source_key=key,
        state=State.DOWNLOADED,
        title=None,
        listing=row,
        filename=staged.filename,
        staged_path=str(staged.path),
        sha256=staged.sha256,
        size=staged.size,
        item_metadata=None,
        archive_id=None,
        reference_code=None,
        attempts=1,
        last_error=None,
        source_filename=staged.original,
        listing_name=plan.name or None,
    )
    database = Settings.from_env(env).clamav_database
    today = local_now().date()
    return doc, prepare_document(doc, loaded, variables, today, virus_database=database)


def _setting(loaded: LoadedRecipe, template: str, variables: dict[str, Any], where: str) -> str:
    from ..pipeline.run import render_setting

    return render_setting(loaded, template, variables, where)


def _listed(row: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={_short(v)}" for k, v in row.items())
    return f" ({shown})" if shown else ""


def _short(value: Any, limit: int = VALUE_CHARS) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return repr(text if len(text) <= limit else text[:limit] + "…")


@contextmanager
def opened(trial: Trial) -> Iterator[Trial]:
    """The trial, closed on the way out: its sessions logged out when it ended as
    expected (a failure it explained included), only closed on anything else (Ctrl-C)."""
    try:
        yield trial
    except BaseException:
        trial.close(log_out=False)
        raise
    trial.close()


def try_section(trial: Trial, part: Section) -> int:
    """Run ``part`` (after what it needs) and say how it went; the exit code. A failure
    is explained before the sessions log out (which leaves the page it happened on)."""
    with opened(trial):
        try:
            _run(trial, part)
        except CommitWithheld:
            trial.console.out(
                "stopped before the request that would commit the upload: nothing was sent "
                "to the archive (--commit sends it)"
            )
        except FleetError as exc:
            return failed(trial, exc)
    return EXIT_OK


def failed(trial: Trial, exc: FleetError) -> int:
    """The failure, with what the page (or window) showed where the step ran."""
    console = trial.console
    console.err(f"FAILED: {exc}")
    if isinstance(exc, RecipeRuntimeError) or type(exc) is UsageError:
        return exc.exit_code  # the recipe's text, not the page: nothing there to look at
    system = trial.active
    diagnose = getattr(system.session, "diagnose", None) if system is not None else None
    diagnosis = diagnose() if diagnose is not None else None
    if diagnosis is not None:
        show_diagnosis(console, diagnosis)
        if diagnosis.line:
            console.err(f"next: python runner.py explain {trial.loaded.path} {diagnosis.line}")
    return exc.exit_code


def _run(trial: Trial, part: Section) -> None:
    """The section, after what it needs."""
    SECTIONS[part.name](trial, part)


def _log_in_or_out(trial: Trial, part: Section) -> None:
    steps = _steps(trial, part)
    system = trial.system(part.system)
    if part.name == "logout":
        trial.logged_in(part.system)
    trial.heading(system, part.name)
    variables = {**trial.vars}
    if part.name == "login":
        variables["credential"] = system.credential
    system.session.run(steps, StepContext(variables, phase=part.name))
    system.logged_in = part.name == "login"


def _list(trial: Trial, part: Section) -> None:
    source = trial.logged_in("source")
    for plan in trial.plans():
        trial.heading(source, f"list {plan.name}".rstrip())
        cursor = TableCursor()
        context = StepContext(trial.list_vars(plan), phase="list", cursor=cursor)
        source.session.run(plan.steps, context)
        _show_rows(trial, plan, cursor)


def _detail(trial: Trial, part: Section) -> None:
    plan, row, key = trial.row()
    if not plan.detail:
        raise UsageError(f"{trial.loaded.path}: the listing has no detail steps")
    source = trial.logged_in("source")
    trial.heading(source, "detail")
    variables = {**trial.vars, "row": row, "listing": plan.name}
    source.session.run(plan.detail, StepContext(variables, phase="detail", key=key))
    _show_read(trial, plan.detail, variables)


def _download(trial: Trial, part: Section) -> None:
    plan, row, key = trial.row()
    row = {**row, **trial.detail(plan, row, key)}
    source = trial.logged_in("source")
    trial.heading(source, "download")
    outcome = source.session.run(plan.download, trial.download_context(plan, row, key))
    trial.downloaded(outcome.downloaded, "source.download")


def _read_back(trial: Trial, part: Section) -> None:
    """confirm and fixity: the archive's item read back."""
    steps = _steps(trial, part)
    archive_id = trial.archive_id()
    archive = trial.logged_in("archive")
    trial.heading(archive, part.name)
    variables = {**trial.vars, "archive_id": archive_id}
    context = StepContext(variables, phase=part.name, key=archive_id, staging_dir=trial.staging)
    outcome = archive.session.run(steps, context)
    if part.name == "fixity":
        trial.downloaded(outcome.downloaded, "archive.fixity")
    _show_read(trial, steps, variables)


def _inventory(trial: Trial, part: Section) -> None:
    archive = trial.logged_in("archive")
    steps = _steps(trial, part)
    trial.heading(archive, "inventory")
    cursor = TableCursor()
    archive.session.run(steps, StepContext(dict(trial.vars), phase="inventory", cursor=cursor))
    _show_rows(trial, ListingPlan("", "", steps, [], []), cursor)


def _steps(trial: Trial, part: Section) -> list[Any]:
    steps = steps_of(trial.loaded, part)
    if not steps:
        raise UsageError(f"{trial.loaded.path}: {part} has no steps")
    return steps


def _show_read(trial: Trial, steps: list[Any], variables: dict[str, Any]) -> None:
    """What the steps read (and `set`), as they read it."""
    for field in assigned(steps):
        trial.console.out(f"  {field} = {_short(variables.get(field), READ_CHARS)}")


def _upload_or_find(trial: Trial, part: Section) -> None:
    from ..archival.preingest import file_vars

    steps = _steps(trial, part)  # before the work it needs: none, nothing to try
    plan, doc, prepared = trial.prepared()
    key = doc.source_key
    archive = trial.logged_in("archive")
    variables = {
        **trial.vars,
        "row": doc.row,
        "listing": plan.name,
        "meta": prepared.metadata,
        "file": file_vars(doc, prepared.report),
    }
    trial.heading(archive, part.name)

    def withhold() -> None:
        if not trial.options.commit:
            raise CommitWithheld()

    context = StepContext(variables, phase=part.name, key=key, on_commit=withhold)
    archive.session.run(steps, context)
    _show_read(trial, steps, variables)
    if part.name == "upload" and trial.options.commit:
        trial.console.out(
            f"committed: the archive now holds {variables.get('archive_id')!r}, which no run "
            "recorded (the ledger does not know it): a run of this recipe would upload "
            f"{key} again. Remove the item in the archive, or keep it and tell the archivists."
        )


def _show_rows(trial: Trial, plan: ListingPlan, cursor: TableCursor) -> None:
    rows = cursor.rows
    trial.console.out(f"listed {len(rows)} rows on {cursor.pages} page(s):")
    for row in rows:
        key = row_key(trial.loaded, plan, trial.vars, row)
        trial.console.out(f"  {key}" + _listed(row))
    if not rows:
        trial.console.out(
            "  (none: is the `rows` selector right, and does the page list anything for "
            "the window?)"
        )
    tables = of_kind(plan.steps, "table")
    pager = tables[0].args.next if tables else None
    if rows and cursor.pages == 1 and pager:
        trial.console.out(
            f"  (one page: `next` ({pager}) matched nothing on it. If the system has more "
            "pages, that selector misses their link here (another language?): "
            f"`explain` line {tables[0].line} shows the links there are)"
        )


# What each section's trial does (after what it needs), by name.
SECTIONS: dict[str, Callable[[Trial, Section], None]] = {
    "login": _log_in_or_out,
    "logout": _log_in_or_out,
    "list": _list,
    "detail": _detail,
    "download": _download,
    "upload": _upload_or_find,
    "find": _upload_or_find,
    "confirm": _read_back,
    "fixity": _read_back,
    "inventory": _inventory,
}
