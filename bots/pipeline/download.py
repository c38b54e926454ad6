"""The download stage: fetch the document's file from the source into staging.

Retried like any stage; what keeps arriving broken on every attempt (an HTML page where
a file belongs, a transfer cut short) fails its check by name and holds the document
for a person, rather than being retried every night.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from ..archival.checks import Check, ChecksFailed, Property
from ..archival.evidence import EventOutcome, EventType, Shot
from ..drivers import StepContext
from ..errors import Incomplete, RecipeRuntimeError, UnexpectedPage
from ..files import StagedFile, safe_filename, sha256_file
from ..ledger import Document, State
from .checks import record_checks
from .document import DocumentWork
from .run import CaptureRun
from .stages import System


def staged_intact(doc: Document) -> bool:
    """The file a run staged earlier is still there with the digest it had."""
    if not doc.staged_path or not doc.sha256:
        return False
    path = Path(doc.staged_path)
    return path.is_file() and sha256_file(path)[0] == doc.sha256


def fetch(run: CaptureRun, work: DocumentWork, source: System) -> None:
    """Download with retries; the document becomes DOWNLOADED with its file's digest."""
    doc, key = work.doc, work.key
    shot = run.row_shots.get(key)
    try:
        staged = run.stages.run(source, "download", lambda: _download(run, doc, source), key)
    except UnexpectedPage as exc:
        _refuse(run, doc, Property.USABILITY, "format_matches_extension", exc, shot)
    except Incomplete as exc:
        _refuse(run, doc, Property.COMPLETENESS, "size_matches_declared", exc, shot)
    evidence = run.ctx.evidence
    evidence.event(
        key,
        EventType.CAPTURE,
        EventOutcome.SUCCESS,
        {
            "system": source.name,
            "source_url": source.session.location,
            "listing_row": run.rows.get(key, doc.listing),
            "filename": staged.filename,
            "source_filename": staged.original,
            "size": staged.size,
        },
        shot,
    )
    run.summary.downloaded += 1
    evidence.event(
        key,
        EventType.DIGEST,
        EventOutcome.SUCCESS,
        {"algorithm": "SHA-256", "digest": staged.sha256, "size": staged.size},
    )
    work.advance(
        State.DOWNLOADED,
        sha256=staged.sha256,
        size=staged.size,
        staged_path=str(staged.path),
        filename=staged.filename,
        source_filename=staged.original,
    )


def _download(run: CaptureRun, doc: Document, source: System) -> StagedFile:
    """One attempt: the recipe's download steps, with this run's row."""
    folder = run.ctx.settings.staging_dir(run.name) / safe_filename(doc.source_key, "document")
    context = StepContext(
        {**run.vars, "row": run.rows.get(doc.source_key, doc.listing)},
        phase="download",
        key=doc.source_key,
        staging_dir=folder,
    )
    outcome = source.session.run(source.spec.download, context)
    if outcome.downloaded is None:
        raise RecipeRuntimeError(
            str(run.loaded.path),
            f"source.download: the steps ran for {doc.source_key} but no `download` step "
            "applied to its row (check their `when` conditions)",
        )
    return outcome.downloaded


def _refuse(
    run: CaptureRun, doc: Document, prop: Property, name: str, exc: Exception, shot: Shot | None
) -> NoReturn:
    """Every attempt brought a broken file: a failed check, not a system failure."""
    check = Check.failed(
        prop, name, f"every attempt failed so; the last: {run.ctx.redactor.scrub(str(exc))}"
    )
    record_checks(run, doc, [check])
    run.ctx.evidence.event(
        doc.source_key,
        EventType.CAPTURE,
        EventOutcome.FAILURE,
        {"check": f"{prop}/{name}", "reason": check.reason},
        shot,
    )
    raise ChecksFailed([check]) from exc
