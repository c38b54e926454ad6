"""The checks stages: the four-property checks before upload, the reference code after.

Every check is recorded (ledger `checks` and the run log), passed or not, with the
PREMIS events that say what was looked at. A failed check holds the document
(``ChecksFailed`` is a business error); nothing is uploaded.
"""

from __future__ import annotations

from pathlib import Path

from ..archival.checks import Check, ChecksFailed, Outcome, Property
from ..archival.evidence import EventOutcome, EventType
from ..archival.metadata import check_reference
from ..archival.preingest import Prepared, prepare
from ..ledger import Document
from .run import CaptureRun


def before_upload(run: CaptureRun, doc: Document) -> Prepared:
    """The four-property checks and the metadata; ChecksFailed stops the document here."""
    ctx = run.ctx
    staged = Path(doc.staged_path or "")
    if not staged.is_file():
        # Only a document whose upload may have gone through comes here without its file
        # (the others are fetched again): there is nothing to inspect. A person looks.
        gone = Check.failed(
            Property.AUTHENTICITY,
            "digest_unchanged",
            f"the staged file {staged} is gone, and the upload of it may have gone "
            "through: look the document up in the archive",
        )
        record_checks(run, doc, [gone])
        raise ChecksFailed([gone])
    prepared = prepare(
        doc,
        run.loaded,
        run.vars,
        ctx.clock().date(),
        virus_database=ctx.settings.clamav_database,
    )
    record_checks(run, doc, prepared.checks)
    key, report = doc.source_key, prepared.report
    by_name = {c.name: c for c in prepared.checks}
    ctx.evidence.event(
        key,
        EventType.FORMAT,
        _premis_outcome(by_name.get("format_identified")),
        {"format": report.format, "extension": report.extension, "pages": report.pages},
    )
    virus = by_name.get("virus_scan")
    ctx.evidence.event(
        key,
        EventType.VIRUS_CHECK,
        _premis_outcome(virus),
        {"reason": virus.reason if virus else "not run"},
    )
    failed = prepared.failed
    ctx.evidence.event(
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


def reference(run: CaptureRun, doc: Document) -> None:
    """The code the archive assigned follows the rule, and no other document has it in
    the same archive (codes are unique within the archive that assigned them)."""
    code, meta = doc.reference_code, doc.item_metadata or {}
    name = "reference_code"
    if not run.loaded.recipe.metadata_profile.has_codes:
        check = Check.not_run(
            Property.AUTHENTICITY,
            name,
            "the metadata profile has no reference codes (standard: none)",
        )
    elif not code:
        check = Check.not_run(
            Property.AUTHENTICITY, name, "the archive showed no reference code to check"
        )
    elif problem := check_reference(code, meta):
        check = Check.failed(Property.AUTHENTICITY, name, problem)
    elif holder := run.ctx.ledger.holder_of_reference(
        code, (doc.recipe, doc.source_key), run.loaded.recipe.archive.system
    ):
        check = Check.failed(
            Property.AUTHENTICITY,
            name,
            f"{code} is also held by {holder} in {run.loaded.recipe.archive.system}",
        )
    else:
        check = Check.passed(Property.AUTHENTICITY, name, f"{code} follows the rule")
    record_checks(run, doc, [check])
    if check.outcome is Outcome.FAIL:
        raise ChecksFailed([check])


def record_checks(run: CaptureRun, doc: Document, checks: list[Check]) -> None:
    ctx = run.ctx
    rows = [
        {
            "property": c.property.value,
            "name": c.name,
            "outcome": c.outcome.value,
            "reason": ctx.redactor.scrub(c.reason),
        }
        for c in checks
    ]
    ctx.ledger.record_checks(doc.recipe, doc.source_key, ctx.run_id, rows)
    ctx.log.event("checks", key=doc.source_key, results=rows)


def _premis_outcome(check: Check | None) -> EventOutcome:
    if check is None or check.outcome is Outcome.NOT_RUN:
        return EventOutcome.NOT_RUN
    return EventOutcome.SUCCESS if check.outcome is Outcome.PASS else EventOutcome.FAILURE
