"""The upload stage: send the checked file and its metadata to the archive, once.

The intent to upload is recorded (UPLOADING) before the upload is sent. A document found
in that state (after a lost answer, or a crash) may or may not be in the archive: the
recipe's `find` steps look it up before anything is sent again.
"""

from __future__ import annotations

from typing import Any

from ..archival.evidence import EventOutcome, EventType
from ..archival.preingest import Prepared, file_vars
from ..drivers import StepContext
from ..errors import SystemFailure, TransientError
from ..ledger import State
from .document import DocumentWork
from .run import CaptureRun
from .stages import System

Ids = dict[str, str | None]


def upload(run: CaptureRun, work: DocumentWork, archive: System, prepared: Prepared) -> None:
    """Upload with retries; the document becomes UPLOADED with the archive's id."""
    ids = run.stages.run(
        archive, "upload", lambda: _attempt(run, work, archive, prepared), work.key
    )
    work.advance(State.UPLOADED, item_metadata=prepared.metadata, **ids)
    _ingested(run, work, archive)


def _attempt(run: CaptureRun, work: DocumentWork, archive: System, prepared: Prepared) -> Ids:
    """One attempt: look first if an earlier attempt may have gone through."""
    doc = work.doc
    variables = {
        **run.vars,
        "row": doc.row,
        "listing": doc.listing_name or "",
        "meta": prepared.metadata,
        "file": file_vars(doc, prepared.report),
    }
    if doc.upload_uncertain:
        found = find(run, work, archive, variables)
        if found is not None:
            return found
    if doc.state is not State.UPLOADING:
        # The intent, durable before the submit: after a crash from here on, the next
        # run looks in the archive before uploading again.
        work.advance(State.UPLOADING, file_format=prepared.report.format)
    context = StepContext(variables, phase="upload", key=work.key)
    archive.session.run(archive.spec.upload, context)
    archive_id = variables.get("archive_id")
    if not archive_id:
        raise TransientError(
            f"{run.loaded.path}: after the upload steps, archive_id was read as empty "
            f"on {archive.session.location}; the upload's outcome is unknown"
        )
    return {"archive_id": archive_id, "reference_code": variables.get("reference_code") or None}


def find(
    run: CaptureRun, work: DocumentWork, archive: System, variables: dict[str, Any]
) -> Ids | None:
    """Look the document up in the archive: its ids when it is there, else None."""
    if not archive.spec.find:
        raise SystemFailure(
            f"the upload of {work.key} may have gone through (its outcome was never "
            f"seen) and {run.loaded.path} has no `archive.find` steps to check; look it up "
            "in the archive by hand. Uploading again could archive it twice."
        )
    found = {**variables}
    archive.session.run(archive.spec.find, StepContext(found, phase="find", key=work.key))
    archive_id = found.get("archive_id")
    run.ctx.log.event("find", key=work.key, found=bool(archive_id), archive_id=archive_id or None)
    if not archive_id:
        return None
    return {"archive_id": archive_id, "reference_code": found.get("reference_code") or None}


def _ingested(run: CaptureRun, work: DocumentWork, archive: System) -> None:
    """The ingestion event, with the archive's answer on screen as its evidence."""
    doc = work.doc
    shot = run.screenshot(archive, doc.source_key, "archive-receipt")
    run.ctx.evidence.event(
        doc.source_key,
        EventType.INGESTION,
        EventOutcome.SUCCESS,
        {
            "system": archive.name,
            "archive_id": doc.archive_id,
            "reference_code": doc.reference_code,
            "url": archive.session.location,
        },
        shot,
    )
