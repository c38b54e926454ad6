"""The reconciliation's inputs as DataFrames, read straight from the ledger with SQL.

Read with ``pandas.read_sql`` over SQLAlchemy Core selects, not document by document:
100,000 rows arrive as columns in a second, and JSON columns are decoded column-wise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import select

from ..ledger import Ledger, checks, documents, inventory, reviews, runs, sightings


def ledger_frame(ledger: Ledger, recipe: str, since: datetime | None = None) -> pd.DataFrame:
    """One row per document of ``recipe`` (listed at or after ``since``), classify()'s shape."""
    query = select(documents).where(documents.c.recipe == recipe).order_by(documents.c.id)
    if since is not None:
        query = query.where(documents.c.listed_at >= ledger.wall_time(since))
    with ledger.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    metadata = frame["item_metadata"].map(_json)
    listing = frame["listing"].map(_json)
    sent_title = metadata.map(lambda m: m.get("title") if m else None)
    return pd.DataFrame(
        {
            "key": frame["source_key"],
            "state": frame["state"],
            "failure_kind": frame["failure_kind"],
            "checks_failed": frame["last_error"].fillna("").str.startswith("failed checks"),
            "sha256": frame["sha256"],
            "size": frame["size"].astype("Int64"),
            "archive_id": frame["archive_id"],
            "reference_code": frame["reference_code"],
            "title": sent_title.fillna(frame["title"]),
            "listing": listing,
            "item_metadata": metadata,
            "filename": frame["filename"],
            "file_format": frame["file_format"],
            "listed_at": frame["listed_at"],
            "downloaded_at": frame["downloaded_at"],
            "confirmed_at": frame["confirmed_at"],
            "last_error": frame["last_error"],
        }
    )


@dataclass(frozen=True)
class InventoryRun:
    """Which inventory reconciliation compared against."""

    run_id: str
    started_at: datetime
    read_back: int  # items whose file was downloaded back and hashed (--fixity)


def inventory_frame(ledger: Ledger, recipe: str) -> tuple[InventoryRun | None, pd.DataFrame]:
    """The newest finished inventory of ``recipe``'s archive, and which run took it."""
    columns = ["archive_id", "reference_code", "title", "size", "sha256", "ingested_at"]
    with ledger.engine.connect() as conn:
        row = conn.execute(
            select(runs.c.run_id, runs.c.started_at)
            .where(runs.c.recipe == recipe, runs.c.action == "inventory", runs.c.outcome == "ok")
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).first()
        if row is None:
            return None, pd.DataFrame(columns=columns)
        latest = row.run_id
        frame = pd.read_sql(
            select(*(inventory.c[c] for c in columns))
            .where(inventory.c.run_id == latest)
            .order_by(inventory.c.id),
            conn,
        )
    frame["size"] = frame["size"].astype("Int64")
    taken = InventoryRun(latest, row.started_at, int(frame["sha256"].notna().sum()))
    return taken, frame


def sightings_frame(ledger: Ledger, recipe: str, since: datetime | None = None) -> pd.DataFrame:
    """What each run's listing showed: run_id, key, seen_at, listing (dict)."""
    query = (
        select(sightings.c.run_id, sightings.c.source_key, sightings.c.seen_at, sightings.c.listing)
        .where(sightings.c.recipe == recipe)
        .order_by(sightings.c.id)
    )
    if since is not None:
        query = query.where(sightings.c.seen_at >= ledger.wall_time(since))
    with ledger.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    frame["listing"] = frame["listing"].map(_json)
    return frame.rename(columns={"source_key": "key"})


def checks_frame(ledger: Ledger, recipe: str) -> pd.DataFrame:
    """Every recorded check of ``recipe``'s documents, oldest first: key, run_id,
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
    with ledger.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    return frame.rename(columns={"source_key": "key"})


def reviews_frame(ledger: Ledger, recipe: str) -> pd.DataFrame:
    """Reviewers' decisions that took effect, oldest first: key, result, action, owner,
    note, decided_at."""
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
    with ledger.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    return frame.rename(columns={"source_key": "key"})


def _json(text: object) -> dict[str, object] | None:
    """A JSON column's value; missing ones come back from read_sql as None or NaN."""
    return json.loads(text) if isinstance(text, str) and text else None
