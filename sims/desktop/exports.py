"""The files the client writes, written the way the old client wrote them: the first half
at once, the rest only when the clerk dismisses "已保存 N 条记录。", the file held open
in between. A robot that takes the file as soon as it appears gets half of it.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from sims.desktop.state import ClientState, ExportRecord
from sims.erp.documents import csv_bytes
from sims.erp.reports import Catalogue, Report

COLUMNS = ("报表编号", "报表名称", "类别", "部门", "报表日期", "大小(字节)")
LIST_FILENAME = "报表列表.csv"

_ROW = re.compile(rb"<row[ >]")


def list_row(catalogue: Catalogue, report: Report) -> tuple[str, str, str, str, str, str]:
    """One grid row, as the grid shows it and the list export writes it."""
    return (
        report.id,
        report.title,
        report.kind.name,
        report.kind.department,
        report.date.isoformat(),
        str(catalogue.size(report)),
    )


def list_csv(rows: Sequence[Sequence[str]]) -> bytes:
    """The list export: the grid's columns and rows, in the ERP's CSV dialect (GBK, CRLF)."""
    return csv_bytes(headers=COLUMNS, rows=rows)


def record_count(catalogue: Catalogue, report: Report, data: bytes) -> int:
    """N of "已保存 N 条记录。": pages for a PDF, data rows for a CSV or a workbook."""
    ext = report.kind.ext
    if ext == "pdf":
        return catalogue.pages(report) or 0
    if ext == "csv":
        return max(0, len(data.split(b"\r\n")) - 2)  # header and the final line end
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            sheet = book.read("xl/worksheets/sheet1.xml")
    except (zipfile.BadZipFile, KeyError):
        return 0  # an infected "workbook" is not a workbook at all
    return max(0, len(_ROW.findall(sheet)) - 1)


class HeldExport:
    """A file written in two steps and held open in between (see the module docstring).

    ``truncate``: the truncate fault; the second half is never written, yet the client
    says nothing (the listed size is what catches it).
    """

    def __init__(
        self,
        state: ClientState,
        path: Path,
        data: bytes,
        report_id: str | None,
        truncate: bool = False,
    ) -> None:
        self._state = state
        self._data = data
        self._truncate = truncate
        self._handle: BinaryIO | None = None
        self.path = path
        self.record = ExportRecord(report_id, str(path))

    def start(self) -> None:
        """Open the file and write its first half (OSError: the caller shows 保存失败)."""
        self._handle = self.path.open("wb")
        self._handle.write(self._data[: len(self._data) // 2])
        self._handle.flush()
        self._state.add_export(self.record)
        self._state.update_export(self.record, size=len(self._data) // 2, complete=False)

    def finish(self) -> None:
        """Write the rest (unless truncated) and close the file; safe to call twice."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            if not self._truncate:
                handle.write(self._data[len(self._data) // 2 :])
        finally:
            handle.close()
            size = self.path.stat().st_size if self.path.exists() else 0
            self._state.update_export(self.record, size=size, complete=True)
