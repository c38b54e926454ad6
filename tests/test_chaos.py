"""The chaos suite at CI size: faults everywhere, three SIGKILLs, then ground truth.

The full run is `python bench/chaos.py` (500 reports); this is the same engine, smaller.
The fleet case (`python bench/chaos.py --fleet` in full) needs PostgreSQL:
FLEET_TEST_DATABASE_URL, which the test command sets.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.chaos import chaos
from tests.conftest import TEST_DATABASE_ENV

pytestmark = pytest.mark.e2e


def test_faults_and_kills_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    # 25% lost responses rather than the full run's 5%: the rolls fall on requests in
    # arrival order, which the kills' timing shifts, so how many land on the ~24 commits
    # varies; at 15% none did about once in 40 runs (0.85^24), at 25% once in 1000.
    result = chaos(
        reports=24,
        seed=11,
        kills=3,
        lost_response_rate=0.25,
        workdir=tmp_path,
        echo=lambda *_: None,
    )
    assert result.restarts == 3, result.line()
    # The faults really happened, each kind the issue names.
    for kind in ("error", "session_expiry", "lost_response"):
        assert result.faults.get(kind, 0) > 0, (kind, result.line())
    assert result.reports == 24
    assert result.missing == [], result.line()
    assert result.duplicated == [], result.line()
    assert result.digest_mismatch == [], result.line()
    assert result.ledger_disagrees == [], result.line()
    assert result.number_breaks == [], result.line()  # item numbers continuous despite kills
    assert result.exit_codes[-1] == 0, result.exit_codes


def test_desktop_faults_and_kills_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    """The same from the desktop client: error dialogs, idle logouts and notices that
    steal the focus, the runner SIGKILLed twice with the client's dialogs left open."""
    result = chaos(
        reports=10,
        seed=5,
        kills=2,
        desktop=True,
        workdir=tmp_path,
        echo=lambda *_: None,
    )
    assert result.restarts == 2, result.line()
    for kind in ("error", "focus_steal"):
        assert result.faults.get(kind, 0) > 0, (kind, result.line())
    assert result.reports == 10
    assert result.missing == [], result.line()
    assert result.duplicated == [], result.line()
    assert result.digest_mismatch == [], result.line()
    assert result.ledger_disagrees == [], result.line()
    assert result.number_breaks == [], result.line()
    assert result.exit_codes[-1] == 0, result.exit_codes


def test_fleet_workers_killed_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    """Fleet mode: two workers on PostgreSQL, faults on both systems, a worker SIGKILLed
    twice with its browsers (a replacement started each time); the dead workers' jobs are
    found stalled and retried, and the ground truth is as on one machine. Two workers,
    not the full run's three: each is a Chromium, and CI machines have two cores."""
    server = os.environ.get(TEST_DATABASE_ENV)
    if not server:
        pytest.skip(f"fleet mode needs PostgreSQL: {TEST_DATABASE_ENV} is not set")
    result = chaos(
        reports=24,
        seed=13,
        kills=2,
        lost_response_rate=0.25,
        workdir=tmp_path,
        fleet=2,
        database=server,
        fast=True,
        echo=lambda *_: None,
    )
    assert result.fleet is not None
    assert result.restarts == 2, result.line()
    for kind in ("error", "session_expiry", "lost_response"):
        assert result.faults.get(kind, 0) > 0, (kind, result.line())
    assert result.reports == 24
    assert result.missing == [], result.line()
    assert result.duplicated == [], result.line()
    assert result.digest_mismatch == [], result.line()
    assert result.ledger_disagrees == [], result.line()
    assert result.number_breaks == [], result.line()
    # Each kill left a job behind that a sweeper put back in the queue (a kill between
    # two jobs leaves none: at least one did, with two kills in 24 documents).
    assert result.fleet.stalls_retried >= 1, result.line()
    # The survivors and replacements stopped on SIGTERM, each with 0.
    assert result.fleet.stopped_cleanly, result.line()
    assert result.fleet.worker_exits.count(-9) == 2, result.line()
    # Every machine's run logs verify against the fleet's ledger, the killed ones' too.
    assert result.fleet.logs_broken == {}, result.fleet.logs_broken
