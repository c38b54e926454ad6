"""另存为: the client's own save dialog, with the autocompletion of its day.

Typing in 文件名 pops up a list of matching names in the typed folder (an override-redirect
window, like a menu). An Enter that comes less than :data:`SWALLOW_MS` after the last
keystroke (X server time, so a key queued behind a slow action is measured when it was
pressed) only closes that popup; a later Enter saves. A relative name is relative to
``~/Documents``.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import ttk

from sims.desktop.dialogs import PAD, Dialog
from sims.desktop.keys import select_all, windows_entry

SWALLOW_MS = 500
MAX_MATCHES = 8
FILE_TYPES = {
    "csv": "CSV 文件 (*.csv)",
    "pdf": "PDF 文件 (*.pdf)",
    "xlsx": "Excel 工作簿 (*.xlsx)",
}


def documents() -> Path:
    return Path.home() / "Documents"


def resolve(text: str, ext: str) -> Path:
    """The path a typed name means: relative to ~/Documents, the type's extension added
    when the name has none (as the common dialog did)."""
    path = Path(text).expanduser()
    if not path.is_absolute():
        documents().mkdir(parents=True, exist_ok=True)  # Windows always had one
        path = documents() / path
    if not path.suffix:
        path = path.with_name(f"{path.name}.{ext}")
    return path


def completions(text: str) -> list[str]:
    """Names in the typed folder starting with the typed tail, as full typed paths."""
    folder_text, _, prefix = text.rpartition("/")
    folder = Path(folder_text or ("/" if text.startswith("/") else ".")).expanduser()
    if not text.startswith(("/", "~")):
        folder = documents() / folder_text
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError:
        return []
    head = text[: len(text) - len(prefix)]
    matches = [n for n in names if n.lower().startswith(prefix.lower()) and n != prefix]
    return [head + n for n in matches[:MAX_MATCHES]]


class SaveAsDialog(Dialog):
    """另存为. ``on_save(text)`` gets the typed name; it returns True when the dialog
    should close (False: an error was shown and the clerk may correct the name)."""

    def __init__(
        self,
        parent: tk.Misc,
        suggested: str,
        ext: str,
        on_save: Callable[[str], bool],
        on_cancel: Callable[[], None],
    ) -> None:
        super().__init__(parent, "另存为", on_cancel)
        self._on_save = on_save
        self._last_key: int | None = None  # X time of the last keystroke in 文件名
        self._popup: tk.Toplevel | None = None
        self._list: tk.Listbox | None = None

        top = ttk.Frame(self.body)
        top.pack(fill=tk.X)
        ttk.Label(top, text="保存在(I):", underline=4).pack(side=tk.LEFT)
        where = ttk.Combobox(top, values=[str(documents())], width=48, state="readonly")
        where.set(str(documents()))
        where.pack(side=tk.LEFT, padx=PAD)
        files = tk.Listbox(self.body, height=8, width=64, takefocus=False)
        files.pack(fill=tk.BOTH, expand=True, pady=PAD)
        for name in completions(""):
            files.insert(tk.END, name)

        self.buttons(("保存(S)", 3, self.save), ("取消", -1, self.close))
        grid = ttk.Frame(self.body)
        grid.pack(fill=tk.X)
        ttk.Label(grid, text="文件名(N):", underline=4).grid(row=0, column=0, sticky=tk.W)
        self.entry = ttk.Entry(grid, width=52)
        self.entry.grid(row=0, column=1, padx=PAD, pady=2)
        ttk.Label(grid, text="保存类型(T):", underline=5).grid(row=1, column=0, sticky=tk.W)
        kind = ttk.Combobox(grid, values=[FILE_TYPES.get(ext, ext)], width=50, state="readonly")
        kind.set(FILE_TYPES.get(ext, ext))
        kind.grid(row=1, column=1, padx=PAD, pady=2)

        self.entry.insert(0, suggested)
        windows_entry(self.entry)
        self.entry.bind("<KeyPress>", self._keystroke)
        self.entry.bind("<Return>", self._enter)
        self.entry.bind("<KP_Enter>", self._enter)
        self.entry.bind("<Escape>", self._escape)
        self.entry.bind("<FocusOut>", lambda _e: self._hide_popup(), add="+")
        self.bind("<Return>", lambda _e: self.save())
        self.bind("<Escape>", lambda _e: self.close())
        self.bind("<Destroy>", self._destroyed, add="+")
        self.centre()
        select_all(self.entry)
        self.entry.focus_set()

    # -- keys --------------------------------------------------------------------------

    def _keystroke(self, event: tk.Event) -> None:
        self._last_key = int(event.time)
        # after the class binding has changed the text
        self.later(0, self._refresh_popup)

    def _enter(self, event: tk.Event) -> str:
        last, now = self._last_key, int(event.time)
        if last is not None and (now - last) % (1 << 32) < SWALLOW_MS:
            self._hide_popup()  # the swallowed Enter: it only closes the list
            return "break"
        self.save()
        return "break"

    def _escape(self, _event: tk.Event) -> str:
        if self._popup is not None:
            self._hide_popup()
        else:
            self.close()
        return "break"

    def save(self) -> None:
        self._hide_popup()
        text = self.entry.get().strip()
        if not text:
            return
        if self._on_save(text):
            self._on_close = None  # saved, not cancelled
            self.close()

    # -- the autocompletion popup -----------------------------------------------------

    def _refresh_popup(self) -> None:
        if self._closed or not self.entry.winfo_exists():
            return
        matches = completions(self.entry.get()) if self.entry.get() else []
        if not matches:
            self._hide_popup()
            return
        if self._popup is None:
            self._popup = tk.Toplevel(self)
            self._popup.overrideredirect(True)
            self._list = tk.Listbox(
                self._popup, height=len(matches), borderwidth=1, relief=tk.SOLID
            )
            self._list.pack(fill=tk.BOTH, expand=True)
        assert self._list is not None
        self._list.delete(0, tk.END)
        for match in matches:
            self._list.insert(tk.END, match)
        self._list.configure(height=len(matches))
        x = self.entry.winfo_rootx()
        y = self.entry.winfo_rooty() + self.entry.winfo_height()
        self._popup.geometry(f"{self.entry.winfo_width()}x{18 * len(matches) + 4}+{x}+{y}")
        self._popup.lift()

    def _hide_popup(self) -> None:
        popup, self._popup, self._list = self._popup, None, None
        if popup is not None and popup.winfo_exists():
            popup.destroy()

    def _destroyed(self, event: tk.Event) -> None:
        if event.widget is self:
            self._popup = None
