"""The client's small windows: message boxes, the tip of the day, the password prompt,
定位报表, 导出选项, the 正在生成 progress, the file viewer.

Each is a plain Toplevel with the exact title of the contract. None grabs the pointer or
keyboard (a Tk grab would also swallow keys meant for 系统消息, which may pop up over any
of them); the client keeps its own list of open modal windows instead.
"""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from sims.desktop.keys import mnemonic, windows_entry

PAD = 8


class Dialog(tk.Toplevel):
    """A fixed-size window owned by ``parent``; ``close()`` runs ``on_close`` once."""

    def __init__(
        self, parent: tk.Misc, title: str, on_close: Callable[[], None] | None = None
    ) -> None:
        super().__init__(parent)
        # Set even when "": Tk would otherwise name the window after its widget path.
        self.title(title)
        self.resizable(False, False)
        if parent.winfo_viewable():
            self.transient(parent.winfo_toplevel())  # type: ignore[call-overload]
        self._on_close = on_close
        self._closed = False
        self._pending: set[str] = set()
        self.protocol("WM_DELETE_WINDOW", self.close)
        self.body = ttk.Frame(self, padding=PAD)
        self.body.pack(fill=tk.BOTH, expand=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        callback, self._on_close = self._on_close, None
        self.destroy()
        if callback is not None:
            callback()

    def later(self, ms: int, callback: Callable[[], None]) -> None:
        """``after``, cancelled if the window goes first (no "invalid command" noise)."""

        def run() -> None:
            self._pending.discard(job)
            callback()

        job = self.after(ms, run)
        self._pending.add(job)

    def destroy(self) -> None:
        for job in self._pending:
            self.after_cancel(job)
        self._pending.clear()
        super().destroy()

    def centre(self) -> None:
        """Centre on the screen, as a 2005 client's dialogs did (they ignored the owner)."""
        self.update_idletasks()
        width, height = self.winfo_reqwidth(), self.winfo_reqheight()
        x = (self.winfo_screenwidth() - width) // 2
        y = (self.winfo_screenheight() - height) // 3
        self.geometry(f"+{x}+{y}")

    def buttons(self, *specs: tuple[str, int, Callable[[], None]]) -> ttk.Frame:
        """A right-aligned row of buttons: (text, underline index or -1, command)."""
        row = ttk.Frame(self.body)
        row.pack(side=tk.BOTTOM, fill=tk.X, pady=(PAD, 0))
        for text, underline, command in reversed(specs):
            ttk.Button(row, text=text, underline=underline, command=command, width=8).pack(
                side=tk.RIGHT, padx=(PAD // 2, 0)
            )
        return row


class MessageDialog(Dialog):
    """提示 / 错误 / 登录失败 / 保存失败 / 系统消息: a text and 确定; Enter or Escape closes."""

    def __init__(
        self,
        parent: tk.Misc,
        title: str,
        text: str,
        on_close: Callable[[], None] | None = None,
        icon: str = "ℹ",
    ) -> None:
        super().__init__(parent, title, on_close)
        self.buttons(("确定", -1, self.close))
        line = ttk.Frame(self.body)
        line.pack(fill=tk.BOTH, expand=True)
        ttk.Label(line, text=icon, font=("Noto Sans CJK SC", 20)).pack(side=tk.LEFT, padx=PAD)
        self.text = ttk.Label(line, text=text, wraplength=360)
        self.text.pack(side=tk.LEFT, padx=PAD, pady=PAD)
        self.bind("<Return>", lambda _e: self.close())
        self.bind("<KP_Enter>", lambda _e: self.close())
        self.bind("<Escape>", lambda _e: self.close())
        self.centre()
        self.focus_set()


class TipDialog(Dialog):
    """每日提示: shown over the login at every start; the login waits until it is closed."""

    TIPS = (
        "您可以按 Ctrl+F 快速按日期查询报表。",
        "导出报表前，请先在列表中选择一张报表。",
        "凭证汇总表需要先生成，生成期间请勿关闭程序。",
    )

    def __init__(self, parent: tk.Misc, on_close: Callable[[], None]) -> None:
        super().__init__(parent, "每日提示", on_close)
        self.buttons(("关闭", -1, self.close))
        ttk.Label(self.body, text="您知道吗…", font=("Noto Sans CJK SC", 12, "bold")).pack(
            anchor=tk.W
        )
        ttk.Label(
            self.body, text=self.TIPS[int(time.time()) % len(self.TIPS)], wraplength=340
        ).pack(anchor=tk.W, pady=PAD)
        self.show_again = tk.BooleanVar(self, value=True)
        ttk.Checkbutton(self.body, text="启动时显示提示", variable=self.show_again).pack(
            anchor=tk.W
        )
        for key in ("<Return>", "<KP_Enter>", "<Escape>"):
            self.bind(key, lambda _e: self.close())
        self.centre()
        self.focus_set()


class EntryDialog(Dialog):
    """One labelled entry, 确定 / 取消: the password prompt and 定位报表."""

    def __init__(
        self,
        parent: tk.Misc,
        title: str,
        label: str,
        on_submit: Callable[[str], None],
        on_cancel: Callable[[], None] | None = None,
        show: str = "",
    ) -> None:
        super().__init__(parent, title, on_cancel)
        self._on_submit = on_submit
        self.buttons(("确定", -1, self.submit), ("取消", -1, self.close))
        row = ttk.Frame(self.body)
        row.pack(fill=tk.X)
        ttk.Label(row, text=label).pack(side=tk.LEFT)
        self.entry = ttk.Entry(row, width=24, show=show)
        self.entry.pack(side=tk.LEFT, padx=(PAD, 0))
        windows_entry(self.entry)
        self.bind("<Return>", lambda _e: self.submit())
        self.bind("<KP_Enter>", lambda _e: self.submit())
        self.bind("<Escape>", lambda _e: self.close())
        self.centre()
        self.entry.focus_set()

    def submit(self) -> None:
        value = self.entry.get()
        self._on_close = None  # submitted, not cancelled
        self.close()
        self._on_submit(value)


class ExportOptionsDialog(Dialog):
    """导出选项, with the wrong defaults: 选中行 for a list, 导出后打开文件 on."""

    def __init__(
        self, parent: tk.Misc, for_list: bool, on_ok: Callable[[bool, bool], None]
    ) -> None:
        super().__init__(parent, "导出选项")
        self._on_ok = on_ok
        self.all_rows = tk.BooleanVar(self, value=False)
        self.open_after = tk.BooleanVar(self, value=True)
        self.buttons(("确定", -1, self.ok), ("取消", -1, self.close))
        if for_list:
            box = ttk.LabelFrame(self.body, text="范围", padding=PAD)
            box.pack(fill=tk.X)
            for text, value in (("选中行(S)", False), ("全部记录(A)", True)):
                ttk.Radiobutton(
                    box, text=text, underline=mnemonic(text), variable=self.all_rows, value=value
                ).pack(anchor=tk.W)
            for key in ("s", "S"):
                self.bind(f"<Alt-KeyPress-{key}>", lambda _e: self.all_rows.set(False))
            for key in ("a", "A"):
                self.bind(f"<Alt-KeyPress-{key}>", lambda _e: self.all_rows.set(True))
        check = ttk.Checkbutton(
            self.body, text="导出后打开文件(O)", underline=8, variable=self.open_after
        )
        check.pack(anchor=tk.W, pady=(PAD, 0))
        for key in ("o", "O"):
            self.bind(f"<Alt-KeyPress-{key}>", lambda _e: check.invoke())
        self.bind("<Return>", lambda _e: self.ok())
        self.bind("<KP_Enter>", lambda _e: self.ok())
        self.bind("<Escape>", lambda _e: self.close())
        self.centre()
        self.focus_set()

    def ok(self) -> None:
        all_rows, open_after = self.all_rows.get(), self.open_after.get()
        self.close()
        self._on_ok(all_rows, open_after)


class ProgressDialog(Dialog):
    """正在生成: a bar that fills over the remaining seconds; the UI stays live meanwhile."""

    TICK_MS = 100

    def __init__(
        self, parent: tk.Misc, title: str, seconds: float, on_done: Callable[[], None]
    ) -> None:
        super().__init__(parent, "正在生成")
        self.protocol("WM_DELETE_WINDOW", lambda: None)  # a job cannot be cancelled
        ttk.Label(self.body, text=f"正在生成 {title}，请稍候…").pack(anchor=tk.W)
        self.bar = ttk.Progressbar(self.body, length=320, maximum=1000)
        self.bar.pack(pady=PAD)
        self._start = time.monotonic()
        self._seconds = max(seconds, 0.0)
        self._on_done = on_done
        self.centre()
        self.focus_set()
        self.later(self.TICK_MS, self._tick)

    def _tick(self) -> None:
        elapsed = time.monotonic() - self._start
        if elapsed >= self._seconds:
            self.close()
            self._on_done()
            return
        self.bar["value"] = 1000 * elapsed / self._seconds
        self.later(self.TICK_MS, self._tick)


class ViewerWindow(Dialog):
    """查看 - <name>: the "open after export" viewer; it takes the focus when it appears."""

    def __init__(self, parent: tk.Misc, name: str, text: str) -> None:
        super().__init__(parent, f"查看 - {name}")
        self.resizable(True, True)
        view = tk.Text(self.body, width=90, height=24, wrap=tk.NONE)
        view.insert("1.0", text)
        view.configure(state=tk.DISABLED)
        view.pack(fill=tk.BOTH, expand=True)
        self.bind("<Escape>", lambda _e: self.close())
        self.geometry("+120+120")
        view.focus_set()
