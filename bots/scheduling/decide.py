"""Whether a scheduled recipe runs now, and what a finished run does to its standing.

One answer for every way a schedule is kept: `serve` asks at each due time and once at
start (catch-up after a restart); `run --scheduled` asks when cron or systemd starts it
(a cron line per UTC offset, systemd's `Persistent=` catch-up after a boot). What was
dealt with comes from the ledger: the latest due time run or skipped (``Standing``) and
the latest capture started by anyone (the run history), so a run by hand at 02:31
counts for 02:30, and a restart finds what it missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..errors import (
    EXIT_DOCUMENT_FAILURES,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SYSTEM,
    EXIT_USAGE,
    STOP_EXIT_CODES,
)
from .book import ScheduleBook, Standing
from .timetable import Timetable

SHOWN = 3  # missed due times named in a message; the rest are counted


@dataclass(frozen=True)
class Decision:
    run: bool
    kind: str  # on_time, missed_run_once, missed_skip, paused, not_due, first_time
    reason: str
    due: datetime | None = None
    missed: list[datetime] = field(default_factory=list)


def _when(timetable: Timetable, instants: list[datetime]) -> str:
    shown = ", ".join(timetable.local(i).strftime("%Y-%m-%d %H:%M %Z") for i in instants[:SHOWN])
    more = len(instants) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def decide(
    timetable: Timetable, standing: Standing, last_started: datetime | None, now: datetime
) -> Decision:
    schedule = timetable.schedule
    if standing.paused:
        return Decision(
            False,
            "paused",
            f"paused since {standing.paused_at:%Y-%m-%d %H:%M} UTC: {standing.paused_reason}",
        )
    latest = timetable.last_due(now)
    if latest is None:
        return Decision(False, "not_due", "no due time yet")
    handled = max((t for t in (standing.last_due_at, last_started) if t is not None), default=None)
    if handled is not None and latest <= handled:
        return Decision(False, "not_due", f"nothing due since {_when(timetable, [handled])}")
    on_time = now - latest <= timetable.grace
    if handled is None:
        if on_time:
            return Decision(True, "on_time", f"due at {_when(timetable, [latest])}", latest)
        # No history at all: a new schedule owes nothing for the time before it existed.
        return Decision(
            False,
            "first_time",
            f"no run recorded yet; the first is due at "
            f"{_when(timetable, [timetable.due_after(now)])}",
            latest,
        )
    owed = list(timetable.due_between(handled, now))
    missed = owed[:-1] if on_time else owed
    if on_time:
        note = f"; missed before it: {_when(timetable, missed)}" if missed else ""
        return Decision(
            True, "on_time", f"due at {_when(timetable, [latest])}{note}", latest, missed
        )
    what = f"missed {len(missed)} run{'s' if len(missed) != 1 else ''} ({_when(timetable, missed)})"
    if schedule.on_missed == "run_once":
        return Decision(
            True,
            "missed_run_once",
            f"{what}; on_missed: run_once, so it runs once now",
            latest,
            missed,
        )
    return Decision(
        False,
        "missed_skip",
        f"{what}; on_missed: skip, so it waits for {_when(timetable, [timetable.due_after(now)])}",
        latest,
        missed,
    )


def run_failed(exit_code: int) -> bool | None:
    """Whether a finished run counts against the recipe: True (the run itself failed:
    login, recipe, credential, system down, a crash), False (it ran: documents that
    failed are the ledger's business, retried by the next run), None (it did not run:
    the recipe was locked by another run, or it was stopped by a signal)."""
    if exit_code in (EXIT_OK, EXIT_DOCUMENT_FAILURES):
        return False
    if exit_code == EXIT_LOCKED or exit_code in STOP_EXIT_CODES.values():
        return None
    return True


def record_decision(book: ScheduleBook, recipe: str, decision: Decision, now: datetime) -> None:
    """Log the decision; a run or a skip deals with its due time (a crash in the run
    does not make it due again: the next run carries on from the ledger)."""
    book.record(recipe, decision.kind, decision.reason, now, due=decision.due)
    if decision.kind in ("on_time", "missed_run_once", "missed_skip") and decision.due:
        book.update(recipe, now, last_due_at=decision.due)


def record_finish(
    book: ScheduleBook,
    recipe: str,
    pause_after: int,
    exit_code: int,
    now: datetime,
    *,
    due: datetime | None = None,
) -> Standing:
    """Count the run for or against the recipe; pause it after ``pause_after`` failed
    runs in a row (reported, not retried forever); return its standing."""
    failed = run_failed(exit_code)
    if failed is None:
        book.record(
            recipe,
            "not_run",
            f"exit {exit_code}: {_exit_meaning(exit_code)}",
            now,
            due=due,
            exit_code=exit_code,
        )
        return book.standing(recipe)
    if not failed:
        book.record(
            recipe,
            "finished",
            f"exit {exit_code}: {_exit_meaning(exit_code)}",
            now,
            due=due,
            exit_code=exit_code,
        )
        return book.update(recipe, now, failures_in_row=0)
    count = book.standing(recipe).failures_in_row + 1
    book.record(
        recipe,
        "failed",
        f"exit {exit_code}: {_exit_meaning(exit_code)} ({count} in a row)",
        now,
        due=due,
        exit_code=exit_code,
    )
    if count < pause_after:
        return book.update(recipe, now, failures_in_row=count)
    reason = (
        f"{count} scheduled runs failed in a row (pause_after: {pause_after}); the last "
        f"exited {exit_code}. Fix the cause (see its run log), then "
        f"`python runner.py resume {recipe}`"
    )
    book.record(recipe, "paused", reason, now, due=due, exit_code=exit_code)
    return book.update(recipe, now, failures_in_row=count, paused_at=now, paused_reason=reason)


def resume(book: ScheduleBook, recipe: str, now: datetime) -> Standing:
    book.record(recipe, "resumed", "resumed by hand", now)
    return book.update(recipe, now, failures_in_row=0, paused_at=None, paused_reason=None)


def _exit_meaning(code: int) -> str:
    meanings = {
        EXIT_OK: "all archived",
        EXIT_DOCUMENT_FAILURES: "some documents failed",
        EXIT_USAGE: "usage, recipe or credential error",
        EXIT_SYSTEM: "system failure",
        EXIT_LOCKED: "another run of the recipe was running",
    }
    signals = {v: f"stopped by {k}" for k, v in STOP_EXIT_CODES.items()}
    if code < 0:
        return f"killed by signal {-code}"
    return meanings.get(code) or signals.get(code) or "unexpected exit"
