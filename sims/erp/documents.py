"""Byte-exact writers for the three file formats the ERP exports: PDF, XLSX and GBK CSV.

Every writer is a pure function of its arguments: the same input gives the same bytes in
any process on any day. That is what lets the archive side be checked by sha256 against
``/_sim/state``. The libraries stamp the current time by default; each writer says how
it removes that.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

Cell = str | int | float

# An Adobe CID font that reportlab knows by name: Chinese text without shipping a font file.
# It is not embedded, so viewers substitute a local Song face; the bytes stay small and fixed.
PDF_FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))

_NUMERIC = re.compile(r"^-?[\d,]+(\.\d+)?%?$")


@dataclass(frozen=True)
class PdfTable:
    """One page's table: an optional heading above it, header cells, body rows."""

    heading: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    widths: Sequence[float]  # relative column widths; scaled to the printable width


def pdf_bytes(*, title: str, meta_line: str, author: str, pages: Sequence[PdfTable]) -> bytes:
    """Render a report: one table per page, the title and ``meta_line`` on the first page.

    ``invariant=1`` fixes the creation date and the document /ID that reportlab would
    otherwise derive from the clock, so the output is byte-identical across runs.
    """
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, invariant=1)
    pdf.setTitle(title)
    pdf.setAuthor(author)
    pdf.setSubject(title)
    pdf.setCreator("ERP V3.2 报表中心")
    width, height = A4
    left, right = 50.0, width - 50.0
    total = len(pages)
    for number, table in enumerate(pages, start=1):
        y = height - 60
        if number == 1:
            pdf.setFont(PDF_FONT, 18)
            pdf.drawCentredString(width / 2, y, title)
            y -= 28
            pdf.setFont(PDF_FONT, 10)
            pdf.drawString(left, y, meta_line)
            y -= 24
        if table.heading:
            pdf.setFont(PDF_FONT, 12)
            pdf.drawString(left, y, table.heading)
            y -= 20
        _draw_table(pdf, table, left, right, y)
        pdf.setFont(PDF_FONT, 9)
        pdf.drawCentredString(width / 2, 30, f"第 {number} 页 共 {total} 页")
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def _draw_table(pdf: canvas.Canvas, table: PdfTable, left: float, right: float, top: float) -> None:
    """Draw a ruled table; numbers right-aligned as an accountant expects."""
    row_h = 17.0
    scale = (right - left) / sum(table.widths)
    edges = [left]
    for w in table.widths:
        edges.append(edges[-1] + w * scale)
    lines: list[tuple[Sequence[str], bool]] = [(table.headers, True)]
    lines += [(row, False) for row in table.rows]
    y = top
    pdf.setLineWidth(0.5)
    pdf.line(left, y, right, y)
    for cells, is_header in lines:
        pdf.setFont(PDF_FONT, 9.5 if is_header else 9)
        base = y - row_h + 5
        for i, text in enumerate(cells):
            if not is_header and _NUMERIC.match(text):
                pdf.drawRightString(edges[i + 1] - 4, base, text)
            else:
                pdf.drawString(edges[i] + 4, base, text)
        y -= row_h
        pdf.line(left, y, right, y)
    for x in edges:
        pdf.line(x, top, x, y)


def xlsx_bytes(
    *,
    sheet_title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    number_format: str,
    creator: str,
    stamp: dt.datetime,
) -> bytes:
    """Write one sheet, header in row 1, and stamp every time field with ``stamp``.

    openpyxl's ``Workbook.save`` overwrites ``modified`` with now, and ``ZipFile.writestr``
    dates each entry with the current local time; so the workbook is written through
    ``ExcelWriter`` with fixed properties and the zip is then rewritten with fixed dates.
    """
    wb = Workbook()
    ws = wb.active
    ws.title = sheet_title
    ws.append(list(headers))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(list(row))
    for row_cells in ws.iter_rows(min_row=2):
        for cell in row_cells:
            if isinstance(cell.value, float):
                cell.number_format = number_format
    for i, header in enumerate(headers):
        ws.column_dimensions[get_column_letter(i + 1)].width = max(12, 2 * len(header) + 4)
    wb.properties.creator = creator
    wb.properties.lastModifiedBy = creator
    wb.properties.created = stamp
    wb.properties.modified = stamp
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    return _restamp_zip(raw.getvalue(), stamp)


def _restamp_zip(data: bytes, stamp: dt.datetime) -> bytes:
    """Copy a zip entry by entry, in the same order, with a fixed modification time."""
    date_time = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=date_time)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, src.read(info))
    return out.getvalue()


def csv_bytes(*, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> bytes:
    """CSV as the ERP's Windows export wrote it: GBK, CRLF line ends, no BOM."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    # strict: a character outside GBK is a bug in the simulator, not something to hide
    return text.getvalue().encode("gbk")
