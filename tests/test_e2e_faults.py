"""One fault at a time, each judged by the simulators' ground truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sims.control import get_json, post_json
from tests.e2e import (
    ERP_PASSWORD,
    ROOT,
    World,
    ledger_rows,
    line_of,
    recipe_variant,
    world,
)
from tests.test_e2e_capture import assert_archive_holds_exactly, summary_counts, write_variant

pytestmark = pytest.mark.e2e

FAST_RETRIES = (
    "retry: {attempts: 4, backoff: 1.0, max_backoff: 30, breaker: 8}",
    "retry: {attempts: 6, backoff: 0.1, max_backoff: 0.5, breaker: 8}",
)


def faults(url: str, **config: Any) -> dict[str, Any]:
    return post_json(f"{url}/_sim/faults", config)


def events(w: World, name: str) -> list[dict[str, Any]]:
    found = []
    for log in sorted((w.logs_dir / "runs").glob("*.jsonl")):
        for line in log.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["event"] == name:
                found.append(record)
    return found


def test_lost_upload_responses_never_archive_twice(tmp_path: Path) -> None:
    """Every upload commits and loses its answer: each is found, adopted, archived once."""
    recipe = write_variant(tmp_path, [FAST_RETRIES])
    with world(tmp_path, reports=5) as w:
        faults(w.archive_url, seed=1, lost_response_rate=1.0)
        result = w.run(recipe)
        assert result.code == 0, result.output
        injected = get_json(f"{w.archive_url}/_sim/faults")["injected"]
        assert injected["lost_response"] == 5
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())
        found = [e for e in events(w, "find") if e["details"]["found"]]
        assert len(found) == 5  # each lost answer was looked up, not uploaded again


def test_expiring_sessions_are_answered_by_logging_in_again(tmp_path: Path) -> None:
    recipe = write_variant(tmp_path, [FAST_RETRIES])
    with world(tmp_path, reports=6) as w:
        faults(w.erp_url, seed=2, session_expiry_every=12)
        faults(w.archive_url, seed=3, session_expiry_every=15)
        result = w.run(recipe)
        assert result.code == 0, result.output
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())
        lost = events(w, "session_lost")
        assert {e["details"]["system"].split()[0] for e in lost} == {"旧ERP", "档案系统"}
        logins = events(w, "login")
        assert len(logins) == 2 + len(lost)  # one first login each, then one per loss


def test_cut_and_wrong_downloads_are_fetched_again(tmp_path: Path) -> None:
    recipe = write_variant(tmp_path, [FAST_RETRIES])
    with world(tmp_path, reports=6) as w:
        # Rates a download survives about half the time: six attempts fail all about once
        # in 64 per document, so the test rests on the retries, not on the seed's luck.
        faults(w.erp_url, seed=4, truncate_rate=0.3, html_instead_rate=0.2, error_rate=0.1)
        result = w.run(recipe)
        assert result.code == 0, result.output
        injected = get_json(f"{w.erp_url}/_sim/faults")["injected"]
        assert injected["truncate"] + injected["html_instead"] > 0
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())


def test_an_archive_that_only_fails_opens_the_circuit(tmp_path: Path) -> None:
    recipe = write_variant(tmp_path, [(FAST_RETRIES[0], FAST_RETRIES[1].replace("8}", "3}"))])
    with world(tmp_path, reports=4) as w:
        faults(w.archive_url, seed=5, error_rate=1.0)
        result = w.run(recipe)
        assert result.code == 3, result.output
        assert "system errors in a row against 档案系统" in result.stderr
        assert w.archive_state() == []
        # The downloads were kept: the next run, the archive healthy, starts from them.
        faults(w.archive_url)
        again = w.run(recipe)
        assert again.code == 0, again.output
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())


def test_sigterm_finishes_the_document_then_stops(tmp_path: Path) -> None:
    with world(tmp_path, reports=10) as w:
        proc = subprocess.Popen(
            [sys.executable, "runner.py", "run", "recipes/demo.yaml"],
            cwd=ROOT,
            env=w.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if _count(w, "confirmed") >= 2:
                break
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 143, out + err
        assert "stopped by SIGTERM" in out and "the next run carries on" in err
        # Nothing half-done: every document is either untouched or confirmed.
        assert _count(w, "confirmed") == len(w.archive_state())
        assert _count(w, "uploading") == 0 and _count(w, "uploaded") == 0
        assert [e["outcome"] for e in events(w, "run_end")] == ["stopped"]
        finished = w.run()
        assert finished.code == 0, finished.output
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())
        assert summary_counts(finished.stdout)["listed"] == 10


def _count(w: World, state: str) -> int:
    """Documents in ``state``, also while the bot runs: before it has created the ledger
    or committed its schema (the file appears a moment before its tables), none."""
    return len(ledger_rows(w.logs_dir, "documents", state=state))


def test_reports_served_broken_are_held_by_name_and_every_other_one_archived(
    tmp_path: Path,
) -> None:
    """One report always an HTML page, the next always cut short: both held by name,
    the rest archived, and the breaker (3) never counts them: the ERP answered."""
    recipe = write_variant(tmp_path, [(FAST_RETRIES[0], FAST_RETRIES[1].replace("8}", "3}"))])
    with world(tmp_path, reports=6) as w:
        ready = [r["id"] for r in w.erp_state() if not r["needs_generate"]]
        html_id, cut_id = ready[:2]
        faults(w.erp_url, html_instead=[html_id], truncate=[cut_id])
        result = w.run(recipe)
        assert result.code == 1, result.output
        injected = get_json(f"{w.erp_url}/_sim/faults")["injected"]
        assert injected["html_instead"] == injected["truncate"] == 6  # attempts: 6, each
        assert "system errors in a row" not in result.output
        good = [r for r in w.erp_state() if r["id"] not in (html_id, cut_id)]
        assert_archive_holds_exactly(good, w.archive_state())
        rows = {r["source_key"]: r for r in ledger_rows(w.logs_dir, "documents")}
        for key in (html_id, cut_id):
            assert (rows[key]["state"], rows[key]["failure_kind"]) == ("failed", "business")
        checks = {
            record["key"]: [r["name"] for r in record["details"]["results"]]
            for record in events(w, "checks")
            if record["key"] in (html_id, cut_id)
        }
        assert checks == {
            html_id: ["format_matches_extension"],
            cut_id: ["size_matches_declared"],
        }


def test_a_login_step_with_a_wrong_selector_fails_once_naming_the_step(tmp_path: Path) -> None:
    step_timeout = 4
    recipe = recipe_variant(
        tmp_path,
        "variant.yaml",
        [
            FAST_RETRIES,
            (
                '- fill: {selector: "input[name=username]"',
                '- fill: {selector: "input[name=usr]"',
            ),
        ],
        append=f"timeouts: {{step: {step_timeout}}}\n",
    )
    line = line_of(recipe, "input[name=usr]")
    with world(tmp_path, reports=2) as w:
        result = w.run(recipe)
        assert result.code == 2, result.output
        assert "recipe problem" in result.stderr
        assert f"variant.yaml:{line}" in result.stderr and "step 'fill'" in result.stderr
        assert "input[name=usr]" in result.stderr and "/login.do" in result.stderr
        assert ERP_PASSWORD not in result.output
        assert events(w, "retry") == [] and events(w, "login") == []
        # One attempt: from the step before it to the end of the run, about one step
        # timeout (measured loosely: the bound is twice that).
        [goto] = [e for e in events(w, "step") if e["details"]["step"] == "goto"]
        [error] = events(w, "run_error")
        took = _seconds(error["ts"]) - _seconds(goto["ts"])
        assert took < 2 * step_timeout, took
        assert w.archive_state() == []


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()
