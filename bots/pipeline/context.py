"""One way to start and finish any run: capture, inventory, review.

A run context holds what every run has: its id, its run log, its `runs` row in the
ledger, its evidence recorder, the recipe's lock (when the run works a recipe), the
agent string, the redactor that keeps secrets out of all of these, and the stop flag.
Entering it takes the lock, opens the log and the row, and says what the run is; leaving
it closes both with the run's outcome, its counts and its own peak memory, whatever
happened inside.

A machine that cannot keep what the run writes (``MachineFailure``: a full disk, a
read-only ledger, the logs folder removed or replaced, see ``footing``) stops the run
with the system exit code. Closing then writes what can still be written: a log the
machine refused, or whose folder is no longer the one it was opened in, is given up
without a closing record or an index entry (it reads as a killed run); the `runs` row is
finished when the ledger takes it. A failure met only while closing is raised unless the
run already failed.
"""

from __future__ import annotations

import contextlib
import getpass
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import __version__
from ..archival import sandbox
from ..archival.evidence import Agent, Evidence
from ..errors import FleetError, MachineFailure, Stopped
from ..ledger import Ledger
from ..lock import RecipeLock
from ..progress import NullProgress, Progress
from ..redaction import Redactor
from ..resilience import StopFlag
from ..runlog import RunLog
from ..settings import Settings
from . import memory
from .footing import Footing

Clock = Callable[[], datetime]


def local_now() -> datetime:
    return datetime.now().astimezone()


def new_run_id(name: str, started: datetime) -> str:
    return f"{name}-{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class RunContext:
    """What one run is and where it writes; ``outcome`` and ``counts`` are set by the
    work inside, and written when the run closes."""

    run_id: str
    name: str  # the recipe's name (or the run's subject, e.g. "review")
    action: str  # capture, inventory, review
    settings: Settings
    clock: Clock
    redactor: Redactor
    log: RunLog
    ledger: Ledger
    evidence: Evidence
    stop: StopFlag
    progress: Progress
    agent: Agent
    footing: Footing
    lock: RecipeLock | None = None
    outcome: str = "error"
    counts: dict[str, Any] = field(default_factory=dict)


@contextmanager
def run_context(
    *,
    name: str,
    action: str,
    settings: Settings,
    redactor: Redactor,
    digest: str,
    clock: Clock = local_now,
    stop: StopFlag | None = None,
    progress: Progress | None = None,
    lock: bool = True,
    lock_wait: float | None = None,
    start_details: dict[str, Any] | None = None,
    start_event: str = "run_start",
    run_id: str | None = None,
    ledger: Ledger | None = None,
) -> Iterator[RunContext]:
    """Start a run of ``name`` (holding its lock when ``lock``), yield its context, and
    close it: on an error the outcome is "error" (or "stopped"), and the error is logged.

    ``digest`` is what the run worked from (a recipe's digest, a workbook's SHA-256).
    A ``ledger`` given is used and left open; otherwise the run opens (and upgrades) its own.
    """
    run_id = run_id or new_run_id(name, clock())
    with ExitStack() as stack:
        held: RecipeLock | None = None
        if lock:
            held = RecipeLock(settings.logs_dir / "locks", name)
            held.acquire(wait=lock_wait, now=clock, run_id=run_id)  # or Locked
            stack.callback(held.release)
        memory.reset_peak()
        sandbox.reset_peak()
        # The ledger first: one this code cannot use (newer, unreachable) stops the run
        # before it has a log to leave unfinished. A run writes, so it upgrades an older one.
        if ledger is None:
            ledger = Ledger.open(settings.ledger_url, clock, staging_root=settings.staging_root)
            stack.callback(ledger.close)
        log = RunLog(
            settings.runs_dir / f"{run_id}.jsonl",
            run_id=run_id,
            recipe=name,
            redactor=redactor,
            clock=clock,
        )
        agent = Agent.this_bot()
        footing = Footing(ledger, run_id)
        footing.hold("the logs folder", settings.logs_dir)
        footing.hold("the runs folder", log.path.parent)
        footing.hold("the run log", log.path)
        footing.hold_ledger()
        ctx = RunContext(
            run_id=run_id,
            name=name,
            action=action,
            settings=settings,
            clock=clock,
            redactor=redactor,
            log=log,
            ledger=ledger,
            evidence=Evidence(
                ledger,
                log,
                run_id=run_id,
                recipe=name,
                directory=settings.logs_dir / "evidence",
                clock=clock,
                agent=agent,
            ),
            stop=stop or StopFlag(),
            progress=progress or NullProgress(),
            agent=agent,
            footing=footing,
            lock=held,
        )
        raised: BaseException | None = None
        try:
            ledger.start_run(
                run_id=run_id,
                recipe=name,
                recipe_digest=digest,
                host=socket.gethostname(),
                user=getpass.getuser(),
                bot_version=__version__,
                log_path=str(log.path),
                action=action,
            )
            log.event(
                start_event,
                action=action,
                bot_version=__version__,
                host=socket.gethostname(),
                user=getpass.getuser(),
                ledger=redactor.scrub(ledger.url),
                **(start_details or {}),
            )
            if held is not None and held.taken_over:
                log.event("lock_taken_over", outcome="warning", previous_holder=held.taken_over)
            if held is not None:
                # Holding the lock, no other run of this recipe can still be going.
                interrupted = ledger.close_interrupted_runs(name, run_id)
                if interrupted:
                    log.event("previous_runs_interrupted", outcome="warning", runs=interrupted)
            yield ctx
        except Stopped as exc:
            raised = exc
            ctx.outcome = "stopped"
            _quietly(log, "run_stopped", outcome="stopped", error=str(exc))
            raise
        except FleetError as exc:
            raised = exc
            ctx.outcome = "error"
            _quietly(
                log, "run_error", outcome="error", error=str(exc), error_type=type(exc).__name__
            )
            raise
        except BaseException as exc:
            raised = exc
            ctx.outcome = "error"
            raise
        finally:
            _close(ctx, raised)


def _quietly(log: RunLog, event: str, **details: Any) -> None:
    """Log ``event`` unless the machine refuses (the failure is already on its way)."""
    with contextlib.suppress(MachineFailure):
        log.event(event, **details)


def _close(ctx: RunContext, raised: BaseException | None) -> None:
    """Close the log and the `runs` row as far as the machine allows (see the module)."""
    log, footing = ctx.log, ctx.footing
    failures: list[MachineFailure] = []
    try:
        footing.check()  # writes a removed ledger back, if it comes to that
    except MachineFailure as exc:
        failures.append(exc)
    if log.failure is None and footing.intact(ctx.settings.logs_dir, log.path.parent, log.path):
        try:
            log.close(
                ctx.outcome,
                peak_rss_mb=memory.peak_mb(),
                # the inspecting worker's (sandbox.py), which peak_rss_mb leaves out
                inspect_peak_rss_mb=sandbox.peak_mb(),
                **ctx.counts,
            )
        except MachineFailure as exc:
            failures.append(exc)
    else:
        log.abandon()
        if log.failure is not None:
            failures.append(log.failure)
    try:
        seal = log.seal  # None when the log was given up: it reads as a killed run
        ctx.ledger.finish_run(
            ctx.run_id,
            ctx.outcome,
            ctx.counts,
            log=(seal.lines, seal.first_prev, seal.last_hash) if seal is not None else None,
        )
    except MachineFailure as exc:
        failures.append(exc)
    if failures and raised is None and ctx.outcome not in ("failed", "error"):
        raise failures[0]
