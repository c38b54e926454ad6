"""From the ledger's, the listings' and the archive's frames to the workbook's sheets:
``bots.reconcile.report.build`` on small hand-made inputs in ``sources``' shapes."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook

from bots.reconcile.classify import RESULT_ENGLISH, Result
from bots.reconcile.columns import COLUMNS, SHEET_NAMES, headers
from bots.reconcile.report import CAUSES, BatchFacts, RecipeInputs, Reconciliation, build
from bots.reconcile.sources import InventoryRun
from bots.reconcile.workbook import write_workbook

CST = timezone(timedelta(hours=8))
LISTED = pd.Timestamp("2026-11-20 09:00:00")  # sources read naive wall times from SQLite
INGESTED = "2026-11-20 10:00:00"  # the archive's own text
INVENTORY_RUN = InventoryRun("demo-inventory-1", datetime(2026, 11, 21, 1, 0, tzinfo=CST), 0)

# The columns sources.ledger_frame / checks_frame / sightings_frame / reviews_frame return.
LEDGER_COLUMNS = [
    "key",
    "state",
    "failure_kind",
    "checks_failed",
    "sha256",
    "size",
    "archive_id",
    "reference_code",
    "title",
    "listing",
    "item_metadata",
    "filename",
    "file_format",
    "listed_at",
    "downloaded_at",
    "confirmed_at",
    "last_error",
]
INVENTORY_COLUMNS = ["archive_id", "reference_code", "title", "size", "sha256", "ingested_at"]
SIGHTING_COLUMNS = ["run_id", "key", "seen_at", "listing"]
CHECK_COLUMNS = ["key", "run_id", "property", "name", "outcome", "reason", "checked_at"]
REVIEW_COLUMNS = ["key", "archive_id", "result", "action", "owner", "note", "decided_at"]


def doc(key: str, n: int, state: str = "confirmed", **overrides: Any) -> dict[str, Any]:
    """One ledger_frame row: a confirmed document unless told otherwise."""
    title = f"2025年{n}月资金日报表"
    downloaded = state != "listed"
    archived = state == "confirmed"
    row: dict[str, Any] = {
        "key": key,
        "state": state,
        "failure_kind": None,
        "checks_failed": False,
        "sha256": f"{n:064x}" if downloaded else None,
        "size": 1000 * n + 7 if downloaded else None,
        "archive_id": f"A{n:04d}" if archived else None,
        "reference_code": f"Z109-2025-D10-CWB-{n:04d}" if archived else None,
        "title": title,
        "listing": {"id": key, "title": title, "period": f"2025-{n:02d}"},
        "item_metadata": {
            "title": title,
            "doc_number": f"财〔2025〕{n}号",
            "author": "财务部",
            "date": f"2025{n:02d}28",
            "pages": str(n + 2),
            "classification": "内部",
            "remarks": None,
            "retention": "D10",
            "department": "CWB",
        }
        if archived
        else None,
        "filename": f"{key}.pdf" if downloaded else None,
        "file_format": "PDF 1.7" if downloaded else None,
        "listed_at": LISTED,
        "downloaded_at": LISTED + pd.Timedelta(minutes=5) if downloaded else pd.NaT,
        "confirmed_at": LISTED + pd.Timedelta(minutes=9) if archived else pd.NaT,
        "last_error": None,
    }
    row.update(overrides)
    return row


def ledger(*rows: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=LEDGER_COLUMNS)
    frame["size"] = frame["size"].astype("Int64")
    frame["checks_failed"] = frame["checks_failed"].astype(bool)
    for column in ("listed_at", "downloaded_at", "confirmed_at"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def item(d: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The archive's inventory row for a document it holds as captured."""
    row = {
        "archive_id": d["archive_id"],
        "reference_code": d["reference_code"],
        "title": d["title"],
        "size": d["size"],
        "sha256": d["sha256"],
        "ingested_at": INGESTED,
    }
    row.update(overrides)
    return row


def stray(archive_id: str, size: int = 5) -> dict[str, Any]:
    return {
        "archive_id": archive_id,
        "reference_code": f"Z109-2025-D10-XXX-{archive_id}",
        "title": f"手工录入 {archive_id}",
        "size": size,
        "sha256": None,
        "ingested_at": INGESTED,
    }


def inventory(*rows: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=INVENTORY_COLUMNS)
    frame["size"] = frame["size"].astype("Int64")
    return frame


def empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns)


def part(
    recipe: str,
    led: pd.DataFrame,
    inv: pd.DataFrame,
    *,
    sightings: pd.DataFrame | None = None,
    checks: pd.DataFrame | None = None,
    reviews: pd.DataFrame | None = None,
) -> RecipeInputs:
    return RecipeInputs(
        recipe=recipe,
        ledger=led,
        inventory=inv,
        inventory_run=INVENTORY_RUN,
        sightings=empty(SIGHTING_COLUMNS) if sightings is None else sightings,
        checks=empty(CHECK_COLUMNS) if checks is None else checks,
        reviews=empty(REVIEW_COLUMNS) if reviews is None else reviews,
        digest="c" * 64,
        source_system="旧ERP",
        archive_system="档案系统",
    )


def facts(claimed_elsewhere: frozenset[str] = frozenset()) -> BatchFacts:
    return BatchFacts(
        batch_id="reconcile-20261121T020000-abcdef",
        written_at=datetime(2026, 11, 21, 2, 0, tzinfo=CST),
        bot="rpa-fleet 0.1.0 on test",
        logs="intact: 3 files, 42 records",
        claimed_elsewhere=claimed_elsewhere,
    )


def review(
    key: str, result: str, action: str = "ignore", note: str = "filed by hand, known"
) -> dict[str, Any]:
    return {
        "key": key,
        "archive_id": None,
        "result": result,
        "action": action,
        "owner": "王芳",
        "note": note,
        "decided_at": pd.Timestamp("2026-11-22 10:30:00"),
    }


def reviews(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=REVIEW_COLUMNS)


# -- the main batch: one of every kind a single recipe produces -----------------------------

R1 = doc("R1", 1)  # 一致; its reference code sorts last in the catalogue
R2 = doc("R2", 2, reference_code="Z109-2025-D10-CWB-0000")  # 一致, catalogue first
R3 = doc("R3", 3)  # confirmed, gone from the archive: 缺失
R4 = doc(  # downloaded, failed its checks, held: 检测未通过
    "R4",
    4,
    state="failed",
    failure_kind="business",
    checks_failed=True,
    last_error="failed checks: usability/opens",
)
R5 = doc("R5", 5, state="listed")  # never downloaded: 未下载
OTHER = "B0009"  # another recipe's item in the same archive (claimed elsewhere)
EXTRA = "AX001"  # nobody listed it


def sightings() -> pd.DataFrame:
    rows = [
        ("demo-run-1", "R1", LISTED, R1["listing"]),
        ("demo-run-1", "R2", LISTED, R2["listing"]),
        ("demo-run-2", "R1", LISTED + pd.Timedelta(days=1), {**R1["listing"], "period": "late"}),
    ]
    return pd.DataFrame(rows, columns=SIGHTING_COLUMNS)


def checks() -> pd.DataFrame:
    at = LISTED + pd.Timedelta(minutes=6)
    rows = [
        # R1: opens failed on the first run, passed on the second: the latest counts.
        ("R1", "demo-run-1", "usability", "opens", "fail", "not a PDF yet", at),
        ("R1", "demo-run-1", "authenticity", "reference_code", "pass", "ok", at),
        ("R1", "demo-run-2", "usability", "opens", "pass", "ok", at),
        ("R4", "demo-run-1", "authenticity", "reference_code", "fail", "no such series", at),
        ("R4", "demo-run-1", "usability", "opens", "fail", "login page saved as .pdf", at),
        ("R4", "demo-run-1", "security", "virus_scan", "not_run", "no scanner", at),
    ]
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def main_part(**kwargs: Any) -> RecipeInputs:
    return part(
        "demo",
        ledger(R1, R2, R3, R4, R5),
        inventory(item(R1), item(R2), stray(OTHER, 77), stray(EXTRA, 11)),
        sightings=sightings(),
        checks=checks(),
        **kwargs,
    )


@pytest.fixture(scope="module")
def built() -> Reconciliation:
    return build([main_part()], facts(frozenset({OTHER})))


def by_key(rows: pd.DataFrame) -> dict[str, str]:
    return dict(zip(rows["key"], rows["result"], strict=True))


def measures(result: Reconciliation) -> dict[str, object]:
    batch = result.sheets.batch
    return dict(zip(batch["measure"], batch["value"], strict=True))


def test_every_key_gets_its_result_and_the_claimed_item_is_not_extra(
    built: Reconciliation,
) -> None:
    assert by_key(built.rows) == {
        "R1": Result.MATCH,
        "R2": Result.MATCH,
        "R3": Result.MISSING,
        "R4": Result.REJECTED,
        "R5": Result.NOT_DOWNLOADED,
        EXTRA: Result.EXTRA,
    }
    assert OTHER not in set(built.rows["archive_id"])  # another recipe's: not 多余
    assert set(built.rows["recipe"]) == {"demo"}
    assert not built.rows["closed"].any()
    assert built.counts[Result.MATCH] == 2 and built.counts[Result.EXTRA] == 1
    assert built.counts[Result.DUPLICATE] == 0  # every code is counted, zeros too
    assert not built.closes and not built.sheets.closes


def test_every_sheet_is_there(built: Reconciliation) -> None:
    for attribute, _ in SHEET_NAMES:
        assert isinstance(getattr(built.sheets, attribute), pd.DataFrame), attribute
    assert list(built.sheets.batch.columns) == ["measure", "value"]
    assert list(built.sheets.discrepancies.columns) == [
        "issue",
        "items",
        "keys",
        "cause",
        "resolution",
    ]
    assert built.sheets.reconciliation is built.rows
    assert list(built.rows.columns[:3]) == ["recipe", "key", "archive_id"]
    assert {"result", "result_en", "detail", "closed", "action", "owner", "note"} <= set(
        built.rows.columns
    )


def test_listing_is_every_sighting_with_its_fields_prefixed(built: Reconciliation) -> None:
    listing = built.sheets.listing
    assert list(listing.columns) == [
        "recipe",
        "run_id",
        "source_id",
        "title",
        "listing_id",
        "listing_period",
        "listed_at",
    ]
    assert listing["run_id"].tolist() == ["demo-run-1", "demo-run-1", "demo-run-2"]
    assert listing["source_id"].tolist() == ["R1", "R2", "R1"]
    assert listing["title"].tolist() == [R1["title"], R2["title"], R1["title"]]
    assert listing["listing_period"].tolist() == ["2025-01", "2025-02", "late"]  # as seen then
    assert listing["listed_at"].tolist() == [LISTED, LISTED, LISTED + pd.Timedelta(days=1)]
    assert set(listing["recipe"]) == {"demo"}


def test_downloads_are_the_downloaded_documents_only(built: Reconciliation) -> None:
    downloads = built.sheets.downloads
    assert list(downloads.columns) == [
        "recipe",
        "source_id",
        "file_name",
        "bytes",
        "sha256",
        "format",
        "downloaded_at",
    ]
    assert downloads["source_id"].tolist() == ["R1", "R2", "R3", "R4"]  # not R5
    assert downloads["file_name"].tolist() == ["R1.pdf", "R2.pdf", "R3.pdf", "R4.pdf"]
    assert downloads["bytes"].tolist() == [1007, 2007, 3007, 4007]
    assert downloads["sha256"].tolist() == [f"{n:064x}" for n in (1, 2, 3, 4)]


def test_catalogue_is_the_confirmed_documents_in_reference_code_order(
    built: Reconciliation,
) -> None:
    catalogue = built.sheets.catalogue
    assert list(catalogue.columns) == [
        "seq",
        "reference_code",
        "document_number",
        "author",
        "title",
        "date",
        "classification",
        "pages",
        "remarks",
        "retention",
        "department",
    ]
    assert catalogue["reference_code"].tolist() == [
        "Z109-2025-D10-CWB-0000",  # R2
        "Z109-2025-D10-CWB-0001",  # R1
        "Z109-2025-D10-CWB-0003",  # R3
    ]
    assert catalogue["seq"].tolist() == [1, 2, 3]
    assert catalogue["document_number"].tolist() == [
        "财〔2025〕2号",
        "财〔2025〕1号",
        "财〔2025〕3号",
    ]
    assert catalogue["title"].tolist() == [R2["title"], R1["title"], R3["title"]]
    assert catalogue["date"].tolist() == ["20250228", "20250128", "20250328"]  # text, as sent
    assert pd.api.types.is_integer_dtype(catalogue["pages"])
    assert catalogue["pages"].tolist() == [4, 3, 5]
    assert set(catalogue["author"]) == {"财务部"} and set(catalogue["retention"]) == {"D10"}
    assert catalogue["remarks"].isna().all()


def test_catalogue_pages_that_are_not_numbers_are_left_empty() -> None:
    odd = doc("R1", 1)
    odd["item_metadata"] = {**odd["item_metadata"], "pages": "约3页"}
    result = build([part("demo", ledger(odd), inventory(item(odd)))], facts())
    pages = result.sheets.catalogue["pages"]
    assert pd.api.types.is_integer_dtype(pages) and pages.isna().all()


def test_catalogue_shows_the_archives_own_fields_by_label_after_the_dat46_columns() -> None:
    own = doc("R1", 1)
    own["item_metadata"] = {**own["item_metadata"], "report_id": "R1", "tags": ["a", "b"]}
    mine = part("profiled", ledger(own), inventory(item(own)))
    mine.field_labels = {"tags": "Tags", "report_id": "Report ID"}
    other = doc("S1", 2, archive_id="B0002")
    other["item_metadata"] = {**other["item_metadata"], "batch_no": "7"}
    theirs = part("no-file", ledger(other), inventory(item(other)))  # its recipe not loaded

    catalogue = build([mine, theirs], facts()).sheets.catalogue

    assert list(catalogue.columns)[-4:] == [
        "department",
        "field:Tags",  # the profile's order, not the metadata's
        "field:Report ID",
        "field:batch_no",  # no recipe file: by name
    ]
    by_key = catalogue.set_index("reference_code")
    assert by_key.loc[own["reference_code"], "field:Tags"] == "a; b"  # a list, readably
    assert by_key.loc[own["reference_code"], "field:Report ID"] == "R1"
    assert pd.isna(by_key.loc[own["reference_code"], "field:batch_no"])
    assert by_key.loc[other["reference_code"], "field:batch_no"] == "7"
    assert headers("field:Report ID") == ("Report ID", "Report ID")


def test_receipt_leaves_out_what_other_recipes_hold(built: Reconciliation) -> None:
    receipt = built.sheets.receipt
    assert list(receipt.columns) == [
        "recipe",
        "archive_id",
        "reference_code",
        "title",
        "bytes",
        "archive_sha256",
        "ingested_at",
    ]
    assert receipt["archive_id"].tolist() == ["A0001", "A0002", EXTRA]
    assert receipt["bytes"].tolist() == [1007, 2007, 11]
    assert receipt["ingested_at"].tolist() == [pd.Timestamp(INGESTED)] * 3  # read as times


def test_receipt_keeps_a_claimed_item_this_recipes_ledger_holds() -> None:
    """claimed_elsewhere names the other documents' items; an item this recipe's ledger
    holds stays in its receipt even when the set (wrongly) names it too."""
    result = build(
        [part("demo", ledger(R1), inventory(item(R1), stray(OTHER)))],
        facts(frozenset({R1["archive_id"], OTHER})),
    )
    assert result.sheets.receipt["archive_id"].tolist() == [R1["archive_id"]]
    assert by_key(result.rows) == {"R1": Result.MATCH}


def test_checks_are_item_by_check_with_the_latest_outcome(built: Reconciliation) -> None:
    checks = built.sheets.checks
    assert list(checks.columns[:3]) == ["recipe", "key", "reference_code"]
    assert checks.columns[-1] == "failed"
    # One column per check; the check "reference_code" does not take the code's column.
    assert set(checks.columns[3:-1]) == {"reference_code_check", "opens", "virus_scan"}
    assert checks["key"].tolist() == ["R1", "R4"]  # the ledger's order
    rows = checks.set_index("key")
    assert rows.loc["R1", "reference_code"] == R1["reference_code"]
    assert rows.loc["R1", "opens"] == "通过 pass"  # failed first, passed last
    assert rows.loc["R1", "reference_code_check"] == "通过 pass"
    assert pd.isna(rows.loc["R1", "virus_scan"])  # never checked
    assert pd.isna(rows.loc["R1", "failed"])  # its earlier failure is not its latest
    assert rows.loc["R4", "opens"] == "未通过 fail"
    assert rows.loc["R4", "reference_code_check"] == "未通过 fail"
    assert rows.loc["R4", "virus_scan"] == "未检测 not run"
    failed = rows.loc["R4", "failed"].split("; ")
    assert sorted(failed) == [
        "opens: login page saved as .pdf",
        "reference_code: no such series",
    ]  # failures only: the check that did not run is not among them


def test_discrepancies_one_line_per_kind_with_its_keys_and_cause(built: Reconciliation) -> None:
    lines = built.sheets.discrepancies.set_index("issue")
    expected = {
        Result.MISSING: "demo/R3",
        Result.EXTRA: f"demo/{EXTRA}",
        Result.NOT_DOWNLOADED: "demo/R5",
        Result.REJECTED: "demo/R4",
    }
    assert list(lines.index) == [f"{r.value} {RESULT_ENGLISH[r]}" for r in expected]
    for result, keys in expected.items():
        line = lines.loc[f"{result.value} {RESULT_ENGLISH[result]}"]
        assert line["items"] == 1 and line["keys"] == keys
        assert line["cause"] == CAUSES[result][0]
        assert line["resolution"] == f"1 open: {CAUSES[result][1]}"
    assert not any(issue.startswith(Result.MATCH.value) for issue in lines.index)


def test_batch_counts_bytes_and_manifest_digest_are_the_sums(built: Reconciliation) -> None:
    got = measures(built)
    downloaded = [R1, R2, R3, R4]
    confirmed = [R1, R2, R3]
    assert got["批次编号 Batch id"] == "reconcile-20261121T020000-abcdef"
    assert got["采集范围 Window"] == "all"
    assert got["源清单件数 Listed (items)"] == 5
    assert got["已下载件数 Downloaded (items)"] == 4
    assert got["已下载字节 Downloaded (bytes)"] == sum(d["size"] for d in downloaded) == 10028
    assert got["已确认归档件数 Confirmed archived (items)"] == 3
    assert got["已确认归档字节 Confirmed archived (bytes)"] == sum(d["size"] for d in confirmed)
    assert got["档案系统回执件数 Archive receipt (items)"] == 3
    assert got["档案系统回执字节 Archive receipt (bytes)"] == 1007 + 2007 + 11
    assert got["缺失 missing in archive"] == 1 and got["一致 match"] == 2
    assert got["经审核关闭 Closed by review"] == 0
    assert got["批次是否闭合 Batch closes"] == "否 N"
    assert got["运行日志 Run logs"] == "intact: 3 files, 42 records"
    assert str(INVENTORY_RUN.run_id) in str(got["档案盘点 Archive inventory"])
    lines = sorted(f"{d['key']}\t{d['sha256']}\n" for d in downloaded)
    manifest = hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
    assert got["下载清单摘要 Manifest digest (SHA-256)"] == manifest


def test_line_names_the_counts_and_says_it_does_not_close(built: Reconciliation) -> None:
    line = built.line()
    assert line.startswith("reconciled 6 rows: 2 一致, 1 缺失, 1 多余, 1 未下载, 1 检测未通过")
    assert line.endswith("the batch does NOT close")
    assert "重复" not in line  # zero counts are left out


def test_a_clean_batch_closes() -> None:
    result = build([part("demo", ledger(R1, R2), inventory(item(R1), item(R2)))], facts())
    assert result.closes and result.sheets.closes
    assert measures(result)["批次是否闭合 Batch closes"] == "是 Y"
    assert result.line() == "reconciled 2 rows: 2 一致; the batch closes"
    assert result.sheets.discrepancies.empty


# -- reviews --------------------------------------------------------------------------------


def test_an_applied_ignore_on_the_same_finding_closes_the_row_and_the_batch() -> None:
    decided = reviews(review("R3", Result.MISSING.value, note="withdrawn by the records office"))
    result = build([part("demo", ledger(R1, R3), inventory(item(R1)), reviews=decided)], facts())
    rows = result.rows.set_index("key")
    assert rows.loc["R3", "result"] == Result.MISSING and bool(rows.loc["R3", "closed"])
    assert rows.loc["R3", "owner"] == "王芳"
    assert "withdrawn by the records office" in rows.loc["R3", "note"]
    assert rows.loc["R3", "note"].startswith("ignore (王芳 2026-11-22)")
    assert not bool(rows.loc["R1", "closed"]) and pd.isna(rows.loc["R1", "note"])
    assert result.closes and "the batch closes" in result.line()
    got = measures(result)
    assert got["经审核关闭 Closed by review"] == 1
    assert got["批次是否闭合 Batch closes"] == "是 Y"
    (line,) = result.sheets.discrepancies.to_dict("records")
    assert line["items"] == 1
    assert line["resolution"].startswith("1 closed by review; 0 open: ")


def test_an_ignore_of_another_finding_does_not_close_the_row() -> None:
    """Ignored as 摘要不符 once; it now reads 缺失: open again."""
    decided = reviews(review("R3", Result.DIGEST_MISMATCH.value))
    result = build([part("demo", ledger(R1, R3), inventory(item(R1)), reviews=decided)], facts())
    rows = result.rows.set_index("key")
    assert rows.loc["R3", "result"] == Result.MISSING
    assert not bool(rows.loc["R3", "closed"])
    assert pd.isna(rows.loc["R3", "owner"]) and pd.isna(rows.loc["R3", "note"])
    assert not result.closes
    assert "does NOT close" in result.line()
    (line,) = result.sheets.discrepancies.to_dict("records")
    assert line["resolution"].startswith("1 open: ")


def test_a_recapture_decision_does_not_close_the_row() -> None:
    decided = reviews(review("R3", Result.MISSING.value, action="recapture"))
    result = build([part("demo", ledger(R1, R3), inventory(item(R1)), reviews=decided)], facts())
    rows = result.rows.set_index("key")
    assert not bool(rows.loc["R3", "closed"]) and not result.closes
    assert rows.loc["R3", "note"].startswith("recapture (王芳 2026-11-22)")


def test_the_latest_decision_on_a_key_stands() -> None:
    decided = reviews(
        review("R3", Result.MISSING.value),
        review("R3", Result.MISSING.value, action="recapture", note="asked again"),
    )
    result = build([part("demo", ledger(R1, R3), inventory(item(R1)), reviews=decided)], facts())
    assert not result.closes
    assert "asked again" in result.rows.set_index("key").loc["R3", "note"]


# -- several recipes --------------------------------------------------------------------------


def test_a_stray_item_two_recipes_see_is_listed_once() -> None:
    """Two recipes sharing one archive: each inventory shows the same stray item."""
    shared = inventory(stray(EXTRA))
    a = part("a", ledger(doc("R1", 1, state="listed")), shared)
    b = part("b", ledger(doc("S1", 2, state="listed")), shared)
    result = build([a, b], facts())
    extras = result.rows.loc[result.rows["result"].eq(Result.EXTRA.value)]
    assert extras["archive_id"].tolist() == [EXTRA]
    assert result.counts[Result.EXTRA] == 1
    assert result.sheets.receipt["archive_id"].tolist() == [EXTRA]
    assert set(result.rows["recipe"]) == {"a", "b"}


def test_two_recipes_sharing_an_archive_do_not_call_each_others_items_extra() -> None:
    """Both recipes in one reconciliation: each one's archived documents are in the other's
    inventory too, and they are not 多余 (the command leaves them out of claimed_elsewhere,
    which names the documents *outside* this reconciliation)."""
    r1, s1 = doc("R1", 1), doc("S1", 2)
    shared = inventory(item(r1), item(s1), stray(EXTRA))
    result = build([part("a", ledger(r1), shared), part("b", ledger(s1), shared)], facts())
    names = result.rows["recipe"] + "/" + result.rows["key"]
    found = dict(zip(names, result.rows["result"], strict=True))
    assert found == {"a/R1": Result.MATCH, "b/S1": Result.MATCH, f"a/{EXTRA}": Result.EXTRA}


def test_two_recipes_sharing_an_archive_each_receive_their_own_items() -> None:
    r1, s1 = doc("R1", 1), doc("S1", 2)
    shared = inventory(item(r1), item(s1))
    result = build([part("a", ledger(r1), shared), part("b", ledger(s1), shared)], facts())
    receipt = result.sheets.receipt
    assert dict(zip(receipt["archive_id"], receipt["recipe"], strict=True)) == {
        r1["archive_id"]: "a",
        s1["archive_id"]: "b",
    }


# -- empty inputs and the workbook ------------------------------------------------------------


def test_no_checks_and_no_sightings_still_build_and_write(tmp_path: Path) -> None:
    result = build([part("demo", ledger(R1, R5), inventory(item(R1)))], facts())
    assert result.sheets.checks.empty and result.sheets.listing.empty
    assert by_key(result.rows) == {"R1": Result.MATCH, "R5": Result.NOT_DOWNLOADED}
    path = tmp_path / "empty.xlsx"
    write_workbook(result.sheets, path, title="empty", timezone="Asia/Shanghai")
    book = load_workbook(path, read_only=True)
    try:
        assert book.sheetnames == [name for _, name in SHEET_NAMES]
    finally:
        book.close()


def test_written_workbook_names_check_and_listing_columns(
    built: Reconciliation, tmp_path: Path
) -> None:
    path = tmp_path / "对账.xlsx"
    write_workbook(built.sheets, path, title="核对 test", timezone="Asia/Shanghai")
    book = load_workbook(path)
    checks = book["四性检测 Checks"]
    zh = [c.value for c in checks[1]]
    en = [c.value for c in checks[2]]
    for name in ("reference_code_check", "opens", "virus_scan", "failed"):
        assert COLUMNS[name][0] in zh and COLUMNS[name][1] in en, name
    assert zh.index("档号规则") == en.index("reference_code")  # the check, not the code
    assert zh.index("档号") == en.index("Reference code")
    listing = book["源清单 Listing"]
    assert [c.value for c in listing[1]][4:6] == ["清单·id", "清单·period"]
    assert [c.value for c in listing[2]][4:6] == ["Listing: id", "Listing: period"]
    recon = book["核对 Reconciliation"]
    assert [c.value for c in recon[2]][-4:] == ["Closed", "Action", "Owner", "Note"]


def test_sightings_and_checks_of_documents_outside_the_batch_are_left_out() -> None:
    """With --since the ledger frame holds fewer documents than the sightings and checks
    tables: the listing and checks sheets follow the batch, not the tables."""
    only_r2 = part("demo", ledger(R2), inventory(item(R2)), sightings=sightings(), checks=checks())
    result = build([only_r2], facts(frozenset()))
    assert result.sheets.listing["source_id"].tolist() == ["R2"]
    assert result.sheets.checks.empty  # R2 had no checks recorded; R1's and R4's are out
