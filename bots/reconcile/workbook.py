"""The reconciliation workbook archivists sign off: one sheet per source of truth, bilingual.

Sheets, in order: 批次 Batch (summary and whether the batch closes), 源清单 Listing,
下载登记 Downloads, 归档文件目录 Catalogue, 入库回执 Receipt, 核对 Reconciliation,
四性检测 Checks, 差异台账 Discrepancies (see ARCHIVAL.md, "Reconciliation").

Each sheet has two header rows (Chinese, then English), frozen, with an autofilter over the
data. Callers hand over DataFrames with snake_case columns; ``columns.COLUMNS`` names them.

Speed and memory: openpyxl's write-only mode streams every sheet to its own temporary file
(strings go inline, so no shared-string table grows), one sheet at a time. Values are prepared
column-wise (NA, booleans, dates as Excel serials, text that could be taken for a formula or
an error code: ``bots.cells``) and rows are zipped from the column lists; ``_SheetWriter``
writes them with lxml, a row at a time, about twice as fast as
openpyxl's per-cell path (101,000 reconciliation rows in about 4 s, the bench's whole book of
~600,000 rows in about 16 s: bench/reconcile.py). Write-only mode writes the sheet view and
the column widths before the rows, so freeze panes and widths are set first; the autofilter
and the data validation go out when the sheet closes. openpyxl is pinned (pyproject.toml);
``_SheetWriter`` leans on its ``WorksheetWriter`` and ``_set_attributes``, which
tests/test_workbook.py exercises.
"""

from __future__ import annotations

import contextlib
import math
import os
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from itertools import chain
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from lxml.etree import Element, SubElement, xmlfile
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell._writer import _set_attributes
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.compat import safe_string
from openpyxl.styles import Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.dimensions import SheetDimension
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.xml.constants import SHEET_MAIN_NS, XML_NS

from bots.cells import TRIGGERS, formula_like
from bots.reconcile.classify import Result
from bots.reconcile.columns import ACTIONS, NO, REVIEW_COLUMNS, SHEET_NAMES, YES, headers
from bots.timezones import local_zone, zone_name

DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
MIN_WIDTH, MAX_WIDTH = 6, 66  # 66: a SHA-256 hex digest still shows whole
WIDTH_SAMPLE = 500  # values per column looked at to size it
WIDE_SHEET = 7  # columns from which the first column is frozen too
MIN_WIDTHS = {"measure": 36, "value": 20, "action": 12, "owner": 12, "note": 30}  # room to type
MAX_TEXT = 32_767  # characters Excel keeps in a cell
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
XML_SPACE = f"{{{XML_NS}}}space"

GREEN, RED, ORANGE, GREY = "C6EFCE", "FFC7CE", "FFD8A8", "D9D9D9"
RESULT_FILLS: dict[str, str] = {
    Result.MATCH.value: GREEN,
    Result.MISSING.value: RED,
    Result.DIGEST_MISMATCH.value: RED,
    Result.DUPLICATE.value: RED,
    Result.EXTRA.value: ORANGE,
    Result.METADATA_MISMATCH.value: ORANGE,
    Result.NOT_DOWNLOADED.value: GREY,
    Result.REJECTED.value: GREY,
}
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
HEADER_FILL_EN = PatternFill("solid", fgColor="EEF4FB")
HEADER_BORDER = Border(bottom=Side(style="thin", color="8EA9DB"))


@dataclass
class Sheets:
    """One DataFrame per sheet, columns named as in ``columns.COLUMNS``."""

    batch: pd.DataFrame  # measure, value
    listing: pd.DataFrame  # source_id, title, period, url, listed_at
    downloads: pd.DataFrame  # source_id, file_name, bytes, sha256, downloaded_at, format
    catalogue: pd.DataFrame  # seq, reference_code, document_number, author, title, date, ...
    receipt: pd.DataFrame  # archive_id, reference_code, archive_sha256, ingested_at
    reconciliation: pd.DataFrame  # classify() output; action/owner/note added when absent
    checks: pd.DataFrame  # key, property, check, outcome, reason
    discrepancies: pd.DataFrame  # issue, items, cause, resolution
    closes: bool = False  # the batch closes (ARCHIVAL.md: counts agree, every row 一致/closed)


def write_workbook(
    sheets: Sheets, path: Path, *, title: str, timezone: str | tzinfo | None = None
) -> None:
    """Write the workbook to ``path`` (atomically: a temporary file, then a rename).

    Excel has no time zones: tz-aware times are converted to ``timezone`` (default: this
    machine's local zone) and written naive; the batch sheet says which zone that was.
    """
    zone = _zone(timezone)
    path = Path(path)
    wb = Workbook(write_only=True)
    wb.properties.title = title
    for attribute, name in SHEET_NAMES:
        frame: pd.DataFrame = getattr(sheets, attribute)
        ws = wb.create_sheet(name)
        if attribute == "batch":
            _write_batch(ws, frame, title=title, closes=sheets.closes, zone=zone)
        elif attribute == "reconciliation":
            frame = frame.copy()
            for column in REVIEW_COLUMNS:
                if column not in frame.columns:
                    frame[column] = None
            _write_table(ws, frame, zone=zone, result_column="result", action_column="action")
        else:
            _write_table(ws, frame, zone=zone)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are the owner's alone, and archivists share this workbook.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- sheets ---------------------------------------------------------------------------------


def _write_batch(ws: Any, frame: pd.DataFrame, *, title: str, closes: bool, zone: tzinfo) -> None:
    fill = PatternFill("solid", fgColor=GREEN if closes else RED)
    big = Font(bold=True, size=14)
    lead = [
        [_styled(ws, title, font=big)],
        [
            _styled(ws, "批次是否闭合 Batch closes", font=big, fill=fill),
            _styled(ws, YES if closes else NO, font=big, fill=fill),
        ],
        ["时间按时区 Times are in", zone_name(zone)],
    ]
    _write_table(ws, frame, zone=zone, lead=lead)


def _write_table(
    ws: Any,
    frame: pd.DataFrame,
    *,
    zone: tzinfo,
    lead: Sequence[Sequence[Any]] = (),
    result_column: str | None = None,
    action_column: str | None = None,
) -> None:
    """``lead`` rows, the two header rows, then the frame, streamed to the sheet's file."""
    names = [str(c) for c in frame.columns]
    n_rows, n_cols = len(frame), len(names)
    columns = [_column(ws, frame.iloc[:, i], zone) for i in range(n_cols)]
    header_row = len(lead) + 1  # the Chinese header; the English one is below it
    first_data = header_row + 2
    last_row = max(first_data - 1 + n_rows, header_row + 1)

    # The sheet view and the column widths go out with the first row: set them first.
    for i, (name, column) in enumerate(zip(names, columns, strict=True)):
        width = _width(name, column)
        width = max(width, MIN_WIDTHS.get(name, 0))
        ws.column_dimensions[get_column_letter(i + 1)].width = width
    if n_cols:
        ws.freeze_panes = f"{'B' if n_cols >= WIDE_SHEET else 'A'}{first_data}"
        ws.auto_filter.ref = f"A{header_row + 1}:{get_column_letter(n_cols)}{last_row}"
    _print_setup(ws, header_row)
    if result_column in names:
        column = columns[names.index(result_column)]
        column.style = {
            code: str(_styled(ws, None, fill=PatternFill("solid", fgColor=colour)).style_id)
            for code, colour in RESULT_FILLS.items()
        }
    if action_column in names:
        letter = get_column_letter(names.index(action_column) + 1)
        dv = DataValidation(
            type="list",
            formula1='"' + ",".join(ACTIONS) + '"',
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="处理 Action",
            error="recapture 或 or ignore",
            showInputMessage=True,
            promptTitle="处理 Action",
            prompt="recapture / ignore",
        )
        dv.add(f"{letter}{first_data}:{letter}{max(last_row, first_data)}")
        ws.data_validations.append(dv)  # write-only sheets lack add_data_validation()

    bold = Font(bold=True)
    zh = [_styled(ws, headers(n)[0], font=bold, fill=HEADER_FILL) for n in names]
    en = [
        _styled(ws, headers(n)[1], font=bold, fill=HEADER_FILL_EN, border=HEADER_BORDER)
        for n in names
    ]
    styles = [c.style for c in columns]
    rows = chain(
        ((row, ()) for row in [*lead, zh, en]),
        ((row, styles) for row in zip(*(c.values for c in columns), strict=True)),
    )
    width = max([n_cols, *map(len, lead)])
    writer = _SheetWriter(ws, f"A1:{get_column_letter(max(width, 1))}{last_row}")
    ws._writer = writer  # WriteOnlyWorksheet.close() finishes it: tail, then the file
    writer.write_top()
    writer.stream(rows, width)


def _print_setup(ws: Any, header_row: int) -> None:
    """Landscape, one page wide, both header rows repeated on every printed page, the sheet's
    name at the top and the page number at the bottom (archivists print and sign)."""
    ws.oddHeader.center.text = "&A"
    ws.oddFooter.center.text = "&P / &N"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.print_title_rows = f"{header_row}:{header_row + 1}"


class _SheetWriter(WorksheetWriter):
    """openpyxl's write-only worksheet writer with a leaner ``sheetData``.

    openpyxl binds every value to a Cell and writes it through nested XML contexts (about
    7 µs a cell); here a row is one lxml element built from plain ``str``/``int``/``float``
    values (about 3 µs a cell). Cells (styled, or anything else) still go through openpyxl's
    own ``_set_attributes``, so styles, dates and types come out as openpyxl writes them.
    The rest (sheet view, columns, autofilter, validation, print set-up) is openpyxl's.
    """

    _streamed = False

    def __init__(self, ws: Any, dimension: str) -> None:
        super().__init__(ws)
        self._dimension = dimension

    def get_stream(self) -> Any:
        """openpyxl's, but UTF-8: its default (ASCII) spells every CJK character as a
        numeric character reference, which makes the XML far larger and slower to zip."""
        with (
            xmlfile(self.out, encoding="utf-8") as xf,
            xf.element("worksheet", xmlns=SHEET_MAIN_NS),
            contextlib.suppress(GeneratorExit),  # close(): end the document
        ):
            while True:
                el = yield
                if el is True:
                    yield xf
                elif el is not None:
                    xf.write(el)

    def write_dimensions(self) -> None:
        """The used range, known before the rows (openpyxl leaves it out in write-only mode;
        readers such as openpyxl's read-only mode then cannot tell the sheet's size)."""
        self.xf.send(SheetDimension(self._dimension).to_tree())

    def stream(self, rows: Iterable[tuple[Sequence[Any], Sequence[Any]]], n_cols: int) -> None:
        letters = [get_column_letter(i + 1) for i in range(n_cols)]
        xf = self.xf.send(True)
        with xf.element("sheetData"):
            for row_idx, (values, styles) in enumerate(rows, 1):
                xf.write(self._row(row_idx, values, styles, letters))
        self.xf.send(None)
        self._streamed = True

    def write_rows(self) -> None:
        """Called by ``WriteOnlyWorksheet.close()``: the rows are already written."""
        if not self._streamed:
            self.stream((), 0)

    def _row(
        self, row_idx: int, values: Sequence[Any], styles: Sequence[Any], letters: list[str]
    ) -> Any:
        rs = str(row_idx)
        row = Element("row", r=rs)
        for i, value in enumerate(values):
            if value is None:
                continue
            kind = type(value)
            if kind is str:
                c = SubElement(row, "c", r=letters[i] + rs, t="inlineStr")
                t = SubElement(SubElement(c, "is"), "t")
                t.text = value
                if value[:1].isspace() or value[-1:].isspace():
                    t.set(XML_SPACE, "preserve")
            elif kind is int or kind is float:
                c = SubElement(row, "c", r=letters[i] + rs)  # t="n" is the default
                SubElement(c, "v").text = repr(value) if kind is float else str(value)
            else:
                self._cell(row, row_idx, i + 1, value)
                continue
            if styles and (style := styles[i]) is not None:
                sid = style if type(style) is str else style.get(value)
                if sid is not None:
                    c.set("s", sid)
        return row

    def _cell(self, row: Any, row_idx: int, col_idx: int, value: Any) -> None:
        """A Cell (styled, or text openpyxl would misread) or any other value: openpyxl's
        own attributes (style id, type, Excel serial for dates), our element."""
        cell = value if isinstance(value, Cell) else WriteOnlyCell(self.ws, value=value)
        cell.row, cell.column = row_idx, col_idx
        if cell.data_type == "f":  # never a formula: what the source said, as text
            cell.data_type = "s"
        content, attrs = _set_attributes(cell, cell.has_style)
        c = SubElement(row, "c", attrs)
        if content is None or content == "":
            return
        if cell.data_type == "s":
            t = SubElement(SubElement(c, "is"), "t")
            t.text = text = str(content)
            if text[:1].isspace() or text[-1:].isspace():
                t.set(XML_SPACE, "preserve")
        else:
            SubElement(c, "v").text = safe_string(content)


# -- cells and columns ----------------------------------------------------------------------


def _styled(
    ws: Any,
    value: Any,
    *,
    font: Font | None = None,
    fill: PatternFill | None = None,
    border: Border | None = None,
    number_format: str | None = None,
) -> Cell:
    cell = WriteOnlyCell(ws, value=value)
    if cell.data_type in ("f", "e"):  # a header or title is text, whatever it starts with
        cell.data_type = "s"
    if isinstance(value, str) and formula_like(value):
        cell.quotePrefix = True
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    if border is not None:
        cell.border = border
    if number_format is not None:
        cell.number_format = number_format
    return cell


def _text_cell(ws: Any, value: str) -> Cell:
    """A string a spreadsheet could take for a formula or an error code, kept as text: a
    string cell, never evaluated, with the value exactly as the source said it (the review
    reads it back), and Excel's mark of a typed apostrophe so an edit keeps it text."""
    cell = WriteOnlyCell(ws, value=None)
    cell._value = value
    cell.data_type = "s"
    cell.quotePrefix = True  # as if typed with a leading apostrophe
    return cell


@dataclass
class _Column:
    values: list[Any]  # None, str, int, float or Cell per row
    kind: str  # datetime, date, bool, number, text, mixed
    style: str | dict[Any, str] | None = None  # cell style id, for all or per value


def _column(ws: Any, series: pd.Series, zone: tzinfo) -> _Column:
    """The column as values the writer takes, decided column-wise; NA becomes None."""
    dtype = series.dtype
    notna = series.notna()
    if isinstance(dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert(zone).dt.tz_localize(None)
        dtype = series.dtype
    if pd.api.types.is_datetime64_dtype(dtype):
        present = series.dropna()
        kind = "date" if bool((present.dt.normalize() == present).all()) else "datetime"
        fmt = DATE_FORMAT if kind == "date" else DATETIME_FORMAT
        style = str(_styled(ws, None, number_format=fmt).style_id)
        return _Column(_serials(series), kind, style)
    if pd.api.types.is_bool_dtype(dtype):
        return _Column(_yes_no(series), "bool")
    if pd.api.types.is_numeric_dtype(dtype):
        finite = notna
        if pd.api.types.is_float_dtype(dtype):
            finite = notna & np.isfinite(series.astype("float64"))
        return _Column(series.astype(object).where(finite, None).tolist(), "number")
    if isinstance(dtype, pd.CategoricalDtype):
        series = series.astype(object)
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred == "boolean":
        return _Column(_yes_no(series), "bool")
    if inferred in ("string", "empty"):
        return _Column(_safe_text(ws, series.astype(object).where(notna, None).tolist()), "text")
    return _Column([_one(ws, v, zone) for v in series.astype(object).tolist()], "mixed")


def _serials(naive: pd.Series) -> list[Any]:
    """Excel serial days (1900 date system), as openpyxl's ``to_excel`` reckons them."""
    days = (naive - EXCEL_EPOCH) / pd.Timedelta(days=1)
    days = days.where(~((days >= 1) & (days < 61)), days - 1)  # Excel's phantom 1900-02-29
    return days.astype(object).where(naive.notna(), None).tolist()


def _yes_no(series: pd.Series) -> list[Any]:
    mapped = series.map({True: YES, False: NO}).astype(object)
    return mapped.where(series.notna(), None).tolist()


def _safe_text(ws: Any, values: list[Any]) -> list[Any]:
    """Strip characters XML cannot hold, cut at Excel's 32,767, leave '' out, keep what looks
    like a formula ('=…', '+…', '-…', '@…', a leading tab or CR; ``bots.cells``) and '#N/A'
    as text rather than formula or error. Scanned column-wise; only the values that need it
    are touched."""
    text = pd.Series(values, dtype=object)
    present = text.notna().to_numpy()
    as_str = text.where(present, "").astype(str)
    bad = (
        as_str.str.contains(ILLEGAL_CHARACTERS_RE.pattern, regex=True).to_numpy(dtype=bool)
        | (as_str.str.len() > MAX_TEXT).to_numpy(dtype=bool)
        | np.fromiter((type(v) is not str for v in values), dtype=bool, count=len(values))
    )
    if (bad & present).any():
        as_str = as_str.str.replace(ILLEGAL_CHARACTERS_RE.pattern, "", regex=True)
        as_str = as_str.str.slice(0, MAX_TEXT)
        for i in (bad & present).nonzero()[0]:
            values[i] = as_str.iat[i]
    for i in ((as_str == "").to_numpy(dtype=bool) & present).nonzero()[0]:
        values[i] = None  # an empty string is an empty cell
    # Only the few values that start like a formula go through the rule (bots.cells).
    starts = as_str.str.startswith(TRIGGERS).to_numpy(dtype=bool) & present
    risky = as_str.isin(ERROR_CODES).to_numpy(dtype=bool) & present
    for i in starts.nonzero()[0]:
        risky[i] = formula_like(as_str.iat[i])
    for i in risky.nonzero()[0]:
        values[i] = _text_cell(ws, as_str.iat[i])
    return values


def _one(ws: Any, value: Any, zone: tzinfo) -> Any:
    """One value of a mixed column (the batch sheet's values, object columns)."""
    if value is None or value is pd.NaT or (not isinstance(value, str) and _isna(value)):
        return None
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(zone).replace(tzinfo=None)
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        return _styled(ws, value, number_format=DATETIME_FORMAT)
    if isinstance(value, date):
        return _styled(ws, value, number_format=DATE_FORMAT)
    if isinstance(value, str):
        return _safe_text(ws, [value])[0]
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _one(ws, value.item(), zone)
    return _safe_text(ws, [str(value)])[0]


def _isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# -- widths and zones -----------------------------------------------------------------------


def _display_width(text: str) -> int:
    """Characters as a spreadsheet shows them: CJK and full-width count as two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _width(name: str, column: _Column) -> float:
    zh, en = headers(name)
    widest = max(_display_width(zh), _display_width(en))
    if column.kind == "datetime":
        widest = max(widest, len("2026-11-21 02:13:05"))
    elif column.kind == "date":
        widest = max(widest, len("2026-11-21"))
    else:
        for value in column.values[:WIDTH_SAMPLE]:
            if isinstance(value, Cell):
                value = value.value
                if isinstance(value, datetime | date):
                    value = "2026-11-21 02:13:05"
            if value is not None:
                widest = max(widest, _display_width(str(value)))
    return float(min(max(widest + 2, MIN_WIDTH), MAX_WIDTH))


def _zone(timezone: str | tzinfo | None) -> tzinfo:
    """The zone naive times are written in. A ZoneInfo where one can be found: pandas
    converts those vectorised, dateutil's tzlocal() value by value (seconds at 100k)."""
    if isinstance(timezone, tzinfo):
        return timezone
    if timezone is not None:
        return ZoneInfo(timezone)
    return local_zone()
