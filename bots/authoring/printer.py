"""What ``runner.py try`` prints as the steps run: each step's line, kind, what it
matched and how long it took; the stage runner's retries; the pictures ``--shots``
takes. Everything goes through the console's redactor: a credential fetched for the
trial is registered there, so no line can show it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..drivers import Diagnosis, Match, ScreenshotRefused, StepReport
from ..recipe import LoadedRecipe
from ..recipe.steps import StepBase

if TYPE_CHECKING:
    from ..cli.app import Console
    from ..drivers import Session

MATCHED_SHOWN = 3  # selectors per step line (a `fill` of a whole form has many)


class Stop(Exception):
    """Raised before a step by whoever watches (``explain``: the step it explains)."""

    def __init__(self, step: StepBase) -> None:
        super().__init__(f"stopped before line {step.line}")
        self.step = step


class StepPrinter:
    """The tracer of one system's session, and the stage runner's event log."""

    def __init__(
        self,
        console: Console,
        loaded: LoadedRecipe,
        shots: Path | None = None,
        stop_before: StepBase | None = None,
    ) -> None:
        self.console = console
        self.loaded = loaded
        self.shots = shots
        self.stop_before = stop_before
        self.session: Session | None = None  # set once the session is open (for --shots)
        self.taken = 0
        # `frame` steps begun whose first inner step has not reported yet: their line is
        # said just before it (a frame whose `when` is false has no inner steps).
        self.frames: list[StepBase] = []

    # -- Tracer ---------------------------------------------------------------------

    def before(self, step: StepBase, depth: int) -> None:
        if step is self.stop_before:
            raise Stop(step)
        if step.kind == "frame":  # its steps report before it ends: say where they run
            self.frames.append(step)

    def after(self, report: StepReport) -> None:
        if report.kind == "frame":
            if self.frames and self.frames[-1].line == report.line:
                self.frames.pop()  # it had no inner step to say it before
            elif report.ran:
                return  # said before its first inner step
        for depth, frame in enumerate(self.frames, start=report.depth - len(self.frames)):
            self._line(depth, frame.line, "frame", f"into {frame.args.selector}")
        self.frames.clear()
        if not report.ran:
            self._line(report.depth, report.line, report.kind, "skipped: its `when` is false")
            return
        said = [_matched(m) for m in report.matched[:MATCHED_SHOWN]]
        if len(report.matched) > MATCHED_SHOWN:
            said.append(f"(+{len(report.matched) - MATCHED_SHOWN} more)")
        if report.target:
            said.append(report.target)
        if report.kind in ("goto", "submit") or not said:
            said.append(f"at {report.location}")
        self._line(report.depth, report.line, report.kind, "; ".join(said), report.seconds)
        self._shoot(report)

    def _line(
        self, depth: int, line: int, kind: str, what: str, seconds: float | None = None
    ) -> None:
        took = f"  {seconds:.2f}s" if seconds is not None else ""
        indent = "  " * depth
        self.console.out(f"  {self.loaded.path.name}:{line:<4} {indent}{kind:<10} {what}{took}")

    def _shoot(self, report: StepReport) -> None:
        if self.shots is None or self.session is None:
            return
        self.taken += 1
        path = self.shots / f"{self.taken:03d}-{report.phase}-line{report.line}-{report.kind}.png"
        try:
            self.session.screenshot(path)
        except ScreenshotRefused as exc:
            self.console.out(f"      (no picture: {exc})")
            return
        self.console.out(f"      picture: {path}")

    # -- EventLog (the stage runner's and the driver's events) ------------------------

    def event(
        self, event: str, *, key: str | None = None, outcome: str = "ok", **details: Any
    ) -> None:
        if event == "table_page":
            self.console.out(
                f"      page {details.get('page')}: {details.get('rows')} rows "
                f"at {details.get('url')}"
            )
        elif event == "retry":
            self.console.out(
                f"  retry {details.get('stage')} in {details.get('after_s')}s "
                f"(attempt {details.get('attempt')} failed: {details.get('error')})"
            )
        elif event in ("session_lost", "logout_failed"):
            self.console.out(f"  {event.replace('_', ' ')}: {details.get('error')}")


def _matched(match: Match) -> str:
    if match.count < 0:
        return f"{match.selector} {match.first}"
    found = f"{match.selector} -> {match.count}"
    if match.score is not None:
        found += f" (score {match.score:.2f})"
    return f"{found}: {match.first}" if match.first else found


def show_diagnosis(console: Console, diagnosis: Diagnosis) -> None:
    """What the page showed where the step failed."""
    console.err(f"  at:      {diagnosis.location}")
    console.err(f"  title:   {diagnosis.title!r}")
    console.err(f"  near:    {diagnosis.near}")
    if diagnosis.closest:
        console.err("  closest matches (what they have of the selector, and lack):")
        for line in diagnosis.closest:
            console.err(f"    {line}")
    if diagnosis.frames:
        console.err("  frames:")
        for frame in diagnosis.frames:
            console.err(f"    {frame}")
