"""The keyboard and the mouse, through pyautogui (its X11 backend sends XTEST events).

pyautogui reads DISPLAY once, when it is imported, and keeps that connection: ``bind``
points it at the session's display (a test's own Xvfb). ``PAUSE`` is 0 (the driver waits
for windows, not for time); the fail-safe stays on: a mouse pushed into a screen corner
stops the bot, reported as a system error (``FailSafeTriggered``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...childenv import environ_lock
from .errors import FailSafeTriggered
from .schema import chord_keys

_pyautogui: Any = None


def bind(display_name: str) -> Any:
    """pyautogui, sending to ``display_name`` (its X11 backend's connection replaced)."""
    global _pyautogui
    if _pyautogui is None:
        with environ_lock:  # other threads may be copying os.environ meanwhile
            saved = os.environ.get("DISPLAY")
            os.environ["DISPLAY"] = display_name  # pyautogui connects at import time
            try:
                import pyautogui
            finally:
                if saved is None:
                    os.environ.pop("DISPLAY", None)
                else:
                    os.environ["DISPLAY"] = saved
        pyautogui.PAUSE = 0
        pyautogui.FAILSAFE = True
        _pyautogui = pyautogui
    from pyautogui import _pyautogui_x11 as x11
    from Xlib import display

    # A fresh connection for every session: an earlier one may be to a server that has
    # gone since (a display number is reused by the next Xvfb).
    old, x11._display = x11._display, display.Display(display_name)
    with contextlib.suppress(Exception):  # the old server may be gone: nothing to close
        old.close()
    return _pyautogui


@contextmanager
def fail_safe() -> Iterator[None]:
    """pyautogui's fail-safe as the fleet's error."""
    try:
        yield
    except Exception as exc:
        if _pyautogui is not None and isinstance(exc, _pyautogui.FailSafeException):
            raise FailSafeTriggered(
                "pyautogui's fail-safe: the mouse was moved into a corner of the screen, "
                "which stops the bot (someone wants it stopped)"
            ) from exc
        raise


def typeable(text: str) -> bool:
    """Can pyautogui type every character of ``text`` (ASCII printable, tab, newline)?"""
    return all(ch in "\t\n" or (" " <= ch <= "~") for ch in text)


def write(text: str) -> None:
    with fail_safe():
        _pyautogui.write(text, interval=0)


def press(chord: str, times: int = 1) -> None:
    keys = chord_keys(chord)
    with fail_safe():
        for _ in range(times):
            if len(keys) == 1:
                _pyautogui.press(keys[0])
            else:
                _pyautogui.hotkey(*keys, interval=0)


def click(x: int, y: int, button: str = "left", clicks: int = 1) -> None:
    with fail_safe():
        _pyautogui.click(x, y, clicks=clicks, button=button, interval=0.05)


def park(x: int, y: int) -> None:
    """Move the mouse to (x, y), out of the way of what is looked at."""
    with fail_safe():
        _pyautogui.moveTo(x, y)
