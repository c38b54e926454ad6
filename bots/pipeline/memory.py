"""Peak memory per run, not per process: a scheduler runs many runs in one process.

Linux keeps a process's peak resident size (VmHWM) and lets the process reset it by
writing 5 to /proc/self/clear_refs; elsewhere, or where that is refused, the process's
lifetime peak (ru_maxrss) is the best figure there is.
"""

from __future__ import annotations

import resource
from pathlib import Path

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak() -> bool:
    """Start measuring the peak from now; False when the system cannot."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_mb() -> float:
    """The peak resident size since the last reset, in MiB (the browser excluded)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # the kernel says kB
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
