"""Real X servers for the desktop tests: Xvfb, bare or with a small window manager.

A bare Xvfb has no window manager: nothing gives a new window the keyboard focus, and a
click does not either. With openbox running, focus follows new windows the way a
desktop's does. The desktop driver must work on both, so the tests run on both. The
servers are the product's own (bots.virtualdisplay, which the desktop demo uses too).
"""

from __future__ import annotations

from bots.virtualdisplay import SCREEN, VirtualDisplay, virtual_display

XServer = VirtualDisplay
xvfb = virtual_display

__all__ = ["SCREEN", "XServer", "xvfb"]
