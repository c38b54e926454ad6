"""The document's state machine, without a database: the named transitions, where a
document resumes, and which documents are held."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bots.ledger import (
    Document,
    FailureKind,
    LedgerError,
    Resume,
    State,
    is_held,
    resume_point,
    states,
)
from tests.conftest import ROOT

L, D, U, UD, C, F = (
    State.LISTED,
    State.DOWNLOADED,
    State.UPLOADING,
    State.UPLOADED,
    State.CONFIRMED,
    State.FAILED,
)

# Written out again by hand, so that a change to the table has to be made twice.
EXPECTED: dict[str, tuple[set[State], State]] = {
    "downloaded": ({L, D, F}, D),
    "upload intended": ({D, F}, U),
    "uploaded": ({U, F}, UD),
    "confirmed": ({UD, F}, C),
    "failed": ({L, D, U, UD, F}, F),
    "reopened": ({C}, D),
    "released": ({F}, F),
    "archive id forgotten": ({UD, F}, U),
    "recapture, find first": ({UD, F}, U),
}


def doc(state: State, **fields: Any) -> Document:
    values: dict[str, Any] = {
        "recipe": "demo",
        "source_key": "R1",
        "state": state,
        "title": "t",
        "listing": {},
        "filename": None,
        "staged_path": None,
        "sha256": None,
        "size": None,
        "item_metadata": None,
        "archive_id": None,
        "reference_code": None,
        "attempts": 1,
        "last_error": None,
    }
    values.update(fields)
    return Document(**values)


def test_the_table_names_every_transition_once() -> None:
    assert [t.name for t in states.TABLE] == list(EXPECTED)


@pytest.mark.parametrize("transition", states.TABLE, ids=lambda t: t.name)
@pytest.mark.parametrize("start", list(State))
def test_each_transition_starts_only_where_it_may(
    transition: states.Transition, start: State
) -> None:
    allowed, to = EXPECTED[transition.name]
    assert transition.to is to
    everything = {name: "x" for name in transition.requires}
    if start in allowed:
        transition.check(doc(start), everything)  # no error
    else:
        with pytest.raises(LedgerError, match=f"cannot go from {start} to {to}"):
            transition.check(doc(start), everything)


@pytest.mark.parametrize("transition", states.TABLE, ids=lambda t: t.name)
def test_each_transition_needs_its_evidence(transition: states.Transition) -> None:
    start = next(iter(EXPECTED[transition.name][0]))
    for missing in transition.requires:
        given = {name: "x" for name in transition.requires if name != missing}
        with pytest.raises(LedgerError, match=f"without {missing}"):
            transition.check(doc(start), given)


def test_advance_takes_only_forward_transitions() -> None:
    """The ways back are taken by name: advance() can never reopen or release."""
    assert states.next_states(C) == frozenset()
    assert states.next_states(L) == {D, F}
    assert states.next_states(F) == {D, U, UD, C, F}
    with pytest.raises(LedgerError, match="cannot go from confirmed to downloaded"):
        states.forward(doc(C), D)


def test_the_table_matches_the_readmes_diagram() -> None:
    """README: ``listed → downloaded → uploading → uploaded → confirmed``, or ``failed``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"Document states: `([^`]+)`, or `(\w+)`", readme)
    assert found, "the README's state diagram moved: update this test with it"
    path = [State(name.strip()) for name in found.group(1).split("→")]
    failed = State(found.group(2))
    assert {*path, failed} == set(State)
    for here, there in zip(path, path[1:], strict=False):
        assert there in states.next_states(here), f"{here} → {there}"
    for here in path[:-1]:
        assert failed in states.next_states(here), f"{here} → {failed}"
    assert states.next_states(path[-1]) == frozenset()  # confirmed is final


NO_FILE = {"staged_path": None}
STAGED = {"sha256": "ab" * 32, "size": 3, "staged_path": "/s/R1.pdf"}
IN_ARCHIVE = {**STAGED, "archive_id": "A1"}


@pytest.mark.parametrize(
    ("document", "intact", "expected"),
    [
        (doc(L), False, Resume.FETCH),
        (doc(D, **STAGED), True, Resume.UPLOAD),
        (doc(D, **STAGED), False, Resume.FETCH),  # the staged file is gone or changed
        (doc(U, **STAGED), True, Resume.FIND_THEN_UPLOAD),
        (doc(U, **STAGED), False, Resume.FIND_THEN_UPLOAD),  # look before fetching again
        (doc(UD, **IN_ARCHIVE), True, Resume.CONFIRM),
        (doc(UD, **IN_ARCHIVE), False, Resume.CONFIRM),
        (doc(C, **IN_ARCHIVE), True, Resume.DONE),
        (doc(F, failed_stage=L, **NO_FILE), False, Resume.FETCH),
        (doc(F, failed_stage=D, **STAGED), True, Resume.UPLOAD),
        (doc(F, failed_stage=D, **STAGED), False, Resume.FETCH),
        (doc(F, failed_stage=U, **STAGED), True, Resume.FIND_THEN_UPLOAD),
        (doc(F, failed_stage=UD, **IN_ARCHIVE), False, Resume.CONFIRM),
        (doc(D, **{**STAGED, "archive_id": None}), True, Resume.UPLOAD),  # a reopened one
    ],
)
def test_resume_point(document: Document, intact: bool, expected: Resume) -> None:
    assert resume_point(document, staged_intact=intact) is expected


def test_every_state_has_a_resume_point() -> None:
    cases = {L: {}, D: STAGED, U: STAGED, UD: IN_ARCHIVE, C: IN_ARCHIVE, F: STAGED}
    for state, fields in cases.items():
        assert isinstance(resume_point(doc(state, **fields), staged_intact=True), Resume)


def test_held_means_refused_for_business_by_this_recipe_version() -> None:
    refused = doc(F, failure_kind=FailureKind.BUSINESS, failed_recipe_digest="d1")
    assert is_held(refused, "d1")
    assert not is_held(refused, "d2")  # the recipe changed: retried
    assert not is_held(doc(F, failure_kind=FailureKind.SYSTEM, failed_recipe_digest="d1"), "d1")
    released = doc(F, failure_kind=FailureKind.BUSINESS, failed_recipe_digest=None)
    assert not is_held(released, "d1")
    assert not is_held(doc(D, **STAGED), "d1")
