"""The run log: one JSON Lines file per run, one event per step and state change.

Each line is complete JSON written and flushed at once, so a crash loses at most the
line being written. Every line passes through the run's ``Redactor`` first: a secret
never reaches the file, whatever a step or an error message happened to contain.
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .redaction import Redactor


class RunLog:
    """Append events for one run; ``close`` writes the closing record."""

    def __init__(
        self,
        path: Path,
        *,
        run_id: str,
        recipe: str,
        redactor: Redactor,
        clock: Callable[[], datetime],
    ) -> None:
        self.path = path
        self.run_id = run_id
        self.recipe = recipe
        self._redactor = redactor
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        # Exclusive create: a run never appends to, or overwrites, another run's story.
        self._file: IO[str] | None = open(path, "x", encoding="utf-8")  # noqa: SIM115

    def event(
        self, event: str, *, key: str | None = None, outcome: str = "ok", **details: Any
    ) -> None:
        if self._file is None:
            raise RuntimeError(f"run log {self.path} is closed")
        record = {
            "ts": self._clock().isoformat(timespec="milliseconds"),
            "run_id": self.run_id,
            "recipe": self.recipe,
            "key": key,
            "event": event,
            "outcome": outcome,
            "details": self._redactor.scrub_data(details),
        }
        line = json.dumps(record, ensure_ascii=False, default=str)
        self._file.write(self._redactor.scrub(line) + "\n")
        self._file.flush()

    def close(self, outcome: str, **details: Any) -> None:
        if self._file is None:
            return
        # ru_maxrss is in KiB on Linux: the run's own peak memory, browser excluded.
        peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        self.event("run_end", outcome=outcome, peak_rss_mb=peak_mb, **details)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
