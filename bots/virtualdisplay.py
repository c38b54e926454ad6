"""A private virtual X server (Xvfb) for desktop work that must not touch a real screen.

The desktop demo runs in one (a demo that typed into the user's own desktop would be
rude), and so do the tests, bare or with a small window manager (openbox). Under cron,
`xvfb-run` does the same job; this is for a process that starts its own.

Each server takes a free display number from Xvfb itself (``-displayfd``), listens on no
TCP port, and is stopped, with its window manager, by PID. Its DISPLAY goes into the
environment of the processes that should use it, never into this process's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import UsageError

SCREEN = "1280x1024x24"  # the desktop driver's default least screen (width x height x depth)
START_TIMEOUT = 15.0  # seconds: a bound on Xvfb's and openbox's start-up
STOP_TIMEOUT = 5.0


class VirtualDisplayMissing(UsageError):
    """Xvfb (or the window manager asked for) is not installed."""


@dataclass(frozen=True)
class VirtualDisplay:
    display: str  # ":N"
    wm: str | None  # "openbox", or None on a bare server

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with DISPLAY set to this server."""
        env = dict(os.environ if base is None else base)
        env["DISPLAY"] = self.display
        env["XDG_SESSION_TYPE"] = "x11"
        env.pop("WAYLAND_DISPLAY", None)
        return env


def _tools_env() -> dict[str, str]:
    # Xvfb and openbox need nothing of ours: above all not the keyring's master key.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


@contextmanager
def virtual_display(wm: bool = False, screen: str = SCREEN) -> Iterator[VirtualDisplay]:
    """An Xvfb of ``screen`` (WxHxDEPTH), with openbox on it when ``wm``."""
    missing = [tool for tool in ("Xvfb", *(["openbox"] if wm else [])) if not shutil.which(tool)]
    if missing:
        packages = " ".join("xvfb" if tool == "Xvfb" else tool for tool in missing)
        raise VirtualDisplayMissing(
            f"{', '.join(missing)} is not installed: apt-get install {packages} "
            "(scripts/setup.sh installs it)"
        )
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_tools_env(),
        # Its own session: a Ctrl-C meant for the program (which finishes the document
        # in hand first) must not take the display away under it; `finally` stops it.
        start_new_session=True,
    )
    os.close(write_fd)
    manager: subprocess.Popen[bytes] | None = None
    try:
        display = VirtualDisplay(f":{_read_display_number(read_fd, server)}", None)
        if wm:
            display = VirtualDisplay(display.display, "openbox")
            manager = subprocess.Popen(
                ["openbox", "--sm-disable"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=display.env(_tools_env()),
                start_new_session=True,
            )
            _wait_for_wm(display)
        yield display
    finally:
        os.close(read_fd)
        for process in (manager, server):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=STOP_TIMEOUT)


def _read_display_number(fd: int, server: subprocess.Popen[bytes]) -> int:
    """Xvfb writes its display number and a newline to ``-displayfd`` once it is ready."""
    deadline = time.monotonic() + START_TIMEOUT
    text = b""
    os.set_blocking(fd, False)
    while not text.endswith(b"\n"):
        if server.poll() is not None:
            raise UsageError(f"Xvfb exited with code {server.returncode} at start-up")
        if time.monotonic() > deadline:
            raise UsageError(f"Xvfb did not report a display within {START_TIMEOUT:.0f} s")
        try:
            text += os.read(fd, 64)
        except BlockingIOError:
            time.sleep(0.02)  # polling a pipe Xvfb writes once; bounded by the deadline
    return int(text.strip())


def _wait_for_wm(display: VirtualDisplay) -> None:
    """openbox is ready once it has claimed the screen (_NET_SUPPORTING_WM_CHECK set)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"],
            capture_output=True,
            text=True,
            env=display.env(_tools_env()),
            timeout=STOP_TIMEOUT,
        )
        if "window id" in probe.stdout:
            return
        time.sleep(0.05)  # polling the root window's property; bounded by the deadline
    raise UsageError(f"openbox did not start on {display.display} within {START_TIMEOUT:.0f} s")
