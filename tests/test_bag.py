"""BagIt export: a bag holds exactly what was captured, and bagit's validator agrees."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bagit
import pytest
from openpyxl import load_workbook

from bots.archival import bag as bag_module
from bots.archival.bag import BagSummary, export_bag
from bots.errors import SystemFailure, UsageError
from bots.files import sha256_file
from bots.ledger import Document, Ledger, State
from tests.conftest import FrozenClock
from tests.office import convert

PDF = (
    b"%PDF-1.7\n" + "2025年1月资金日报表".encode() + b"\n" + b"\0" * (2 * 1024 * 1024) + b"%%EOF\n"
)
CSV = "日期,科目,金额\n2025-01-31,银行存款,1000.00\n".encode()
REF_PDF = "Z109-KU·2025-D10-CWB-0001"
REF_CSV = "Z109-KU·2025-D10-CWB-0002"


@pytest.fixture
def ledger(tmp_path: Path, clock: FrozenClock) -> Ledger:
    return Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", clock, staging_root=tmp_path / "staging")


def capture(
    ledger: Ledger,
    tmp_path: Path,
    key: str,
    content: bytes,
    ext: str,
    *,
    run_id: str = "run-1",
    reference_code: str | None = None,
    metadata: dict[str, Any] | None = None,
    recipe: str = "demo",
) -> Document:
    """Take one document through the ledger to confirmed, with a real staged file."""
    staged = tmp_path / "staging" / recipe / key / f"report{ext}"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(content)
    digest, size = sha256_file(staged)
    doc = ledger.record_listed(recipe, key, {"id": key, "title": key}, run_id)
    doc = ledger.advance(
        doc,
        State.DOWNLOADED,
        run_id,
        sha256=digest,
        size=size,
        staged_path=str(staged),
        filename=staged.name,
    )
    doc = ledger.advance(doc, State.UPLOADING, run_id)
    doc = ledger.advance(
        doc,
        State.UPLOADED,
        run_id,
        archive_id=f"A-{key}",
        reference_code=reference_code,
        item_metadata=metadata or {},
    )
    return ledger.advance(doc, State.CONFIRMED, run_id)


@pytest.fixture
def two_captured(ledger: Ledger, tmp_path: Path) -> list[Document]:
    pdf = capture(
        ledger,
        tmp_path,
        "R000001",
        PDF,
        ".pdf",
        reference_code=REF_PDF,
        metadata={"fonds": "Z109", "title": "2025年1月资金日报表", "author": "财务部"},
    )
    csv_doc = capture(
        ledger,
        tmp_path,
        "R000002",
        CSV,
        ".CSV",
        reference_code=REF_CSV,
        metadata={"fonds": "Z109", "title": "银行存款明细", "remarks": "源系统报表编号 R000002"},
    )
    return [pdf, csv_doc]


def export(documents: list[Document], out: Path, **kwargs: Any) -> BagSummary:
    return export_bag(
        documents,
        out,
        organization="某某集团财务部",
        external_id="HANDOVER-2025-001",
        description="2025年1月报表移交",
        **kwargs,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def leftovers(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.partial-*"))


# -- Ledger.captured ---------------------------------------------------------------------


def test_captured_by_run_excludes_other_runs_and_unconfirmed(
    ledger: Ledger, tmp_path: Path, clock: FrozenClock
) -> None:
    first = capture(ledger, tmp_path, "R1", b"one", ".pdf", run_id="run-1")
    clock.advance(minutes=1)
    capture(ledger, tmp_path, "R2", b"two", ".pdf", run_id="run-2")
    ledger.record_listed("demo", "R3", {"id": "R3"}, "run-1")  # listed only
    capture(ledger, tmp_path, "R1", b"one", ".pdf", run_id="run-1", recipe="other")

    assert [d.source_key for d in ledger.captured(run_id="run-1", recipe="demo")] == ["R1"]
    assert [(d.recipe, d.source_key) for d in ledger.captured(run_id="run-1")] == [
        ("demo", "R1"),
        ("other", "R1"),
    ]
    assert ledger.captured(run_id="run-1")[0] == first
    assert [d.source_key for d in ledger.captured(run_id="run-2")] == ["R2"]
    assert ledger.captured(run_id="no-such-run") == []


def test_captured_since_includes_the_boundary_in_any_offset(
    ledger: Ledger, tmp_path: Path, clock: FrozenClock
) -> None:
    capture(ledger, tmp_path, "early", b"1", ".pdf")
    clock.advance(hours=1)
    boundary = clock.now
    capture(ledger, tmp_path, "on-time", b"2", ".pdf")
    clock.advance(seconds=1)
    capture(ledger, tmp_path, "late", b"3", ".pdf")

    assert [d.source_key for d in ledger.captured(since=boundary)] == ["on-time", "late"]
    # The same instant given in UTC: SQLite keeps wall times, the ledger converts.
    utc = boundary.astimezone(UTC)
    assert utc.hour != boundary.hour
    assert [d.source_key for d in ledger.captured(since=utc)] == ["on-time", "late"]
    # A naive moment is the clock's wall time.
    naive = boundary.replace(tzinfo=None)
    assert [d.source_key for d in ledger.captured(since=naive)] == ["on-time", "late"]
    assert ledger.captured(since=clock.now, recipe="other") == []


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"run_id": "run-1", "since": datetime.fromisoformat("2026-01-01T00:00:00+08:00")}],
)
def test_captured_needs_exactly_one_selector(ledger: Ledger, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ledger.captured(**kwargs)


# -- a good bag --------------------------------------------------------------------------


def test_bag_by_run_validates_and_describes_itself(
    ledger: Ledger, tmp_path: Path, two_captured: list[Document]
) -> None:
    out = tmp_path / "bags" / "handover-1"
    summary = export(ledger.captured(run_id="run-1"), out)

    total = len(PDF) + len(CSV)
    assert summary == BagSummary(path=out, items=2, bytes=total, oxum=f"{total}.2")
    bag = bagit.Bag(str(out))
    assert bag.validate(fast=False)
    assert bag.info["Payload-Oxum"] == f"{total}.2"
    for key in ("Source-Organization", "External-Identifier", "Bagging-Date", "Bag-Software-Agent"):
        assert bag.info[key]
    assert bag.info["Source-Organization"] == "某某集团财务部"
    assert bag.info["External-Description"] == "2025年1月报表移交"
    assert bag.info["Bag-Size"] == "2.1 MB"
    assert sorted(bag.payload_entries()) == [
        f"data/demo/{REF_PDF}.pdf",
        f"data/demo/{REF_CSV}.csv",  # extension lower-cased, as the recipe's file.ext
    ]
    payload = out / "data" / "demo" / f"{REF_PDF}.pdf"
    assert payload.read_bytes() == PDF
    # Copied by default: an edit to the bag must never reach the captured file.
    assert payload.stat().st_ino != Path(two_captured[0].staged_path or "").stat().st_ino
    assert leftovers(out) == []


def test_item_metadata_files_keep_chinese_and_are_in_the_tag_manifest(
    ledger: Ledger, tmp_path: Path, two_captured: list[Document]
) -> None:
    out = tmp_path / "bag"
    export(ledger.captured(run_id="run-1"), out)

    raw = (out / "item-metadata.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with the BOM
    rows = read_csv(out / "item-metadata.csv")
    assert list(rows[0]) == [
        "payload_path",
        "recipe",
        "source_key",
        "archive_id",
        "reference_code",
        "sha256",
        "size",
        "fonds",
        "title",
        "author",
        "remarks",  # seen only on the second item: goes last
    ]
    pdf, csv_row = rows
    assert pdf["reference_code"] == REF_PDF and pdf["title"] == "2025年1月资金日报表"
    assert pdf["author"] == "财务部" and pdf["remarks"] == ""
    assert pdf["sha256"] == two_captured[0].sha256 and pdf["size"] == str(len(PDF))
    assert csv_row["payload_path"] == f"data/demo/{REF_CSV}.csv"
    assert csv_row["remarks"] == "源系统报表编号 R000002"

    records = json.loads((out / "item-metadata.json").read_text(encoding="utf-8"))
    assert records[1]["item_metadata"]["title"] == "银行存款明细"
    assert "银行存款明细" in (out / "item-metadata.json").read_text(encoding="utf-8")

    tag_entries = bagit.Bag(str(out)).tagfile_entries()
    assert {"item-metadata.csv", "item-metadata.json", "bag-info.txt"} <= set(tag_entries)


def test_the_archives_own_fields_follow_the_dat46_ones_under_their_labels(
    ledger: Ledger, tmp_path: Path
) -> None:
    capture(
        ledger,
        tmp_path,
        "R1",
        CSV,
        ".csv",
        reference_code=REF_CSV,
        metadata={"tags": ["finance", "monthly"], "fonds": "Z109", "report_id": "R1"},
    )
    capture(ledger, tmp_path, "R2", PDF, ".pdf", metadata={"title": "x", "batch": "7"})
    out = tmp_path / "bag"

    export(ledger.captured(run_id="run-1"), out, labels={"demo": {"tags": "Tags", "title": "T"}})

    rows = read_csv(out / "item-metadata.csv")
    assert list(rows[0])[7:] == ["fonds", "Tags", "report_id", "T", "batch"]
    assert rows[0]["Tags"] == "finance; monthly"  # a list, readably
    records = json.loads((out / "item-metadata.json").read_text(encoding="utf-8"))
    assert records[0]["item_metadata"]["tags"] == ["finance", "monthly"]  # as sent


HOSTILE = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"]


@pytest.fixture
def hostile_bag(ledger: Ledger, tmp_path: Path) -> Path:
    """Issue 12: titles and fields a spreadsheet would take for formulas, and numbers."""
    for n, title in enumerate(HOSTILE):
        capture(
            ledger,
            tmp_path,
            f"R{n}",
            CSV + str(n).encode(),
            ".csv",
            metadata={"title": title, "pages": -n, "amount": "-12.5", "tags": ["+x", "y"]},
        )
    out = tmp_path / "bag"
    export(ledger.captured(run_id="run-1"), out)
    return out


def test_item_metadata_csv_cells_cannot_become_formulas(hostile_bag: Path) -> None:
    rows = read_csv(hostile_bag / "item-metadata.csv")
    assert [row["title"] for row in rows] == ["'" + title for title in HOSTILE]
    assert [row["pages"] for row in rows] == ["0", "-1", "-2", "-3", "-4"]  # numbers stay
    assert {row["amount"] for row in rows} == {"-12.5"}
    assert {row["tags"] for row in rows} == {"'+x; y"}
    records = json.loads((hostile_bag / "item-metadata.json").read_text(encoding="utf-8"))
    assert [r["item_metadata"]["title"] for r in records] == HOSTILE  # JSON keeps them as sent
    assert bagit.Bag(str(hostile_bag)).is_valid()


def test_libreoffice_opens_the_csv_as_inert_text(hostile_bag: Path, tmp_path: Path) -> None:
    """The bag's CSV opened by headless LibreOffice and saved as xlsx: each hostile title is
    a text cell holding what was written, not a formula or its result. (LibreOffice takes an
    unquoted '=HYPERLINK(...)' in a CSV for a formula: tests the guard, not the office.)"""
    book = load_workbook(convert(hostile_bag / "item-metadata.csv", tmp_path / "lo", "xlsx"))
    ws = book.active
    assert ws is not None
    header = [c.value for c in ws[1]]
    titles = [row[header.index("title")] for row in ws.iter_rows(min_row=2)]
    assert [(c.value, c.data_type) for c in titles] == [("'" + t, "s") for t in HOSTILE]
    pages = [row[header.index("pages")] for row in ws.iter_rows(min_row=2)]
    assert [c.value for c in pages] == [0, -1, -2, -3, -4]


def test_bag_since_a_date(
    ledger: Ledger, tmp_path: Path, clock: FrozenClock, two_captured: list[Document]
) -> None:
    clock.advance(days=1)
    since = clock.now
    capture(ledger, tmp_path, "R000003", b"%PDF-1.4 later\n", ".pdf", run_id="run-2")

    out = tmp_path / "since"
    summary = export(ledger.captured(since=since), out)

    assert summary.items == 1
    assert bagit.Bag(str(out)).validate()
    assert list(bagit.Bag(str(out)).payload_entries()) == ["data/demo/R000003.pdf"]


def test_an_empty_existing_folder_is_used(
    ledger: Ledger, tmp_path: Path, two_captured: list[Document]
) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    export(two_captured, out)
    assert bagit.Bag(str(out)).validate()


def test_hard_links_when_asked_on_one_file_system(
    ledger: Ledger, tmp_path: Path, two_captured: list[Document]
) -> None:
    out = tmp_path / "linked"
    export(two_captured, out, link=True)
    payload = out / "data" / "demo" / f"{REF_PDF}.pdf"
    assert payload.stat().st_ino == Path(two_captured[0].staged_path or "").stat().st_ino
    assert bagit.Bag(str(out)).validate()


def test_names_that_collide_are_made_unique(ledger: Ledger, tmp_path: Path) -> None:
    docs = [
        capture(ledger, tmp_path, "2025/R1", b"a", ".pdf"),
        capture(ledger, tmp_path, "2025_R1", b"b", ".pdf"),  # same safe name
        capture(ledger, tmp_path, "r9", b"c", ".pdf", reference_code="X-1"),
        capture(ledger, tmp_path, "r10", b"d", ".pdf", reference_code="x-1"),  # case only
    ]
    out = tmp_path / "bag"
    export(docs, out)

    names = [row["payload_path"] for row in read_csv(out / "item-metadata.csv")]
    assert names[0] == "data/demo/2025_R1.pdf" and names[2] == "data/demo/X-1.pdf"
    assert len({n.casefold() for n in names}) == 4
    assert bagit.Bag(str(out)).validate()


# -- what must be refused ----------------------------------------------------------------


def test_a_changed_payload_byte_fails_validation(
    ledger: Ledger, tmp_path: Path, two_captured: list[Document]
) -> None:
    out = tmp_path / "bag"
    export(two_captured, out, link=False)
    payload = out / "data" / "demo" / f"{REF_CSV}.csv"
    data = bytearray(payload.read_bytes())
    data[0] ^= 0x01
    payload.write_bytes(bytes(data))

    with pytest.raises(bagit.BagValidationError, match="validation failed"):
        bagit.Bag(str(out)).validate()


def test_a_staged_file_changed_after_capture_is_refused(
    ledger: Ledger, tmp_path: Path, two_captured: list[Document]
) -> None:
    Path(two_captured[1].staged_path or "").write_bytes(CSV.replace(b"1000.00", b"9000.00"))
    out = tmp_path / "bag"

    with pytest.raises(SystemFailure, match="R000002") as caught:
        export(two_captured, out)

    assert "SHA-256" in str(caught.value) and "R000001" not in str(caught.value)
    assert not out.exists() and leftovers(out) == []


def test_a_missing_staged_file_is_refused(
    ledger: Ledger, tmp_path: Path, two_captured: list[Document]
) -> None:
    Path(two_captured[0].staged_path or "").unlink()
    out = tmp_path / "bag"
    with pytest.raises(SystemFailure, match="R000001.*missing"):
        export(two_captured, out)
    assert not out.exists() and leftovers(out) == []


def test_a_file_changed_while_bagging_fails_the_cross_check_and_leaves_nothing(
    ledger: Ledger,
    tmp_path: Path,
    two_captured: list[Document],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_make_bag: Callable[..., Any] = bagit.make_bag

    def tamper_then_bag(path: str, *args: Any, **kwargs: Any) -> Any:
        # After our check, before bagit hashes: the race the cross-check is there for.
        (Path(path) / "demo" / f"{REF_CSV}.csv").write_bytes(b"not what was captured")
        return real_make_bag(path, *args, **kwargs)

    monkeypatch.setattr(bag_module.bagit, "make_bag", tamper_then_bag)
    out = tmp_path / "bag"
    cwd = Path.cwd()

    with pytest.raises(SystemFailure, match=f"data/demo/{REF_CSV}.csv: ledger has"):
        export(two_captured, out, link=False)

    assert not out.exists() and leftovers(out) == []
    assert Path.cwd() == cwd


def test_a_folder_with_something_in_it_is_never_used(
    ledger: Ledger, tmp_path: Path, two_captured: list[Document]
) -> None:
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")

    with pytest.raises(UsageError, match="not empty"):
        export(two_captured, out)

    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert leftovers(out) == []


def test_a_file_in_the_way_is_refused(
    ledger: Ledger, tmp_path: Path, two_captured: list[Document]
) -> None:
    out = tmp_path / "file"
    out.write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="not a folder"):
        export(two_captured, out)


def test_nothing_captured_is_a_usage_error(ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "bag"
    with pytest.raises(UsageError, match="nothing captured"):
        export(ledger.captured(run_id="run-1"), out)
    assert not out.exists()
