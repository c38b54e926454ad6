"""The reconciliation's inputs as DataFrames, in the shapes ``report`` and ``classify`` take.

The ledger reads them (``bots.ledger.queries``: ``pandas.read_sql`` over Core selects,
not document by document); here they are renamed and their JSON columns decoded
column-wise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from ..ledger import Ledger, queries


def ledger_frame(ledger: Ledger, recipe: str, since: datetime | None = None) -> pd.DataFrame:
    """One row per document of ``recipe`` (listed at or after ``since``), classify()'s shape."""
    frame = queries.documents_frame(ledger, recipe, since)
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
            "read_back_sha256": _read_back(ledger, recipe, frame),
        }
    )


def _read_back(ledger: Ledger, recipe: str, documents: pd.DataFrame) -> pd.Series:
    """Per document, the digest the archive gave back for the archive id it holds now
    (the newest successful fixity check of that id); NA where none was read."""
    checks = queries.fixity_events_frame(ledger, recipe)
    if not len(checks) or not len(documents):
        return pd.Series(pd.NA, index=documents.index, dtype="string")
    detail = checks["detail"].map(_json)
    read = pd.DataFrame(
        {
            "source_key": checks["source_key"],
            "archive_id": detail.map(lambda d: (d or {}).get("archive_id")),
            "read_back_sha256": detail.map(lambda d: (d or {}).get("read_back")),
        }
    ).drop_duplicates(["source_key", "archive_id"], keep="last")
    found = documents.loc[:, ["source_key", "archive_id"]].merge(
        read, on=["source_key", "archive_id"], how="left"
    )
    return pd.Series(found["read_back_sha256"].to_numpy(), index=documents.index, dtype="string")


@dataclass(frozen=True)
class InventoryRun:
    """Which inventory reconciliation compared against."""

    run_id: str
    started_at: datetime
    read_back: int  # items whose file was downloaded back and hashed (--fixity)


def inventory_frame(ledger: Ledger, recipe: str) -> tuple[InventoryRun | None, pd.DataFrame]:
    """The newest finished inventory of ``recipe``'s archive, and which run took it."""
    run, frame = queries.newest_inventory(ledger, recipe)
    if run is None:
        return None, frame
    frame["size"] = frame["size"].astype("Int64")
    run_id, started_at = run
    return InventoryRun(run_id, started_at, int(frame["sha256"].notna().sum())), frame


def sightings_frame(ledger: Ledger, recipe: str, since: datetime | None = None) -> pd.DataFrame:
    """What each run's listing showed: run_id, key, seen_at, listing (dict)."""
    frame = queries.sightings_frame(ledger, recipe, since)
    frame["listing"] = frame["listing"].map(_json)
    return frame.rename(columns={"source_key": "key"})


def checks_frame(ledger: Ledger, recipe: str) -> pd.DataFrame:
    """Every recorded check of ``recipe``'s documents, oldest first: key, run_id,
    property, name, outcome, reason, checked_at."""
    return queries.checks_frame(ledger, recipe).rename(columns={"source_key": "key"})


def reviews_frame(ledger: Ledger, recipe: str) -> pd.DataFrame:
    """Reviewers' decisions that took effect, oldest first: key, result, action, owner,
    note, decided_at."""
    frame = queries.applied_reviews_frame(ledger, recipe)
    return frame.rename(columns={"source_key": "key"})


def _json(text: object) -> dict[str, object] | None:
    """A JSON column's value; missing ones come back from read_sql as None or NaN."""
    return json.loads(text) if isinstance(text, str) and text else None
