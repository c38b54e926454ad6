"""What reconciliation, review and the audit read from the ledger: every select over its
tables that is not the store's own.

Nothing outside this package selects from the ledger's tables; each reader calls one of
these. Frames come from ``pandas.read_sql`` over Core selects, not document by document:
100,000 rows arrive as columns in a second. pandas is imported inside the functions that
return frames, so that importing the ledger stays cheap. Times in ``since``/``start``/
``end`` are compared as the store compares them (``Ledger.wall_time``), so SQLite and
PostgreSQL select the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select

from .schema import TABLES, checks, documents, events, inventory, reviews, runs, sightings
from .store import Ledger

if TYPE_CHECKING:
    import pandas as pd

INVENTORY_COLUMNS = ("archive_id", "reference_code", "title", "size", "sha256", "ingested_at")


def documents_frame(ledger: Ledger, recipe: str, since: datetime | None = None) -> pd.DataFrame:
    """Every column of ``recipe``'s documents (listed at or after ``since``), in the order
    they were first listed; JSON columns as text, ``staged_path`` as stored."""
    query = select(documents).where(documents.c.recipe == recipe).order_by(documents.c.id)
    if since is not None:
        query = query.where(documents.c.listed_at >= ledger.wall_time(since))
    return _frame(ledger, query)


def newest_inventory(
    ledger: Ledger, recipe: str
) -> tuple[tuple[str, datetime] | None, pd.DataFrame]:
    """The newest finished inventory of ``recipe``'s archive: (its run id and start, its
    items' ``INVENTORY_COLUMNS`` in the order listed); (None, no rows) when there is none."""
    import pandas as pd

    with ledger.engine.connect() as conn:
        row = conn.execute(
            select(runs.c.run_id, runs.c.started_at)
            .where(runs.c.recipe == recipe, runs.c.action == "inventory", runs.c.outcome == "ok")
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).first()
        if row is None:
            return None, pd.DataFrame(columns=list(INVENTORY_COLUMNS))
        frame = pd.read_sql(
            select(*(inventory.c[c] for c in INVENTORY_COLUMNS))
            .where(inventory.c.run_id == row.run_id)
            .order_by(inventory.c.id),
            conn,
        )
    return (row.run_id, row.started_at), frame


def fixity_events_frame(ledger: Ledger, recipe: str) -> pd.DataFrame:
    """The successful fixity checks of ``recipe``'s documents (the digest the archive
    gave back, on its record or by download), oldest first: source_key, detail (JSON)."""
    query = (
        select(events.c.source_key, events.c.detail)
        .where(
            events.c.recipe == recipe,
            events.c.event_type == "fixity check",
            events.c.outcome == "success",
        )
        .order_by(events.c.id)
    )
    return _frame(ledger, query)


def sightings_frame(ledger: Ledger, recipe: str, since: datetime | None = None) -> pd.DataFrame:
    """What each run's listing showed (seen at or after ``since``): run_id, source_key,
    seen_at, listing (JSON text)."""
    query = (
        select(sightings.c.run_id, sightings.c.source_key, sightings.c.seen_at, sightings.c.listing)
        .where(sightings.c.recipe == recipe)
        .order_by(sightings.c.id)
    )
    if since is not None:
        query = query.where(sightings.c.seen_at >= ledger.wall_time(since))
    return _frame(ledger, query)


def checks_frame(ledger: Ledger, recipe: str) -> pd.DataFrame:
    """Every recorded check of ``recipe``'s documents, oldest first: source_key, run_id,
    property, name, outcome, reason, checked_at."""
    query = (
        select(
            checks.c.source_key,
            checks.c.run_id,
            checks.c.property,
            checks.c.name,
            checks.c.outcome,
            checks.c.reason,
            checks.c.checked_at,
        )
        .where(checks.c.recipe == recipe)
        .order_by(checks.c.id)
    )
    return _frame(ledger, query)


def applied_reviews_frame(ledger: Ledger, recipe: str) -> pd.DataFrame:
    """Reviewers' decisions on ``recipe`` that took effect, oldest first: source_key,
    archive_id, result, action, owner, note, decided_at."""
    query = (
        select(
            reviews.c.source_key,
            reviews.c.archive_id,
            reviews.c.result,
            reviews.c.action,
            reviews.c.owner,
            reviews.c.note,
            reviews.c.decided_at,
        )
        .where(reviews.c.recipe == recipe, reviews.c.outcome == "applied")
        .order_by(reviews.c.id)
    )
    return _frame(ledger, query)


def is_closed_by_review(ledger: Ledger, recipe: str, key: str, result: str) -> bool:
    """Whether an applied ``ignore`` already closed ``result`` on this document."""
    query = select(reviews.c.id).where(
        reviews.c.recipe == recipe,
        reviews.c.source_key == key,
        reviews.c.result == result,
        reviews.c.action == "ignore",
        reviews.c.outcome == "applied",
    )
    with ledger.engine.connect() as conn:
        return conn.execute(query).first() is not None


def recipes(ledger: Ledger) -> list[str]:
    """Every recipe the ledger holds documents of, by name."""
    with ledger.engine.connect() as conn:
        return sorted(conn.execute(select(documents.c.recipe).distinct()).scalars())


def archive_ids(ledger: Ledger) -> set[str]:
    """Every archive id a ledger document holds, whatever its recipe or date."""
    query = select(documents.c.archive_id).where(documents.c.archive_id.is_not(None))
    with ledger.engine.connect() as conn:
        return set(conn.execute(query).scalars())


def runs_and_events(
    ledger: Ledger,
    start: datetime,
    end: datetime | None,
    run_fields: Sequence[str],
    event_fields: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs started and the events that happened in [start, end) (``end`` None: up
    to now), oldest first, read together so that they agree with each other."""
    import pandas as pd

    def period(table: Any, column: Any, fields: Sequence[str], tiebreak: Any) -> Select[Any]:
        query = select(*(table.c[name] for name in fields)).where(column >= ledger.wall_time(start))
        if end is not None:
            query = query.where(column < ledger.wall_time(end))
        return query.order_by(column, tiebreak)

    with ledger.engine.connect() as conn:
        run_frame = pd.read_sql(period(runs, runs.c.started_at, run_fields, runs.c.run_id), conn)
        event_frame = pd.read_sql(
            period(events, events.c.event_time, event_fields, events.c.id), conn
        )
    return run_frame, event_frame


def run_count(ledger: Ledger) -> int:
    """How many runs (of any kind) the ledger records."""
    with ledger.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(runs)).scalar_one())


def table_rows(ledger: Ledger, table: str, **equal: Any) -> list[dict[str, Any]]:
    """Every row of one of the ledger's tables as stored (``staged_path`` relative),
    oldest first; ``equal`` keeps the rows whose columns have those values. For looking
    at a ledger, as tests and people do; the bots read through the functions above."""
    found = {t.name: t for t in TABLES}.get(table)
    if found is None:
        names = ", ".join(sorted(t.name for t in TABLES))
        raise ValueError(f"the ledger has no table {table!r}; it has {names}")
    query = select(found).where(*(found.c[name] == value for name, value in equal.items()))
    with ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query.order_by(*found.primary_key)).mappings()]


def _frame(ledger: Ledger, query: Select[Any]) -> pd.DataFrame:
    import pandas as pd

    with ledger.engine.connect() as conn:
        return pd.read_sql(query, conn)


def run_logs(ledger: Ledger) -> list[dict[str, Any]]:
    """Every run the ledger records, for ``logs verify`` to ask after each run's log:
    run_id, log_path (as recorded on its machine), outcome (None while not ended), host,
    action, started_at, and the log as it closed: log_lines, log_first_prev,
    log_last_hash (None while not closed, or closed before ledger version 9)."""
    query = select(
        runs.c.run_id,
        runs.c.log_path,
        runs.c.outcome,
        runs.c.host,
        runs.c.action,
        runs.c.started_at,
        runs.c.log_lines,
        runs.c.log_first_prev,
        runs.c.log_last_hash,
    ).order_by(runs.c.started_at, runs.c.run_id)
    with ledger.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def capture_runs(ledger: Ledger, recipe: str) -> dict[str, tuple[str, str, str]]:
    """Where each of ``recipe``'s documents was last downloaded (its staged file is on that
    machine, or in shared staging): source key -> (run id, host, log path) of the run
    whose capture event is the newest."""
    query = (
        select(events.c.source_key, runs.c.run_id, runs.c.host, runs.c.log_path)
        .join(runs, runs.c.run_id == events.c.run_id)
        .where(
            events.c.recipe == recipe,
            events.c.event_type == "capture",
            events.c.outcome == "success",
        )
        .order_by(events.c.id)
    )
    with ledger.engine.connect() as conn:
        return {r.source_key: (r.run_id, r.host, r.log_path) for r in conn.execute(query)}
