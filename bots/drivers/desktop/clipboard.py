"""The X clipboard, through xclip: what cannot be typed goes through it, and grids
copy their rows onto it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping

from ...childenv import child_env
from ...errors import TransientError, UsageError

TIMEOUT = 10  # seconds: xclip answers in milliseconds, or the display is gone
OWN_WAIT = 2.0  # seconds for xclip's child to own the clipboard
OWN_POLL = 0.005


def _xclip() -> str:
    found = shutil.which("xclip")
    if found is None:
        raise UsageError("xclip is not installed: apt-get install xclip")
    return found


def put(text: str, env: Mapping[str, str]) -> None:
    """Own the clipboard with ``text`` (xclip stays behind to serve it, as it does), and
    return only once the clipboard serves it: xclip exits before its child has taken the
    selection, and a paste meanwhile gets the old text (seen: a save dialog given back
    the name it suggested instead of the path pasted)."""
    subprocess.run(
        [_xclip(), "-selection", "clipboard", "-i"],
        input=text.encode("utf-8"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(env),
        timeout=TIMEOUT,
        check=True,
    )
    deadline = time.monotonic() + OWN_WAIT
    while get(env) != text:
        if time.monotonic() >= deadline:
            raise TransientError(f"the clipboard did not take the text within {OWN_WAIT:g}s")
        time.sleep(OWN_POLL)  # xclip's child is taking the selection; nothing to wait on


def get(env: Mapping[str, str]) -> str:
    """The clipboard's text ("" when nobody owns it)."""
    proc = subprocess.run(
        [_xclip(), "-o", "-selection", "clipboard"],
        capture_output=True,
        env=child_env(env),
        timeout=TIMEOUT,
    )
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else ""
