"""The chaos suite at CI size: faults everywhere, three SIGKILLs, then ground truth.

The full run is `python bench/chaos.py` (500 reports); this is the same engine, smaller.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import chaos

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
