"""The document's state machine: states, what each needs, and the document as read.

States move forward only: listed → downloaded → uploading → uploaded → confirmed, or to
failed. ``uploading`` is written *before* the upload is submitted: a document found in it
(or failed from it) may or may not be in the archive, and is looked up there before any
new upload.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import RowMapping

from ..errors import FleetError


class State(StrEnum):
    LISTED = "listed"
    DOWNLOADED = "downloaded"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    CONFIRMED = "confirmed"
    FAILED = "failed"


# Where each state may go next. FAILED may resume at any stage whose effect is already
# recorded (a file that was downloaded need not be fetched again).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.LISTED: frozenset({State.DOWNLOADED, State.FAILED}),
    State.DOWNLOADED: frozenset({State.DOWNLOADED, State.UPLOADING, State.FAILED}),
    State.UPLOADING: frozenset({State.UPLOADED, State.FAILED}),
    State.UPLOADED: frozenset({State.CONFIRMED, State.FAILED}),
    State.FAILED: frozenset(
        {State.DOWNLOADED, State.UPLOADING, State.UPLOADED, State.CONFIRMED, State.FAILED}
    ),
    State.CONFIRMED: frozenset(),
}


class FailureKind(StrEnum):
    BUSINESS = "business"  # bad data or a refusal: not retried until the recipe changes
    SYSTEM = "system"  # retries ran out: the next run tries again


# What must be known before a document may be in a state.
REQUIRED: dict[State, tuple[str, ...]] = {
    State.DOWNLOADED: ("sha256", "size", "staged_path"),
    State.UPLOADED: ("archive_id",),
    State.CONFIRMED: ("archive_id",),
    State.FAILED: ("last_error", "failure_kind", "failed_stage"),
}


class LedgerError(FleetError):
    """A state change the ledger refuses: the caller's idea of the document is stale."""


@dataclass(frozen=True)
class Document:
    """One document as the ledger knows it."""

    recipe: str
    source_key: str
    state: State
    title: str | None
    listing: dict[str, Any]
    filename: str | None
    staged_path: str | None
    sha256: str | None
    size: int | None
    item_metadata: dict[str, Any] | None
    archive_id: str | None
    reference_code: str | None
    attempts: int
    last_error: str | None
    failure_kind: FailureKind | None = None
    failed_stage: State | None = None
    failed_recipe_digest: str | None = None
    source_filename: str | None = None
    file_format: str | None = None

    @property
    def upload_uncertain(self) -> bool:
        """The upload may have gone through: look in the archive before uploading."""
        return self.state is State.UPLOADING or (
            self.state is State.FAILED and self.failed_stage is State.UPLOADING
        )

    @classmethod
    def from_row(cls, row: RowMapping) -> Document:
        return cls(
            recipe=row["recipe"],
            source_key=row["source_key"],
            state=State(row["state"]),
            title=row["title"],
            listing=json.loads(row["listing"]),
            filename=row["filename"],
            staged_path=row["staged_path"],
            sha256=row["sha256"],
            size=row["size"],
            item_metadata=json.loads(row["item_metadata"]) if row["item_metadata"] else None,
            archive_id=row["archive_id"],
            reference_code=row["reference_code"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            failure_kind=FailureKind(row["failure_kind"]) if row["failure_kind"] else None,
            failed_stage=State(row["failed_stage"]) if row["failed_stage"] else None,
            failed_recipe_digest=row["failed_recipe_digest"],
            source_filename=row["source_filename"],
            file_format=row["file_format"],
        )
