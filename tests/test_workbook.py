"""The reconciliation workbook: sheets, headers, panes, filters, dates, colours, validation,
and that LibreOffice opens it (headless xlsx -> pdf) with both languages' headers in it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from openpyxl.styles.numbers import is_date_format
from openpyxl.workbook.workbook import Workbook

from bots.reconcile.classify import OUTPUT_COLUMNS, RESULT_ENGLISH, Result
from bots.reconcile.columns import COLUMNS, SHEET_NAMES, headers
from bots.reconcile.workbook import RESULT_FILLS, Sheets, write_workbook
from tests.office import to_pdf

CST = "Asia/Shanghai"
INGESTED = pd.Timestamp("2026-11-21T02:00:00+08:00")
NAMES = [name for _, name in SHEET_NAMES]


def reconciliation() -> pd.DataFrame:
    """classify()'s columns, one row per result code."""
    rows = []
    for n, code in enumerate(Result):
        archived = code not in (Result.MISSING, Result.NOT_DOWNLOADED, Result.REJECTED)
        rows.append(
            {
                "key": f"R{n:07d}",
                "archive_id": f"A{n:07d}",
                "reference_code": f"Z109-KU·2025-D10-CWB-{n + 1:04d}",
                "title": f"2025年{n + 1}月资金日报表",
                "listed": code is not Result.EXTRA,
                "downloaded": code not in (Result.NOT_DOWNLOADED, Result.EXTRA),
                "archived": archived,
                "digest_match": (code is not Result.DIGEST_MISMATCH) if archived else pd.NA,
                "metadata_match": (code is not Result.METADATA_MISMATCH) if archived else pd.NA,
                "result": code.value,
                "result_en": RESULT_ENGLISH[code],
                "detail": "" if code is Result.MATCH else f"why {code.name.lower()}",
            }
        )
    frame = pd.DataFrame(rows)
    assert tuple(frame.columns) == OUTPUT_COLUMNS
    return frame


def make_sheets(closes: bool = False) -> Sheets:
    keys = [f"R{n:07d}" for n in range(4)]
    return Sheets(
        batch=pd.DataFrame(
            {
                "measure": ["batch id", "expected count", "expected bytes", "written at"],
                "value": ["B-2026-11-21", 4, 1_234_567, INGESTED],
            }
        ),
        listing=pd.DataFrame(
            {
                "source_id": keys,
                "title": ["资金日报表", '=HYPERLINK("x")', " padded ", "bell\x07title"],
                "period": ["2025-01", "2025-02", "2025-03", None],
                "url": [f"http://erp.example/reports/{k}" for k in keys],
                "listed_at": pd.to_datetime(
                    ["2026-11-21T01:00:00+08:00"] * 3 + [None], utc=True
                ).tz_convert(CST),
            }
        ),
        downloads=pd.DataFrame(
            {
                "source_id": keys,
                "file_name": [f"{k}.pdf" for k in keys],
                "bytes": [284113, 1000, 2000, 3000],
                "sha256": ["ab" * 32] * 4,
                "downloaded_at": pd.Timestamp("2026-11-21T01:05:00+08:00"),
                "http_status": 200,
                "format": "PDF 1.7",
            }
        ),
        catalogue=pd.DataFrame(
            {
                "seq": [1, 2],
                "reference_code": ["Z109-WS·2024-D10-CWB-0001", "Z109-WS·2024-D10-CWB-0002"],
                "document_number": [None, "财〔2024〕3号"],
                "author": "财务部",
                "title": ["2024年3月资金日报表", "[2024年4月资金日报表]"],
                "date": ["20240331", "20240430"],
                "classification": ["内部", None],
                "pages": [12, 3],
                "remarks": None,
                "retention": "D10",
                "department": "CWB",
            }
        ),
        receipt=pd.DataFrame(
            {
                "archive_id": ["A0000000", "A0000001"],
                "reference_code": ["Z109-WS·2024-D10-CWB-0001", "Z109-WS·2024-D10-CWB-0002"],
                "archive_sha256": ["ab" * 32, None],
                "ingested_at": [INGESTED, INGESTED],
            }
        ),
        reconciliation=reconciliation(),
        checks=pd.DataFrame(
            {
                "key": keys[:2],
                "property": ["真实性 authenticity", "可用性 usability"],
                "check": ["digest at download = archive", "opens as PDF"],
                "outcome": ["pass", "fail"],
                "reason": [None, "#N/A"],
            }
        ),
        discrepancies=pd.DataFrame(
            {
                "issue": ["缺失 missing in archive"],
                "items": [1],
                "cause": ["upload timed out"],
                "resolution": [None],
                "ticket": ["OPS-17"],  # a column COLUMNS does not know
            }
        ),
        closes=closes,
    )


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("book") / "对账 reconciliation.xlsx"
    write_workbook(make_sheets(), path, title="B-2026-11-21 核对", timezone=CST)
    return path


@pytest.fixture(scope="module")
def wb(book: Path) -> Workbook:
    return load_workbook(book)


def rows(ws: object, first: int, last: int) -> list[list[object]]:
    return [[c.value for c in row] for row in ws.iter_rows(min_row=first, max_row=last)]  # type: ignore[attr-defined]


def test_every_column_named_has_both_headers() -> None:
    sheets = make_sheets()
    for attribute, _ in SHEET_NAMES:
        for column in getattr(sheets, attribute).columns:
            if column != "ticket":
                assert column in COLUMNS, column
    for column in (*OUTPUT_COLUMNS, "action", "owner", "note"):
        assert column in COLUMNS
    assert headers("ticket") == ("ticket", "ticket")


def test_sheets_in_order_with_bilingual_names(wb: Workbook, book: Path) -> None:
    assert wb.sheetnames == NAMES
    assert NAMES[0] == "批次 Batch" and NAMES[5] == "核对 Reconciliation"
    for name in NAMES:
        assert len(name) <= 31 and not set(name) & set("[]:*?/\\")
    assert wb.properties.title == "B-2026-11-21 核对"
    assert [p.name for p in book.parent.iterdir()] == [book.name]  # no temporary file left


def test_two_header_rows_bold_filled(wb: Workbook) -> None:
    ws = wb["核对 Reconciliation"]
    names = [*OUTPUT_COLUMNS, "action", "owner", "note"]
    assert rows(ws, 1, 2) == [[COLUMNS[n][0] for n in names], [COLUMNS[n][1] for n in names]]
    for cell in (*ws[1], *ws[2]):
        assert cell.font.b and cell.fill.fill_type == "solid"
    catalogue = wb["归档文件目录 Catalogue"]
    assert rows(catalogue, 1, 1)[0] == [
        "序号", "档号", "文号", "责任者", "题名", "日期", "密级", "页数", "备注", "保管期限", "机构"
    ]  # fmt: skip
    assert rows(wb["差异台账 Discrepancies"], 1, 2)[0][-1] == "ticket"


def test_panes_frozen_below_headers_and_filters_over_data(wb: Workbook) -> None:
    assert wb["核对 Reconciliation"].freeze_panes == "B3"  # wide: key column stays
    assert wb["归档文件目录 Catalogue"].freeze_panes == "B3"
    assert wb["源清单 Listing"].freeze_panes == "A3"
    assert wb["核对 Reconciliation"].auto_filter.ref == f"A2:O{len(Result) + 2}"
    assert wb["源清单 Listing"].auto_filter.ref == "A2:E6"
    assert wb["入库回执 Receipt"].auto_filter.ref == "A2:D4"
    for ws in wb.worksheets[1:]:
        assert ws.print_title_rows == "$1:$2"


def test_column_widths_count_cjk_double_and_are_capped(wb: Workbook) -> None:
    ws = wb["归档文件目录 Catalogue"]
    title = ws.column_dimensions["E"].width  # 题名: "[2024年4月资金日报表]" = 20 wide
    assert 20 <= title <= 26
    downloads = wb["下载登记 Downloads"]
    assert downloads.column_dimensions["D"].width == 66  # a whole SHA-256, not more
    listing = wb["源清单 Listing"]
    assert 19 <= listing.column_dimensions["E"].width <= 23  # yyyy-mm-dd hh:mm:ss


def test_times_are_real_excel_dates_in_the_chosen_zone(wb: Workbook, tmp_path: Path) -> None:
    cell = wb["入库回执 Receipt"]["D3"]
    assert cell.value == datetime(2026, 11, 21, 2, 0) and cell.is_date
    assert is_date_format(cell.number_format) and "hh:mm" in cell.number_format
    listing = wb["源清单 Listing"]
    assert listing["E3"].value == datetime(2026, 11, 21, 1, 0)
    assert listing["E6"].value is None  # NaT: an empty cell
    assert wb["批次 Batch"]["B9"].value == datetime(2026, 11, 21, 2, 0)
    assert wb["批次 Batch"]["B3"].value == "Asia/Shanghai (UTC+08:00)"

    utc = tmp_path / "utc.xlsx"
    write_workbook(make_sheets(), utc, title="utc", timezone="UTC")
    assert load_workbook(utc)["入库回执 Receipt"]["D3"].value == datetime(2026, 11, 20, 18, 0)


def test_dates_only_get_a_date_format(tmp_path: Path) -> None:
    sheets = make_sheets()
    sheets.receipt["ingested_at"] = pd.to_datetime(["2026-11-21", "1900-01-15"])
    path = tmp_path / "d.xlsx"
    write_workbook(sheets, path, title="d", timezone=CST)
    ws = load_workbook(path)["入库回执 Receipt"]
    assert ws["D3"].value == datetime(2026, 11, 21) and ws["D3"].number_format == "yyyy-mm-dd"
    assert ws["D4"].value == datetime(1900, 1, 15)  # before Excel's phantom 1900-02-29


def test_booleans_read_yes_no_and_na_is_empty(wb: Workbook) -> None:
    ws = wb["核对 Reconciliation"]
    by_code = {row[9]: row for row in rows(ws, 3, ws.max_row)}
    assert by_code["一致"][4:9] == ["是 Y"] * 5
    assert by_code["一致"][11] is None  # '' detail: empty
    assert by_code["缺失"][6:9] == ["否 N", None, None]
    assert by_code["摘要不符"][7:9] == ["否 N", "是 Y"]
    assert by_code["多余"][4] == "否 N"
    catalogue = wb["归档文件目录 Catalogue"]
    assert catalogue["C3"].value is None and catalogue["C4"].value == "财〔2024〕3号"
    assert catalogue["F3"].value == "20240331"  # DA/T 22 date: 8-digit text
    assert catalogue["H3"].value == 12


def test_text_stays_text(wb: Workbook) -> None:
    listing = wb["源清单 Listing"]
    assert listing["B4"].value == '=HYPERLINK("x")' and listing["B4"].data_type == "s"
    assert listing["B5"].value == " padded "
    assert listing["B6"].value == "belltitle"  # control characters XML cannot hold: dropped
    assert wb["四性检测 Checks"]["E4"].value == "#N/A"
    assert wb["四性检测 Checks"]["E4"].data_type == "s"


def test_results_coloured_by_code(wb: Workbook) -> None:
    ws = wb["核对 Reconciliation"]
    seen = {}
    for row in ws.iter_rows(min_row=3, min_col=10, max_col=10):
        seen[row[0].value] = row[0].fill.fgColor.rgb[-6:]
    assert seen == RESULT_FILLS
    assert seen["一致"] == "C6EFCE" and seen["缺失"] == seen["摘要不符"] == seen["重复"]
    assert seen["多余"] == seen["元数据不符"] != seen["缺失"]
    assert seen["未下载"] == seen["检测未通过"] == "D9D9D9"
    assert ws["K3"].fill.fill_type is None  # only the result column is coloured


def test_action_column_offers_recapture_or_ignore_and_review_columns_are_empty(
    wb: Workbook,
) -> None:
    ws = wb["核对 Reconciliation"]
    (dv,) = ws.data_validations.dataValidation
    assert dv.type == "list" and dv.formula1 == '"recapture,ignore"' and dv.allow_blank
    assert str(dv.sqref) == f"M3:M{len(Result) + 2}"
    assert ws["M1"].value == "处理" and ws["N2"].value == "Owner" and ws["O1"].value == "备注"
    assert all(v is None for row in rows(ws, 3, ws.max_row) for v in row[12:15])


@pytest.mark.parametrize(
    ("closes", "text", "colour"), [(True, "是 Y", "C6EFCE"), (False, "否 N", "FFC7CE")]
)
def test_batch_sheet_says_whether_the_batch_closes(
    tmp_path: Path, closes: bool, text: str, colour: str
) -> None:
    path = tmp_path / "b.xlsx"
    write_workbook(make_sheets(closes), path, title="批次 B-1", timezone=CST)
    ws = load_workbook(path)["批次 Batch"]
    assert ws["A1"].value == "批次 B-1"
    assert (ws["A2"].value, ws["B2"].value) == ("批次是否闭合 Batch closes", text)
    assert ws["B2"].fill.fgColor.rgb[-6:] == colour and ws["B2"].font.b
    assert rows(ws, 4, 6) == [["项目", "值"], ["Measure", "Value"], ["batch id", "B-2026-11-21"]]
    assert ws.freeze_panes == "A6" and ws.auto_filter.ref == "A5:B9"


def test_empty_frames_still_get_headers_and_a_valid_book(tmp_path: Path) -> None:
    sheets = make_sheets()
    sheets.reconciliation = reconciliation().iloc[0:0]
    sheets.checks = pd.DataFrame(columns=["key", "property", "check", "outcome", "reason"])
    path = tmp_path / "e.xlsx"
    write_workbook(sheets, path, title="empty", timezone=CST)
    wb = load_workbook(path)
    ws = wb["核对 Reconciliation"]
    assert ws.max_row == 2 and ws.auto_filter.ref == "A2:O2"
    assert str(ws.data_validations.dataValidation[0].sqref) == "M3"
    assert wb["四性检测 Checks"]["A2"].value == "Key"


def test_many_rows_stream_with_every_kind_of_value(tmp_path: Path) -> None:
    n = 5000
    frame = pd.concat([reconciliation()] * (n // len(Result)), ignore_index=True)
    sheets = make_sheets()
    sheets.reconciliation = frame
    sheets.checks = pd.DataFrame(
        {
            "key": [f"R{i:07d}" for i in range(n)],
            "property": pd.Categorical(["真实性"] * n),
            "check": np.where(np.arange(n) % 2 == 0, "digest", None),
            "outcome": pd.array([True, False, None, True] * (n // 4), dtype="boolean"),
            "reason": pd.array([1.5, np.nan, np.inf, 2.0] * (n // 4)),
        }
    )
    path = tmp_path / "m.xlsx"
    write_workbook(sheets, path, title="many", timezone=CST)
    wb = load_workbook(path, read_only=True)
    ws = wb["核对 Reconciliation"]
    assert ws.max_row == n + 2
    checks = rows(wb["四性检测 Checks"], 3, 6)
    assert checks == [
        ["R0000000", "真实性", "digest", "是 Y", 1.5],
        ["R0000001", "真实性", None, "否 N", None],
        ["R0000002", "真实性", "digest", None, None],
        ["R0000003", "真实性", None, "是 Y", 2],
    ]
    wb.close()


def test_libreoffice_opens_it_and_prints_both_languages(book: Path, tmp_path: Path) -> None:
    """Headless conversion to PDF: LibreOffice must load the book (a file it would want to
    repair fails to convert) and print the headers in Chinese and English."""
    pages = to_pdf(book, tmp_path)
    assert len(pages) >= len(NAMES)
    text = "\n".join(pages)
    for expected in (
        "批次是否闭合 Batch closes",
        "核对结果",
        "Result",
        "档号",
        "Reference code",
        "题名",
        "Digest reported by archive",
        "一致",
        "2026-11-21 02:00:00",
        "Z109-WS·2024-D10-CWB-0001",
    ):
        assert expected in text, expected


def test_default_zone_is_this_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    path = tmp_path / "z.xlsx"
    write_workbook(make_sheets(), path, title="z")
    wb = load_workbook(path)
    assert wb["批次 Batch"]["B3"].value == "Asia/Shanghai (UTC+08:00)"
    assert wb["入库回执 Receipt"]["D3"].value == datetime(2026, 11, 21, 2, 0)


def test_nothing_a_spreadsheet_could_take_for_a_formula_is_one(tmp_path: Path) -> None:
    """Issue 12: '=', '+', '-', '@', a leading tab are text cells, kept as said and marked as
    typed with an apostrophe; negative numbers stay numbers, plain text stays unmarked."""
    hostile = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"]
    sheets = make_sheets()
    sheets.listing = pd.DataFrame(
        {"source_id": [f"R{n}" for n in range(6)], "title": [*hostile, "资金日报表"]}
    )
    sheets.downloads = pd.DataFrame({"source_id": ["R0", "R1"], "bytes": [-3, 5]})
    sheets.discrepancies = pd.DataFrame({"issue": ["+1+1", "-2"], "items": [-1, 2.5]})
    path = tmp_path / "h.xlsx"
    write_workbook(sheets, path, title="=1+1", timezone=CST)
    book = load_workbook(path)

    listing = book["源清单 Listing"]
    titles = [row[1] for row in listing.iter_rows(min_row=3)]
    for cell, text in zip(titles, hostile, strict=False):
        assert (cell.value, cell.data_type, cell.quotePrefix) == (text, "s", True), text
    assert (titles[-1].value, titles[-1].quotePrefix) == ("资金日报表", False)
    assert [c.value for c in book["下载登记 Downloads"]["B"][2:]] == [-3, 5]
    assert book["下载登记 Downloads"]["B3"].data_type == "n"
    mixed = book["差异台账 Discrepancies"]
    assert [(c.value, c.data_type) for c in mixed[3][:2]] == [("+1+1", "s"), (-1, "n")]
    assert mixed["A3"].quotePrefix and not mixed["A4"].quotePrefix  # '-2' is a number's text
    assert book["批次 Batch"]["A1"].value == "=1+1"
    assert book["批次 Batch"]["A1"].data_type == "s"
