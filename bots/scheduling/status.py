"""`runner.py status`: per recipe, what ran last, what is due next, what waits, and
whether it is paused. Read-only; the same figures as text and as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ..ledger import Ledger
from ..ledger.schema import documents
from ..ledger.states import FailureKind, State
from .book import ScheduleBook
from .timetable import NeverFires, Timetable

PENDING = (State.LISTED, State.DOWNLOADED, State.UPLOADING, State.UPLOADED)
# A run that ended so (it stopped on an error: a recipe problem, a system failure, a
# crash) needs a person to look, whatever its documents say: the run may have stopped
# before it listed them.
FAILED_OUTCOMES = ("error", "failed")


@dataclass
class RecipeStatus:
    recipe: str
    path: str | None = None
    schedule: str | None = None  # in words; None: not scheduled
    problem: str | None = None  # the recipe does not load
    last_run: dict[str, Any] | None = None
    next_due: str | None = None  # ISO-8601, in the schedule's zone
    confirmed: int = 0
    pending: int = 0  # listed but not yet confirmed: the next run carries on with them
    failed: int = 0  # system failures: the next run retries them
    held: int = 0  # business failures: held until the recipe or the data change
    paused: bool = False
    paused_reason: str | None = None
    failures_in_row: int = 0
    last_decision: dict[str, Any] | None = None

    @property
    def last_run_failed(self) -> bool:
        return self.last_run is not None and self.last_run["outcome"] in FAILED_OUTCOMES

    @property
    def healthy(self) -> bool:
        return not (self.paused or self.problem or self.held or self.failed or self.last_run_failed)


def document_counts(ledger: Ledger, recipe: str) -> dict[str, int]:
    query = (
        select(documents.c.state, documents.c.failure_kind, func.count())
        .where(documents.c.recipe == recipe)
        .group_by(documents.c.state, documents.c.failure_kind)
    )
    counts = {"confirmed": 0, "pending": 0, "failed": 0, "held": 0}
    with ledger.engine.connect() as conn:
        for state, kind, n in conn.execute(query):
            if state == State.CONFIRMED:
                counts["confirmed"] += n
            elif state in PENDING:
                counts["pending"] += n
            elif kind == FailureKind.BUSINESS:
                counts["held"] += n
            else:
                counts["failed"] += n
    return counts


def recipe_status(
    book: ScheduleBook, recipe: str, timetable: Timetable | None, now: datetime
) -> RecipeStatus:
    counts = document_counts(book.ledger, recipe)
    status = RecipeStatus(
        recipe,
        confirmed=counts["confirmed"],
        pending=counts["pending"],
        failed=counts["failed"],
        held=counts["held"],
    )
    last = book.last_run(recipe)
    if last is not None:
        status.last_run = {
            "run_id": last.run_id,
            "started_at": last.started_at.isoformat(),
            "ended_at": last.ended_at.isoformat() if last.ended_at else None,
            "outcome": last.outcome or ("running or interrupted" if not last.ended_at else None),
            "counts": json.loads(last.counts) if last.counts else {},
        }
    standing = book.standing(recipe)
    status.paused = standing.paused
    status.paused_reason = standing.paused_reason
    status.failures_in_row = standing.failures_in_row
    events = book.events(recipe, limit=1)
    if events:
        event = events[0]
        status.last_decision = {
            "decision": event["decision"],
            "detail": event["detail"],
            "decided_at": event["decided_at"].isoformat() if event["decided_at"] else None,
        }
    if timetable is not None:
        status.schedule = timetable.schedule.describe()
        try:
            status.next_due = timetable.local(timetable.due_after(now)).isoformat()
        except NeverFires as exc:
            status.next_due = None
            status.problem = str(exc)
    return status


def as_json(statuses: list[RecipeStatus], now: datetime) -> str:
    return json.dumps(
        {"generated_at": now.isoformat(), "recipes": [asdict(s) for s in statuses]},
        ensure_ascii=False,
        indent=2,
    )


def _state(s: RecipeStatus) -> str:
    if s.paused:
        return "PAUSED"
    if s.problem:
        return "BROKEN"
    if s.last_run_failed:
        return "LAST RUN FAILED"
    return "ok"


def as_lines(statuses: list[RecipeStatus]) -> list[str]:
    lines = []
    for s in statuses:
        lines.append(f"{s.recipe}: {_state(s)}")
        if s.problem:
            lines.append(f"  problem: {s.problem}")
        if s.paused:
            lines.append(f"  paused: {s.paused_reason}")
        lines.append(f"  schedule: {s.schedule or 'none (runs only by hand)'}")
        if s.next_due and not s.paused:
            lines.append(f"  next due: {s.next_due}")
        if s.last_run:
            run = s.last_run
            counts = ", ".join(f"{k} {v}" for k, v in run["counts"].items() if v)
            started = datetime.fromisoformat(run["started_at"]).astimezone()  # this machine's
            lines.append(
                f"  last run: {started:%Y-%m-%d %H:%M %Z} {run['outcome']}"
                + (f" ({counts})" if counts else "")
            )
        else:
            lines.append("  last run: never")
        lines.append(
            f"  documents: {s.confirmed} confirmed, {s.pending} pending, "
            f"{s.failed} failed (retried), {s.held} held"
        )
        if s.last_decision:
            d = s.last_decision
            lines.append(f"  last decision: {d['decided_at']} {d['decision']}: {d['detail']}")
    return lines
