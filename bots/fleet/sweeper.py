"""The stalled-job sweeper: finds jobs whose worker died (SIGKILL, a reboot) and puts them
back in the queue, or gives them up after ``max_stalls`` deaths.

Procrastinate does not retry a dead worker's jobs by itself: they stay ``doing`` forever
(its issues #740, #1518). Its documented answer is a periodic task; we run the sweep as
an asyncio task beside each worker instead (``sweeping``), because a periodic job waits
for a free job slot behind minutes-long browser jobs and can itself stall (#1408), while
this needs no slot and dies only with its worker, whose peers keep sweeping.

Each sweep, every ``sweep_every`` seconds: ``get_stalled_jobs`` (jobs in ``doing`` whose
worker's heartbeat is older than ``stalled_after``, or whose worker row was pruned), and
for each, in one transaction that locks the job's row and re-checks that it is still
that stalled run (same status, attempt and dead worker): count the stall in
``fleet_job_stalls``; below ``max_stalls`` retry it (``todo`` again, ``attempts + 1``),
at ``max_stalls`` give it up (``failed``). Two sweepers seeing one stalled job retry it
once: the second finds the row changed and leaves it; a job a live worker has picked up
again in between is never reset.

The callbacks run in a thread (they write the ledger and run logs, synchronously):
``on_given_up`` inside the transaction, before the job is marked failed, so its
documents are held at least once (if it raises, nothing changes and the next sweep tries
again); ``on_retried`` after the retry is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime

import procrastinate
import psycopg
from procrastinate import sql
from procrastinate.jobs import Job

from ..dburls import libpq_conninfo
from .schema import STALLS_TABLE
from .settings import FleetSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stall:
    """One stalled run of a job, as the sweeper settled it."""

    job_id: int
    task_name: str
    stalls: int  # how often its worker has died while running it, this time included
    dead_worker_id: int | None  # None: the dead worker's row was pruned already
    given_up: bool  # True: marked failed; False: back in the queue
    at: datetime  # the database's clock

    def describe(self) -> str:
        worker = f"worker {self.dead_worker_id}" if self.dead_worker_id else "its worker"
        done = "given up (failed)" if self.given_up else "retried"
        return (
            f"job {self.job_id} ({self.task_name}): {worker} died while running it "
            f"({self.stalls} time{'s' if self.stalls != 1 else ''}); {done}"
        )


OnStall = Callable[[Job, Stall], None]


class _GiveUpFailed(Exception):
    """``on_given_up`` raised (its exception chained): the give-up is rolled back."""


# The job's row, still the stalled run we were shown, locked until the transaction ends.
_CLAIM = """
SELECT now() FROM procrastinate_jobs
 WHERE id = %(job_id)s AND status = 'doing' AND attempts = %(attempts)s
   AND (worker_id IS NULL OR worker_id IN (
        SELECT id FROM procrastinate_workers
         WHERE last_heartbeat < now() - make_interval(secs => %(stalled_after)s)))
   FOR UPDATE
"""
_COUNT = f"""
INSERT INTO {STALLS_TABLE} (job_id, stalls, last_worker_id, last_stalled_at)
VALUES (%(job_id)s, 1, %(worker_id)s, now())
ON CONFLICT (job_id) DO UPDATE
   SET stalls = {STALLS_TABLE}.stalls + 1,
       last_worker_id = excluded.last_worker_id,
       last_stalled_at = excluded.last_stalled_at
RETURNING stalls
"""


class Sweeper:
    """Sweeps the fleet's queue for stalled jobs (see the module's docstring).

    ``app`` is the worker's opened app (``make_app``); ``fleet_url`` its database, on
    which the sweeper opens a connection of its own per sweep that finds something."""

    def __init__(
        self,
        app: procrastinate.App,
        fleet_url: str,
        fleet_settings: FleetSettings,
        *,
        on_retried: OnStall,
        on_given_up: OnStall,
    ) -> None:
        self.app = app
        self.conninfo = libpq_conninfo(fleet_url)
        self.settings = fleet_settings
        self.on_retried = on_retried
        self.on_given_up = on_given_up

    async def sweep(self) -> list[Stall]:
        """One sweep: each stalled job retried or given up; what was done."""
        stalled = await self.app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=self.settings.stalled_after
        )
        return await self.settle(stalled)

    async def settle(self, stalled: Iterable[Job]) -> list[Stall]:
        """Retry or give up each of these jobs (from ``get_stalled_jobs``) that is still
        the stalled run it was: one that another sweeper settled meanwhile, that finished,
        or whose worker's heartbeat came back is left alone."""
        stalled = list(stalled)
        settled: list[Stall] = []
        if not stalled:
            return settled
        async with await psycopg.AsyncConnection.connect(self.conninfo) as conn:
            for job in stalled:
                stall = await self._settle(conn, job)
                if stall is None:
                    continue
                settled.append(stall)
                if not stall.given_up:
                    try:
                        await asyncio.to_thread(self.on_retried, job, stall)
                    except Exception:  # a report that failed must not stop the sweeping
                        log.exception("on_retried failed for %s", stall.describe())
        return settled

    async def _settle(self, conn: psycopg.AsyncConnection, job: Job) -> Stall | None:
        assert job.id is not None
        try:
            async with conn.transaction():
                claimed = await (
                    await conn.execute(
                        _CLAIM,
                        {
                            "job_id": job.id,
                            "attempts": job.attempts,
                            "stalled_after": self.settings.stalled_after,
                        },
                    )
                ).fetchone()
                if claimed is None:
                    return None  # another sweeper settled it, or its worker came back
                counted = await (
                    await conn.execute(_COUNT, {"job_id": job.id, "worker_id": job.worker_id})
                ).fetchone()
                assert counted is not None
                stall = Stall(
                    job_id=job.id,
                    task_name=job.task_name,
                    stalls=int(counted[0]),
                    dead_worker_id=job.worker_id,
                    given_up=int(counted[0]) >= self.settings.max_stalls,
                    at=claimed[0],
                )
                if stall.given_up:
                    try:
                        await asyncio.to_thread(self.on_given_up, job, stall)
                    except Exception as exc:  # whatever the callback raised: roll back
                        raise _GiveUpFailed from exc
                    await conn.execute(
                        sql.queries["finish_job"],
                        {"job_id": job.id, "status": "failed", "delete_job": False},
                    )
                else:
                    await conn.execute(
                        sql.queries["retry_job"],
                        {
                            "job_id": job.id,
                            "retry_at": stall.at,
                            "new_priority": None,
                            "new_queue_name": None,
                            "new_lock": None,
                        },
                    )
        except psycopg.Error:
            log.exception("could not settle stalled job %s; the next sweep tries again", job.id)
            return None
        except _GiveUpFailed:  # rolled back: the job stays stalled, its count unchanged
            log.exception("on_given_up failed for job %s; the next sweep tries again", job.id)
            return None
        log.warning("%s", stall.describe())
        return stall

    async def run(self) -> None:
        """Sweep every ``sweep_every`` seconds until cancelled. A sweep that fails (the
        database unreachable for a moment) is logged, and the next one tries again."""
        while True:
            try:
                await self.sweep()
            except (psycopg.Error, procrastinate.exceptions.ConnectorException):
                log.exception("the stalled-job sweep failed; trying again")
            await asyncio.sleep(self.settings.sweep_every)  # the period, not a wait for state


@asynccontextmanager
async def sweeping(sweeper: Sweeper) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``sweeper`` beside the block (the worker): ``async with sweeping(s): await
    app.run_worker_async(...)``. The sweep stops when the block ends."""
    task = asyncio.create_task(sweeper.run(), name="fleet-sweeper")
    try:
        yield task
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
