"""Fleet mode for real: worker processes on one PostgreSQL (the ledger and the queue),
real Chromium, both simulators. Judged by the simulators' own state (every report
archived once, digest by digest; the most sessions each saw logged in at once) and by
each worker's run logs, verified.

Needs PostgreSQL: FLEET_TEST_DATABASE_URL (scripts/test.sh provides one); each test
works in a schema of its own, dropped after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sims.control import get_json, post_json
from tests.conftest import TEST_DATABASE_ENV, postgres_schema
from tests.e2e import (
    ROOT,
    World,
    command,
    recipe_variant,
    run_events,
    wait_until,
    world,
)
from tests.test_e2e_capture import assert_archive_holds_exactly

# Short, so that a test sees a dead worker's job retried within seconds; the leases and
# slots less so: a heartbeat late on a loaded machine must not cost a live lane its slot.
FAST = {
    "FLEET_HEARTBEAT_SECONDS": "1",
    "FLEET_STALLED_AFTER_SECONDS": "4",
    "FLEET_SWEEP_SECONDS": "1",
    "FLEET_LEASE_TTL_SECONDS": "15",
    "FLEET_SLOT_TTL_SECONDS": "15",
}
DONE_WITHIN = 300  # seconds for a fleet to archive a test's reports


@pytest.fixture
def fleet_url() -> Iterator[str]:
    server = os.environ.get(TEST_DATABASE_ENV)
    if not server:
        pytest.skip(f"fleet mode needs PostgreSQL: {TEST_DATABASE_ENV} is not set")
    with postgres_schema(server) as url:
        yield url


@dataclass
class Fleet:
    world: World
    env: dict[str, str]
    recipe: Path
    tmp: Path
    workers: list[subprocess.Popen[str]]

    def start_worker(self, lanes: int = 1) -> subprocess.Popen[str]:
        """``runner.py worker`` with a logs folder of its own (a machine of its own),
        in a process group of its own: a SIGKILL takes its browsers too, as a crash."""
        number = len(self.workers)
        logs = self.tmp / f"machine-{number}" / "logs"
        proc = subprocess.Popen(
            [sys.executable, "runner.py", "worker", "--lanes", str(lanes)],
            cwd=ROOT,
            env={**self.env, "FLEET_LOGS_DIR": str(logs)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def logs(self, number: int) -> Path:
        return self.tmp / f"machine-{number}" / "logs"

    def defer(self) -> Any:
        return command(self._world_env(), "run", str(self.recipe), "--fleet")

    def _world_env(self) -> World:
        return World(self.world.erp_url, self.world.archive_url, self.env, self.world.logs_dir)

    def archived(self) -> int:
        return len(self.world.archive_state())

    def wait_archived(self) -> None:
        total = len(self.world.erp_state())

        def done() -> bool:
            dead = [p.returncode for p in self.workers if p.poll() not in (None, -9)]
            assert not dead, f"a worker exited {dead}: {self.outputs()}"
            return self.archived() >= total

        self.wait(done, f"the fleet archives all {total} reports")

    def wait(self, predicate: Callable[[], Any], what: str) -> Any:
        """``wait_until`` within DONE_WITHIN; on failure, says where the fleet stands."""
        try:
            return wait_until(predicate, DONE_WITHIN, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.situation()}") from None

    def situation(self) -> str:
        """The ledger's documents, the queue's jobs and every warning the workers logged:
        what a fleet that stopped short was waiting for."""
        lines = [f"archive holds {self.archived()} item(s)"]
        for row in sorted(ledger_rows_pg(self), key=lambda r: str(r["source_key"])):
            lines.append(f"ledger {row['source_key']}: {row['state']} {row['last_error'] or ''}")
        for job in ledger_rows_pg(self, "procrastinate_jobs"):
            lines.append(
                f"job {job['id']} {job['task_name']} {job['status']} attempts={job['attempts']}"
                f" scheduled_at={job['scheduled_at']} rows={list(job['args'].get('rows', {}))}"
            )
        for n in range(len(self.workers)):
            for path in sorted((self.logs(n) / "runs").glob("*.jsonl")):
                for e in run_events(path):
                    if e.get("outcome") in ("warning", "error", "failed", "stopped"):
                        said = f"{e['ts']} {e['event']} {e.get('key')}: {e['details']}"
                        lines.append(f"worker {n} {said[:400]}")
        return "\n".join(lines)

    def stop(self) -> list[int | None]:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.workers:
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            codes.append(proc.returncode)
        return codes

    def outputs(self) -> str:
        def said(proc: subprocess.Popen[str]) -> str:
            ended = proc.stdout is not None and proc.poll() is not None
            return proc.stdout.read() if ended and proc.stdout else "(running)"

        return "\n".join(f"--- worker {n}: {said(p)}" for n, p in enumerate(self.workers))


@contextmanager
def fleet(tmp: Path, url: str, *, reports: int, sessions: int) -> Iterator[Fleet]:
    with world(tmp, reports=reports) as w, ExitStack() as stack:
        env = {**w.env, "FLEET_DATABASE_URL": url, **FAST}
        upgraded = command(World(w.erp_url, w.archive_url, env, w.logs_dir), "ledger", "upgrade")
        assert upgraded.code == 0, upgraded.output
        recipe = recipe_variant(
            tmp,
            "fleet.yaml",
            [
                ("  credential: demo-erp\n", f"  credential: demo-erp\n  sessions: {sessions}\n"),
                (
                    "  credential: demo-archive\n",
                    f"  credential: demo-archive\n  sessions: {sessions}\n",
                ),
            ],
        )
        f = Fleet(w, env, recipe, tmp, [])
        stack.callback(f.stop)
        yield f


def sessions_seen(w: World) -> dict[str, dict[str, Any]]:
    return {
        "erp": get_json(f"{w.erp_url}/_sim/state")["sessions"],
        "archive": get_json(f"{w.archive_url}/_sim/state")["sessions"],
    }


def events_in(logs: Path, name: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted((logs / "runs").glob("*.jsonl")):
        found += [e for e in run_events(path) if e["event"] == name]
    return found


def test_four_workers_archive_every_report_once_under_a_fleet_wide_cap_of_two(
    tmp_path: Path, fleet_url: str
) -> None:
    with fleet(tmp_path, fleet_url, reports=12, sessions=2) as f:
        w = f.world
        # The systems refuse a third login, as a legacy system's licence does: a breach
        # of the cap would show as a refusal, not only as a count.
        for url in (w.erp_url, w.archive_url):
            post_json(f"{url}/_sim/config", {"max_sessions": 2})
        for _ in range(4):
            f.start_worker(lanes=1)
        deferred = f.defer()
        assert deferred.code == 0, deferred.output
        assert "handed to the fleet" in deferred.stdout
        f.wait_archived()
        seen = sessions_seen(w)
        codes = f.stop()

        assert codes == [0, 0, 0, 0], f.outputs()
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())
        for system in ("erp", "archive"):
            assert 1 <= seen[system]["peak"] <= 2, seen
            assert seen[system]["refused"] == 0, seen
        # Every document confirmed once, and each worked by one lane of one worker.
        starts: Counter[str] = Counter()
        for n in range(4):
            for event in events_in(f.logs(n), "document_start"):
                starts[event["key"]] += 1
        assert len(starts) == 12 and set(starts.values()) == {1}, starts
        # Every machine's run logs verify (the worker's own run, and the listing's).
        for n in range(4):
            verified = command(
                World(
                    w.erp_url, w.archive_url, {**f.env, "FLEET_LOGS_DIR": str(f.logs(n))}, f.logs(n)
                ),
                "logs",
                "verify",
            )
            assert verified.code == 0, verified.output


def test_a_sigkilled_worker_s_job_is_taken_over_and_nothing_is_lost_or_doubled(
    tmp_path: Path, fleet_url: str
) -> None:
    with fleet(tmp_path, fleet_url, reports=12, sessions=2) as f:
        w = f.world
        victim = f.start_worker(lanes=2)
        deferred = f.defer()
        assert deferred.code == 0, deferred.output
        wait_until(lambda: f.archived() >= 3, DONE_WITHIN, "three reports archived")
        os.killpg(victim.pid, signal.SIGKILL)  # the machine dies, browsers and all
        victim.wait()
        killed_at = time.monotonic()
        (dead_run,) = [r["run_id"] for r in runs_pg(f) if r["recipe"] == "worker"]
        f.start_worker(lanes=2)
        f.wait_archived()
        # The archive may hold every report before the ledger does: the dead worker's
        # last upload went through, and the survivor confirms it only once it takes the
        # stalled job over (after the job's heartbeat is stale).
        f.wait(
            lambda: Counter(row["state"] for row in ledger_rows_pg(f)) == {"confirmed": 12},
            "every document confirmed in the ledger",
        )
        took = time.monotonic() - killed_at
        wait_until(
            lambda: events_in(f.logs(1), "dead_worker_run_closed"),
            DONE_WITHIN,
            "the dead worker's run closed",
        )
        codes = f.stop()

        assert codes[1] == 0, f.outputs()
        assert_archive_holds_exactly(w.erp_state(), w.archive_state())
        states = Counter(row["state"] for row in ledger_rows_pg(f))
        assert states == {"confirmed": 12}, states
        # The survivor says what it took over: the dead worker's stalled job.
        retried = events_in(f.logs(1), "stalled_job_retried")
        assert retried, f.outputs()
        assert took < DONE_WITHIN
        # And the dead worker's own run is closed as interrupted, not left going on
        # forever: by the survivor once its run lease expired, and said in its log.
        assert [e["details"]["run"] for e in events_in(f.logs(1), "dead_worker_run_closed")] == [
            dead_run
        ], f.outputs()
        outcomes = {r["run_id"]: r["outcome"] for r in runs_pg(f) if r["recipe"] == "worker"}
        assert outcomes[dead_run] == "interrupted", outcomes


def test_a_document_job_that_raises_is_logged_and_tried_again_later(
    tmp_path: Path, fleet_url: str
) -> None:
    from bots.fleet.app import make_app
    from bots.fleet.jobs import DOCUMENTS
    from bots.fleet.settings import FleetSettings

    with fleet(tmp_path, fleet_url, reports=2, sessions=1) as f:
        # A job this machine cannot do: it names the recipe with another digest than the
        # machine's copy has (a deployment out of step), so it raises before any browser.
        app = make_app(fleet_url, FleetSettings.from_env(f.env), [])
        with app.open():
            job_id = app.configure_task(DOCUMENTS).defer(
                recipe=str(f.recipe), digest="0" * 64, rows={"R000001": {"id": "R000001"}}
            )
        f.start_worker()
        (failed,) = f.wait(
            lambda: events_in(f.logs(0), "job_failed"), "the job's failure in the run log"
        )
        assert failed["outcome"] == "error"
        assert failed["details"]["job"] == job_id
        assert failed["details"]["keys"] == ["R000001"]
        assert failed["details"]["error_type"] == "UsageError"
        assert "deploy the same recipes on every machine" in failed["details"]["error"]
        # Back in the queue for a later try (not failed for good after one).
        (row,) = [j for j in ledger_rows_pg(f, "procrastinate_jobs") if j["id"] == job_id]
        assert (row["status"], row["attempts"]) == ("todo", 1), row
        assert f.stop() == [0], f.outputs()
        assert f.archived() == 0  # the job never reached a document


def ledger_rows_pg(f: Fleet, table: str = "documents") -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f.env["FLEET_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(f"select * from {table}"))]
    finally:
        engine.dispose()


def runs_pg(f: Fleet) -> list[dict[str, Any]]:
    return ledger_rows_pg(f, "runs")


def test_run_fleet_defers_one_listing_at_a_time_and_needs_the_fleet_database(
    tmp_path: Path, fleet_url: str
) -> None:
    with fleet(tmp_path, fleet_url, reports=2, sessions=1) as f:
        first, second = f.defer(), f.defer()
        assert first.code == 0 and "handed to the fleet (listing job" in first.stdout
        assert second.code == 0 and "a listing is already waiting" in second.stderr
        alone = {k: v for k, v in f.env.items() if k != "FLEET_DATABASE_URL"}
        refused = command(World("", "", alone, tmp_path), "worker")
        assert refused.code == 2 and "fleet mode needs FLEET_DATABASE_URL" in refused.stderr


def test_serve_in_fleet_mode_hands_a_due_run_to_the_workers(tmp_path: Path, fleet_url: str) -> None:
    from datetime import UTC, datetime

    from bots.ledger import Ledger
    from bots.scheduling.book import ScheduleBook

    with fleet(tmp_path, fleet_url, reports=4, sessions=1) as f:
        recipe = recipe_variant(
            tmp_path,
            "scheduled.yaml",
            [],
            "schedule:\n  every: day\n  at: '02:30'\n  timezone: Asia/Shanghai\n"
            "  on_missed: run_once\n",
        )
        # It last ran (the ledger says) on 1 May at 02:30; it is now 3 May, 09:00.
        when = datetime(2026, 4, 30, 18, 30, tzinfo=UTC)
        ledger = Ledger.open(fleet_url, lambda: datetime.now(UTC), staging_root=tmp_path)
        try:
            ScheduleBook(ledger, "test").update("demo", when, last_due_at=when)
        finally:
            ledger.close()
        served = command(
            f._world_env(),
            "serve",
            str(recipe),
            "--fleet",
            "--once",
            "--now",
            "2026-05-03T09:00:00+08:00",
        )
        assert served.code == 0, served.output
        assert "runs once now" in served.stderr and "handed to the fleet" in served.stderr
        assert f.archived() == 0  # serve ran nothing itself
        f.start_worker(lanes=1)
        f.wait_archived()
        assert_archive_holds_exactly(f.world.erp_state(), f.world.archive_state())
