"""Parallel sessions for real: the demo recipe with `sessions: 3`, real Chromium (one
per lane), both simulators. Judged by the simulators' own state: every report archived
once, with its digest and metadata, item numbers continuous, and the run log's chain
intact though three threads wrote it."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

from tests.e2e import (
    command,
    finish,
    ledger_rows,
    recipe_variant,
    run_events,
    run_log_of,
    start_run,
    wait_until,
    world,
)
from tests.test_e2e_capture import assert_archive_holds_exactly

LANES = [
    ("  credential: demo-erp\n", "  credential: demo-erp\n  sessions: 3\n"),
    ("  credential: demo-archive\n", "  credential: demo-archive\n  sessions: 3\n"),
]


def lanes_recipe(directory: Path) -> Path:
    return recipe_variant(directory, "lanes.yaml", LANES)


def test_three_lanes_archive_every_report_once_and_the_log_chain_holds(tmp_path: Path) -> None:
    with world(tmp_path, reports=15) as w:
        result = w.run(lanes_recipe(tmp_path))
        assert result.code == 0, result.output
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())

        log = run_events(run_log_of(result.stdout))
        assert [e["details"] for e in log if e["event"] == "lanes"] == [
            {"lanes": 3, "documents": 15}
        ]
        # Each document was taken once, by one lane: one start, one attempt.
        starts = Counter(e["key"] for e in log if e["event"] == "document_start")
        assert set(starts.values()) == {1} and len(starts) == 15
        assert {row["attempts"] for row in ledger_rows(w.logs_dir, "documents")} == {1}
        # Three lanes logged in to each system, and each logged out at the end.
        logins = Counter(e["details"]["system"] for e in log if e["event"] == "login")
        assert set(logins.values()) == {3}, logins
        logouts = Counter(e["details"]["system"] for e in log if e["event"] == "logout")
        assert logouts == logins

        verified = command(w, "logs", "verify")
        assert verified.code == 0, verified.output


def test_sigterm_lets_every_lane_finish_its_document_and_the_next_run_does_the_rest(
    tmp_path: Path,
) -> None:
    with world(tmp_path, reports=15) as w:
        recipe = lanes_recipe(tmp_path)
        proc = start_run(w, recipe)
        wait_until(
            lambda: proc.poll() is not None
            or len(ledger_rows(w.logs_dir, "documents", state="confirmed")) >= 3,
            240,
            "three documents confirmed",
        )
        os.kill(proc.pid, signal.SIGTERM)
        stopped = finish(proc)
        assert stopped.code == 143, stopped.output
        # Nothing half-done in any lane: every document untouched or confirmed.
        states = Counter(row["state"] for row in ledger_rows(w.logs_dir, "documents"))
        assert set(states) <= {"listed", "confirmed"}, states
        assert states["confirmed"] == len(w.archive_state())
        finished = w.run(recipe)
        assert finished.code == 0, finished.output
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())
