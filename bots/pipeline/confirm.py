"""The confirm stage: read the archived item back (its digest, and the file itself).

A digest the archive reports must be the one taken at download; with `fixity` steps the
stored file is downloaded back, hashed and discarded (the fixity check). Then the
document is CONFIRMED: the one state a later run never touches.

An archive that acknowledged an item (gave an id) and then does not hold it (the read-back
or the file answers 404/410, or a confirm `reject_if` fires) is a business finding, not a
system error to repeat every night: the document is held (``NotHeld``) with a reason that
names the id and says the way out (``runner.py retry``, or a reviewer's ``recapture``,
which forget the id and look the document up with `find` before uploading again).
"""

from __future__ import annotations

from typing import Any

from ..archival.checks import Check, ChecksFailed, Property
from ..archival.evidence import EventOutcome, EventType
from ..archival.preingest import file_vars
from ..drivers import StepContext
from ..errors import BusinessError, NotFound, RecipeRuntimeError
from ..files import StagedFile
from ..ledger import Document, State
from ..recipe import LoadedRecipe
from .checks import record_checks
from .context import RunContext
from .document import DocumentWork
from .run import CaptureRun
from .stages import System


class NotHeld(BusinessError):
    """The archive acknowledged a document under an id, but does not hold that item."""

    def __init__(self, doc: Document, answer: str) -> None:
        code = f" ({doc.reference_code})" if doc.reference_code else ""
        super().__init__(
            f"not held by the archive: it acknowledged {doc.source_key} as "
            f"{doc.archive_id}{code}, but reading it back found nothing ({answer}). "
            f"Look for the document in the archive; then `runner.py retry {doc.recipe} "
            f"{doc.source_key}` (or `recapture` on its 缺失 row) forgets {doc.archive_id}, "
            "and the next run looks the document up with `find` before uploading it again"
        )
        self.archive_id = doc.archive_id


def confirm(run: CaptureRun, work: DocumentWork, archive: System) -> None:
    run.stages.run(archive, "confirm", lambda: _read_back(run, work.doc, archive), work.key)
    work.advance(State.CONFIRMED)


def _read_back(run: CaptureRun, doc: Document, archive: System) -> None:
    variables = {
        **run.vars,
        "row": doc.row,
        "listing": doc.listing_name or "",
        "file": file_vars(doc),
        "meta": doc.item_metadata or {},
        "archive_id": doc.archive_id,
        "reference_code": doc.reference_code,
    }
    if archive.spec.confirm:
        context = StepContext(variables, phase="confirm", key=doc.source_key)
        try:
            archive.session.run(archive.spec.confirm, context)
        except BusinessError as exc:  # HTTP 404/410, or the recipe's `reject_if` fired
            raise NotHeld(doc, str(exc)) from exc
        reported = variables.get("sha256")
        if reported:
            same = reported.lower() == (doc.sha256 or "").lower()
            # The archive's own word on the bytes, kept: reconciliation compares with it
            # when the archive's list shows no size or digest.
            _fixity_event(run, doc, same, reported.lower(), "the archive's record")
            if not same:
                raise BusinessError(
                    f"the archive holds {doc.archive_id} with SHA-256 {reported}, but the "
                    f"file downloaded had {doc.sha256}: the archived copy is not the "
                    "captured file"
                )
        run.ctx.log.event(
            "confirmed_read_back", key=doc.source_key, archive_id=doc.archive_id, sha256=reported
        )
    if archive.spec.fixity:
        _fixity(run, doc, archive, variables)


def _fixity(run: CaptureRun, doc: Document, archive: System, variables: dict[str, Any]) -> None:
    """Download the stored file back; its SHA-256 must be the one taken at download."""
    try:
        back = download_back(run.ctx, run.loaded, archive, variables, doc.source_key)
    except NotFound as exc:  # the driver's word: HTTP 404/410 for the stored file
        raise NotHeld(doc, str(exc)) from exc
    same = back.sha256 == doc.sha256
    name = "fixity_read_back"
    check = (
        Check.passed(Property.AUTHENTICITY, name, f"the archive's copy has SHA-256 {back.sha256}")
        if same
        else Check.failed(
            Property.AUTHENTICITY,
            name,
            f"the archive's copy of {doc.archive_id} has SHA-256 {back.sha256} "
            f"({back.size} bytes), the file captured had {doc.sha256} ({doc.size} bytes)",
        )
    )
    record_checks(run, doc, [check])
    _fixity_event(run, doc, same, back.sha256, "downloaded back", size=back.size)
    if not same:
        raise ChecksFailed([check])


def _fixity_event(
    run: CaptureRun, doc: Document, same: bool, read_back: str, method: str, **more: Any
) -> None:
    """The evidence of one fixity check: the SHA-256 the archive's copy has (``read_back``,
    learnt by ``method``) against the one taken at download."""
    run.ctx.evidence.event(
        doc.source_key,
        EventType.FIXITY,
        EventOutcome.SUCCESS if same else EventOutcome.FAILURE,
        {
            "algorithm": "SHA-256",
            "expected": doc.sha256,
            "read_back": read_back,
            **more,
            "archive_id": doc.archive_id,
            "method": method,
        },
    )


def download_back(
    ctx: RunContext, loaded: LoadedRecipe, archive: System, variables: dict[str, Any], key: str
) -> StagedFile:
    """Run the recipe's fixity steps; hash what came back, and keep nothing of it."""
    context = StepContext(
        variables,
        phase="fixity",
        key=key,
        staging_dir=ctx.settings.staging_dir(loaded.name) / ".fixity",
    )
    outcome = archive.session.run(archive.spec.fixity, context)
    back = outcome.downloaded
    if back is None:
        raise RecipeRuntimeError(
            str(loaded.path),
            "archive.fixity: the steps ran but their `download` did not apply "
            "(check its `when` condition)",
        )
    back.path.unlink(missing_ok=True)
    return back
