"""The reconciliation's inputs as DataFrames, read straight from the ledger with SQL.

Read with ``pandas.read_sql`` over SQLAlchemy Core selects, not document by document:
100,000 rows arrive as columns in a second, and JSON columns are decoded column-wise.
"""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
from sqlalchemy import select

from ..ledger import Ledger, documents, inventory, runs


def ledger_frame(ledger: Ledger, recipe: str, since: datetime | None = None) -> pd.DataFrame:
    """One row per document of ``recipe`` (listed at or after ``since``), classify()'s shape."""
    query = select(documents).where(documents.c.recipe == recipe).order_by(documents.c.id)
    if since is not None:
        query = query.where(documents.c.listed_at >= since)
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


def inventory_frame(ledger: Ledger, recipe: str) -> tuple[str | None, pd.DataFrame]:
    """The newest finished inventory of ``recipe``'s archive, and its run id."""
    with ledger.engine.connect() as conn:
        latest = conn.execute(
            select(runs.c.run_id)
            .where(runs.c.recipe == recipe, runs.c.action == "inventory", runs.c.outcome == "ok")
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).scalar()
        columns = ["archive_id", "reference_code", "title", "size", "sha256", "ingested_at"]
        if latest is None:
            return None, pd.DataFrame(columns=columns)
        frame = pd.read_sql(
            select(*(inventory.c[c] for c in columns))
            .where(inventory.c.run_id == latest)
            .order_by(inventory.c.id),
            conn,
        )
    frame["size"] = frame["size"].astype("Int64")
    return latest, frame


def _json(text: str | None) -> dict[str, object] | None:
    return json.loads(text) if text else None
