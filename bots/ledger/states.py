"""The document's state machine, in one place: states, named transitions, where to resume.

The README's diagram, ``listed → downloaded → uploading → uploaded → confirmed``, or
``failed``, is the table ``TABLE`` below: each row a named transition, the states it may
start from, the state it ends in, what must be known for it, the time it stamps and the
columns it clears. ``uploading`` is written *before* the upload is submitted: a document
found in it (or failed from it) may or may not be in the archive, and is looked up there
before any new upload. Four transitions go back, each by name only: ``REOPENED`` (a
reviewer's recapture of a confirmed document the archive lost), ``RELEASED`` (a held
document the next run may retry), and ``ID_FORGOTTEN`` / ``RECAPTURE_FIND_FIRST``
(``runner.py retry`` / a reviewer's recapture of a document whose archive id the archive
does not bear out: the id is forgotten and the document goes back to ``uploading``, so
the next run looks it up with `find` before it uploads anything again).

Everything here is pure: the store (``bots.ledger.store``) applies a transition as one
compare-and-set ``UPDATE``; capture asks ``resume_point`` and ``is_held`` what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..errors import FleetError


class State(StrEnum):
    LISTED = "listed"
    DOWNLOADED = "downloaded"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class FailureKind(StrEnum):
    BUSINESS = "business"  # bad data or a refusal: not retried until the recipe changes
    SYSTEM = "system"  # retries ran out: the next run tries again


class LedgerError(FleetError):
    """A state change the ledger refuses: the caller's idea of the document is stale."""


@dataclass(frozen=True)
class Transition:
    """One named change of a document's state: from where, to what, needing what."""

    name: str
    from_: frozenset[State]
    to: State
    requires: tuple[str, ...] = ()  # fields that must be known, given now or already held
    stamps: str | None = None  # the time column set to now
    clears: tuple[str, ...] = ()  # columns set to NULL

    def allows(self, state: State) -> bool:
        return state in self.from_

    def check(self, doc: Document, fields: Mapping[str, Any]) -> None:
        """Refuse (``LedgerError``) a document this transition cannot take as given."""
        if not self.allows(doc.state):
            raise LedgerError(
                f"document {doc.source_key!r} of recipe {doc.recipe!r} cannot go from "
                f"{doc.state} to {self.to} ({self.name})"
            )
        merged = {**doc.__dict__, **fields}
        missing = [name for name in self.requires if merged.get(name) in (None, "")]
        if missing:
            raise LedgerError(
                f"document {doc.source_key!r} cannot be {self.to} without {', '.join(missing)}"
            )


_FAILURE = ("last_error", "failure_kind", "failed_stage", "failed_recipe_digest")


def _from(*states: State) -> frozenset[State]:
    return frozenset(states)


# A failed document resumes at any stage whose effect is already recorded (a file that
# was downloaded need not be fetched again), so FAILED is a start of every forward row.
DOWNLOADED = Transition(
    "downloaded",
    _from(State.LISTED, State.DOWNLOADED, State.FAILED),
    State.DOWNLOADED,
    requires=("sha256", "size", "staged_path"),
    stamps="downloaded_at",
    clears=_FAILURE,
)
UPLOAD_INTENDED = Transition(  # written before the upload is submitted
    "upload intended",
    _from(State.DOWNLOADED, State.FAILED),
    State.UPLOADING,
    clears=_FAILURE,
)
UPLOADED = Transition(
    "uploaded",
    _from(State.UPLOADING, State.FAILED),
    State.UPLOADED,
    requires=("archive_id",),
    stamps="uploaded_at",
    clears=_FAILURE,
)
CONFIRMED = Transition(
    "confirmed",
    _from(State.UPLOADED, State.FAILED),
    State.CONFIRMED,
    requires=("archive_id",),
    stamps="confirmed_at",
    clears=(*_FAILURE, "recapture_requested_at"),
)
FAILED = Transition(
    "failed",
    _from(State.LISTED, State.DOWNLOADED, State.UPLOADING, State.UPLOADED, State.FAILED),
    State.FAILED,
    requires=("last_error", "failure_kind", "failed_stage"),
)
# The two ways back, never taken by ``advance``: only by name.
REOPENED = Transition(  # the archive lost a confirmed document: upload the staged file again
    "reopened",
    _from(State.CONFIRMED),
    State.DOWNLOADED,
    stamps="recapture_requested_at",
    clears=("archive_id", "reference_code", "archive_system", "uploaded_at", "confirmed_at"),
)
RELEASED = Transition(  # held no longer: the next run tries it again
    "released",
    _from(State.FAILED),
    State.FAILED,
    clears=("failed_recipe_digest",),
)

# The archive gave an id it does not bear out (reading the item back found nothing, or a
# person says the id is wrong): the id and what came with it are forgotten, and the
# document is "the upload may have gone through" again, so that the next run looks it up
# with `find` first and a copy the archive does hold is found, never uploaded twice.
_FORGET = (*_FAILURE, "archive_id", "reference_code", "archive_system", "uploaded_at")
ID_FORGOTTEN = Transition(  # runner.py retry
    "archive id forgotten",
    _from(State.UPLOADED, State.FAILED),
    State.UPLOADING,
    requires=("archive_id",),
    clears=_FORGET,
)
RECAPTURE_FIND_FIRST = Transition(  # a reviewer's recapture: taken even when no longer listed
    "recapture, find first",
    _from(State.UPLOADED, State.FAILED),
    State.UPLOADING,
    requires=("archive_id",),
    stamps="recapture_requested_at",
    clears=_FORGET,
)

TABLE = (
    DOWNLOADED,
    UPLOAD_INTENDED,
    UPLOADED,
    CONFIRMED,
    FAILED,
    REOPENED,
    RELEASED,
    ID_FORGOTTEN,
    RECAPTURE_FIND_FIRST,
)
FORWARD = (DOWNLOADED, UPLOAD_INTENDED, UPLOADED, CONFIRMED, FAILED)
_BY_TARGET = {t.to: t for t in FORWARD}


def forward(doc: Document, to: State) -> Transition:
    """The forward transition that takes ``doc`` to ``to`` (``LedgerError`` if none)."""
    transition = _BY_TARGET.get(to)
    if transition is None or not transition.allows(doc.state):
        raise LedgerError(
            f"document {doc.source_key!r} of recipe {doc.recipe!r} cannot go from "
            f"{doc.state} to {to}"
        )
    return transition


def next_states(state: State) -> frozenset[State]:
    """Where ``advance`` may take a document in ``state``."""
    return frozenset(t.to for t in FORWARD if t.allows(state))


class Resume(StrEnum):
    """Where a capture picks a document up, decided by what the ledger already holds."""

    FETCH = "fetch"  # no usable staged file: download, then check, upload, confirm
    UPLOAD = "upload"  # the staged file is intact: check, upload, confirm
    FIND_THEN_UPLOAD = "find then upload"  # an upload may have gone through: look first
    CONFIRM = "confirm"  # the archive gave an id: check the reference, read it back
    DONE = "done"  # confirmed: nothing to do


def resume_point(doc: Document, staged_intact: bool | Callable[[], bool]) -> Resume:
    """Where to resume ``doc``; ``staged_intact``: its staged file exists with its digest
    (or a function that says so, asked only when it matters: hashing a large file again
    is not free).

    By the fields, not only the state: a failed document resumes where its effects stop.
    """
    if doc.state is State.CONFIRMED:
        return Resume.DONE
    if doc.archive_id is not None:
        return Resume.CONFIRM
    if doc.upload_uncertain:
        return Resume.FIND_THEN_UPLOAD
    intact = staged_intact() if callable(staged_intact) else staged_intact
    return Resume.UPLOAD if intact else Resume.FETCH


def is_held(doc: Document, recipe_digest: str) -> bool:
    """Refused for a business reason by this same recipe version: not retried until the
    recipe changes or someone releases it (``runner.py retry``, a review)."""
    return (
        doc.state is State.FAILED
        and doc.failure_kind is FailureKind.BUSINESS
        and doc.failed_recipe_digest == recipe_digest
    )


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
    archive_system: str | None = None  # the archive that gave archive_id, reference_code
    listing_name: str | None = None  # which of `source.listings` (None: the `list` form)
    detail: dict[str, Any] | None = None  # what its detail pages showed, at download

    @property
    def row(self) -> dict[str, Any]:
        """The row templates see as ``row``: the listing's, with the detail fields."""
        return {**self.listing, **(self.detail or {})}

    @property
    def upload_uncertain(self) -> bool:
        """The upload may have gone through: look in the archive before uploading."""
        return self.state is State.UPLOADING or (
            self.state is State.FAILED and self.failed_stage is State.UPLOADING
        )
