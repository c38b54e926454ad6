"""Windows keyboard habits Tk lacks on X11, and the input tracking the idle logout needs.

Tk's Ctrl+A moves to the line start (Emacs style); a Windows clerk, and a robot written
against a Windows client, expects "select all". Ctrl+C / Ctrl+V already copy and paste
through the CLIPBOARD selection on X11.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

INPUT_TAG = "SimInput"  # a bind tag on every widget: sees each key and click, never breaks


def mnemonic(label: str) -> int:
    """The underline index of a label's access key: the letter in "导出报表(E)"."""
    return label.index("(") + 1


def select_all(entry: tk.Entry | ttk.Entry) -> None:
    entry.selection_range(0, tk.END)
    entry.icursor(tk.END)


def windows_entry(entry: tk.Entry | ttk.Entry) -> None:
    """Ctrl+A selects the whole text (and nothing else happens, e.g. no line start)."""

    def on_ctrl_a(_event: tk.Event) -> str:
        select_all(entry)
        return "break"

    entry.bind("<Control-a>", on_ctrl_a)
    entry.bind("<Control-A>", on_ctrl_a)


def track_input(widget: tk.Misc) -> None:
    """Put :data:`INPUT_TAG` first in the bind tags of ``widget`` and all its descendants.

    Its own tag, so that a more specific binding elsewhere (Tab, Ctrl+E) cannot hide a key
    from the idle timer, and a ``break`` in a class binding cannot either.
    """
    tags = widget.bindtags()
    if INPUT_TAG not in tags:
        widget.bindtags((INPUT_TAG, *tags))
    for child in widget.winfo_children():
        track_input(child)


def on_any_input(root: tk.Misc, callback: Callable[[], None]) -> None:
    """Call ``callback`` on every key press and mouse click in a tracked widget."""

    def handler(_event: tk.Event) -> None:
        callback()

    root.bind_class(INPUT_TAG, "<KeyPress>", handler)
    root.bind_class(INPUT_TAG, "<ButtonPress>", handler)
