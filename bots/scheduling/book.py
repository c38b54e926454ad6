"""The scheduler's records in the ledger: each recipe's standing (``schedule_state``)
and every decision taken (``schedule_events``), plus what it reads of the run history.

Its own times are stored in UTC (SQLite keeps no offset: a naive value read back is
UTC); the runs table's are the ledger clock's (``Ledger.wall_time`` reads them).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, or_, select, update

from ..ledger import Ledger
from ..ledger.schema import runs, schedule_events, schedule_state


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Standing:
    """A recipe's scheduling state: what was last dealt with, and whether it is paused."""

    recipe: str
    last_due_at: datetime | None = None
    failures_in_row: int = 0
    paused_at: datetime | None = None
    paused_reason: str | None = None

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


@dataclass(frozen=True)
class LastRun:
    run_id: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    counts: str | None


class ScheduleBook:
    def __init__(self, ledger: Ledger, scheduler: str) -> None:
        self.ledger = ledger
        self.scheduler = f"{scheduler} on {socket.gethostname()}"

    # -- reading -----------------------------------------------------------------

    def standing(self, recipe: str) -> Standing:
        with self.ledger.engine.connect() as conn:
            row = (
                conn.execute(select(schedule_state).where(schedule_state.c.recipe == recipe))
                .mappings()
                .first()
            )
        if row is None:
            return Standing(recipe)
        return Standing(
            recipe,
            last_due_at=utc(row["last_due_at"]),
            failures_in_row=row["failures_in_row"],
            paused_at=utc(row["paused_at"]),
            paused_reason=row["paused_reason"],
        )

    def last_run(self, recipe: str) -> LastRun | None:
        """The latest capture of ``recipe`` (any scheduler, or by hand)."""
        query = (
            select(runs)
            .where(
                runs.c.recipe == recipe, or_(runs.c.action.is_(None), runs.c.action == "capture")
            )
            .order_by(runs.c.started_at.desc())
            .limit(1)
        )
        with self.ledger.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        ended = row["ended_at"]
        return LastRun(
            run_id=row["run_id"],
            started_at=self.ledger.wall_time(row["started_at"]).astimezone(UTC),
            ended_at=self.ledger.wall_time(ended).astimezone(UTC) if ended else None,
            outcome=row["outcome"],
            counts=row["counts"],
        )

    def last_started(self, recipe: str) -> datetime | None:
        last = self.last_run(recipe)
        return last.started_at if last else None

    def events(self, recipe: str, limit: int = 20) -> list[dict[str, Any]]:
        query = (
            select(schedule_events)
            .where(schedule_events.c.recipe == recipe)
            .order_by(schedule_events.c.id.desc())
            .limit(limit)
        )
        with self.ledger.engine.connect() as conn:
            found = [dict(row) for row in conn.execute(query).mappings()]
        for row in found:
            row["due_at"], row["decided_at"] = utc(row["due_at"]), utc(row["decided_at"])
        return found

    # -- writing -----------------------------------------------------------------

    def record(
        self,
        recipe: str,
        decision: str,
        detail: str,
        now: datetime,
        *,
        due: datetime | None = None,
        exit_code: int | None = None,
    ) -> None:
        with self.ledger.engine.begin() as conn:
            conn.execute(
                insert(schedule_events).values(
                    recipe=recipe,
                    due_at=utc(due),
                    decided_at=utc(now),
                    decision=decision,
                    detail=detail,
                    exit_code=exit_code,
                    scheduler=self.scheduler,
                )
            )

    def update(self, recipe: str, now: datetime, **values: Any) -> Standing:
        """Change ``recipe``'s standing (creating it), returning the new one."""
        values = {k: utc(v) if isinstance(v, datetime) else v for k, v in values.items()}
        with self.ledger.engine.begin() as conn:
            changed = conn.execute(
                update(schedule_state)
                .where(schedule_state.c.recipe == recipe)
                .values(updated_at=utc(now), **values)
            )
            if changed.rowcount == 0:
                conn.execute(
                    insert(schedule_state).values(
                        recipe=recipe,
                        updated_at=utc(now),
                        **{"failures_in_row": 0, **values},
                    )
                )
        return self.standing(recipe)
