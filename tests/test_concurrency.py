"""Runs that overlap, queue, die or are stopped: each report is archived exactly once.

One world for the module; every test publishes the reports it needs, so that its first
run has work to do while the test does something to it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import (
    World,
    finish,
    ledger_documents,
    publish_reports,
    recipe_variant,
    run_events,
    run_log_of,
    set_faults,
    start_run,
    wait_until,
    world,
)

pytestmark = pytest.mark.e2e

LOCK_TIMEOUT = 60  # seconds for a starting run to take its lock: a bound, not a guess
RETRY_LINE = "retry: {attempts: 4, backoff: 1.0, max_backoff: 30, breaker: 8}"  # demo.yaml


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world whose ERP answers slowly enough that a run lasts several seconds."""
    with world(tmp_path_factory.mktemp("concurrency"), reports=8) as w:
        set_faults(w.erp_url, {"latency_ms": [100, 200]})
        yield w


def lock_holder(w: World) -> dict[str, Any] | None:
    """The holder the lock file names, or None while it is empty (no run holds it)."""
    try:
        text = (w.logs_dir / "locks" / "demo.lock").read_text(encoding="utf-8")
        holder = json.loads(text) if text.strip() else None
    except (FileNotFoundError, json.JSONDecodeError):  # absent, or being written
        return None
    return holder if isinstance(holder, dict) else None


def held_by(w: World, proc: subprocess.Popen[str]) -> bool:
    holder = lock_holder(w)
    assert proc.poll() is None, "the run ended before it was seen holding its lock"
    return holder is not None and holder.get("pid") == proc.pid


def assert_each_report_archived_once(w: World) -> None:
    reports = Counter(r["sha256"] for r in w.erp_state())
    items = Counter(i["sha256"] for i in w.archive_state())
    assert items == reports
    assert all(n == 1 for n in items.values())


def stop(proc: subprocess.Popen[str]) -> None:
    """Clean-up for a run a failed test left behind."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate(timeout=60)


def event_time(stdout: str, event: str) -> datetime:
    [found] = [e for e in run_events(run_log_of(stdout)) if e["event"] == event]
    return datetime.fromisoformat(found["ts"])


def dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_second_run_of_a_running_recipe_exits_75_at_once_and_the_first_archives_each_once(
    busy: World,
) -> None:
    publish_reports(busy, count=2)
    first = start_run(busy)
    try:
        wait_until(lambda: held_by(busy, first), LOCK_TIMEOUT, "the first run holds its lock")
        started = time.monotonic()
        second = finish(start_run(busy), timeout=30)
        refused_after = time.monotonic() - started
        assert first.poll() is None, "the runs must overlap for this test to mean anything"
        assert second.code == 75, second.output
        assert second.stdout == ""
        [line] = second.stderr.strip().splitlines()
        assert "recipe 'demo' is already running" in line
        assert f"pid {first.pid} on {socket.gethostname()}" in line
        assert refused_after < 15  # a fresh interpreter's start-up, then no waiting at all
        result = finish(first)
    finally:
        stop(first)
    assert result.code == 0, result.output
    assert_each_report_archived_once(busy)


def test_run_with_wait_queues_behind_the_running_one_then_finds_nothing_new(
    busy: World,
) -> None:
    publish_reports(busy, count=3)
    first = start_run(busy)
    second: subprocess.Popen[str] | None = None
    try:
        wait_until(lambda: held_by(busy, first), LOCK_TIMEOUT, "the first run holds its lock")
        second = start_run(busy, "demo", "--wait", "120")
        assert first.poll() is None
        ran = finish(first)
        queued = finish(second, timeout=180)
    finally:
        stop(first)
        if second is not None:
            stop(second)
    assert ran.code == 0, ran.output
    assert "3 new, 3 archived, 0 failed" in ran.stdout
    assert queued.code == 0, queued.output
    assert " 0 new, 0 archived, 0 failed" in queued.stdout
    # It started while the first held the lock, and began only once the first had ended.
    assert event_time(queued.stdout, "run_start") > event_time(ran.stdout, "run_end")
    assert_each_report_archived_once(busy)


def test_lock_left_by_a_dead_process_is_taken_over_and_logged(busy: World) -> None:
    stale = {"pid": dead_pid(), "host": socket.gethostname(), "since": "2026-11-20T02:15:00+08:00"}
    (busy.logs_dir / "locks").mkdir(parents=True, exist_ok=True)
    (busy.logs_dir / "locks" / "demo.lock").write_text(json.dumps(stale), encoding="utf-8")
    result = busy.run()
    assert result.code == 0, result.output
    events = run_events(run_log_of(result.stdout))
    [taken] = [e for e in events if e["event"] == "lock_taken_over"]
    assert taken["outcome"] == "warning"
    assert taken["details"]["previous_holder"] == stale
    assert lock_holder(busy) is None  # released cleanly at the end
    assert_each_report_archived_once(busy)


def confirmed_among(w: World, keys: list[str]) -> int:
    docs = ledger_documents(w.logs_dir)
    return sum(1 for key in keys if docs.get(key, {}).get("state") == "confirmed")


def test_run_killed_mid_way_is_resumed_by_the_next_without_doubles(busy: World) -> None:
    keys = publish_reports(busy, count=5, kind="资金日报表")
    first = start_run(busy)
    try:
        wait_until(lambda: confirmed_among(busy, keys) >= 1, 120, "one report confirmed")
        os.kill(first.pid, signal.SIGKILL)  # no clean-up: the lock file still names it
        first.communicate(timeout=60)
    finally:
        stop(first)
    holder = lock_holder(busy)
    assert holder is not None and holder["pid"] == first.pid
    assert confirmed_among(busy, keys) < len(keys), "killed too late to mean anything"

    result = busy.run()
    assert result.code == 0, result.output
    events = run_events(run_log_of(result.stdout))
    [taken] = [e for e in events if e["event"] == "lock_taken_over"]
    assert taken["details"]["previous_holder"]["pid"] == first.pid
    [interrupted] = [e for e in events if e["event"] == "previous_runs_interrupted"]
    assert interrupted["details"]["runs"] == [holder["run_id"]]
    assert confirmed_among(busy, keys) == len(keys)
    assert_each_report_archived_once(busy)


def test_sigterm_finishes_the_current_document_exits_143_and_the_next_run_does_the_rest(
    busy: World,
) -> None:
    keys = publish_reports(busy, count=5, kind="资金日报表")
    first = start_run(busy)
    try:
        wait_until(lambda: confirmed_among(busy, keys) >= 1, 120, "one report confirmed")
        first.send_signal(signal.SIGTERM)
        stopped = finish(first, timeout=120)
    finally:
        stop(first)
    assert stopped.code == 143, stopped.output
    assert "stopped by SIGTERM" in stopped.stdout
    assert "stopped by SIGTERM; the next run carries on from here" in stopped.stderr
    states = {ledger_documents(busy.logs_dir)[key]["state"] for key in keys}
    assert states <= {"listed", "confirmed"}, states  # no document left half-way

    result = busy.run()
    assert result.code == 0, result.output
    assert confirmed_among(busy, keys) == len(keys)
    assert_each_report_archived_once(busy)


def retry_events(w: World) -> list[dict[str, Any]]:
    return [
        e
        for log in (w.logs_dir / "runs").glob("*.jsonl")
        for e in run_events(log)
        if e["event"] == "retry"
    ]


def test_sigterm_during_a_retry_backoff_stops_the_run_promptly_with_143(tmp_path: Path) -> None:
    patient = recipe_variant(
        tmp_path,
        "patient.yaml",
        [(RETRY_LINE, "retry: {attempts: 3, backoff: 20, max_backoff: 20, breaker: 50}")],
    )
    with world(tmp_path, reports=1) as w:
        set_faults(w.archive_url, {"error_rate": 1.0})  # the archive answers only 500s
        run = start_run(w, patient)
        try:
            wait_until(lambda: retry_events(w), 60, "a first retry, then its backoff")
            signalled = time.monotonic()
            run.send_signal(signal.SIGTERM)
            try:
                stopped = finish(run, timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail("still running 10s after SIGTERM: sleeping out its backoff")
        finally:
            stop(run)
        assert stopped.code == 143, stopped.output
        assert time.monotonic() - signalled < 10
        assert len(retry_events(w)) == 1, "no attempt may start after the stop"

        set_faults(w.archive_url, {})
        resumed = w.run(patient)
        assert resumed.code == 0, resumed.output
        assert_each_report_archived_once(w)
