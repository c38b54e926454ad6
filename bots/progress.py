"""Progress for people at a terminal, silence for cron.

On a terminal, ``run``, ``inventory`` and ``reconcile`` show a rich progress bar on
standard error (it disappears when done, leaving the summary line). Without a terminal
(cron, CI, a pipe) nothing is drawn: the summary line and the errors are the whole output,
which is what IT staff want in their mail.
"""

from __future__ import annotations

import os
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as _RichProgress


class Progress(Protocol):
    def stage(self, description: str, total: int | None = None) -> None:
        """Start a stage (ending the one before): ``total`` steps, or unknown."""

    def advance(self, steps: int = 1) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    """Draws nothing: for cron and pipes."""

    def stage(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class BarProgress:
    """A rich progress bar on ``console``; one line per stage, cleared when closed."""

    def __init__(self, console: Console) -> None:
        self._bar = _RichProgress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._bar.start()

    def stage(self, description: str, total: int | None = None) -> None:
        if self._task is not None:
            self._bar.update(self._task, visible=False)
        self._task = self._bar.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, steps)

    def close(self) -> None:
        self._bar.stop()


def progress_for(stream: TextIO) -> Progress:
    """A bar when ``stream`` is a terminal (and TERM is not ``dumb``), else nothing."""
    if not stream.isatty() or os.environ.get("TERM") == "dumb":
        return NullProgress()
    return BarProgress(Console(file=stream))
