"""Lanes: one run working documents in several sessions side by side (`sessions: N`).

In-process against the fake driver's systems, whose lanes are real threads. Each test
judges by what the fake systems hold and saw: every report archived once, each
document's calls from one session, the most sessions logged in at once.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from bots.errors import RecipeError
from bots.ledger import State
from bots.recipe import load_recipe
from bots.resilience import StopFlag
from tests.conftest import FrozenClock
from tests.e2e import ROOT, recipe_variant
from tests.fakes import FakeSystem, csv_report
from tests.test_pipeline import REPORTS, Bench, assert_archived_once, events, pipeline_bench


@pytest.fixture(name="bench")
def _bench(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    with pipeline_bench(tmp_path, clock, monkeypatch) as made:
        yield made


MORE = [csv_report(f"R{n}", f"2025年{n}月利润表", f"2025-{n:02d}-08") for n in range(4, 13)]


def sessions(bench: Bench, source: int, archive: int, extra: str = "") -> None:
    """The recipe from now on: ``source``/``archive`` sessions (and ``extra`` lines
    in both systems' sections)."""
    bench.variant(
        "  credential: fake-erp\n", f"  credential: fake-erp\n  sessions: {source}\n{extra}"
    )
    bench.variant(
        "  credential: fake-archive\n",
        f"  credential: fake-archive\n  sessions: {archive}\n{extra}",
    )


def sessions_of(system: FakeSystem, kind: str) -> dict[str, set[int]]:
    """For each document, the sessions its ``kind`` calls came from."""
    used: dict[str, set[int]] = defaultdict(set)
    for call in system.calls:
        if call.kind == kind and call.key is not None:
            used[call.key].add(call.session)
    return used


def test_four_lanes_work_side_by_side_and_archive_every_report_once(bench: Bench) -> None:
    bench.source.reports.extend(MORE)
    sessions(bench, 4, 4)
    # The first four downloads wait for one another: the run must have four source
    # sessions working at once to get past them (bounded: a missing lane fails the test).
    together = threading.Barrier(4, timeout=20)
    bench.source.hook("download", together.wait, phase="download", times=4)

    summary = bench.run()

    assert summary.exit_code == 0, summary.failures
    reports = REPORTS + MORE
    assert_archived_once(bench, reports)
    assert not together.broken
    assert bench.source.peak_live == 4
    assert bench.archive.peak_live <= 4
    # Each document went down the stages in one lane: one source session fetched it,
    # one archive session uploaded and read it back, and it was taken once.
    for system, kind in ((bench.source, "download"), (bench.archive, "upload")):
        used = sessions_of(system, kind)
        assert set(used) == {r.id for r in reports}
        assert all(len(ids) == 1 for ids in used.values()), used
    assert {bench.doc(r.id).attempts for r in reports} == {1}
    assert events(summary, "lanes")[0]["details"] == {"lanes": 4, "documents": len(reports)}


def test_the_system_that_tolerates_fewer_sessions_sets_the_number_of_lanes(
    bench: Bench,
) -> None:
    bench.source.reports.extend(MORE)
    sessions(bench, 4, 2)

    summary = bench.run()

    assert summary.exit_code == 0, summary.failures
    assert_archived_once(bench, REPORTS + MORE)
    assert events(summary, "lanes")[0]["details"]["lanes"] == 2
    assert bench.source.peak_live <= 2
    assert bench.archive.peak_live <= 2


def test_no_more_lanes_than_documents_and_one_session_has_none(bench: Bench) -> None:
    sessions(bench, 8, 8)
    summary = bench.run()
    assert summary.exit_code == 0
    assert events(summary, "lanes")[0]["details"] == {"lanes": 3, "documents": 3}
    assert bench.source.sessions_opened == 3

    plain = bench.run()  # nothing pending: no lane opens, no archive login
    assert plain.exit_code == 0 and not events(plain, "lanes")
    assert bench.archive.logins.count("archivist") == 3


def test_a_lane_logs_out_and_starts_fresh_sessions_every_recycle_after_documents(
    bench: Bench,
) -> None:
    bench.source.reports.extend(MORE[:2])  # five reports
    sessions(bench, 1, 1, extra="  recycle_after: 2\n  logout:\n    - open: /logout\n")

    summary = bench.run()

    assert summary.exit_code == 0, summary.failures
    assert_archived_once(bench, REPORTS + MORE[:2])
    # Two documents per pair of sessions: 2 + 2 + 1, each pair logged in and out.
    assert len(events(summary, "sessions_recycled")) == 2
    assert bench.source.logins == ["bot"] * 3
    assert bench.archive.logins == ["archivist"] * 3
    assert bench.source.logouts == 3 and bench.archive.logouts == 3
    assert bench.source.peak_live == 1 and bench.archive.peak_live == 1
    assert sorted(len(s) for s in _documents_per_session(bench)) == [1, 2, 2]


def _documents_per_session(bench: Bench) -> list[set[str]]:
    per: dict[int, set[str]] = defaultdict(set)
    for call in bench.source.calls:
        if call.kind == "download" and call.key is not None:
            per[call.session].add(call.key)
    return list(per.values())


def test_every_session_is_logged_out_when_the_run_ends(bench: Bench) -> None:
    bench.variant(
        "  login:\n    - open: /login\n",
        "  logout:\n    - open: /logout\n  login:\n    - open: /login\n",
    )
    bench.variant(
        "  credential: fake-archive\n  login:\n    - open: /login\n",
        "  credential: fake-archive\n  logout:\n    - open: /logout\n"
        "  login:\n    - open: /login\n",
    )
    summary = bench.run()
    assert summary.exit_code == 0
    assert bench.source.logouts == 1 and bench.archive.logouts == 1
    assert [e["details"]["system"] for e in events(summary, "logout")] == [
        "fake ERP",
        "fake archive",
    ]


def test_a_lane_the_system_will_not_log_in_ends_and_the_others_do_its_share(
    bench: Bench,
) -> None:
    bench.source.reports.extend(MORE)
    sessions(bench, 3, 3)
    bench.archive.max_live = 2  # its licence: two users at once

    summary = bench.run()

    assert summary.exit_code == 0, summary.failures
    assert_archived_once(bench, REPORTS + MORE)
    assert bench.archive.peak_live == 2 and bench.archive.refused > 0
    failed = events(summary, "lane_failed")
    assert len(failed) == 1 and "too many users logged in" in failed[0]["details"]["error"]
    # The refusal cost the lane, never a document: every one taken once and archived.
    assert {bench.doc(r.id).attempts for r in REPORTS + MORE} == {1}


def test_when_no_lane_can_log_in_the_run_says_so_and_touches_no_document(
    bench: Bench,
) -> None:
    sessions(bench, 2, 2)
    bench.archive.max_live = 0

    summary = bench.run()

    assert summary.exit_code == 3
    assert summary.system_failure is not None
    assert "no session could be opened to work the 3 document(s) left" in summary.system_failure
    assert "too many users logged in" in summary.system_failure
    assert set(bench.states().values()) == {State.LISTED}
    assert bench.source.count("download") == 0


def test_a_stop_lets_every_lane_finish_its_document_and_the_next_run_does_the_rest(
    bench: Bench,
) -> None:
    bench.source.reports.extend(MORE)
    sessions(bench, 3, 3)
    stop = StopFlag()
    bench.archive.hook("upload", lambda: stop.set("SIGTERM"), phase="upload")

    first = bench.run(stop=stop)

    assert first.exit_code == 143
    confirmed = {k for k, s in bench.states().items() if s is State.CONFIRMED}
    # The lanes finished the documents in hand and took no more.
    assert 1 <= len(confirmed) <= 3
    assert all(s in (State.LISTED, State.CONFIRMED) for s in bench.states().values())
    stop_event = events(first, "stop")[0]["details"]
    assert stop_event["left_for_next_run"] == len(REPORTS + MORE) - len(confirmed)

    second = bench.run()
    assert second.exit_code == 0
    assert_archived_once(bench, REPORTS + MORE)


def test_the_breaker_tripped_in_one_lane_stops_them_all_and_nothing_is_doubled(
    bench: Bench,
) -> None:
    bench.source.reports.extend(MORE)
    sessions(bench, 3, 3)
    bench.source.fail("download", times=None)

    first = bench.run()

    assert first.exit_code == 3
    assert first.system_failure is not None and "system errors in a row" in first.system_failure
    assert bench.archive.items == []
    # The breaker (8 in a row, across lanes) stopped the run long before every document
    # had used its four attempts.
    assert bench.source.count("download") < 4 * len(REPORTS + MORE)

    bench.source.heal()
    second = bench.run()
    assert second.exit_code == 0
    assert_archived_once(bench, REPORTS + MORE)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("  sessions: 0\n", "greater than or equal to 1"),
        ("  sessions: 33\n", "less than or equal to 32"),
        ("  recycle_after: 0\n", "greater than or equal to 1"),
        ("  logout:\n    - download: {id: x}\n", "cannot appear in logout"),
    ],
)
def test_a_wrong_sessions_setting_is_named_with_file_and_line(
    bench: Bench, line: str, problem: str
) -> None:
    bench.variant("  credential: fake-erp\n", f"  credential: fake-erp\n{line}")
    with pytest.raises(RecipeError) as caught:
        bench.loaded()
    number = bench.recipe_path.read_text(encoding="utf-8").splitlines().index(line.split("\n")[0])
    assert f"{bench.recipe_path}:{number + 1}" in str(caught.value)
    assert problem in str(caught.value)


def test_a_desktop_system_works_one_session_at_a_time(tmp_path: Path) -> None:
    recipe = recipe_variant(
        tmp_path,
        "desktop.yaml",
        [("  credential: demo-desktop\n", "  credential: demo-desktop\n  sessions: 2\n")],
        base=ROOT / "recipes" / "demo-desktop.yaml",
    )
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    assert f"{recipe}:15" in str(caught.value)
    assert "the desktop driver works 1 session(s) of a system at a time" in str(caught.value)
