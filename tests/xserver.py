"""Real X servers for the desktop tests: Xvfb, bare or with a small window manager.

A bare Xvfb has no window manager: nothing gives a new window the keyboard focus, and a
click does not either. With openbox running, focus follows new windows the way a
desktop's does. The desktop driver must work on both, so the tests run on both.

Each server gets a free display number from Xvfb itself (``-displayfd``), listens on no
TCP port, and is stopped (with its window manager) by PID when the test is done. The
DISPLAY goes into the environment of the processes a test starts, never into this
process's own: other tests check what happens without a display.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SCREEN = "1280x1024x24"
START_TIMEOUT = 15.0  # seconds: a bound on Xvfb's and openbox's start-up


@dataclass(frozen=True)
class XServer:
    display: str  # ":N"
    wm: str | None  # "openbox", or None on a bare server

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with DISPLAY set to this server."""
        env = dict(os.environ if base is None else base)
        env["DISPLAY"] = self.display
        env["XDG_SESSION_TYPE"] = "x11"
        env.pop("WAYLAND_DISPLAY", None)
        return env


def missing_tools(wm: bool = False) -> list[str]:
    needed = ["Xvfb", *(["openbox"] if wm else [])]
    return [tool for tool in needed if shutil.which(tool) is None]


@contextmanager
def xvfb(wm: bool = False, screen: str = SCREEN) -> Iterator[XServer]:
    """An Xvfb of ``screen`` (WxHxDEPTH), with openbox on it when ``wm``."""
    missing = missing_tools(wm)
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} not installed: scripts/setup.sh installs them (apt)"
        )
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    os.close(write_fd)
    manager: subprocess.Popen[bytes] | None = None
    try:
        number = _read_display_number(read_fd, server)
        display = XServer(f":{number}", "openbox" if wm else None)
        if wm:
            manager = subprocess.Popen(
                ["openbox", "--sm-disable"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=display.env({"PATH": os.environ.get("PATH", "/usr/bin:/bin")}),
            )
            _wait_for_wm(display)
        yield display
    finally:
        os.close(read_fd)
        for process in (manager, server):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def _read_display_number(fd: int, server: subprocess.Popen[bytes]) -> int:
    """Xvfb writes its display number, then a newline, to ``-displayfd`` once ready."""
    deadline = time.monotonic() + START_TIMEOUT
    text = b""
    os.set_blocking(fd, False)
    while not text.endswith(b"\n"):
        if server.poll() is not None:
            raise RuntimeError(f"Xvfb exited with code {server.returncode} at start-up")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Xvfb did not report a display within {START_TIMEOUT:.0f} s")
        try:
            chunk = os.read(fd, 64)
        except BlockingIOError:
            chunk = b""
        if chunk:
            text += chunk
        else:
            time.sleep(0.02)  # polling a pipe Xvfb writes once; bounded by the deadline
    return int(text.strip())


def _wait_for_wm(display: XServer) -> None:
    """openbox is ready once it has claimed the screen (_NET_SUPPORTING_WM_CHECK set)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"],
            capture_output=True,
            text=True,
            env=display.env(),
            timeout=5,
        )
        if "window id" in probe.stdout:
            return
        time.sleep(0.05)  # polling the root window's property; bounded by the deadline
    raise RuntimeError(f"openbox did not start on {display.display} within {START_TIMEOUT:.0f} s")
