"""The xlsx writer: 概要 Summary, 运行 Runs and 事件 Events sheets, bilingual headers.

The workbook has no zones: times are written as real datetimes, naive in this machine's
zone, and the summary sheet says which zone. Text is always text (never a formula or an
error code: ``bots.cells``), cut at Excel's limit; run ids in the events sheet link to the
run's row.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from .. import __version__
from ..cells import formula_like
from ..timezones import local_zone
from .atomic import write_atomically
from .gather import AuditReport
from .views import (
    EVENT_COLUMNS,
    INDEX_HEAD_NOTE,
    NO_INDEX,
    RUN_COLUMNS,
    _Cell,
    _Column,
    _Line,
    _Row,
    _Views,
    _views,
)

SUMMARY_SHEET, RUNS_SHEET, EVENTS_SHEET = "概要 Summary", "运行 Runs", "事件 Events"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
MAX_TEXT = 32_767  # characters Excel keeps in a cell

GREEN, RED, ORANGE = "C6EFCE", "FFC7CE", "FFE5B4"
TONES = {"ok": GREEN, "bad": RED, "warn": ORANGE}
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
HEADER_FILL_EN = PatternFill("solid", fgColor="EEF4FB")
LINK_FONT = Font(color="0563C1", underline="single")
WRAP = Alignment(wrap_text=True, vertical="top")


def write_xlsx(report: AuditReport, path: Path) -> None:
    """Summary, runs and events sheets; times as real datetimes, naive in the local zone."""
    path = Path(path)
    views = _views(report, path.parent.resolve(), local_zone())
    wb = Workbook()
    wb.properties.title = "审计报告 Audit report"
    summary = wb.active
    assert isinstance(summary, Worksheet)
    summary.title = SUMMARY_SHEET
    _summary_sheet(summary, views)
    run_rows = _table_sheet(wb.create_sheet(RUNS_SHEET), RUN_COLUMNS, views.runs, {})
    events = [row for day in views.events for row in day.rows]
    _table_sheet(wb.create_sheet(EVENTS_SHEET), EVENT_COLUMNS, events, run_rows)
    write_atomically(path, wb.save)


def _summary_sheet(ws: Worksheet, v: _Views) -> None:
    ws.append(["审计报告 Audit report"])
    ws["A1"].font = Font(bold=True, size=14)
    _header_rows(ws, (_Column("项目", "Item", 40), _Column("值", "Value", 90)), first=2)
    lines = [
        _Line("期间起 Period from", when=v.since),
        _Line("期间止（不含）Period until (exclusive)", "至今 up to now", when=v.until),
        _Line("生成时间 Generated at", when=v.generated_at),
        _Line("时间按时区 Times are in", v.zone_name),
        _Line("日志状态 Logs status", v.logs_line, tone="ok" if v.logs_ok else "bad"),
        *(_Line("问题 Problem", p, tone="bad") for p in v.problems),
        *(_Line("提示 Warning", w, tone="warn") for w in v.warnings),
        _Line(INDEX_HEAD_NOTE, v.index_head or NO_INDEX),
        *v.facts,
        _Line("程序 Made by", f"rpa-fleet {__version__}"),
    ]
    for line in lines:
        row = ws.max_row + 1
        label = ws.cell(row, 1, line.label)
        label.alignment = WRAP
        if line.when is not None:
            value = ws.cell(row, 2, line.when.replace(tzinfo=None))
            value.number_format = DATETIME_FORMAT
        else:
            value = _text_cell(ws, row, 2, line.value)
        value.alignment = Alignment(wrap_text=True, vertical="top", horizontal="left")
        if line.tone:
            fill = PatternFill("solid", fgColor=TONES[line.tone])
            label.fill = value.fill = fill
            label.font = value.font = Font(bold=True)
    ws.column_dimensions["A"].width = 44
    ws.column_dimensions["B"].width = 90
    ws.freeze_panes = "A4"
    _print_setup(ws, landscape=False)


def _table_sheet(
    ws: Worksheet, columns: Sequence[_Column], rows: Sequence[_Row], run_rows: dict[str, int]
) -> dict[str, int]:
    """Two header rows, then the rows; returns each anchored row's sheet row number."""
    _header_rows(ws, columns, first=1)
    placed: dict[str, int] = {}
    for number, row in enumerate(rows, start=3):
        if row.anchor:
            placed[row.anchor] = number
        for col, cell in enumerate(row.cells, start=1):
            _write_cell(ws, number, col, cell, run_rows)
    last = get_column_letter(len(columns))
    ws.auto_filter.ref = f"A2:{last}{max(ws.max_row, 2)}"
    ws.freeze_panes = "B3"  # the header rows and the first column stay in view
    for col, column in enumerate(columns, start=1):
        texts = [column.zh, column.en, *(r.cells[col - 1].flat for r in rows[:500])]
        width = max(_width(t) for t in texts) + 2
        ws.column_dimensions[get_column_letter(col)].width = min(max(width, 8), column.width)
    _print_setup(ws, landscape=True)
    return placed


def _header_rows(ws: Worksheet, columns: Sequence[_Column], *, first: int) -> None:
    """Chinese on row ``first``, English below it; both repeat on every printed page."""
    for row, texts, fill in (
        (first, [c.zh for c in columns], HEADER_FILL),
        (first + 1, [c.en for c in columns], HEADER_FILL_EN),
    ):
        for col, text in enumerate(texts, start=1):
            cell = ws.cell(row, col, text)
            cell.fill = fill
            cell.font = Font(bold=row == first)
    ws.print_title_rows = f"{first}:{first + 1}"


def _write_cell(ws: Worksheet, row: int, col: int, cell: _Cell, run_rows: dict[str, int]) -> None:
    if cell.when is not None:
        target = ws.cell(row, col, cell.when.replace(tzinfo=None))
        target.number_format = DATETIME_FORMAT
    else:
        target = _text_cell(ws, row, col, cell.flat)
    if cell.href and cell.href.startswith("#"):
        at = run_rows.get(cell.href[1:])
        if at is not None:
            target.hyperlink = Hyperlink(ref="", location=f"'{RUNS_SHEET}'!A{at}")
            target.font = LINK_FONT
    elif cell.href:
        target.hyperlink = Hyperlink(ref="", target=cell.href)
        target.font = LINK_FONT
    if cell.tone:
        target.fill = PatternFill("solid", fgColor=TONES[cell.tone])
    target.alignment = WRAP


def _text_cell(ws: Worksheet, row: int, col: int, text: str) -> Cell:
    """Text as text: never a formula or an error code, whatever the source page said.

    What a spreadsheet could take for a formula (``bots.cells``) is a string cell, never
    evaluated, kept exactly as said, with Excel's mark of a typed apostrophe (quotePrefix)
    so that editing the cell keeps it text."""
    clean = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)[:MAX_TEXT]
    cell = ws.cell(row, col, clean if clean else None)
    assert isinstance(cell, Cell)
    if cell.data_type in ("f", "e"):
        cell.data_type = "s"
    if formula_like(clean):
        cell.quotePrefix = True
    return cell


def _width(text: str) -> int:
    """Columns a text takes: CJK characters are two wide."""
    longest = max(text.split("\n"), key=len) if text else ""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in longest)


def _print_setup(ws: Worksheet, *, landscape: bool) -> None:
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
