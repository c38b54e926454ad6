"""One run of one recipe: list what is new, download it, archive it, confirm it.

The ledger decides what is new: every listed document not yet confirmed. A document's
state advances only after the effect it records has happened (the file is staged and
hashed; the archive showed its id; the archive's digest was read back), and the intent to
upload is recorded before the upload is submitted. So a run killed anywhere is resumed,
not repeated, by the next one: an upload whose outcome is unknown is looked up in the
archive (the recipe's `find` steps) before it is ever tried again.

Errors (bots.errors): a business error fails the document and is not retried; a
transient system error is retried by the stage that met it, with backoff, after one
re-login if the session was lost; the circuit breaker stops the run.
"""

from __future__ import annotations

import functools
import getpass
import random
import secrets
import socket
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, NoReturn, TypeVar

from playwright.sync_api import Browser, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from credentials import Credential, CredentialStore

from . import __version__
from .archival.checks import Check, ChecksFailed, Outcome, Property
from .archival.evidence import EventOutcome, EventType, Evidence, ScreenshotRefused, Shot
from .archival.metadata import check_reference, gaps_and_repeats
from .archival.preingest import Prepared, file_vars, prepare
from .errors import (
    EXIT_DOCUMENT_FAILURES,
    EXIT_OK,
    EXIT_SYSTEM,
    BusinessError,
    CircuitOpen,
    FleetError,
    SessionExpired,
    Stopped,
    SystemFailure,
    TransientError,
)
from .files import (
    Incomplete,
    StagedFile,
    UnexpectedPage,
    byte_count,
    safe_filename,
    sha256_file,
)
from .ledger import Document, FailureKind, Ledger, Resume, State, is_held, resume_point
from .lock import RecipeLock
from .progress import NullProgress, Progress
from .recipe import LoadedRecipe
from .recipe.model import ArchiveSystem, SourceSystem, Table, walk_steps
from .redaction import Redactor
from .resilience import Breaker, RetryPolicy, StopFlag
from .runlog import RunLog
from .settings import Settings
from .templating import TemplateProblem, render
from .web.browser import launch
from .web.steps import StepRunner, TableCursor

Clock = Callable[[], datetime]
SpecT = TypeVar("SpecT", SourceSystem, ArchiveSystem)
T = TypeVar("T")
# Environment names a template may not read: the keyring's master key and its kin.
_SECRET_ENV_WORDS = ("KEY", "PASSWORD", "SECRET", "TOKEN", "CREDENTIAL")


def local_now() -> datetime:
    return datetime.now().astimezone()


@dataclass
class RunSummary:
    run_id: str
    recipe: str
    log_path: Path
    listed: int = 0
    new: int = 0
    already_confirmed: int = 0
    archived: list[Document] = field(default_factory=list)
    failures: list[tuple[str, str, FailureKind]] = field(default_factory=list)
    # Failed for business reasons in an earlier run under this same recipe version: not
    # retried until the recipe changes, but reported every run until someone acts.
    held: list[Document] = field(default_factory=list)
    system_failure: str | None = None
    stopped_by: str | None = None  # SIGTERM / SIGINT
    # An inventory run: how many items the archive listed, and how many were read back.
    inventoried: int | None = None
    read_back: int = 0

    @property
    def exit_code(self) -> int:
        if self.system_failure or any(kind is FailureKind.SYSTEM for *_, kind in self.failures):
            return EXIT_SYSTEM
        if self.failures or self.held:
            return EXIT_DOCUMENT_FAILURES
        return EXIT_OK

    def line(self) -> str:
        if self.inventoried is not None:
            return (
                f"{self.recipe}: inventory: the archive lists {self.inventoried} items, "
                f"{self.read_back} read back for fixity "
                f"(run {self.run_id}, log {self.log_path})"
            )
        head = (
            f"{self.recipe}: {self.listed} listed, {self.new} new, {len(self.archived)} "
            f"archived, {len(self.failures)} failed"
        )
        if self.held:
            head += f", {len(self.held)} held from earlier runs"
        if self.stopped_by:
            head += f", stopped by {self.stopped_by}"
        if self.system_failure:
            head += ", run stopped by a system failure"
        return f"{head} (run {self.run_id}, log {self.log_path})"


def safe_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not any(w in k.upper() for w in _SECRET_ENV_WORDS)}


class _System(Generic[SpecT]):
    """A browser context on one system (source or archive), and how to log in to it."""

    def __init__(
        self,
        browser: Browser,
        spec: SpecT,
        base_url: str,
        credential: Credential,
        loaded: LoadedRecipe,
        log: RunLog,
    ) -> None:
        self.spec: SpecT = spec
        self.name = spec.system
        self.credential = credential
        self.context = browser.new_context(accept_downloads=True, locale="zh-CN")
        self.page = self.context.new_page()
        self.runner = StepRunner(
            self.page,
            base_url=base_url,
            loaded=loaded,
            system=spec.system,
            emit=log.event,
            logged_out=spec.logged_out,
        )
        self.logged_in = False

    def close(self) -> None:
        self.context.close()


class Capture:
    """Runs a recipe once. Build it, call ``run()``, read the ``RunSummary``."""

    def __init__(
        self,
        loaded: LoadedRecipe,
        settings: Settings,
        store: CredentialStore,
        redactor: Redactor,
        *,
        clock: Clock = local_now,
        stop: StopFlag | None = None,
        lock_wait: float | None = None,
        action: str = "capture",
        fixity: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.loaded = loaded
        self.recipe = loaded.recipe
        self.settings = settings
        self.store = store
        self.redactor = redactor
        self.clock = clock
        self.stop = stop or StopFlag()
        self.lock_wait = lock_wait
        self.action = action  # "capture", or "inventory": list what the archive holds
        self.fixity = fixity  # inventory only: download each item back and hash it
        self.progress: Progress = progress or NullProgress()
        self.policy = RetryPolicy(
            attempts=self.recipe.retry.attempts,
            backoff=self.recipe.retry.backoff,
            max_backoff=self.recipe.retry.max_backoff,
        )
        self.breaker = Breaker(self.recipe.retry.breaker)
        self.rng = random.Random()
        started = clock()
        self.run_id = f"{self.recipe.recipe}-{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        self.base_context: dict[str, Any] = {
            "env": safe_env(settings.env),
            "today": started.date().isoformat(),
            "now": started.isoformat(timespec="seconds"),
            "vars": self.recipe.vars,
        }
        self._log: RunLog | None = None
        self._ledger: Ledger | None = None
        self._evidence: Evidence | None = None
        # Screenshots of listing rows taken this run, by source key (evidence of capture).
        self._row_shots: dict[str, Shot] = {}
        self._downloaded = 0  # files fetched in this run, for the batch check
        # Each document's row as listed in *this* run: what the page offers now (a link
        # that has appeared since) may differ from the first sighting the ledger keeps.
        self._rows: dict[str, dict[str, str | None]] = {}

    @property
    def log_path(self) -> Path:
        return self.settings.runs_dir / f"{self.run_id}.jsonl"

    @property
    def log(self) -> RunLog:
        assert self._log is not None, "only while running"
        return self._log

    @property
    def ledger(self) -> Ledger:
        assert self._ledger is not None, "only while running"
        return self._ledger

    @property
    def evidence(self) -> Evidence:
        assert self._evidence is not None, "only while running"
        return self._evidence

    # -- the run -----------------------------------------------------------------------

    def run(self) -> RunSummary:
        lock = RecipeLock(self.settings.logs_dir / "locks", self.recipe.recipe)
        lock.acquire(wait=self.lock_wait, now=self.clock, run_id=self.run_id)  # or Locked
        try:
            return self._run_locked(lock)
        finally:
            lock.release()

    def _run_locked(self, lock: RecipeLock) -> RunSummary:
        # First: a ledger this code cannot use (newer, unreachable) stops the run before
        # it has a log to leave unfinished. A run writes, so it upgrades an older one.
        self._ledger = ledger = Ledger.open(
            self.settings.ledger_url, self.clock, staging_root=self.settings.staging_root
        )
        self._log = log = RunLog(
            self.log_path,
            run_id=self.run_id,
            recipe=self.recipe.recipe,
            redactor=self.redactor,
            clock=self.clock,
        )
        summary = RunSummary(self.run_id, self.recipe.recipe, self.log_path)
        ledger.start_run(
            run_id=self.run_id,
            recipe=self.recipe.recipe,
            recipe_digest=self.loaded.digest,
            host=socket.gethostname(),
            user=getpass.getuser(),
            bot_version=__version__,
            log_path=str(self.log_path),
            action=self.action,
        )
        self._evidence = Evidence(
            ledger,
            log,
            run_id=self.run_id,
            recipe=self.recipe.recipe,
            directory=self.settings.logs_dir / "evidence",
            clock=self.clock,
        )
        log.event(
            "run_start",
            recipe_file=str(self.loaded.path),
            recipe_digest=self.loaded.digest,
            retention_schedule=str(self.loaded.schedule.path),
            retention_schedule_digest=self.loaded.schedule.digest,
            bot_version=__version__,
            host=socket.gethostname(),
            user=getpass.getuser(),
            ledger=self.redactor.scrub(ledger.url),
        )
        if lock.taken_over:
            log.event("lock_taken_over", outcome="warning", previous_holder=lock.taken_over)
        interrupted = ledger.close_interrupted_runs(self.recipe.recipe, self.run_id)
        if interrupted:
            log.event("previous_runs_interrupted", outcome="warning", runs=interrupted)
        outcome = "error"
        try:
            if self.action == "inventory":
                self._inventory(summary)
            else:
                self._run(summary)
                self._batch_check(summary)
            outcome = (
                "stopped"
                if summary.stopped_by
                else "failed"
                if summary.exit_code == EXIT_SYSTEM
                else "partial"
                if summary.exit_code
                else "ok"
            )
        except FleetError as exc:
            log.event("run_error", outcome="error", error=str(exc), error_type=type(exc).__name__)
            raise
        finally:
            counts = (
                {"inventoried": summary.inventoried or 0, "read_back": summary.read_back}
                if self.action == "inventory"
                else {
                    "listed": summary.listed,
                    "new": summary.new,
                    "archived": len(summary.archived),
                    "failed": len(summary.failures),
                    "held": len(summary.held),
                }
            )
            log.close(outcome, **counts)
            ledger.finish_run(self.run_id, outcome, counts)
            ledger.close()
        return summary

    def _run(self, summary: RunSummary) -> None:
        source_spec, archive_spec = self.recipe.source, self.recipe.archive
        # Credentials first: a missing one should stop the run before any system is touched.
        source_cred = self.store.get(source_spec.credential)
        archive_cred = self.store.get(archive_spec.credential)
        source_url = self._render_setting(source_spec.base_url, "source.base_url")
        archive_url = self._render_setting(archive_spec.base_url, "archive.base_url")
        window = {
            "start": self._render_setting(source_spec.window.start, "source.window.start"),
            "end": self._render_setting(source_spec.window.end, "source.window.end"),
        }
        self.log.event("window", source=source_url, archive=archive_url, **window)

        with sync_playwright() as playwright, ExitStack() as stack:
            browser = launch(playwright, self.settings.env)
            stack.callback(browser.close)
            source = _System(browser, source_spec, source_url, source_cred, self.loaded, self.log)
            stack.callback(source.close)
            archive = _System(
                browser, archive_spec, archive_url, archive_cred, self.loaded, self.log
            )
            stack.callback(archive.close)

            self.progress.stage(f"{self.recipe.recipe}: listing {source.name}")
            self._login(source)
            pending = self._list(source, summary, window)
            self.progress.stage(f"{self.recipe.recipe}: capturing", total=len(pending))
            for done, doc in enumerate(pending):
                if done:
                    self.progress.advance()
                if self.stop.is_set():
                    summary.stopped_by = self.stop.reason
                    self.log.event(
                        "stop",
                        outcome="stopped",
                        signal=self.stop.reason,
                        left_for_next_run=len(pending) - done,
                    )
                    return
                try:
                    summary.archived.append(self._capture(doc, source, archive))
                except Stopped:
                    # Its state is one the next run resumes from (every state is).
                    summary.stopped_by = self.stop.reason
                    self.log.event(
                        "stop",
                        key=doc.source_key,
                        outcome="stopped",
                        signal=self.stop.reason,
                        left_for_next_run=len(pending) - done,
                    )
                    return
                except BusinessError as exc:
                    self._fail(doc, summary, exc, FailureKind.BUSINESS)
                except TransientError as exc:  # its stage ran out of attempts
                    self._fail(doc, summary, exc, FailureKind.SYSTEM)
                except SystemFailure as exc:  # the breaker, a refused login: stop here
                    self._fail(doc, summary, exc, FailureKind.SYSTEM)
                    summary.system_failure = str(exc)
                    return
            if self.stop.is_set():
                summary.stopped_by = self.stop.reason

    def _render_setting(self, template: str, where: str) -> str:
        try:
            return render(template, self.base_context)
        except TemplateProblem as exc:
            raise SystemFailure(f"{self.loaded.path}: {where}: {exc}") from exc

    # -- stages: the one layer that retries --------------------------------------------

    def _stage(
        self,
        system: _System[Any],
        stage: str,
        work: Callable[[], T],
        key: str | None = None,
        progress: Callable[[], int] = lambda: 0,
        attempts: int | None = None,
    ) -> T:
        """Run ``work``; retry system errors with backoff; answer a lost session once.

        Attempts are counted without progress: a listing that got further before failing
        starts its count again.
        """
        attempts = attempts or self.policy.attempts
        failures, relogins, seen = 0, 0, progress()
        system.runner.on_success = lambda: self.breaker.success(system.name)
        while True:
            try:
                return work()
            except TransientError as exc:
                self.breaker.failure(system.name, exc)  # raises CircuitOpen when tripped
                lost = isinstance(exc, SessionExpired | UnexpectedPage) or (
                    stage != "login" and system.runner.is_logged_out()
                )
                if lost and stage != "login" and relogins < self.policy.attempts:
                    relogins += 1
                    self.log.event(
                        "session_lost",
                        key=key,
                        outcome="warning",
                        system=system.name,
                        stage=stage,
                        error=str(exc),
                    )
                    self._login(system)
                    continue
                if progress() > seen:
                    failures, seen = 0, progress()
                failures += 1
                if failures >= attempts:
                    raise
                delay = self.policy.delay(failures, self.rng)
                self.log.event(
                    "retry",
                    key=key,
                    outcome="warning",
                    system=system.name,
                    stage=stage,
                    attempt=failures + 1,
                    after_s=round(delay, 2),
                    error=str(exc),
                    error_type=type(exc).__name__,
                )
                if self.stop.wait(delay):  # a stop cuts the backoff short
                    raise Stopped(f"stopped by {self.stop.reason} while waiting to retry") from exc

    def _login(self, system: _System[Any]) -> None:
        credential = system.credential
        variables = {**self.base_context, "credential": credential}

        def work() -> None:
            system.runner.check_session = False
            try:
                system.runner.run(system.spec.login, variables, phase="login")
            except BusinessError as exc:  # the system refused us: retrying will not help
                raise SystemFailure(
                    f"cannot log in to {system.name} as {credential.username!r} "
                    f"(credential {credential.name!r}): {exc}. Check the credential "
                    f"(`python runner.py credentials set {credential.name}`)."
                ) from exc
            system.runner.check_session = True

        try:
            # A failed login ends the whole run, and a login is several requests that
            # must all succeed: it gets three times a stage's attempts. The breaker still
            # stops a run against a system that is really down.
            self._stage(system, "login", work, attempts=3 * self.policy.attempts)
        except TransientError as exc:
            raise SystemFailure(
                f"cannot log in to {system.name} as {credential.username!r}: {exc}. "
                "Check that the system is up; the next run resumes."
            ) from exc
        system.logged_in = True
        self.log.event("login", system=system.name, user=credential.username)

    def _list(
        self, source: _System[SourceSystem], summary: RunSummary, window: dict[str, str]
    ) -> list[Document]:
        variables = {**self.base_context, "window": window}
        key_template = _table_of(source.spec.listing).key
        rows = self._walk_table(
            source,
            "list",
            source.spec.listing,
            variables,
            what=f"listing {source.name}",
            on_rows=self._shoot_rows(source, key_template, variables),
        )
        return self._pending(rows, key_template, variables, summary)

    def _walk_table(
        self,
        system: _System[Any],
        stage: str,
        steps: list[Any],
        variables: dict[str, Any],
        what: str,
        on_rows: Callable[[list[dict[str, str | None]], list[Any]], None] | None = None,
    ) -> list[dict[str, str | None]]:
        """Run steps holding one `table` as a stage; a retry resumes at the page reached."""
        cursor = TableCursor()
        system.runner.cursor, system.runner.on_rows = cursor, on_rows

        def work() -> None:
            system.runner.run(steps, variables, phase=stage)

        try:
            self._stage(system, stage, work, progress=lambda: cursor.pages)
        except TransientError as exc:
            raise SystemFailure(f"{what} failed after {cursor.pages} page(s): {exc}") from exc
        finally:
            system.runner.cursor, system.runner.on_rows = None, None
        return cursor.rows

    def _pending(
        self,
        rows: list[dict[str, str | None]],
        table_key: str,
        variables: dict[str, Any],
        summary: RunSummary,
    ) -> list[Document]:
        pending: list[Document] = []
        seen: dict[str, None] = {}  # a set that keeps the listing's order
        for row in rows:
            try:
                key = render(table_key, {**variables, "row": row})
            except TemplateProblem as exc:
                raise SystemFailure(f"{self.loaded.path}: table key: {exc}") from exc
            if not key:
                raise SystemFailure(f"{self.loaded.path}: table key rendered empty for row {row}")
            if key in seen:
                self.log.event("duplicate_row", key=key, outcome="warning", row=row)
                continue
            seen[key] = None
            self._rows[key] = row
            doc = self.ledger.get(self.recipe.recipe, key)
            if doc is None:
                doc = self.ledger.record_listed(self.recipe.recipe, key, row, self.run_id)
                self.log.event("state", key=key, to=State.LISTED, row=row)
                summary.new += 1
            if doc.state is State.CONFIRMED:
                summary.already_confirmed += 1
            elif is_held(doc, self.loaded.digest):
                summary.held.append(doc)  # same recipe, same refusal: not retried
            else:
                pending.append(doc)
        summary.listed = len(seen)
        self.ledger.record_sightings(
            self.run_id, self.recipe.recipe, [(key, self._rows[key]) for key in seen]
        )
        # Asked for again by a reviewer (apply-review) but no longer listed: the row the
        # ledger kept still says how to fetch it.
        recaptures = [
            d for d in self.ledger.recaptures(self.recipe.recipe) if d.source_key not in seen
        ]
        pending.extend(recaptures)
        self.log.event(
            "listing",
            listed=summary.listed,
            new=summary.new,
            pending=len(pending),
            already_confirmed=summary.already_confirmed,
            held=[d.source_key for d in summary.held],
            recapture_unlisted=[d.source_key for d in recaptures],
        )
        return pending

    # -- one document -----------------------------------------------------------------

    def _capture(
        self, doc: Document, source: _System[SourceSystem], archive: _System[ArchiveSystem]
    ) -> Document:
        doc = self.ledger.count_attempt(doc)
        self.log.event("document_start", key=doc.source_key, state=doc.state, attempt=doc.attempts)
        key = doc.source_key

        resume = resume_point(doc, staged_intact=self._staged_intact(doc))
        if resume is Resume.FETCH:
            staged = self._fetch_file(doc, source)
            doc = self._advance(
                doc,
                State.DOWNLOADED,
                sha256=staged.sha256,
                size=staged.size,
                staged_path=str(staged.path),
                filename=staged.filename,
                source_filename=staged.original,
            )
        if resume in (Resume.FETCH, Resume.UPLOAD, Resume.FIND_THEN_UPLOAD):
            prepared = self._check_before_upload(doc)
            if not archive.logged_in:
                self._login(archive)
            holder = [doc]
            ids = self._stage(
                archive, "upload", lambda: self._upload(holder, prepared, archive), key
            )
            doc = self._advance(holder[0], State.UPLOADED, item_metadata=prepared.metadata, **ids)
            self._ingested(doc, archive)
        self._check_reference(doc)
        if not archive.logged_in:
            self._login(archive)
        self._stage(archive, "confirm", lambda: self._confirm(doc, archive), key)
        return self._advance(doc, State.CONFIRMED)

    def _staged_intact(self, doc: Document) -> bool:
        if not doc.staged_path or not doc.sha256 or not Path(doc.staged_path).is_file():
            return False
        return sha256_file(Path(doc.staged_path))[0] == doc.sha256

    def _fetch_file(self, doc: Document, source: _System[SourceSystem]) -> StagedFile:
        """Download with retries; what keeps arriving broken fails its check, by name."""
        key = doc.source_key
        shot = self._row_shots.get(key)
        try:
            staged = self._stage(source, "download", lambda: self._download(doc, source), key)
        except UnexpectedPage as exc:
            self._refuse_capture(doc, Property.USABILITY, "format_matches_extension", exc, shot)
        except Incomplete as exc:
            self._refuse_capture(doc, Property.COMPLETENESS, "size_matches_declared", exc, shot)
        self.evidence.event(
            key,
            EventType.CAPTURE,
            EventOutcome.SUCCESS,
            {
                "system": source.name,
                "source_url": source.page.url,
                "listing_row": self._rows.get(key, doc.listing),
                "filename": staged.filename,
                "source_filename": staged.original,
                "size": staged.size,
            },
            shot,
        )
        self._downloaded += 1
        self.evidence.event(
            key,
            EventType.DIGEST,
            EventOutcome.SUCCESS,
            {"algorithm": "SHA-256", "digest": staged.sha256, "size": staged.size},
        )
        return staged

    def _refuse_capture(
        self, doc: Document, prop: Property, name: str, exc: Exception, shot: Shot | None
    ) -> NoReturn:
        """Every attempt brought a broken file: a failed check, not a system failure."""
        check = Check.failed(
            prop, name, f"every attempt failed so; the last: {self.redactor.scrub(str(exc))}"
        )
        self._record_checks(doc, [check])
        self.evidence.event(
            doc.source_key,
            EventType.CAPTURE,
            EventOutcome.FAILURE,
            {"check": f"{prop}/{name}", "reason": check.reason},
            shot,
        )
        raise ChecksFailed([check]) from exc

    def _download(self, doc: Document, source: _System[SourceSystem]) -> StagedFile:
        runner = source.runner
        runner.key = doc.source_key
        runner.staging_dir = self.settings.staging_dir(self.recipe.recipe) / safe_filename(
            doc.source_key, "document"
        )
        row = self._rows.get(doc.source_key, doc.listing)
        variables = {**self.base_context, "row": row}
        outcome = runner.run(source.spec.download, variables, phase="download")
        if outcome.downloaded is None:
            raise BusinessError(
                f"{self.loaded.path}: the download steps ran but no `download` step applied to "
                f"this row (check their `when` conditions)"
            )
        return outcome.downloaded

    def _check_before_upload(self, doc: Document) -> Prepared:
        """The four-property checks and the metadata; ChecksFailed stops the document here."""
        prepared = prepare(doc, self.loaded, self.base_context, self.clock().date())
        self._record_checks(doc, prepared.checks)
        key, report = doc.source_key, prepared.report
        by_name = {c.name: c for c in prepared.checks}
        identified = by_name.get("format_identified")
        self.evidence.event(
            key,
            EventType.FORMAT,
            _premis_outcome(identified),
            {"format": report.format, "extension": report.extension, "pages": report.pages},
        )
        virus = by_name.get("virus_scan")
        self.evidence.event(
            key,
            EventType.VIRUS_CHECK,
            _premis_outcome(virus),
            {"reason": virus.reason if virus else "not run"},
        )
        failed = prepared.failed
        self.evidence.event(
            key,
            EventType.VALIDATION,
            EventOutcome.FAILURE if failed else EventOutcome.SUCCESS,
            {
                "checks": len(prepared.checks),
                "failed": [c.line() for c in failed],
                "not_run": [c.line() for c in prepared.checks if c.outcome is Outcome.NOT_RUN],
            },
        )
        if failed:
            raise ChecksFailed(failed)
        return prepared

    def _record_checks(self, doc: Document, checks: list[Check]) -> None:
        rows = [
            {
                "property": c.property.value,
                "name": c.name,
                "outcome": c.outcome.value,
                "reason": self.redactor.scrub(c.reason),
            }
            for c in checks
        ]
        self.ledger.record_checks(doc.recipe, doc.source_key, self.run_id, rows)
        self.log.event("checks", key=doc.source_key, results=rows)

    def _upload(
        self, holder: list[Document], prepared: Prepared, archive: _System[ArchiveSystem]
    ) -> dict[str, str | None]:
        """One attempt: look first if an earlier attempt may have gone through."""
        doc = holder[0]
        archive.runner.key = doc.source_key
        variables = {
            **self.base_context,
            "row": doc.listing,
            "meta": prepared.metadata,
            "file": file_vars(doc, prepared.report),
        }
        if doc.upload_uncertain:
            found = self._find(doc, variables, archive)
            if found is not None:
                return found
        if doc.state is not State.UPLOADING:
            # The intent, durable before the submit: after a crash from here on, the next
            # run looks in the archive before uploading again.
            holder[0] = doc = self._advance(
                doc, State.UPLOADING, file_format=prepared.report.format
            )
        archive.runner.run(archive.spec.upload, variables, phase="upload")
        archive_id = variables.get("archive_id")
        if not archive_id:
            raise TransientError(
                f"{self.loaded.path}: after the upload steps, archive_id was read as empty "
                f"on {archive.page.url}; the upload's outcome is unknown"
            )
        return {"archive_id": archive_id, "reference_code": variables.get("reference_code") or None}

    def _ingested(self, doc: Document, archive: _System[ArchiveSystem]) -> None:
        """The ingestion event, with the archive's answer on screen as its evidence."""
        shot = self._screenshot(archive.page, doc.source_key, "archive-receipt")
        self.evidence.event(
            doc.source_key,
            EventType.INGESTION,
            EventOutcome.SUCCESS,
            {
                "system": archive.name,
                "archive_id": doc.archive_id,
                "reference_code": doc.reference_code,
                "url": archive.page.url,
            },
            shot,
        )

    def _find(
        self, doc: Document, variables: dict[str, Any], archive: _System[ArchiveSystem]
    ) -> dict[str, str | None] | None:
        if not archive.spec.find:
            raise SystemFailure(
                f"the upload of {doc.source_key} may have gone through (its outcome was never "
                f"seen) and {self.loaded.path} has no `archive.find` steps to check; look it up "
                "in the archive by hand. Uploading again could archive it twice."
            )
        found_vars = {**variables}
        archive.runner.run(archive.spec.find, found_vars, phase="find")
        archive_id = found_vars.get("archive_id")
        self.log.event(
            "find", key=doc.source_key, found=bool(archive_id), archive_id=archive_id or None
        )
        if not archive_id:
            return None
        return {
            "archive_id": archive_id,
            "reference_code": found_vars.get("reference_code") or None,
        }

    def _confirm(self, doc: Document, archive: _System[ArchiveSystem]) -> None:
        """Read the item back: its digest, and the file itself."""
        archive.runner.key = doc.source_key
        variables = {
            **self.base_context,
            "row": doc.listing,
            "file": file_vars(doc),
            "meta": doc.item_metadata or {},
            "archive_id": doc.archive_id,
            "reference_code": doc.reference_code,
        }
        if archive.spec.confirm:
            archive.runner.run(archive.spec.confirm, variables, phase="confirm")
            reported = variables.get("sha256")
            if reported is not None and reported.lower() != (doc.sha256 or "").lower():
                raise BusinessError(
                    f"the archive holds {doc.archive_id} with SHA-256 {reported}, but the file "
                    f"downloaded had {doc.sha256}: the archived copy is not the captured file"
                )
            self.log.event(
                "confirmed_read_back",
                key=doc.source_key,
                archive_id=doc.archive_id,
                sha256=reported,
            )
        if archive.spec.fixity:
            self._fixity(doc, archive, variables)

    def _check_reference(self, doc: Document) -> None:
        """The code the archive assigned follows the rule, and no other document has it."""
        code, meta = doc.reference_code, doc.item_metadata or {}
        name = "reference_code"
        if not code:
            check = Check.not_run(
                Property.AUTHENTICITY, name, "the archive showed no reference code to check"
            )
        elif problem := check_reference(code, meta):
            check = Check.failed(Property.AUTHENTICITY, name, problem)
        elif holder := self.ledger.holder_of_reference(code, (doc.recipe, doc.source_key)):
            check = Check.failed(Property.AUTHENTICITY, name, f"{code} is also held by {holder}")
        else:
            check = Check.passed(Property.AUTHENTICITY, name, f"{code} follows the rule")
        self._record_checks(doc, [check])
        if check.outcome is Outcome.FAIL:
            raise ChecksFailed([check])

    def _fixity(
        self, doc: Document, archive: _System[ArchiveSystem], variables: dict[str, Any]
    ) -> None:
        """Download the stored file back; its SHA-256 must be the one taken at download."""
        back = self._download_back(archive, variables)
        same = back.sha256 == doc.sha256
        check = (
            Check.passed(
                Property.AUTHENTICITY,
                "fixity_read_back",
                f"the archive's copy has SHA-256 {back.sha256}",
            )
            if same
            else Check.failed(
                Property.AUTHENTICITY,
                "fixity_read_back",
                f"the archive's copy of {doc.archive_id} has SHA-256 {back.sha256} "
                f"({back.size} bytes), the file captured had {doc.sha256} ({doc.size} bytes)",
            )
        )
        self._record_checks(doc, [check])
        self.evidence.event(
            doc.source_key,
            EventType.FIXITY,
            EventOutcome.SUCCESS if same else EventOutcome.FAILURE,
            {
                "algorithm": "SHA-256",
                "expected": doc.sha256,
                "read_back": back.sha256,
                "size": back.size,
                "archive_id": doc.archive_id,
            },
        )
        if not same:
            raise ChecksFailed([check])

    def _download_back(
        self, archive: _System[ArchiveSystem], variables: dict[str, Any]
    ) -> StagedFile:
        """Run the recipe's fixity steps; hash what came back, and keep nothing of it."""
        runner = archive.runner
        runner.staging_dir = self.settings.staging_dir(self.recipe.recipe) / ".fixity"
        try:
            outcome = runner.run(archive.spec.fixity, variables, phase="fixity")
            back = outcome.downloaded
            if back is None:
                raise BusinessError(
                    f"{self.loaded.path}: the fixity steps ran but their `download` did not apply"
                )
        finally:
            runner.staging_dir = None
        back.path.unlink(missing_ok=True)
        return back

    # -- inventory -------------------------------------------------------------------

    def _inventory(self, summary: RunSummary) -> None:
        """Walk the archive's own list; with fixity, download each item back and hash it."""
        spec = self.recipe.archive
        credential = self.store.get(spec.credential)
        url = self._render_setting(spec.base_url, "archive.base_url")
        with sync_playwright() as playwright, ExitStack() as stack:
            browser = launch(playwright, self.settings.env)
            stack.callback(browser.close)
            archive = _System(browser, spec, url, credential, self.loaded, self.log)
            stack.callback(archive.close)
            self.progress.stage(f"{self.recipe.recipe}: inventory of {archive.name}")
            self._login(archive)
            rows = self._walk_table(
                archive,
                "inventory",
                spec.inventory,
                dict(self.base_context),
                what=f"the inventory of {archive.name}",
            )
            items = _inventory_items(rows)
            if self.fixity:
                summary.read_back = self._read_back_all(archive, items)
        self.ledger.record_inventory(self.run_id, self.recipe.recipe, items)
        summary.inventoried = len(items)
        self.log.event(
            "inventory",
            system=spec.system,
            items=len(items),
            fixity=self.fixity,
            read_back=summary.read_back,
        )

    def _read_back_all(self, archive: _System[ArchiveSystem], items: list[dict[str, Any]]) -> int:
        read = 0
        self.progress.stage(f"{self.recipe.recipe}: fixity read-back", total=len(items))
        for done, item in enumerate(items):
            if done:
                self.progress.advance()
            if self.stop.is_set():
                raise Stopped(f"stopped by {self.stop.reason} during the fixity read-back")
            key = item["archive_id"]
            variables = {**self.base_context, "archive_id": key}
            archive.runner.key = key
            try:
                back = self._stage(
                    archive,
                    "fixity",
                    functools.partial(self._download_back, archive, variables),
                    key,
                )
            except TransientError as exc:
                # Listed but not readable: a finding for reconciliation, not the end of it.
                self.log.event("fixity_unreadable", key=key, outcome="warning", error=str(exc))
                continue
            item["sha256"] = back.sha256
            read += 1
        return read

    # -- evidence --------------------------------------------------------------------

    def _screenshot(self, page: Any, key: str, what: str, target: Any = None) -> Shot | None:
        """Evidence is worth having, not worth failing a capture for: a miss is logged."""
        try:
            return self.evidence.screenshot(page, key, what, target)
        except (ScreenshotRefused, PlaywrightError) as exc:
            self.log.event(
                "screenshot_skipped", key=key, outcome="warning", what=what, error=str(exc)
            )
            return None

    def _shoot_rows(
        self, source: _System[SourceSystem], table_key: str, variables: dict[str, Any]
    ) -> Callable[[list[dict[str, str | None]], list[Any]], None]:
        """A hook for the listing: photograph each row not yet archived, as it was seen."""

        def shoot(rows: list[dict[str, str | None]], elements: list[Any]) -> None:
            for row, element in zip(rows, elements, strict=True):
                try:
                    key = render(table_key, {**variables, "row": row})
                except TemplateProblem:
                    continue  # reported when the listing is turned into documents
                if not key or key in self._row_shots:
                    continue
                known = self.ledger.get(self.recipe.recipe, key)
                if known is not None and known.state is State.CONFIRMED:
                    continue
                shot = self._screenshot(source.page, key, "listing-row", element)
                if shot is not None:
                    self._row_shots[key] = shot

        return shoot

    def _batch_check(self, summary: RunSummary) -> None:
        """Per run: listed, downloaded and archived counts, and item-number continuity."""
        groups: dict[str, list[str]] = {}
        for code in self.ledger.references(self.recipe.recipe):
            groups.setdefault(code.rsplit("-", 1)[0], []).append(code)
        continuity = {
            group: problems
            for group, codes in sorted(groups.items())
            if (problems := gaps_and_repeats(codes))
        }
        self.log.event(
            "batch_check",
            outcome="ok" if not continuity and summary.new == len(summary.archived) else "warning",
            listed=summary.listed,
            new=summary.new,
            downloaded=self._downloaded,
            archived=len(summary.archived),
            failed=[key for key, *_ in summary.failures],
            held=[d.source_key for d in summary.held],
            # Gaps among this recipe's own items; items other producers filed in the same
            # group fill them, which only the archive's inventory can show.
            item_number_breaks=continuity,
        )

    # -- ledger helpers ---------------------------------------------------------------------

    def _advance(self, doc: Document, to: State, **fields: Any) -> Document:
        new = self.ledger.advance(doc, to, self.run_id, **fields)
        self.log.event(
            "state",
            key=doc.source_key,
            **{"from": doc.state, "to": to},
            **{k: v for k, v in fields.items() if k != "staged_path"},
        )
        return new

    def _fail(self, doc: Document, summary: RunSummary, exc: FleetError, kind: FailureKind) -> None:
        reason = self.redactor.scrub(str(exc))
        current = self.ledger.get(doc.recipe, doc.source_key) or doc
        if current.state is not State.CONFIRMED:
            stage = current.failed_stage if current.state is State.FAILED else current.state
            self.ledger.advance(
                current,
                State.FAILED,
                self.run_id,
                last_error=reason,
                failure_kind=kind,
                failed_stage=stage,
                failed_recipe_digest=self.loaded.digest,
            )
        self.log.event(
            "state",
            key=doc.source_key,
            outcome="failed",
            to=State.FAILED,
            kind=kind,
            error=reason,
            error_type=type(exc).__name__,
        )
        summary.failures.append((doc.source_key, reason, kind))
        if isinstance(exc, CircuitOpen):
            self.log.event("circuit_open", outcome="error", error=reason)


def _premis_outcome(check: Check | None) -> EventOutcome:
    if check is None or check.outcome is Outcome.NOT_RUN:
        return EventOutcome.NOT_RUN
    return EventOutcome.SUCCESS if check.outcome is Outcome.PASS else EventOutcome.FAILURE


def _inventory_items(rows: list[dict[str, str | None]]) -> list[dict[str, Any]]:
    """The archive's list rows as inventory records, one per archive id."""
    items: dict[str, dict[str, Any]] = {}
    for row in rows:
        archive_id = row.get("archive_id")
        if not archive_id or archive_id in items:
            continue
        items[archive_id] = {
            "archive_id": archive_id,
            "reference_code": row.get("reference_code") or None,
            "title": row.get("title"),
            "size": byte_count(row.get("size") or ""),
            "sha256": (row.get("sha256") or "").lower() or None,
            "ingested_at": row.get("ingested_at"),
        }
    return list(items.values())


def _table_of(steps: list[Any]) -> Any:
    """The one `table` step's arguments (the recipe schema guarantees there is one)."""
    return next(s.table for s in walk_steps(steps) if isinstance(s, Table))
