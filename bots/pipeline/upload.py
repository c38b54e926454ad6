"""The upload stage: send the checked file and its metadata to the archive, once.

The intent to upload is recorded (UPLOADING) at the moment the driver is about to send
the request that may commit (``StepContext.on_commit``), not before the upload steps:
steps that fail before that moment (a form field not found) reached nothing, and the
next attempt simply uploads. A document found in UPLOADING (after a lost answer, or a
crash) may or may not be in the archive: the recipe's `find` steps look it up before
anything is sent again. A driver that cannot tell when it commits never calls
``on_commit``: its document goes through UPLOADING once the archive id is read.
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
    attempt = _Attempt(run, work, archive, prepared)
    ids = run.stages.run(archive, "upload", attempt, work.key)
    work.advance(State.UPLOADED, item_metadata=prepared.metadata, **ids)
    _ingested(run, work, archive)


class _Attempt:
    """One attempt at the upload, called by the stage runner as often as it retries.

    ``uncertain``: an earlier attempt (of this run or another) may have reached the
    archive, so `find` comes first. It starts as the ledger says, becomes False when
    `find` says the archive has nothing, and True again once a request that may commit
    has been sent.
    """

    def __init__(
        self, run: CaptureRun, work: DocumentWork, archive: System, prepared: Prepared
    ) -> None:
        self.run, self.work, self.archive, self.prepared = run, work, archive, prepared
        self.uncertain = work.doc.upload_uncertain

    def _intent(self) -> None:
        """The intent, durable before the request that may commit is sent: after a
        crash or a lost answer from here on, `find` looks before uploading again."""
        self.uncertain = True
        if self.work.doc.state is not State.UPLOADING:
            self.work.advance(State.UPLOADING, file_format=self.prepared.report.format)

    def __call__(self) -> Ids:
        run, work, archive, prepared = self.run, self.work, self.archive, self.prepared
        variables = {
            **run.vars,
            "row": work.doc.row,
            "listing": work.doc.listing_name or "",
            "meta": prepared.metadata,
            "file": file_vars(work.doc, prepared.report),
        }
        if self.uncertain:
            found = find(run, work, archive, {**variables})
            if found is not None:
                return found
            self.uncertain = False  # not there: whatever was sent before never arrived
        committed = False

        def on_commit() -> None:
            nonlocal committed
            committed = True
            self._intent()

        context = StepContext(variables, phase="upload", key=work.key, on_commit=on_commit)
        archive.session.run(archive.spec.upload, context)
        archive_id = variables.get("archive_id")
        if not archive_id:
            if not committed:  # a driver that cannot tell: the outcome is unknown
                self._intent()
            raise TransientError(
                f"{run.loaded.path}: after the upload steps, archive_id was read as empty "
                f"on {archive.session.location}; the upload's outcome is unknown"
            )
        if work.doc.state is not State.UPLOADING:
            self._intent()  # a driver that cannot tell when it commits
        return {
            "archive_id": archive_id,
            "reference_code": variables.get("reference_code") or None,
        }


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
