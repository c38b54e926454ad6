"""The download stage: fetch the document's file from the source into staging.

First its listing's detail steps, when it has some: what they read becomes row fields,
recorded with the download, so the later stages and any resumed run see the same row.

Retried like any stage; what keeps arriving broken on every attempt (an HTML page where
a file belongs, a transfer cut short) fails its check by name and holds the document
for a person, rather than being retried every night.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from ..archival.checks import Check, ChecksFailed, Property
from ..archival.evidence import EventOutcome, EventType, Shot
from ..drivers import StepContext
from ..errors import BusinessError, Incomplete, RecipeRuntimeError, UnexpectedPage
from ..files import StagedFile, invisible_characters, key_folder, sha256_file, visible
from ..ledger import Document, State
from ..recipe.model import ListingPlan
from ..recipe.steps import assigned
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
    """Detail pages, then the download, with retries; the document becomes DOWNLOADED
    with its file's digest and what its detail pages showed."""
    doc, key = work.doc, work.key
    plan = _plan(doc, source)
    shot = run.row_shots.get(key)
    staged, detail = _fetched(run, doc, source, shot)
    evidence = run.ctx.evidence
    seen = {"listing_row": run.rows.get(key, doc.listing)}
    if plan.detail:
        seen["detail"] = detail
    evidence.event(
        key,
        EventType.CAPTURE,
        EventOutcome.SUCCESS,
        {
            "system": source.name,
            "source_url": source.session.location,
            **seen,
            **_names(staged),
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
        # With the file, in the same compare-and-set: a resume at any later state
        # renders the row (and so the metadata) the file was captured with.
        detail=detail or None,
    )


def restage(run: CaptureRun, work: DocumentWork, source: System) -> None:
    """A document whose upload may have gone through, but whose staged file is not here
    (its worker died on another machine; the staging folder was cleaned): its file
    fetched again. The same bytes as captured (the digest the ledger holds) go on, to
    `find` first and to upload only if the archive does not have them; other bytes are
    held for a person, since what may be in the archive is the first ones."""
    doc, key = work.doc, work.key
    staged, _ = _fetched(run, doc, source, None)
    if staged.sha256 != doc.sha256:
        check = Check.failed(
            Property.AUTHENTICITY,
            "digest_unchanged",
            f"fetched again because its upload may have gone through, the file is not the "
            f"one captured (SHA-256 {staged.sha256}, captured {doc.sha256}): look the "
            "document up in the archive",
        )
        record_checks(run, doc, [check])
        raise ChecksFailed([check])
    run.ctx.evidence.event(
        key,
        EventType.CAPTURE,
        EventOutcome.SUCCESS,
        {
            "system": source.name,
            "source_url": source.session.location,
            "fetched_again": "its upload may have gone through and its staged file is not "
            "on this machine; the same SHA-256 as captured",
            **_names(staged),
            "size": staged.size,
        },
    )
    run.summary.downloaded += 1


def _plan(doc: Document, source: System) -> ListingPlan:
    """The listing whose steps fetch ``doc``: the one it was listed by."""
    plan = source.spec.plan(doc.listing_name)
    if plan is None:  # the recipe lost the listing the document came from
        raise BusinessError(
            f"recipe problem: {doc.source_key} came from listing "
            f"{doc.listing_name or '(list)'!r}, which the recipe no longer has; the steps "
            "to fetch it are unknown"
        )
    return plan


def _fetched(
    run: CaptureRun, doc: Document, source: System, shot: Shot | None
) -> tuple[StagedFile, dict[str, str]]:
    """The download stage, with retries: the staged file and what its detail pages
    read. What arrives broken on every attempt fails its check by name (held)."""
    plan = _plan(doc, source)
    try:
        fetched: tuple[StagedFile, dict[str, str]] = run.stages.run(
            source, "download", lambda: _download(run, doc, source, plan), doc.source_key
        )
    except UnexpectedPage as exc:
        _refuse(run, doc, Property.USABILITY, "format_matches_extension", exc, shot)
    except Incomplete as exc:
        _refuse(run, doc, Property.COMPLETENESS, "size_matches_declared", exc, shot)
    return fetched


def _names(staged: StagedFile) -> dict[str, str]:
    """The name it is stored under and the name the source sent, written out so that no
    invisible character can make it read as another name in the audit page or the run log
    (the ledger keeps it as sent); and what was removed from it, by code point."""
    names = {"filename": staged.filename, "source_filename": visible(staged.original)}
    if removed := invisible_characters(staged.original):
        names["filename_note"] = (
            "invisible format characters removed from the source's file name: " + ", ".join(removed)
        )
    return names


def _download(
    run: CaptureRun, doc: Document, source: System, plan: ListingPlan
) -> tuple[StagedFile, dict[str, str]]:
    """One attempt: the detail steps (their reads become row fields), then the download
    steps, with this run's row (else the one the ledger kept)."""
    row = dict(run.rows.get(doc.source_key, doc.listing))
    detail = _detail(run, doc, source, plan, row)
    folder = run.ctx.settings.staging_dir(run.name) / key_folder(doc.source_key)
    context = StepContext(
        {**run.vars, "row": {**row, **detail}, "listing": plan.name},
        phase="download",
        key=doc.source_key,
        staging_dir=folder,
    )
    outcome = source.session.run(plan.download, context)
    if outcome.downloaded is None:
        where = f"source.listings[{plan.name}].download" if plan.name else "source.download"
        raise RecipeRuntimeError(
            str(run.loaded.path),
            f"{where}: the steps ran for {doc.source_key} but no `download` step "
            "applied to its row (check their `when` conditions)",
        )
    return outcome.downloaded, detail


def _detail(
    run: CaptureRun, doc: Document, source: System, plan: ListingPlan, row: dict[str, Any]
) -> dict[str, str]:
    """The row's detail pages: what their `read` steps read, by name (a read skipped by
    its `when` reads nothing)."""
    if not plan.detail:
        return {}
    variables: dict[str, Any] = {**run.vars, "row": row, "listing": plan.name}
    context = StepContext(variables, phase="detail", key=doc.source_key)
    source.session.run(plan.detail, context)
    names = assigned(plan.detail)
    fields = {n: str(variables[n]) for n in names if variables.get(n) is not None}
    run.ctx.log.event("detail", key=doc.source_key, listing=plan.name or None, fields=fields)
    return fields


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
