"""Opening a file in a child process with limits on its memory and its time.

A 10 KB PDF whose content stream is a flate bomb, or an XLSX whose shared strings expand a
thousandfold, must not take the run's memory or its night. The readers (pypdf,
pdfminer, openpyxl) run in one worker process, a fresh interpreter (``python -m
bots.archival.sandbox``: no copy of the run's state, no inherited locks, no re-import of
the caller's main module, no keyring key in its environment) kept between files, so that
a normal document costs a round trip, not an interpreter. Each request runs under an
address-space limit (RLIMIT_AS) and a deadline; a file that exceeds either ends the
worker (the next file gets a fresh one) and is reported as exceeding them, which the
caller turns into a failed check: a document problem, not a crash.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import resource
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..childenv import child_env

# What the worker's own start costs in address space (the interpreter, numpy, pdfminer,
# Robot Framework) is under 400 MB; the limit is the recipe's limits.inspect_mb.
_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class Exceeded:
    """Opening the file needed more than the limits allow."""

    limit: str  # "memory" or "time"
    detail: str


@dataclass(frozen=True)
class _Answer:
    value: Any
    peak_mb: float


# numpy (pulled in by openpyxl) would otherwise reserve address space for a thread per
# core, which counts against RLIMIT_AS without ever being used.
_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _serve(conn: Connection) -> None:
    """The worker: run each (function, args, memory limit) it is sent; answer each."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        function, args, limit_bytes = request
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))
        try:
            value: Any = function(*args)
        except MemoryError:
            value = Exceeded("memory", "MemoryError")
        finally:
            # The worker's own bookkeeping (the answer, the next request) must not fail.
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        conn.send(_Answer(value, _peak_mb()))
        if isinstance(value, Exceeded):
            return  # a process that ran out of memory once is not trusted again


def _peak_mb() -> float:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class _Worker:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = child_env()  # never the keyring's master key
        env.update(_THREADS)
        # The caller's import path, so that the worker imports the same bots.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                close_fds=True,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())

    def ask(
        self, function: Callable[..., Any], args: tuple[Any, ...], memory: int, seconds: float
    ) -> Any:
        """The function's answer; Exceeded when the worker exceeded a limit (it is then
        gone and must be replaced)."""
        self.conn.send((function, args, memory))
        if not self.conn.poll(seconds):
            self.stop()
            return Exceeded("time", f"still working after {seconds:g} s")
        try:
            answer: _Answer = self.conn.recv()
        except (EOFError, OSError):
            # Killed from outside (the kernel's OOM killer) or crashed in C code.
            self.stop()
            code = self.process.returncode
            return Exceeded("memory", f"the inspecting process ended (exit code {code})")
        self.peak_mb = max(getattr(self, "peak_mb", 0.0), answer.peak_mb)
        if isinstance(answer.value, Exceeded):
            self.stop()
        return answer.value

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.conn.close()
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


_lock = threading.Lock()
_worker: _Worker | None = None
_peak = 0.0


def run_bounded(function: Callable[..., Any], *args: Any, memory_mb: float, seconds: float) -> Any:
    """``function(*args)`` in the worker under the limits; Exceeded when it needed more.

    ``function`` and its arguments and answer must pickle (module-level functions,
    paths, dataclasses). Calls are serialised: one file is opened at a time.
    """
    global _worker, _peak
    with _lock:
        if _worker is None or not _worker.alive:
            _worker = _Worker()
        worker = _worker
        try:
            value = worker.ask(function, args, int(memory_mb * 1024 * 1024), seconds)
        except BaseException:
            worker.stop()  # a request half sent or half answered leaves a worker astray
            _worker = None
            raise
        _peak = max(_peak, getattr(worker, "peak_mb", 0.0))
        if isinstance(value, Exceeded):
            _worker = None
        return value


def peak_mb() -> float:
    """The largest resident size an inspecting worker reached since ``reset_peak``, in
    MiB (0 if none ran); a worker's peak counts from its start (VmHWM)."""
    return _peak


def reset_peak() -> None:
    global _peak
    with _lock:
        _peak = 0.0


def shutdown() -> None:
    """End the worker (at exit; tests may call it)."""
    global _worker
    with _lock:
        if _worker is not None:
            _worker.stop()
            _worker = None


atexit.register(shutdown)


if __name__ == "__main__":
    # By its module name: what it answers must unpickle as bots.archival.sandbox's.
    from bots.archival.sandbox import _serve as serve

    serve(Connection(int(sys.argv[1])))
