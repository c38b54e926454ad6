"""A Procrastinate worker process for tests/test_fleet_plumbing.py, run as
``python -m tests.fleet_worker FLEET_URL [--sweep]`` with the fleet's timings in the
environment (FLEET_HEARTBEAT_SECONDS, ...).

Its one task, ``fleet:hold``, records that it started (job, attempt, pid) in the test's
schema, then waits until the test releases its label (a row in ``test_release``), at
most ``HOLD_LIMIT`` seconds, and records that it finished: a job the test can SIGKILL
mid-run. With ``--sweep`` the worker runs the stalled-job sweeper beside it, recording
each retry and give-up in ``test_stalls``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import procrastinate
import psycopg
from procrastinate.jobs import Job

from bots.dburls import libpq_conninfo
from bots.fleet.app import make_app
from bots.fleet.settings import FleetSettings
from bots.fleet.sweeper import Stall, Sweeper, sweeping

HOLD_LIMIT = 60.0  # seconds: a held job never outlives a broken test by much
TABLES = """
CREATE TABLE IF NOT EXISTS test_runs (
    id serial PRIMARY KEY, label text, job_id bigint, attempts int, pid int, phase text);
CREATE TABLE IF NOT EXISTS test_release (label text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS test_stalls (
    id serial PRIMARY KEY, job_id bigint, stalls int, given_up boolean, pid int);
"""

blueprint = procrastinate.Blueprint()
CONNINFO = libpq_conninfo(sys.argv[1]) if __name__ == "__main__" else ""


def _record(conn: psycopg.Connection, label: str, job_id: int, attempts: int, phase: str) -> None:
    conn.execute(
        "INSERT INTO test_runs (label, job_id, attempts, pid, phase) VALUES (%s, %s, %s, %s, %s)",
        (label, job_id, attempts, os.getpid(), phase),
    )


@blueprint.task(name="hold", pass_context=True)
def hold(context: procrastinate.JobContext, label: str) -> None:
    job = context.job
    assert job.id is not None
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        _record(conn, label, job.id, job.attempts, "started")
        deadline = time.monotonic() + HOLD_LIMIT
        query = "SELECT 1 FROM test_release WHERE label = %s"
        while conn.execute(query, (label,)).fetchone() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{label} was not released within {HOLD_LIMIT} s")
            time.sleep(0.05)  # polling the release row, bounded by the deadline
        _record(conn, label, job.id, job.attempts, "finished")


def _report(given_up: bool):  # type: ignore[no-untyped-def]
    def report(job: Job, stall: Stall) -> None:
        with psycopg.connect(CONNINFO, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO test_stalls (job_id, stalls, given_up, pid) VALUES (%s, %s, %s, %s)",
                (stall.job_id, stall.stalls, given_up, os.getpid()),
            )

    return report


async def _work(url: str, sweep: bool) -> None:
    settings = FleetSettings.from_env(os.environ)
    app = make_app(url, settings, [blueprint])
    async with app.open_async():
        sweeper = Sweeper(app, url, settings, on_retried=_report(False), on_given_up=_report(True))
        if sweep:
            async with sweeping(sweeper):
                await app.run_worker_async(concurrency=1)
        else:
            await app.run_worker_async(concurrency=1)


if __name__ == "__main__":
    asyncio.run(_work(sys.argv[1], "--sweep" in sys.argv[2:]))
