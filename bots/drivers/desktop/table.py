"""The desktop `table` step: a grid's rows, page by page, as text with a header line
(copied to the clipboard, saved through a dialog, or read by OCR).

Each page: the table's `steps` bring the rows out, the text is parsed (its header line
names the columns), the rows no earlier page brought are kept. It stops when there is
no `next`, or a page brings no new row (the last page shown again), or at `max_pages`.
A retry starts from the first page again (a grid has no address to resume at) and
skips the rows the cursor holds already.
"""

from __future__ import annotations

import csv
import re
import tempfile
import time
from pathlib import Path

from ..base import Row, TableCursor
from . import clipboard
from .actions import copied_text, ocr_text
from .runner import Call, handles
from .savedialog import save_through_dialog
from .schema import OcrSource, SaveDialogSource


def parse(text: str, columns: dict[str, str], ocr: bool = False) -> list[Row]:
    """Rows of ``text`` (a header line, then one line per row; tab-separated, or
    comma-separated from a file, or columns two spaces apart from OCR)."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        return []
    if ocr:
        records = [re.split(r"\s{2,}|\t", line.strip()) for line in lines]
    else:
        delimiter = "\t" if "\t" in lines[0] else ","
        records = list(csv.reader(lines, delimiter=delimiter))
    header = [cell.strip() for cell in records[0]]
    missing = [title for title in columns.values() if title not in header]
    if missing:
        raise ValueError(
            f"the header line has no column {', '.join(map(repr, missing))}; it has "
            f"{', '.join(map(repr, header))}"
        )
    index = {field: header.index(title) for field, title in columns.items()}
    rows = []
    for record in records[1:]:
        rows.append(
            {
                field: (" ".join(record[i].split()) if i < len(record) else None)
                for field, i in index.items()
            }
        )
    return rows


def page_text(call: Call) -> str:
    source = call.args.source
    if isinstance(source, SaveDialogSource):
        with tempfile.TemporaryDirectory(prefix="fleet-table-") as folder:
            timeout = call.runner.recipe.recipe.timeouts.download
            saved = save_through_dialog(
                call, Path(folder), source.save_dialog, source.done, timeout, 0.8
            )
            return saved.path.read_bytes().decode(source.encoding)
    if isinstance(source, OcrSource):
        return ocr_text(call, source.ocr.window, source.ocr.region)
    return copied_text(call)


@handles("table")
def table(call: Call) -> None:
    args = call.args
    context = call.context
    if context.cursor is None:
        context.cursor = TableCursor()
    cursor = context.cursor
    seen = {tuple(sorted(row.items(), key=lambda kv: kv[0])) for row in cursor.rows}
    page = 0
    while not cursor.done:
        if page >= args.max_pages:
            raise call.failed(f"still a next page after max_pages={args.max_pages}")
        marker = None
        if args.source == "clipboard":
            # A copy that does not happen must not read as the last page again (which
            # would end the listing early): the clipboard holds a marker until it does.
            marker = f"fleet-table-{time.monotonic_ns()}"
            clipboard.put(marker, call.runner.env)
        call.run_nested(args.steps)
        page += 1
        text = page_text(call)
        if marker is not None and text == marker:
            raise call.failed(
                f"page {page}: the table's steps put nothing on the clipboard (did the "
                "grid have the keys?)"
            )
        try:
            rows = parse(text, args.columns, ocr=isinstance(args.source, OcrSource))
        except ValueError as exc:
            raise call.failed(f"page {page}: {exc}") from exc
        new = []
        for row in rows:
            mark = tuple(sorted(row.items(), key=lambda kv: kv[0]))
            if mark not in seen:
                seen.add(mark)
                new.append(row)
        cursor.rows.extend(new)
        call.outcome.rows.extend(new)
        cursor.pages = max(cursor.pages, page)
        if context.on_rows is not None and new:
            context.on_rows(new, [None] * len(new))
        call.runner.config.emit(
            "table_page",
            system=call.runner.system,
            phase=context.phase,
            page=page,
            rows=len(new),
            window=call.runner.location,
        )
        if not args.next or (not new and page > 1) or (not rows):
            cursor.done = True
        else:
            call.run_nested(args.next)
