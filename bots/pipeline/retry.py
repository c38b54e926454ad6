"""Taking a document up again on a person's word: ``runner.py retry`` and a reviewer's
``recapture`` (``apply-review``), from whatever state the ledger has it in.

Each answer says what was done, in the ledger's terms (the state it went to, what was
forgotten), so that the person knows what the next run will do with the document:

- failed or uploaded, with an archive id: the id is forgotten (``ID_FORGOTTEN``, or
  ``RECAPTURE_FIND_FIRST`` for a reviewer) and the document is ``uploading`` again, so
  the next run looks it up with the recipe's `find` before uploading: an item the archive
  does hold is found and confirmed, never archived twice. Without `find` steps in the
  recipe this is refused (uploading blind could double it).
- failed, without an archive id: released from its hold (``RELEASED``); the next run
  takes it up where its effects stop.
- anything else (listed, downloaded, uploading, confirmed): nothing to do, and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ledger import Document, FailureKind, Ledger, State, states


@dataclass(frozen=True)
class Retried:
    """What became of one document: ``changed`` when the ledger was written."""

    changed: bool
    said: str
    refused: bool = False


def was(doc: Document) -> str:
    """The document's state in a few words: ``failed (business) at uploaded``."""
    if doc.state is State.FAILED:
        stage = f" at {doc.failed_stage}" if doc.failed_stage else ""
        kind = f" ({doc.failure_kind})" if doc.failure_kind else ""
        return f"failed{kind}{stage}"
    return str(doc.state)


def retry_document(
    ledger: Ledger,
    doc: Document,
    *,
    can_find: bool,
    run_id: str | None = None,
    reviewer: bool = False,
) -> Retried:
    """Take ``doc`` up again (see the module); ``can_find``: the recipe has `find` steps."""
    if doc.state is State.CONFIRMED:
        return Retried(
            False,
            f"confirmed as {doc.archive_id}: nothing to retry (if the archive lost it, "
            "reconcile shows it 缺失 and a reviewer's recapture reopens it)",
        )
    if doc.archive_id is not None and doc.state in (State.UPLOADED, State.FAILED):
        code = f" ({doc.reference_code})" if doc.reference_code else ""
        if not can_find:
            return Retried(
                False,
                f"{was(doc)} with archive id {doc.archive_id}{code}; not changed: the "
                "recipe has no `archive.find` steps, so the next run could not look the "
                "document up before uploading it again, and could archive it twice. Add "
                "`find` steps, or look it up in the archive by hand",
                refused=True,
            )
        transition = states.RECAPTURE_FIND_FIRST if reviewer else states.ID_FORGOTTEN
        ledger.apply(doc, transition, run_id)
        return Retried(
            True,
            f"{was(doc)} → {transition.to}: forgot archive id {doc.archive_id}{code}; the "
            "next run looks it up with `find` before uploading again",
        )
    if doc.state is State.FAILED:
        ledger.apply(doc, states.RELEASED, run_id)
        if doc.upload_uncertain:
            then = (
                "looks it up with `find` before uploading again (its upload may have gone through)"
            )
        elif doc.failed_stage in (None, State.LISTED):
            then = "downloads it again"
        else:
            then = "uploads its captured file (downloading it again if it changed or is gone)"
        held = (
            "released from its hold"
            if doc.failure_kind is FailureKind.BUSINESS
            else "not held (a system failure is retried anyway)"
        )
        return Retried(True, f"{was(doc)}, {held}; the next run {then}")
    return Retried(
        False, f"{was(doc)}, not failed: the next run takes it up anyway; nothing changed"
    )
