"""One run of one recipe: list what is new, download it, archive it, confirm it.

The ledger decides what is new: every listed document that is not yet confirmed. A
document's state advances only after the effect it records has happened (the file is
staged and hashed; the archive showed its id; the archive's digest was read back), so a
run that stops anywhere is resumed, not repeated, by the next one.
"""

from __future__ import annotations

import getpass
import secrets
import socket
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from playwright.sync_api import Browser, sync_playwright

from credentials import Credential, CredentialStore

from . import __version__
from .errors import (
    EXIT_DOCUMENT_FAILURES,
    EXIT_OK,
    EXIT_SYSTEM,
    BusinessError,
    FleetError,
    SystemFailure,
)
from .files import StagedFile, refuse_html_in_place_of_file, safe_filename, sha256_file
from .ledger import Document, Ledger, State
from .recipe import LoadedRecipe
from .recipe.model import ArchiveSystem, SourceSystem
from .redaction import Redactor
from .runlog import RunLog
from .settings import Settings
from .templating import TemplateProblem, evaluate, render
from .web.browser import launch
from .web.steps import StepRunner

Clock = Callable[[], datetime]
SpecT = TypeVar("SpecT", SourceSystem, ArchiveSystem)
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
    failures: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    system_failure: str | None = None

    @property
    def exit_code(self) -> int:
        if self.system_failure:
            return EXIT_SYSTEM
        return EXIT_DOCUMENT_FAILURES if self.failures else EXIT_OK

    def line(self) -> str:
        head = (
            f"{self.recipe}: {self.listed} listed, {self.new} new, {len(self.archived)} archived, "
            f"{len(self.failures)} failed"
        )
        if self.system_failure:
            head += ", run stopped by a system failure"
        return f"{head} (run {self.run_id}, log {self.log_path})"


def safe_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not any(w in k.upper() for w in _SECRET_ENV_WORDS)}


class _System(Generic[SpecT]):
    """A browser context on one system (source or archive), logged in once."""

    def __init__(
        self,
        browser: Browser,
        spec: SpecT,
        base_url: str,
        loaded: LoadedRecipe,
        log: RunLog,
        name: str,
    ) -> None:
        self.spec: SpecT = spec
        self.context = browser.new_context(accept_downloads=True, locale="zh-CN")
        self.page = self.context.new_page()
        self.runner = StepRunner(
            self.page, base_url=base_url, loaded=loaded, system=name, emit=log.event
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
        clock: Clock = local_now,
    ) -> None:
        self.loaded = loaded
        self.recipe = loaded.recipe
        self.settings = settings
        self.store = store
        self.redactor = redactor
        self.clock = clock
        started = clock()
        self.run_id = f"{self.recipe.recipe}-{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        self.base_context: dict[str, Any] = {
            "env": safe_env(settings.env),
            "today": started.date().isoformat(),
            "now": started.isoformat(timespec="seconds"),
            "vars": self.recipe.vars,
        }

    @property
    def log_path(self) -> Path:
        return self.settings.runs_dir / f"{self.run_id}.jsonl"

    # -- the run -----------------------------------------------------------------------

    def run(self) -> RunSummary:
        log_path = self.log_path
        log = RunLog(
            log_path,
            run_id=self.run_id,
            recipe=self.recipe.recipe,
            redactor=self.redactor,
            clock=self.clock,
        )
        summary = RunSummary(self.run_id, self.recipe.recipe, log_path)
        ledger = Ledger(self.settings.ledger_url, self.clock)
        ledger.start_run(
            run_id=self.run_id,
            recipe=self.recipe.recipe,
            recipe_digest=self.loaded.digest,
            host=socket.gethostname(),
            user=getpass.getuser(),
            bot_version=__version__,
            log_path=str(log_path),
        )
        log.event(
            "run_start",
            recipe_file=str(self.loaded.path),
            recipe_digest=self.loaded.digest,
            bot_version=__version__,
            host=socket.gethostname(),
            user=getpass.getuser(),
            ledger=self.redactor.scrub(ledger.url),
        )
        outcome = "error"
        try:
            self._run(ledger, log, summary)
            outcome = (
                "failed" if summary.system_failure else ("partial" if summary.failures else "ok")
            )
        except FleetError as exc:
            log.event("run_error", outcome="error", error=str(exc), error_type=type(exc).__name__)
            raise
        finally:
            counts = {
                "listed": summary.listed,
                "new": summary.new,
                "archived": len(summary.archived),
                "failed": len(summary.failures),
            }
            log.close(outcome, **counts)
            ledger.finish_run(self.run_id, outcome, counts)
            ledger.close()
        return summary

    def _run(self, ledger: Ledger, log: RunLog, summary: RunSummary) -> None:
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
        log.event("window", source=source_url, archive=archive_url, **window)

        with sync_playwright() as playwright, ExitStack() as stack:
            browser = launch(playwright, self.settings.env)
            stack.callback(browser.close)
            source = _System(browser, source_spec, source_url, self.loaded, log, source_spec.system)
            archive = _System(
                browser, archive_spec, archive_url, self.loaded, log, archive_spec.system
            )
            stack.callback(source.close)
            stack.callback(archive.close)

            self._login(source, source_cred, log)
            pending = self._list(source, ledger, log, summary, window)
            for doc in pending:
                try:
                    done = self._capture(doc, source, archive, archive_cred, ledger, log)
                except SystemFailure as exc:
                    # Until retries exist (issue 3), a system failure ends the run: the
                    # next run resumes from the ledger.
                    self._fail(doc, ledger, log, summary, exc)
                    summary.system_failure = str(exc)
                    return
                except BusinessError as exc:
                    self._fail(doc, ledger, log, summary, exc)
                    continue
                summary.archived.append(done)

    def _render_setting(self, template: str, where: str) -> str:
        try:
            return render(template, self.base_context)
        except TemplateProblem as exc:
            raise SystemFailure(f"{self.loaded.path}: {where}: {exc}") from exc

    def _login(self, system: _System[Any], credential: Credential, log: RunLog) -> None:
        variables = {**self.base_context, "credential": credential}
        try:
            system.runner.run(system.spec.login, variables, phase="login")
        except (SystemFailure, BusinessError) as exc:
            raise SystemFailure(
                f"cannot log in to {system.spec.system} as {credential.username!r} "
                f"(credential {credential.name!r}): {exc}. Check the system is up and the "
                f"credential is right (`python runner.py credentials set {credential.name}`)."
            ) from exc
        system.logged_in = True
        log.event("login", system=system.spec.system, user=credential.username)

    def _list(
        self,
        source: _System[SourceSystem],
        ledger: Ledger,
        log: RunLog,
        summary: RunSummary,
        window: dict[str, str],
    ) -> list[Document]:
        variables = {**self.base_context, "window": window}
        outcome = source.runner.run(source.spec.listing, variables, phase="list")
        assert outcome.table is not None  # the schema demands exactly one table
        pending: list[Document] = []
        seen: set[str] = set()
        for row in outcome.rows:
            try:
                key = render(outcome.table.key, {**variables, "row": row})
            except TemplateProblem as exc:
                raise SystemFailure(f"{self.loaded.path}: table key: {exc}") from exc
            if not key:
                raise SystemFailure(f"{self.loaded.path}: table key rendered empty for row {row}")
            if key in seen:
                log.event("duplicate_row", key=key, outcome="warning", row=row)
                continue
            seen.add(key)
            doc = ledger.get(self.recipe.recipe, key)
            if doc is None:
                doc = ledger.record_listed(self.recipe.recipe, key, row, self.run_id)
                log.event("state", key=key, to=State.LISTED, row=row)
                summary.new += 1
            if doc.state is State.CONFIRMED:
                summary.already_confirmed += 1
            else:
                pending.append(doc)
        summary.listed = len(seen)
        log.event(
            "listing",
            listed=summary.listed,
            new=summary.new,
            pending=len(pending),
            already_confirmed=summary.already_confirmed,
        )
        return pending

    # -- one document -----------------------------------------------------------------

    def _capture(
        self,
        doc: Document,
        source: _System[SourceSystem],
        archive: _System[ArchiveSystem],
        archive_cred: Credential,
        ledger: Ledger,
        log: RunLog,
    ) -> Document:
        doc = ledger.count_attempt(doc)
        log.event("document_start", key=doc.source_key, state=doc.state, attempt=doc.attempts)

        if doc.archive_id is None and not self._staged_intact(doc):
            staged = self._download(doc, source)
            doc = self._advance(
                ledger,
                log,
                doc,
                State.DOWNLOADED,
                sha256=staged.sha256,
                size=staged.size,
                staged_path=str(staged.path),
                filename=staged.filename,
            )
        if doc.archive_id is None:
            metadata = self._metadata(doc)
            if not archive.logged_in:
                self._login(archive, archive_cred, log)
            ids = self._upload(doc, metadata, archive)
            doc = self._advance(ledger, log, doc, State.UPLOADED, item_metadata=metadata, **ids)
        self._confirm(doc, archive, log)
        return self._advance(ledger, log, doc, State.CONFIRMED)

    def _staged_intact(self, doc: Document) -> bool:
        if not doc.staged_path or not doc.sha256 or not Path(doc.staged_path).is_file():
            return False
        return sha256_file(Path(doc.staged_path))[0] == doc.sha256

    def _download(self, doc: Document, source: _System[SourceSystem]) -> StagedFile:
        runner = source.runner
        runner.key = doc.source_key
        runner.staging_dir = self.settings.staging_dir(self.recipe.recipe) / safe_filename(
            doc.source_key, "document"
        )
        variables = {**self.base_context, "row": doc.listing}
        outcome = runner.run(source.spec.download, variables, phase="download")
        if outcome.downloaded is None:
            raise BusinessError(
                f"{self.loaded.path}: the download steps ran but no `download` step applied to "
                f"this row (check their `when` conditions)"
            )
        refuse_html_in_place_of_file(outcome.downloaded)
        return outcome.downloaded

    def _metadata(self, doc: Document) -> dict[str, str]:
        variables = {**self.base_context, "row": doc.listing, "file": self._file_vars(doc)}
        period = None
        for rule in self.recipe.retention:
            try:
                if evaluate(rule.when, variables):
                    period = rule.period
                    break
            except TemplateProblem as exc:
                raise BusinessError(
                    f"{self.loaded.where(rule.line)}: retention rule: {exc}"
                ) from exc
        if period is None:
            raise BusinessError(
                f"no retention rule in {self.loaded.path} covers this report "
                f"(kind={doc.listing.get('kind')!r}, title={doc.listing.get('title')!r}); "
                "add a rule for it rather than guessing a period"
            )
        variables["retention"] = period
        metadata: dict[str, str] = {}
        for name, template in self.recipe.metadata.items():
            try:
                metadata[name] = render(template, variables)
            except TemplateProblem as exc:
                raise BusinessError(f"{self.loaded.path}: metadata.{name}: {exc}") from exc
        return metadata

    def _file_vars(self, doc: Document) -> dict[str, Any]:
        path = Path(doc.staged_path or "")
        return {
            "path": str(path),
            "name": doc.filename,
            "size": doc.size,
            "sha256": doc.sha256,
            "ext": path.suffix.lstrip(".").lower(),
        }

    def _upload(
        self, doc: Document, metadata: dict[str, str], archive: _System[ArchiveSystem]
    ) -> dict[str, str]:
        archive.runner.key = doc.source_key
        variables = {
            **self.base_context,
            "row": doc.listing,
            "meta": metadata,
            "file": self._file_vars(doc),
        }
        archive.runner.run(archive.spec.upload, variables, phase="upload")
        archive_id = variables.get("archive_id")
        if not archive_id:
            raise SystemFailure(
                f"{self.loaded.path}: after the upload steps, archive_id was read as empty "
                f"on {archive.page.url}; the upload's outcome is unknown"
            )
        return {"archive_id": archive_id, "reference_code": variables.get("reference_code") or None}

    def _confirm(self, doc: Document, archive: _System[ArchiveSystem], log: RunLog) -> None:
        if not archive.spec.confirm:
            return
        if not archive.logged_in:
            raise SystemFailure("internal: confirming before the archive login")
        archive.runner.key = doc.source_key
        variables = {
            **self.base_context,
            "row": doc.listing,
            "file": self._file_vars(doc),
            "meta": doc.item_metadata or {},
            "archive_id": doc.archive_id,
            "reference_code": doc.reference_code,
        }
        archive.runner.run(archive.spec.confirm, variables, phase="confirm")
        reported = variables.get("sha256")
        if reported is not None and reported.lower() != (doc.sha256 or "").lower():
            raise BusinessError(
                f"the archive holds {doc.archive_id} with SHA-256 {reported}, but the file "
                f"downloaded had {doc.sha256}: the archived copy is not the captured file"
            )
        log.event(
            "confirmed_read_back", key=doc.source_key, archive_id=doc.archive_id, sha256=reported
        )

    # -- ledger helpers ---------------------------------------------------------------------

    def _advance(
        self, ledger: Ledger, log: RunLog, doc: Document, to: State, **fields: Any
    ) -> Document:
        new = ledger.advance(doc, to, self.run_id, **fields)
        log.event(
            "state",
            key=doc.source_key,
            **{"from": doc.state, "to": to},
            **{k: v for k, v in fields.items() if k != "staged_path"},
        )
        return new

    def _fail(
        self, doc: Document, ledger: Ledger, log: RunLog, summary: RunSummary, exc: FleetError
    ) -> None:
        reason = self.redactor.scrub(str(exc))
        current = ledger.get(doc.recipe, doc.source_key) or doc
        if current.state is not State.CONFIRMED:
            ledger.advance(current, State.FAILED, self.run_id, last_error=reason)
        log.event(
            "state",
            key=doc.source_key,
            outcome="failed",
            to=State.FAILED,
            error=reason,
            error_type=type(exc).__name__,
        )
        summary.failures.append((doc.source_key, reason))
