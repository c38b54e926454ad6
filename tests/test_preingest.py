"""Before upload: metadata from the listing and from inside the file, and every check."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from pathlib import Path

import openpyxl

from bots.archival.checks import Outcome
from bots.archival.preingest import prepare
from bots.ledger import Document, State
from bots.recipe import load_recipe
from sims.erp import documents
from sims.erp.documents import PdfTable
from tests.conftest import DEMO_RECIPE

TODAY = dt.date(2026, 11, 21)
CONTEXT = {"env": {}, "today": TODAY.isoformat(), "now": "", "vars": {}}


def pdf(title: str, pages: int) -> bytes:
    table = PdfTable("利润表", ["项目", "金额"], [["营业收入", "1.00"]], [2.0, 2.0])
    return documents.pdf_bytes(
        title=title,
        meta_line="编制单位：华北机电设备有限公司    部门：财务部    报表日期：2025-02-03",
        author="财务部",
        pages=[table] * pages,
    )


def staged(tmp_path: Path, name: str, data: bytes, **listing: str) -> Document:
    path = tmp_path / name
    path.write_bytes(data)
    row = {
        "id": "R000042",
        "title": "2025年1月月度财务报表",
        "kind": "月度财务报表",
        "department": "财务部",
        "date": "2025-02-03",
        "size": f"{len(data):,}",
        "href": None,
        **listing,
    }
    return Document(
        recipe="demo",
        source_key="R000042",
        state=State.DOWNLOADED,
        title=row["title"],
        listing=row,
        filename=name,
        staged_path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        item_metadata=None,
        archive_id=None,
        reference_code=None,
        attempts=1,
        last_error=None,
        source_filename=name,
    )


def outcomes(checks: list) -> dict[str, Outcome]:  # type: ignore[type-arg]
    return {c.name: c.outcome for c in checks}


def test_pdf_fills_pages_and_author_from_its_content(tmp_path: Path) -> None:
    doc = staged(tmp_path, "report.pdf", pdf("2025年1月月度财务报表", 4))
    prepared = prepare(doc, load_recipe(DEMO_RECIPE), CONTEXT, TODAY)
    assert prepared.failed == []
    assert prepared.metadata["pages"] == "4"
    assert prepared.metadata["author"] == "财务部"  # 部门：财务部 on the first page
    assert prepared.metadata["retention"] == "D10" and prepared.metadata["department"] == "CWB"
    assert outcomes(prepared.checks)["size_matches_listing"] is Outcome.PASS


def test_title_comes_from_the_file_when_the_listing_has_none(tmp_path: Path) -> None:
    doc = staged(tmp_path, "report.pdf", pdf("2025年1月月度财务报表（修订）", 1), title="")
    prepared = prepare(doc, load_recipe(DEMO_RECIPE), CONTEXT, TODAY)
    assert prepared.metadata["title"] == "2025年1月月度财务报表（修订）"


def test_xlsx_header_cell_is_offered_to_templates(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A1"] = "资金日报表"
    sheet["A2"] = "部门：财务部"
    buffer = io.BytesIO()
    book.save(buffer)
    doc = staged(tmp_path, "fund.xlsx", buffer.getvalue(), kind="资金日报表", title="")
    prepared = prepare(doc, load_recipe(DEMO_RECIPE), CONTEXT, TODAY)
    assert prepared.failed == []
    assert prepared.report.cells["A1"] == "资金日报表"
    assert prepared.metadata["title"] == "资金日报表"  # the file's own title cell
    assert prepared.metadata["pages"] == ""  # a workbook has no pages to count


def test_uncovered_report_fails_and_gets_no_metadata(tmp_path: Path) -> None:
    doc = staged(tmp_path, "report.pdf", pdf("工资表", 1), kind="工资表")
    prepared = prepare(doc, load_recipe(DEMO_RECIPE), CONTEXT, TODAY)
    [failed] = prepared.failed
    assert failed.name == "retention_schedule" and "no rule" in failed.reason
    assert prepared.metadata == {}


def test_a_file_changed_after_download_and_a_wrong_listed_size_fail(tmp_path: Path) -> None:
    doc = staged(tmp_path, "report.pdf", pdf("2025年1月月度财务报表", 2), size="1,234")
    Path(doc.staged_path or "").write_bytes(pdf("2025年1月月度财务报表", 3))
    prepared = prepare(doc, load_recipe(DEMO_RECIPE), CONTEXT, TODAY)
    failed = {c.name: c.reason for c in prepared.failed}
    assert "not the" in failed["digest_unchanged"]
    assert "the listing shows 1234" in failed["size_matches_listing"]
