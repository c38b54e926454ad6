"""The X clipboard, through xclip: what cannot be typed goes through it, and grids
copy their rows onto it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping

from ...childenv import child_env
from ...errors import SystemFailure, UsageError

TIMEOUT = 10  # seconds: xclip answers in milliseconds, or the display is gone


def _xclip() -> str:
    found = shutil.which("xclip")
    if found is None:
        raise UsageError("xclip is not installed: apt-get install xclip")
    return found


def put(text: str, env: Mapping[str, str]) -> None:
    """Own the clipboard with ``text`` (xclip stays behind to serve it, as it does).

    Returns once the clipboard really holds ``text``: xclip's parent exits before its
    serving child has claimed the clipboard, and a paste in between pastes what was
    there before (a Save-As dialog then saved under its own suggested name, elsewhere).
    """
    subprocess.run(
        [_xclip(), "-selection", "clipboard", "-i"],
        input=text.encode("utf-8"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(env),
        timeout=TIMEOUT,
        check=True,
    )
    deadline = time.monotonic() + TIMEOUT
    while get(env) != text:
        if time.monotonic() >= deadline:
            raise SystemFailure(f"the clipboard did not take the text within {TIMEOUT} s")
        time.sleep(0.01)  # polling the clipboard's owner; bounded by the deadline


def get(env: Mapping[str, str]) -> str:
    """The clipboard's text ("" when nobody owns it)."""
    proc = subprocess.run(
        [_xclip(), "-o", "-selection", "clipboard"],
        capture_output=True,
        env=child_env(env),
        timeout=TIMEOUT,
    )
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else ""
