"""Where the CPU goes: CPU-seconds of every process started during a measurement, by kind.

A 2-core machine running a runner, its Chromiums, two simulators and PostgreSQL is
CPU-bound long before the legacy systems' latency is the limit, so a throughput figure
means little without this split. Linux only (reads /proc).

    with CpuMeter() as meter:
        ...                                  # start and run things
    print(meter.per_document(reports))

Processes are sampled every ``interval`` seconds (utime + stime of /proc/PID/stat); one
that ends between two samples loses at most its last interval. Counted: this process's
descendants started after the meter (so that another benchmark on the machine is not),
and, with ``postgres=True``, every PostgreSQL backend started after it (a connection's
backend is the server's child, not ours).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")

# First match wins: (kind, words any of which in the command line marks it).
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("chromium", ("chromium", "chrome")),
    ("driver", ("playwright", "node ")),
    ("erp-sim", ("sims.erp",)),
    ("archive-sim", ("sims.archive",)),
    ("postgres", ("postgres",)),
    ("runner", ("runner.py",)),
    ("script", ("handwritten.py",)),
    ("sandbox", ("bots.archival.sandbox",)),
)


def kind_of(cmdline: str) -> str:
    for kind, words in KINDS:
        if any(w in cmdline for w in words):
            return kind
    return "other"


def boot_ticks() -> int:
    """Ticks since boot now (the unit of /proc/PID/stat's start time)."""
    return int(float(Path("/proc/uptime").read_text().split()[0]) * TICKS)


@dataclass(frozen=True)
class Seen:
    parent: int
    ticks: int
    cmdline: str


def sample() -> dict[tuple[int, int], Seen]:
    """(pid, start) -> what /proc says of every process readable now."""
    seen: dict[tuple[int, int], Seen] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended while we looked
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 of stat(5): ppid 4, utime 14, stime 15, starttime 22.
        ticks = int(fields[11]) + int(fields[12])
        seen[(int(entry.name), int(fields[19]))] = Seen(int(fields[1]), ticks, cmdline)
    return seen


class CpuMeter:
    """Samples /proc in a thread; ``seconds`` sums CPU-seconds by kind after exit."""

    def __init__(self, interval: float = 0.25, postgres: bool = False) -> None:
        self.interval = interval
        self.postgres = postgres
        self._since = 0
        self._ours = {os.getpid()}  # pids known to descend from this process
        self._last: dict[tuple[int, int], Seen] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpumeter", daemon=True)
        self.wall_ticks = 0

    def __enter__(self) -> CpuMeter:
        self._since = boot_ticks()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._take()
        self.wall_ticks = boot_ticks() - self._since

    def _take(self) -> None:
        now = sample()
        # Parents before children: a pid's ancestry is settled in start order.
        for key in sorted(now, key=lambda k: k[1]):
            seen = now[key]
            if key[1] < self._since:
                continue
            known = self._last.get(key)
            if known is not None or seen.parent in self._ours:  # (reparented orphans stay)
                self._ours.add(key[0])
            elif not (self.postgres and seen.cmdline.startswith("postgres:")):
                continue
            if known is not None and not seen.cmdline:
                # A zombie (ended, not yet reaped) has no command line: keep the one seen.
                seen = Seen(seen.parent, seen.ticks, known.cmdline)
            self._last[key] = seen

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._take()

    @property
    def seconds(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for seen in self._last.values():
            out[kind_of(seen.cmdline)] += seen.ticks / TICKS
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def heaviest(self, count: int = 8) -> list[tuple[float, str]]:
        """The ``count`` processes that took most CPU: (seconds, command line)."""
        ranked = sorted(self._last.values(), key=lambda seen: -seen.ticks)[:count]
        return [(seen.ticks / TICKS, seen.cmdline[:160]) for seen in ranked]

    def per_document(self, documents: int) -> str:
        """One line: CPU-seconds per document by kind, their total and the cores kept busy."""
        split = self.seconds
        total = sum(split.values())
        parts = " ".join(f"{k}={v / documents:.3f}" for k, v in split.items())
        busy = total / (self.wall_ticks / TICKS) if self.wall_ticks else 0.0
        return f"cpu-s/doc total={total / documents:.3f} [{parts}] cores_busy={busy:.2f}"
