"""One tab of the main window: the date range, the report grid, the pager, the status.

The tab only shows what it is given; queries, paging and their latency belong to the
client (:mod:`sims.desktop.app`), which calls :meth:`ReportTab.show`.
"""

from __future__ import annotations

import math
import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from sims.desktop.exports import COLUMNS
from sims.desktop.keys import windows_entry

PAGE_SIZE = 50
Row = tuple[str, str, str, str, str, str]
WIDTHS = (90, 300, 120, 80, 100, 100)


class ReportTab(ttk.Frame):
    """开始日期 / 结束日期, the grid (50 rows a page), 上一页(B) / 下一页(N), the status."""

    def __init__(
        self,
        parent: tk.Misc,
        start: str,
        end: str,
        on_query: Callable[[], None],
        on_page: Callable[[int], None],
    ) -> None:
        super().__init__(parent, padding=6)
        self.rows: list[Row] = []  # the whole query result, all pages
        self.page = 1
        self._on_page = on_page

        bar = ttk.Frame(self)
        bar.pack(fill=tk.X)
        ttk.Label(bar, text="开始日期:").pack(side=tk.LEFT)
        self.start = ttk.Entry(bar, width=12)
        self.start.insert(0, start)
        self.start.pack(side=tk.LEFT, padx=(4, 12))
        ttk.Label(bar, text="结束日期:").pack(side=tk.LEFT)
        self.end = ttk.Entry(bar, width=12)
        self.end.insert(0, end)
        self.end.pack(side=tk.LEFT, padx=(4, 12))
        ttk.Button(bar, text="查询", command=on_query, width=6).pack(side=tk.LEFT)
        ttk.Label(bar, text="（日期格式：YYYY-MM-DD）", foreground="#555555").pack(
            side=tk.LEFT, padx=12
        )
        for entry in (self.start, self.end):
            windows_entry(entry)
            entry.bind("<Return>", lambda _e: on_query())
            entry.bind("<KP_Enter>", lambda _e: on_query())

        self.status = tk.StringVar(self, value="")
        footer = ttk.Frame(self)
        footer.pack(side=tk.BOTTOM, fill=tk.X, pady=(4, 0))
        ttk.Label(footer, textvariable=self.status, relief=tk.SUNKEN, padding=(4, 1)).pack(
            side=tk.LEFT, fill=tk.X, expand=True
        )
        self.next_button = ttk.Button(
            footer, text="下一页(N)", underline=4, command=lambda: on_page(self.page + 1)
        )
        self.next_button.pack(side=tk.RIGHT, padx=(4, 0))
        self.prev_button = ttk.Button(
            footer, text="上一页(B)", underline=4, command=lambda: on_page(self.page - 1)
        )
        self.prev_button.pack(side=tk.RIGHT)

        frame = ttk.Frame(self)
        frame.pack(fill=tk.BOTH, expand=True, pady=(6, 0))
        self.tree = ttk.Treeview(frame, columns=COLUMNS, show="headings", selectmode="extended")
        for column, width in zip(COLUMNS, WIDTHS, strict=True):
            self.tree.heading(column, text=column, anchor=tk.W)
            self.tree.column(column, width=width, anchor=tk.W, stretch=column == "报表名称")
        scroll = ttk.Scrollbar(frame, orient=tk.VERTICAL, command=self.tree.yview)
        self.tree.configure(yscrollcommand=scroll.set)
        scroll.pack(side=tk.RIGHT, fill=tk.Y)
        self.tree.pack(side=tk.LEFT, fill=tk.BOTH, expand=True)
        self.tree.bind("<Control-a>", self._select_page)
        self.tree.bind("<Control-A>", self._select_page)
        self.tree.bind("<Control-c>", self._copy)
        self.tree.bind("<Control-C>", self._copy)
        self.tree.bind("<Next>", lambda _e: self._page_key(+1))
        self.tree.bind("<Prior>", lambda _e: self._page_key(-1))
        self.show([], 1)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(len(self.rows) / PAGE_SIZE))

    def clear(self) -> None:
        """Empty the grid at once (the old client blanked it before a slow refill)."""
        self.tree.delete(*self.tree.get_children())

    def show(self, rows: list[Row], page: int) -> None:
        self.rows = rows
        self.page = min(max(page, 1), self.pages)
        self.clear()
        for row in rows[(self.page - 1) * PAGE_SIZE : self.page * PAGE_SIZE]:
            self.tree.insert("", tk.END, iid=row[0], values=row)
        self.status.set(f"共 {len(rows)} 条记录  第 {self.page}/{self.pages} 页")

    def select(self, report_id: str) -> None:
        """Select, show and focus a row of the current page."""
        self.tree.selection_set(report_id)
        self.tree.focus(report_id)
        self.tree.see(report_id)
        self.tree.focus_set()

    def selected_rows(self) -> list[Row]:
        chosen = set(self.tree.selection())
        return [row for row in self.rows if row[0] in chosen]

    def current_id(self) -> str | None:
        """The report the clerk picked: the first selected row, else none."""
        rows = self.selected_rows()
        return rows[0][0] if rows else None

    def focus_dates(self) -> None:
        self.start.focus_set()
        self.start.selection_range(0, tk.END)
        self.start.icursor(tk.END)

    def _select_page(self, _event: tk.Event) -> str:
        self.tree.selection_set(self.tree.get_children())
        return "break"

    def _copy(self, _event: tk.Event) -> str:
        lines = ["\t".join(COLUMNS)] + ["\t".join(row) for row in self.selected_rows()]
        self.clipboard_clear()
        self.clipboard_append("\n".join(lines) + "\n")
        return "break"

    def _page_key(self, step: int) -> str:
        self._on_page(self.page + step)
        return "break"
