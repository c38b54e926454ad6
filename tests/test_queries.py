"""What reconciliation, review and the audit read (bots.ledger.queries), on SQLite and on
PostgreSQL: the same rows either way, times compared as the same instants."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bots.ledger import Ledger, State, queries
from tests.conftest import ROOT, FrozenClock

STAGING = Path("/srv/rpa-fleet/logs/staging")


@pytest.fixture
def ledger(ledger_url: str, clock: FrozenClock) -> Iterator[Ledger]:
    with Ledger.open(ledger_url, clock, staging_root=STAGING) as opened:
        yield opened


def confirm(ledger: Ledger, key: str, run_id: str = "run-1") -> None:
    doc = ledger.record_listed("demo", key, {"id": key}, run_id)
    doc = ledger.advance(
        doc,
        State.DOWNLOADED,
        run_id,
        sha256="ab" * 32,
        size=1,
        staged_path=str(STAGING / "demo" / key / "r.pdf"),
    )
    doc = ledger.advance(doc, State.UPLOADING, run_id)
    doc = ledger.advance(doc, State.UPLOADED, run_id, archive_id=f"A-{key}")
    ledger.advance(doc, State.CONFIRMED, run_id)


def start(ledger: Ledger, run_id: str, action: str = "capture") -> None:
    ledger.start_run(
        run_id=run_id,
        recipe="demo",
        recipe_digest="d" * 64,
        host="h",
        user="u",
        bot_version="0.1.0",
        log_path=f"/logs/runs/{run_id}.jsonl",
        action=action,
    )


@pytest.fixture
def two_days(ledger: Ledger, clock: FrozenClock) -> datetime:
    """R1 on one day, R2 the next (run-2 and its sighting with it): returns the boundary."""
    start(ledger, "run-1")
    confirm(ledger, "R1")
    ledger.record_sightings("run-1", "demo", [("R1", {"id": "R1"})])
    clock.advance(days=1)
    boundary = clock.now
    start(ledger, "run-2")
    confirm(ledger, "R2", "run-2")
    ledger.record_sightings("run-2", "demo", [("R1", {"id": "R1"}), ("R2", {"id": "R2"})])
    return boundary


@pytest.mark.parametrize("zone", ["clock", "utc", "naive"])
def test_since_selects_the_same_instants_everywhere(
    ledger: Ledger, two_days: datetime, zone: str
) -> None:
    """SQLite keeps the clock's wall time, PostgreSQL the instant: a ``since`` in any zone
    (naive: the clock's) selects the same rows from both."""
    since = {
        "clock": two_days,
        "utc": two_days.astimezone(UTC),
        "naive": two_days.replace(tzinfo=None),
    }[zone]
    assert [d.source_key for d in ledger.captured(since=since)] == ["R2"]
    assert queries.documents_frame(ledger, "demo", since)["source_key"].tolist() == ["R2"]
    seen = queries.sightings_frame(ledger, "demo", since)
    assert seen["run_id"].tolist() == ["run-2", "run-2"]
    runs, _ = queries.runs_and_events(ledger, since, None, ["run_id"], ["event_id"])
    assert runs["run_id"].tolist() == ["run-2"]
    before, _ = queries.runs_and_events(
        ledger, since - timedelta(days=1), since, ["run_id"], ["event_id"]
    )
    assert before["run_id"].tolist() == ["run-1"]


def test_the_newest_finished_inventory(ledger: Ledger, clock: FrozenClock) -> None:
    assert queries.newest_inventory(ledger, "demo")[0] is None
    for run_id, outcome in (("inv-1", "ok"), ("inv-2", "ok"), ("inv-3", "failed")):
        clock.advance(minutes=1)
        start(ledger, run_id, "inventory")
        ledger.record_inventory(run_id, "demo", [{"archive_id": f"A-{run_id}", "size": 1}])
        ledger.finish_run(run_id, outcome, {})
    taken, items = queries.newest_inventory(ledger, "demo")
    assert taken is not None and taken[0] == "inv-2"
    assert items["archive_id"].tolist() == ["A-inv-2"]
    assert list(items.columns) == list(queries.INVENTORY_COLUMNS)


def test_recipes_archive_ids_and_runs(ledger: Ledger, two_days: datetime) -> None:
    ledger.record_listed("other", "X1", {"id": "X1"}, "run-3")
    assert queries.recipes(ledger) == ["demo", "other"]
    assert queries.archive_ids(ledger) == {"A-R1", "A-R2"}
    assert queries.run_count(ledger) == 2


def test_table_rows_are_the_rows_as_stored(ledger: Ledger, two_days: datetime) -> None:
    [row] = queries.table_rows(ledger, "documents", source_key="R2")
    assert row["state"] == "confirmed" and row["staged_path"] == "demo/R2/r.pdf"
    assert [r["run_id"] for r in queries.table_rows(ledger, "runs")] == ["run-1", "run-2"]
    with pytest.raises(ValueError, match="no table 'document'; it has checks, documents"):
        queries.table_rows(ledger, "document")


def test_importing_the_ledger_does_not_import_pandas() -> None:
    """Commands that never build a frame should not pay for pandas."""
    code = "import sys, bots.ledger; print('pandas' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "False"
