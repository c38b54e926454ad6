"""Chinese window titles that every X tool reads right.

Tk 8.6 stores WM_NAME with XStoreName: type STRING (Latin-1 by the ICCCM) holding the
title's UTF-8 bytes. _NET_WM_NAME is right, but tools that decode WM_NAME (``xdotool
search --name``, Xlib's XmbTextPropertyToTextList) see mojibake and never match
``^用户登录$``. Each time a toplevel is mapped (when Tk writes its title), this rewrites
WM_NAME on Tk's wrapper window as UTF8_STRING with the same text.
"""

from __future__ import annotations

import tkinter as tk

from Xlib import X, display, error


class TitleFixer:
    """One Xlib connection to Tk's display; :meth:`watch` a toplevel to keep it fixed."""

    def __init__(self, root: tk.Tk) -> None:
        self._display = display.Display(root.winfo_screen())
        self._wm_name = self._display.intern_atom("WM_NAME")
        self._utf8 = self._display.intern_atom("UTF8_STRING")

    def watch(self, window: tk.Tk | tk.Toplevel) -> None:
        def mapped(event: tk.Event) -> None:
            if event.widget is window:
                self.fix(window)

        window.bind("<Map>", mapped, add="+")
        if window.winfo_ismapped():
            self.fix(window)

    def fix(self, window: tk.Tk | tk.Toplevel) -> None:
        """Rewrite WM_NAME on the window's wrapper (the inner window's X parent)."""
        try:
            inner = self._display.create_resource_object("window", window.winfo_id())
            wrapper = inner.query_tree().parent
            wrapper.change_property(
                self._wm_name, self._utf8, 8, window.title().encode(), X.PropModeReplace
            )
            self._display.sync()
        except error.XError:
            pass  # the window went away in between: nothing left to name

    def close(self) -> None:
        self._display.close()
