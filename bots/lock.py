"""One run per recipe at a time, on this machine.

``flock`` is held on ``logs/locks/<recipe>.lock`` for the whole run. The kernel drops it
when the holder dies, even by SIGKILL, so a lock left behind by a dead process is simply
taken; the file still names that process, which is how the take-over is reported.
(Python opens files non-inheritable, so Chromium children never hold it.)
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import Locked

POLL_SECONDS = 0.5  # how often --wait looks again; there is no event to wait on


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RecipeLock:
    def __init__(self, directory: Path, recipe: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{recipe}.lock"
        self.recipe = recipe
        self._fd: int | None = None
        self.taken_over: dict[str, Any] | None = None  # the dead holder we replaced

    def acquire(self, *, wait: float | None, now: Callable[[], datetime], run_id: str = "") -> None:
        """Take the lock, or raise ``Locked`` (at once, or after ``wait`` seconds)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is None or time.monotonic() >= deadline:
                    holder = self._read(fd)
                    os.close(fd)
                    raise Locked(self._busy_message(holder, waited=wait)) from None
                time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        previous = self._read(fd)
        if (
            previous.get("pid")
            and previous.get("host") == socket.gethostname()
            and previous["pid"] != os.getpid()
            and not _alive(int(previous["pid"]))
        ):
            self.taken_over = previous  # it died holding the lock (SIGKILL, a reboot)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": now().isoformat(timespec="seconds"),
            "run_id": run_id,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # a clean end leaves no holder to report
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @staticmethod
    def _read(fd: int) -> dict[str, Any]:
        raw = os.pread(fd, 4096, 0)
        try:
            data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _busy_message(self, holder: dict[str, Any], waited: float | None) -> str:
        who = (
            f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"
            if holder
            else "another process"
        )
        how = f"after waiting {waited:g}s" if waited else "at once"
        return (
            f"recipe {self.recipe!r} is already running ({who}); this run exits {how}. "
            "Nothing to do: the running one will finish the work (use --wait to queue)."
        )
