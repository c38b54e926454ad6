"""The review round trip: actions typed in a real reconciliation workbook, read back and
applied to a real SQLite ledger (``bots.reconcile.review``), and the ledger's reopen."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from bots.errors import UsageError
from bots.ledger import Document, FailureKind, Ledger, LedgerError, State, queries
from bots.logchain import verify
from bots.reconcile.classify import Result
from bots.reconcile.report import BatchFacts, RecipeInputs, Reconciliation, build
from bots.reconcile.review import Applied, Decision, Review, read_decisions
from bots.reconcile.sources import (
    checks_frame,
    inventory_frame,
    ledger_frame,
    reviews_frame,
    sightings_frame,
)
from bots.reconcile.workbook import write_workbook
from bots.redaction import Redactor
from bots.settings import Settings
from tests.conftest import FrozenClock

RECIPE = "demo"
SHEET = "核对 Reconciliation"
EXTRA = "AX0001"  # an item the archive holds that no listing had
HELD_DIGEST = "d" * 64  # the recipe version that refused R4


@dataclass
class World:
    ledger: Ledger
    clock: FrozenClock
    tmp: Path

    @property
    def runs_dir(self) -> Path:
        return self.tmp / "logs" / "runs"

    @property
    def evidence_dir(self) -> Path:
        return self.tmp / "logs" / "evidence"


def download(ledger: Ledger, key: str, n: int, **evidence: Any) -> Document:
    doc = ledger.record_listed(RECIPE, key, {"id": key, "title": f"报表{n}"}, "cap-1")
    return ledger.advance(
        doc,
        State.DOWNLOADED,
        "cap-1",
        sha256=f"{n:064x}",
        size=1000 + n,
        staged_path=str(ledger.staging_root / f"{key}.pdf"),
        filename=f"{key}.pdf",
        **evidence,
    )


def confirm(ledger: Ledger, key: str, n: int) -> Document:
    doc = download(ledger, key, n, file_format="PDF 1.7")
    doc = ledger.advance(doc, State.UPLOADING, "cap-1")
    doc = ledger.advance(
        doc,
        State.UPLOADED,
        "cap-1",
        archive_id=f"A{n:04d}",
        reference_code=f"Z109-2025-D10-CWB-{n:04d}",
        item_metadata={"title": f"报表{n}", "pages": "3"},
    )
    return ledger.advance(doc, State.CONFIRMED, "cap-1")


def hold(ledger: Ledger, key: str, n: int) -> Document:
    """Downloaded, then refused by its four-property checks: held until released."""
    return ledger.advance(
        download(ledger, key, n),
        State.FAILED,
        "cap-1",
        last_error="failed checks: usability/opens",
        failure_kind=FailureKind.BUSINESS,
        failed_stage=State.DOWNLOADED,
        failed_recipe_digest=HELD_DIGEST,
    )


def as_item(doc: Document, **overrides: Any) -> dict[str, Any]:
    assert doc.item_metadata is not None
    row = {
        "archive_id": doc.archive_id,
        "reference_code": doc.reference_code,
        "title": doc.item_metadata["title"],
        "size": doc.size,
        "sha256": doc.sha256,
        "ingested_at": "2026-11-21 01:00:00",
    }
    row.update(overrides)
    return row


def take_inventory(w: World, run_id: str, items: list[dict[str, Any]]) -> None:
    w.clock.advance(minutes=1)  # the newest inventory is the one started last
    w.ledger.start_run(
        run_id=run_id,
        recipe=RECIPE,
        recipe_digest="c" * 64,
        host="h",
        user="u",
        bot_version="0.1.0",
        log_path=f"/logs/runs/{run_id}.jsonl",
        action="inventory",
    )
    w.ledger.record_inventory(run_id, RECIPE, items)
    w.ledger.finish_run(run_id, "ok", {})


def documents_frame(ledger: Ledger) -> pd.DataFrame:
    """``sources.ledger_frame``'s frame, read row by row here: ledger_frame itself fails on
    a ledger that holds both uploaded and not yet uploaded documents (see
    test_the_ledger_frame_reads_documents_not_yet_uploaded), and these tests are about the
    review, not about that."""
    found = queries.table_rows(ledger, "documents", recipe=RECIPE)
    records = []
    for row in found:
        meta = json.loads(row["item_metadata"]) if row["item_metadata"] else None
        records.append(
            {
                "key": row["source_key"],
                "state": row["state"],
                "failure_kind": row["failure_kind"],
                "checks_failed": (row["last_error"] or "").startswith("failed checks"),
                "sha256": row["sha256"],
                "size": row["size"],
                "archive_id": row["archive_id"],
                "reference_code": row["reference_code"],
                "title": (meta or {}).get("title") or row["title"],
                "listing": json.loads(row["listing"]),
                "item_metadata": meta,
                "filename": row["filename"],
                "file_format": row["file_format"],
                "listed_at": row["listed_at"],
                "downloaded_at": row["downloaded_at"],
                "confirmed_at": row["confirmed_at"],
                "last_error": row["last_error"],
                "read_back_sha256": None,  # no fixity events in these ledgers
            }
        )
    frame = pd.DataFrame(records)
    frame["size"] = frame["size"].astype("Int64")
    return frame


def reconcile(w: World, path: Path) -> Reconciliation:
    """What ``runner.py reconcile --no-inventory`` builds, from the ledger, into ``path``."""
    taken, inventory = inventory_frame(w.ledger, RECIPE)
    part = RecipeInputs(
        recipe=RECIPE,
        ledger=documents_frame(w.ledger),
        inventory=inventory,
        inventory_run=taken,
        sightings=sightings_frame(w.ledger, RECIPE),
        checks=checks_frame(w.ledger, RECIPE),
        reviews=reviews_frame(w.ledger, RECIPE),
    )
    facts = BatchFacts(batch_id="B-1", written_at=w.clock(), bot="rpa-fleet test")
    result = build([part], facts)
    write_workbook(result.sheets, path, title="核对 B-1", timezone="Asia/Shanghai")
    return result


@pytest.fixture
def world(tmp_path: Path, clock: FrozenClock) -> Iterator[World]:
    """R1 一致, R2 缺失, R3 摘要不符, R4 检测未通过, AX0001 多余."""
    ledger = Ledger.open(
        f"sqlite:///{tmp_path / 'ledger.sqlite3'}", clock, staging_root=tmp_path / "staging"
    )
    w = World(ledger, clock, tmp_path)
    r1, _, r3 = confirm(ledger, "R1", 1), confirm(ledger, "R2", 2), confirm(ledger, "R3", 3)
    hold(ledger, "R4", 4)
    extra = {
        **as_item(r1),
        "archive_id": EXTRA,
        "reference_code": "Z109-WS·2025-D10-BGS-0001",  # filed by hand: its own code
        "title": "手工录入",
        "size": 5,
        "sha256": None,
    }
    take_inventory(w, "inv-1", [as_item(r1), as_item(r3, sha256="f" * 64), extra])
    try:
        yield w
    finally:
        ledger.close()


@pytest.fixture
def book(world: World) -> Path:
    path = world.tmp / "对账 B-1.xlsx"
    result = reconcile(world, path)
    results = dict(zip(result.rows["key"], result.rows["result"], strict=True))
    assert results == {
        "R1": Result.MATCH,
        "R2": Result.MISSING,
        "R3": Result.DIGEST_MISMATCH,
        "R4": Result.REJECTED,
        EXTRA: Result.EXTRA,
    }
    return path


Typed = tuple[str | None, str | None, str | None]  # action, owner, note


def type_actions(
    path: Path, actions: dict[str, Typed], *, blank_keys: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Type into the 核对 sheet as a reviewer would (columns found by the English header
    row), save; the address of each key's Action cell, as read_decisions names it."""
    book = load_workbook(path)
    ws = book[SHEET]
    header = next(r for r in range(1, 6) if "Key" in [c.value for c in ws[r]])
    english = [c.value for c in ws[header]]
    col = {name: english.index(name) + 1 for name in ("Key", "Action", "Owner", "Note")}
    cells = {}
    for row in range(header + 1, ws.max_row + 1):
        key = ws.cell(row, col["Key"]).value
        if key in actions:
            for name, value in zip(("Action", "Owner", "Note"), actions[key], strict=True):
                ws.cell(row, col[name]).value = value
            cells[key] = f"{SHEET}!{get_column_letter(col['Action'])}{row}"
        if key in blank_keys:
            ws.cell(row, col["Key"]).value = None
    book.save(path)
    assert set(cells) == set(actions)
    return cells


def review(w: World, path: Path) -> Review:
    settings = Settings.from_env({}, logs_dir=w.tmp / "logs")
    return Review(settings, path, clock=w.clock, redactor=Redactor(), ledger=w.ledger)


def apply(w: World, path: Path) -> tuple[Review, list[Applied]]:
    w.clock.advance(seconds=5)  # each review is its own run, with its own id
    r = review(w, path)
    return r, r.apply(read_decisions(path))


def rows(w: World, table: str) -> list[dict[str, Any]]:
    return queries.table_rows(w.ledger, table)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def get(w: World, key: str) -> Document:
    doc = w.ledger.get(RECIPE, key)
    assert doc is not None
    return doc


# -- reading the reviewer's workbook --------------------------------------------------------


def test_actions_are_read_whatever_their_case_and_spaces(book: Path) -> None:
    cells = type_actions(
        book,
        {
            "R2": (" Recapture ", "王档案", "archive lost it"),
            EXTRA: ("IGNORE ", "王档案", "filed by hand in 2019"),
            "R1": (None, "王档案", "looked at it: fine"),  # no action: not a decision
        },
    )
    decisions = read_decisions(book)
    assert decisions == [
        Decision(
            cell=cells["R2"],
            recipe=RECIPE,
            key="R2",
            archive_id="A0002",
            result=Result.MISSING.value,
            action="recapture",
            owner="王档案",
            note="archive lost it",
        ),
        Decision(
            cell=cells[EXTRA],
            recipe=RECIPE,
            key=EXTRA,
            archive_id=EXTRA,
            result=Result.EXTRA.value,
            action="ignore",
            owner="王档案",
            note="filed by hand in 2019",
        ),
    ]
    assert cells["R2"].startswith("核对 Reconciliation!")


def test_a_workbook_without_actions_reads_as_no_decisions(book: Path) -> None:
    assert read_decisions(book) == []


def test_bad_rows_refuse_the_whole_file_naming_every_cell(book: Path) -> None:
    cells = type_actions(
        book,
        {
            "R1": ("ignore", "王档案", "fine as it is"),  # good, but not applied either
            "R2": ("recaptur", "王档案", "typo"),
            EXTRA: ("ignore", "王档案", None),  # ignore needs a note
            "R3": ("recapture", "王档案", "key wiped"),
        },
        blank_keys=frozenset({"R3"}),
    )
    with pytest.raises(UsageError) as caught:
        read_decisions(book)
    message = str(caught.value)
    assert "nothing applied" in message
    assert f"{cells['R2']}: 'recaptur' is not an action" in message
    assert f"{cells[EXTRA]}: ignore needs a note" in message
    assert f"{cells['R3']}: the row has no recipe, key or result" in message
    assert cells["R1"] not in message
    assert len(message.splitlines()) == 4  # the headline and exactly the three bad cells


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"recapture R2\n"),
        ("saved-as-html.xlsx", b"<html><body><table></table></body></html>"),
        ("empty.xlsx", b""),
    ],
)
def test_a_file_that_is_not_a_workbook_is_refused(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UsageError, match="not a workbook"):
        read_decisions(path)


def test_a_zip_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    with pytest.raises(UsageError, match="not a workbook"):
        read_decisions(path)


def test_a_workbook_without_the_reconciliation_sheet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.xlsx"
    wb = Workbook()
    assert wb.active is not None
    wb.active.title = "Sheet1"
    wb.active.append(["Key", "Action"])
    wb.save(path)
    with pytest.raises(UsageError, match="no sheet '核对 Reconciliation'"):
        read_decisions(path)


def test_a_reconciliation_sheet_without_an_action_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "edited.xlsx"
    wb = Workbook()
    assert wb.active is not None
    wb.active.title = SHEET
    wb.active.append(["编号", "核对结果"])
    wb.active.append(["Key", "Result"])
    wb.active.append(["R1", "缺失"])
    wb.save(path)
    with pytest.raises(UsageError, match="no header row with Key and Action"):
        read_decisions(path)


# -- applying it to the ledger --------------------------------------------------------------


def test_recapture_of_a_missing_document_reopens_it_with_its_evidence(
    world: World, book: Path
) -> None:
    type_actions(book, {"R2": ("recapture", "王档案", "the archive lost it")})
    r, applied = apply(world, book)
    [a] = applied
    assert a.outcome == "applied" and "reopened: was A0002" in a.reason

    doc = get(world, "R2")
    assert doc.state is State.DOWNLOADED
    assert doc.archive_id is None and doc.reference_code is None
    assert doc.sha256 == f"{2:064x}"  # the captured file is what goes up again
    assert [d.source_key for d in world.ledger.recaptures(RECIPE)] == ["R2"]
    assert get(world, "R1").state is State.CONFIRMED  # nothing else moved

    digest = sha256(book)
    assert r.sha256 == digest
    [decision] = rows(world, "reviews")
    assert decision["review_id"] == r.review_id
    assert (decision["recipe"], decision["source_key"], decision["archive_id"]) == (
        RECIPE,
        "R2",
        "A0002",
    )
    assert (decision["result"], decision["action"], decision["outcome"]) == (
        Result.MISSING.value,
        "recapture",
        "applied",
    )
    assert decision["owner"] == "王档案" and decision["note"] == "the archive lost it"
    assert decision["workbook_sha256"] == digest and decision["workbook"] == str(book)

    [event] = [e for e in rows(world, "events") if e["event_type"] == "review decision"]
    assert event["source_key"] == "R2" and event["run_id"] == r.review_id
    assert event["outcome"] == "success"
    kept = Path(event["evidence_path"])
    assert kept == world.evidence_dir / "reviews" / f"{r.review_id}.xlsx"
    assert event["evidence_sha256"] == digest == sha256(kept)
    detail = json.loads(event["detail"])
    assert detail["action"] == "recapture" and detail["decision"] == "applied"

    log = world.runs_dir / f"{r.review_id}.jsonl"
    assert log.is_file()
    report = verify(world.runs_dir)
    assert report.ok, report.problems
    assert report.files == 1 and report.records >= 3  # start, the decision, the end
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [rec["event"] for rec in records] == ["review_start", "premis", "run_end"]

    [run] = [run for run in rows(world, "runs") if run["action"] == "review"]
    assert run["run_id"] == r.review_id and run["outcome"] == "ok"
    assert run["recipe_digest"] == digest
    assert json.loads(run["counts"]) == {"applied": 1, "unchanged": 0, "refused": 0}


def test_the_same_recapture_again_is_unchanged(world: World, book: Path) -> None:
    type_actions(book, {"R2": ("recapture", "王档案", "the archive lost it")})
    _, first = apply(world, book)
    _, again = apply(world, book)
    assert [a.outcome for a in first] == ["applied"]
    assert [a.outcome for a in again] == ["unchanged"]
    assert "already being recaptured" in again[0].reason
    assert get(world, "R2").state is State.DOWNLOADED
    assert [d["outcome"] for d in rows(world, "reviews")] == ["applied", "unchanged"]
    assert verify(world.runs_dir).ok


def test_the_same_workbook_applied_twice_within_a_second(world: World, book: Path) -> None:
    """Run twice in a row (a script, an impatient double Enter): the second run must say
    "unchanged", not crash on the first run's log file and run id."""
    type_actions(book, {"R2": ("recapture", "王档案", "the archive lost it")})
    decisions = read_decisions(book)
    first = review(world, book).apply(decisions)
    again = review(world, book).apply(decisions)  # the clock has not moved on
    assert [a.outcome for a in first] == ["applied"]
    assert [a.outcome for a in again] == ["unchanged"]


def test_recapture_is_refused_while_the_newest_inventory_holds_the_item(
    world: World, book: Path
) -> None:
    """The workbook is stale: the archive has the item again (restored). Reopening now
    would archive a second copy."""
    type_actions(book, {"R2": ("recapture", "王档案", "the archive lost it")})
    r2 = get(world, "R2")
    take_inventory(world, "inv-2", [as_item(get(world, "R1")), as_item(r2)])
    r, [a] = apply(world, book)
    assert a.outcome == "refused"
    assert "inv-2" in a.reason and "A0002" in a.reason and "twice" in a.reason
    doc = get(world, "R2")
    assert doc.state is State.CONFIRMED and doc.archive_id == "A0002"
    assert world.ledger.recaptures(RECIPE) == []
    [decision] = rows(world, "reviews")
    assert decision["outcome"] == "refused" and decision["reason"] == a.reason
    [event] = [e for e in rows(world, "events") if e["event_type"] == "review decision"]
    assert event["outcome"] == "failure"
    [run] = [run for run in rows(world, "runs") if run["run_id"] == r.review_id]
    assert run["outcome"] == "partial"


@pytest.mark.parametrize(
    ("key", "because"),
    [
        ("R1", "nothing to recapture"),
        ("R3", "restore or remove"),
        (EXTRA, "no source listed it"),
    ],
)
def test_recapture_is_refused_where_there_is_nothing_to_capture(
    world: World, book: Path, key: str, because: str
) -> None:
    type_actions(book, {key: ("recapture", "王档案", None)})
    before = {k: get(world, k) for k in ("R1", "R2", "R3", "R4")}
    _, [a] = apply(world, book)
    assert a.outcome == "refused" and because in a.reason
    assert {k: get(world, k) for k in before} == before  # no document changed
    assert world.ledger.recaptures(RECIPE) == []


def test_recapture_releases_a_document_held_by_its_checks(world: World, book: Path) -> None:
    assert get(world, "R4").failed_recipe_digest == HELD_DIGEST
    type_actions(book, {"R4": ("recapture", "王档案", "the source fixed the file")})
    _, [a] = apply(world, book)
    assert a.outcome == "applied" and "released" in a.reason
    doc = get(world, "R4")
    assert doc.failed_recipe_digest is None  # the next run tries it again
    assert doc.state is State.FAILED and doc.failure_kind is FailureKind.BUSINESS


def test_ignore_is_applied_once_and_closes_the_row_in_the_next_workbook(
    world: World, book: Path
) -> None:
    type_actions(book, {EXTRA: ("ignore", "王档案", "filed by hand in 2019")})
    _, first = apply(world, book)
    _, again = apply(world, book)
    assert [a.outcome for a in first] == ["applied"]
    assert [a.outcome for a in again] == ["unchanged"]
    assert "already closed" in again[0].reason
    assert [(d["action"], d["outcome"]) for d in rows(world, "reviews")] == [
        ("ignore", "applied"),
        ("ignore", "unchanged"),
    ]
    # The next reconciliation shows the finding still there, and closed.
    later = reconcile(world, world.tmp / "later.xlsx").rows.set_index("key")
    assert later.loc[EXTRA, "result"] == Result.EXTRA and bool(later.loc[EXTRA, "closed"])
    assert later.loc[EXTRA, "owner"] == "王档案"
    assert "filed by hand in 2019" in later.loc[EXTRA, "note"]
    assert not bool(later.loc["R2", "closed"])


def test_the_ledger_frame_reads_documents_not_yet_uploaded(world: World) -> None:
    """R1-R3 were uploaded (item metadata sent), R4 never was (no metadata): the frame
    reconciliation reads holds all four, R4 without metadata."""
    frame = ledger_frame(world.ledger, RECIPE)
    assert frame["key"].tolist() == ["R1", "R2", "R3", "R4"]
    by_key = frame.set_index("key")
    assert by_key.loc["R1", "item_metadata"] == {"title": "报表1", "pages": "3"}
    assert by_key.loc["R4", "item_metadata"] is None
    assert by_key.loc["R4", "title"] == "报表4"  # the listed title, none having been sent
    assert bool(by_key.loc["R4", "checks_failed"]) and not bool(by_key.loc["R1", "checks_failed"])
    expected = documents_frame(world.ledger)
    assert list(frame.columns) == list(expected.columns)


# -- the ledger's side -------------------------------------------------------------------------


def test_confirming_a_reopened_document_ends_the_recapture(world: World) -> None:
    doc = world.ledger.reopen(get(world, "R2"), "review-1")
    assert doc.state is State.DOWNLOADED and doc.archive_id is None
    assert [d.source_key for d in world.ledger.recaptures(RECIPE)] == ["R2"]
    doc = world.ledger.advance(doc, State.UPLOADING, "cap-2")
    doc = world.ledger.advance(doc, State.UPLOADED, "cap-2", archive_id="A0099")
    assert [d.source_key for d in world.ledger.recaptures(RECIPE)] == ["R2"]  # not yet
    doc = world.ledger.advance(doc, State.CONFIRMED, "cap-2")
    assert doc.archive_id == "A0099"
    assert world.ledger.recaptures(RECIPE) == []
    [row] = queries.table_rows(world.ledger, "documents", source_key="R2")
    requested = row["recapture_requested_at"]
    assert requested is None


def test_reopen_refuses_what_is_not_confirmed(world: World) -> None:
    with pytest.raises(LedgerError, match="not confirmed"):
        world.ledger.reopen(get(world, "R4"), "review-1")
    assert get(world, "R4").state is State.FAILED
    stale = get(world, "R2")
    world.ledger.reopen(stale, "review-1")
    with pytest.raises(LedgerError, match="not confirmed"):
        world.ledger.reopen(get(world, "R2"), "review-2")
    with pytest.raises(LedgerError, match="changed under us"):
        world.ledger.reopen(stale, "review-2")  # a stale snapshot: still "confirmed"
