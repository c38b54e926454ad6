"""The ledger's records beside its documents: runs, checks, events, sightings, reviews and
inventory snapshots; only added to, except a run being closed (compare-and-set too).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import RowMapping

from .schema import checks, events, inventory, reviews, runs, sightings
from .states import LedgerError


class Records:
    """The part of ``Ledger`` that writes and reads the records (see ``store``)."""

    engine: Engine
    _clock: Callable[[], datetime]

    # -- runs --------------------------------------------------------------------

    def start_run(self, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(runs).values(started_at=self._clock(), **values))

    def finish_run(
        self,
        run_id: str,
        outcome: str,
        counts: dict[str, int],
        *,
        log: tuple[int, str, str] | None = None,
    ) -> None:
        """Close a run that is still open; one closed already (by another process that
        took it for dead) is refused rather than overwritten.

        ``log`` is its run log as it closed: (lines, first prev, last hash), what the
        index line on its machine records. It is kept even when the run is refused: the
        file is closed whatever the ledger says of the run, and verification needs it.
        """
        sealed = (
            {}
            if log is None
            else {"log_lines": log[0], "log_first_prev": log[1], "log_last_hash": log[2]}
        )
        with self.engine.begin() as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id, *_open_run())
                .values(
                    ended_at=self._clock(), outcome=outcome, counts=json.dumps(counts), **sealed
                )
            )
            if result.rowcount != 1 and sealed:
                conn.execute(
                    update(runs)
                    .where(runs.c.run_id == run_id, runs.c.log_last_hash.is_(None))
                    .values(**sealed)
                )
            refused = result.rowcount != 1
            if refused:
                found = conn.execute(select(runs.c.outcome).where(runs.c.run_id == run_id))
                was = found.scalar_one_or_none()
        if refused:  # raised after the commit, which keeps the log's record
            raise LedgerError(
                f"run {run_id} changed under us: it is not open "
                f"(outcome {was!r}), so it was not closed as {outcome}"
            )

    def close_interrupted_runs(self, recipe: str, current_run: str) -> list[str]:
        """Runs of ``recipe`` that never finished (killed): mark them, return their ids.

        Called while holding the recipe's lock, so none of them can still be running
        on this machine. Each is marked only if it is still open.
        """
        closed = []
        with self.engine.begin() as conn:
            stale = conn.execute(
                select(runs.c.run_id).where(
                    runs.c.recipe == recipe, runs.c.run_id != current_run, *_open_run()
                )
            ).scalars()
            for run_id in list(stale):
                result = conn.execute(
                    update(runs)
                    .where(runs.c.run_id == run_id, *_open_run())
                    .values(outcome="interrupted")
                )
                if result.rowcount == 1:
                    closed.append(run_id)
        return closed

    def close_interrupted_run(self, run_id: str) -> bool:
        """Mark run ``run_id`` interrupted if it is still open (its process is known to be
        dead: a fleet worker whose run lease expired); True when this call marked it."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id, *_open_run())
                .values(outcome="interrupted")
            )
            return result.rowcount == 1

    def runs(self, recipe: str | None = None) -> Iterator[RowMapping]:
        query = select(runs).order_by(runs.c.started_at)
        if recipe:
            query = query.where(runs.c.recipe == recipe)
        with self.engine.connect() as conn:
            yield from conn.execute(query).mappings().all()

    # -- evidence ------------------------------------------------------------------

    def record_checks(
        self, recipe: str, key: str, run_id: str, results: list[dict[str, str]]
    ) -> None:
        """One row per check: ``property``, ``name``, ``outcome``, ``reason``."""
        if not results:
            return
        now = self._clock()
        with self.engine.begin() as conn:
            conn.execute(
                insert(checks),
                [
                    {"recipe": recipe, "source_key": key, "run_id": run_id, "checked_at": now, **r}
                    for r in results
                ],
            )

    def record_event(self, **values: Any) -> None:
        """A PREMIS-style event (see bots.archival.evidence)."""
        with self.engine.begin() as conn:
            conn.execute(insert(events).values(**values))

    # -- listings and reviews ------------------------------------------------------------

    def record_sightings(
        self, run_id: str, recipe: str, rows: list[tuple[str, dict[str, Any]]]
    ) -> None:
        """What one run's listing showed: (key, row) pairs, in the order seen."""
        if not rows:
            return
        now = self._clock()
        with self.engine.begin() as conn:
            conn.execute(
                insert(sightings),
                [
                    {
                        "run_id": run_id,
                        "recipe": recipe,
                        "source_key": key,
                        "listing": json.dumps(row, ensure_ascii=False, sort_keys=True),
                        "seen_at": now,
                    }
                    for key, row in rows
                ],
            )

    def record_review(self, **values: Any) -> None:
        """One reviewer decision (see ``reviews``); ``decided_at`` is now."""
        with self.engine.begin() as conn:
            conn.execute(insert(reviews).values(decided_at=self._clock(), **values))

    # -- archive inventory -----------------------------------------------------------

    def record_inventory(self, run_id: str, recipe: str, items: list[dict[str, Any]]) -> None:
        """One snapshot of what the archive holds (rows: archive_id, reference_code, ...)."""
        now = self._clock()
        with self.engine.begin() as conn:
            if items:
                conn.execute(
                    insert(inventory),
                    [{"run_id": run_id, "recipe": recipe, "taken_at": now, **i} for i in items],
                )


def _open_run() -> tuple[Any, ...]:
    """A run neither finished nor marked interrupted."""
    return (runs.c.ended_at.is_(None), runs.c.outcome.is_(None))
