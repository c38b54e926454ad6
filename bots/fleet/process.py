"""The fleet's commands: a worker process (``runner.py worker``) and deferring a run
(``runner.py run RECIPE --fleet``, and ``serve`` in fleet mode).

A worker runs a Procrastinate worker (``concurrency`` = its lanes) on its own event
loop, the stalled-job sweeper beside it, and the lanes and the heartbeat as threads.
SIGTERM or Ctrl-C: the queue stops handing out jobs, each lane finishes the document in
hand, a job's remaining documents go back to the queue as a new job, every session is
logged out and its slot given back; then the worker's run log is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from procrastinate import App
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.worker import Worker

from .. import __version__
from ..ledger import Holder
from ..pipeline.context import run_context
from ..pipeline.run import Credentials
from ..recipe import LoadedRecipe
from ..redaction import Redactor
from ..resilience import StopFlag
from ..settings import Settings
from . import jobs
from .app import make_app
from .schema import check_queue
from .settings import FleetSettings
from .sweeper import Stall, Sweeper, sweeping
from .worker import FleetWorker, recipe_ref


def deferrer(app: App) -> Callable[[str, dict[str, Any], str | None, float], None]:
    """``defer(task, arguments, queueing_lock, delay)`` through ``app`` (opened)."""

    def defer(task: str, arguments: dict[str, Any], lock: str | None, delay: float) -> None:
        options: dict[str, Any] = {}
        if lock is not None:
            options["queueing_lock"] = lock
        if delay > 0:
            options["schedule_in"] = {"seconds": delay}
        with contextlib.suppress(AlreadyEnqueued):  # one waits already: it does the same
            app.tasks[task].configure(**options).defer(**arguments)

    return defer


def defer_run(settings: Settings, loaded: LoadedRecipe) -> int | None:
    """Defer a listing of ``loaded`` (the fleet does the rest); its job id, or None when
    one is already waiting (at most one waits per recipe)."""
    assert settings.fleet_url is not None
    check_queue(settings.fleet_url)
    app = make_app(settings.fleet_url, FleetSettings.from_env(settings.env), [jobs.blueprint])
    with app.open():
        task = app.tasks[jobs.LIST].configure(queueing_lock=f"list:{loaded.name}")
        try:
            job_id: int = task.defer(recipe=recipe_ref(loaded.path), digest=loaded.digest)
        except AlreadyEnqueued:
            return None
    return job_id


def run_worker(settings: Settings, redactor: Redactor, store: Credentials, *, lanes: int) -> str:
    """Work the fleet's jobs until stopped; the worker run's outcome."""
    assert settings.fleet_url is not None
    check_queue(settings.fleet_url)
    fleet = FleetSettings.from_env(settings.env)
    stop = StopFlag()
    holder = Holder.this_process()
    with run_context(
        name="worker",
        action="worker",
        settings=settings,
        redactor=redactor,
        digest=__version__,
        stop=stop,
        lock=False,
        start_details={"worker": str(holder), "lanes": lanes},
    ) as ctx:
        # One app per process (a blueprint joins one app): the worker's queue, and the
        # jobs' own deferring from their threads.
        app = make_app(settings.fleet_url, fleet, [jobs.blueprint], pool_size=lanes + 3)
        worker = FleetWorker(ctx, store, lanes, holder, deferrer(app), fleet)
        worker.start()
        try:
            asyncio.run(_serve(app, settings.fleet_url, worker, lanes, fleet))
        finally:
            worker.close()
        ctx.outcome = "stopped" if stop.is_set() else "ok"
        return ctx.outcome


async def _serve(app: App, url: str, worker: FleetWorker, lanes: int, fleet: FleetSettings) -> None:
    async with app.open_async():
        queue = Worker(
            app,
            name=worker.holder.worker,
            concurrency=lanes,
            install_signal_handlers=False,  # ours: the lanes finish their document first
            additional_context={"fleet": worker},
            update_heartbeat_interval=fleet.heartbeat,
            stalled_worker_timeout=fleet.stalled_after,
        )
        loop = asyncio.get_running_loop()

        def stop(signum: int) -> None:
            worker.stop(signal.Signals(signum).name)
            queue.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop, signum)
        sweeper = Sweeper(
            app,
            url,
            fleet,
            on_retried=lambda job, stall: worker.ctx.log.event(
                "stalled_job_retried",
                outcome="warning",
                job=job.id,
                task=job.task_name,
                stalls=stall.stalls,
                dead_worker=stall.dead_worker_id,
            ),
            on_given_up=lambda job, stall: _given_up(worker, job, stall),
        )
        try:
            async with sweeping(sweeper):
                await queue.run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


def _given_up(worker: FleetWorker, job: Any, stall: Stall) -> None:
    """A job whose worker died ``max_stalls`` times: its documents held for a person
    (idempotent: the sweeper may call it again if its transaction did not commit)."""
    worker.ctx.log.event(
        "stalled_job_given_up",
        outcome="error",
        job=job.id,
        task=job.task_name,
        stalls=stall.stalls,
    )
    if job.task_name == jobs.DOCUMENTS:
        args = job.task_kwargs
        worker.hold_documents(
            args["recipe"],
            args["digest"],
            list(args["rows"]),
            f"its job ({job.id}) was given up after its worker died {stall.stalls} time(s) "
            "while working it: look at what the document does to a worker before `retry`",
        )
