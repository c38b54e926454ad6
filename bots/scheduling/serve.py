"""`runner.py serve`: the fleet's own scheduler, on the `schedule` library.

The `schedule` library keeps the jobs, their order and the tags a reload clears, and
runs what is pending; each recipe is a ``RecipeJob`` whose next run comes from its
``Timetable`` (zones, daylight saving, holidays; schedule's own arithmetic reads the
wall clock and answers a DST gap with 03:23 for 02:23) and whose "now" is an injected
clock, so tests move time without sleeping.

A due recipe runs as a child process (`runner.py run RECIPE --quiet`, with a private
Xvfb for a desktop recipe): a crash, a leak or a hung browser in one run cannot take the
scheduler down, and the child takes the recipe's lock like any run, so a run by hand
and a scheduled one never overlap. Different recipes run side by side up to
``max_parallel``; a recipe due while it still runs waits for its run to end (once).
Every decision goes to the ledger (``schedule_events``) and the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import schedule

from ..errors import FleetError
from ..virtualdisplay import virtual_display
from .book import ScheduleBook
from .commands import RecipeCommand
from .decide import Decision, decide, record_decision, record_finish
from .timetable import NeverFires, Timetable

log = logging.getLogger("rpa_fleet.serve")

IDLE_CHECK_SECONDS = 60.0  # the longest the loop waits without looking at the clock


class Clock(Protocol):
    def now(self) -> datetime: ...

    def wait(self, seconds: float, wake: threading.Event) -> None:
        """Return after ``seconds``, or as soon as ``wake`` is set."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, wake: threading.Event) -> None:
        wake.wait(max(0.0, seconds))


class FixedClock(SystemClock):
    """`serve --once --now`: the moment given, which does not move; waits are real (they
    wait for the runs to end). A naive moment is UTC."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


class Child(Protocol):
    def poll(self) -> int | None: ...

    def wait(self) -> int: ...

    def send_signal(self, sig: int) -> None: ...


@dataclass(frozen=True)
class ScheduledRecipe:
    """What serve knows of one recipe: its name, timetable and how to run it."""

    name: str
    path: Path
    timetable: Timetable
    pause_after: int
    command: RecipeCommand
    screen: str | None = None  # "1280x1024": a desktop recipe's display, made for its run


Launcher = Callable[[ScheduledRecipe], Child]


def process_launcher(logs_dir: Path) -> Launcher:
    """Children as processes; what they print (failures only: --quiet) is appended to
    logs/serve/<recipe>.log. A desktop recipe gets a private Xvfb of its screen size,
    started here and stopped when its run ends, rather than xvfb-run: SIGTERM must reach
    the run itself (xvfb-run's shell would die of it and leave the run going), and the
    display must outlive the document the run finishes after it."""

    def launch(recipe: ScheduledRecipe) -> Child:
        folder = logs_dir / "serve"
        folder.mkdir(parents=True, exist_ok=True)
        resources = ExitStack()
        # The whole environment, master key included: the child is a fleet run that
        # unlocks the credentials itself (not a browser or a scanner).
        env = dict(os.environ)
        try:
            if recipe.screen is not None:
                display = resources.enter_context(virtual_display(screen=f"{recipe.screen}x24"))
                env = display.env(env)
            with (folder / f"{recipe.name}.log").open("ab") as out:  # the child keeps a copy
                process = subprocess.Popen(
                    recipe.command.argv,
                    cwd=recipe.command.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        except BaseException:
            resources.close()
            raise
        return RunProcess(process, resources)

    return launch


class Handed:
    """A run handed to the fleet (serve in fleet mode): done as far as serve is concerned
    once its listing job is in the queue; the fleet's workers do the rest."""

    def poll(self) -> int | None:
        return 0

    def wait(self) -> int:
        return 0

    def send_signal(self, sig: int) -> None:
        """Nothing runs here to stop: the workers stop on their own SIGTERM."""


class RunProcess:
    """A run's process and what it holds (its display): released once, when it ends."""

    def __init__(self, process: subprocess.Popen[bytes], resources: ExitStack) -> None:
        self.process = process
        self._resources = resources
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None:
            self._release()
        return code

    def wait(self) -> int:
        code = self.process.wait()
        self._release()
        return code

    def send_signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def _release(self) -> None:
        with self._lock:  # poll (the loop) and wait (the watcher) may both get here
            self._resources.close()


class RecipeJob(schedule.Job):
    """A `schedule` job whose times come from a Timetable and whose clock is injected."""

    next_run: datetime | None

    def __init__(self, scheduler: schedule.Scheduler, recipe: ScheduledRecipe, clock: Clock):
        super().__init__(1, scheduler)
        self.recipe = recipe
        self.clock = clock
        self.tags.add("recipes")  # what a reload clears

    @property
    def should_run(self) -> bool:
        return self.next_run is not None and self.clock.now() >= self.next_run

    def run(self) -> Any:
        assert self.job_func is not None, "do() gives every job its function"
        result = self.job_func()
        self.last_run = self.clock.now()
        self._schedule_next_run()
        return result

    def _schedule_next_run(self) -> None:
        # From the schedule, not from when the run ended: the instant after the one
        # just due (or after now, when the loop was away longer), never now + period.
        previous = self.next_run or self.clock.now()
        self.next_run = self.recipe.timetable.due_after(max(previous, self.clock.now()))

    def __repr__(self) -> str:
        return f"RecipeJob({self.recipe.name}, next_run={self.next_run})"


@dataclass
class Running:
    recipe: ScheduledRecipe
    child: Child
    due: datetime | None


@dataclass
class Server:
    recipes: Callable[[], list[ScheduledRecipe]]  # loads them: at start and on SIGHUP
    book: ScheduleBook
    clock: Clock
    launcher: Launcher
    max_parallel: int = 2
    scheduler: schedule.Scheduler = field(default_factory=schedule.Scheduler)
    running: dict[str, Running] = field(default_factory=dict)
    queue: dict[str, Decision] = field(default_factory=dict)  # due, waiting for a slot
    wake: threading.Event = field(default_factory=threading.Event)
    stopping: str | None = None
    reload_asked: bool = False
    known: dict[str, ScheduledRecipe] = field(default_factory=dict)

    # -- set-up --------------------------------------------------------------------

    def load(self) -> None:
        """(Re)build the jobs from the recipes; runs in progress go on."""
        self.scheduler.clear("recipes")
        self.known = {}
        for recipe in self.recipes():
            self.known[recipe.name] = recipe
            try:
                job = RecipeJob(self.scheduler, recipe, self.clock).do(self._guarded, recipe)
            except NeverFires as exc:
                log.error("%s: %s; not scheduled", recipe.name, exc)
                continue
            log.info(
                "%s: %s; next at %s",
                recipe.name,
                recipe.timetable.schedule.describe(),
                _local(recipe.timetable, job.next_run),
            )

    def catch_up(self) -> None:
        """What each recipe missed while nothing ran (found in the ledger), and what is
        due right now: decided as at any due time."""
        for recipe in self.known.values():
            self._guarded(recipe)

    # -- the loop --------------------------------------------------------------------

    def serve_forever(self) -> None:
        self.load()
        self.catch_up()
        while True:
            self.tick()
            if self.stopping:
                self._stop_children()
                return
            self.clock.wait(self._idle_seconds(), self.wake)
            self.wake.clear()

    def once(self) -> None:
        """What is due at this moment (missed runs included), run to the end."""
        self.load()
        self.catch_up()
        self.tick()
        while (self.running or self.queue) and not self.stopping:
            self.clock.wait(IDLE_CHECK_SECONDS, self.wake)
            self.wake.clear()
            self._reap()
            self._dispatch()
        if self.stopping:
            self._stop_children()

    def tick(self) -> None:
        if self.reload_asked:
            self.reload_asked = False
            log.info("SIGHUP: reloading the recipes")
            self.load()
            self.catch_up()
        self._reap()
        if not self.stopping:
            self.scheduler.run_pending()
            self._dispatch()

    def _idle_seconds(self) -> float:
        upcoming = [job.next_run for job in self.scheduler.get_jobs("recipes") if job.next_run]
        if not upcoming:
            return IDLE_CHECK_SECONDS
        return min(IDLE_CHECK_SECONDS, (min(upcoming) - self.clock.now()).total_seconds())

    # -- one recipe due --------------------------------------------------------------

    def _guarded(self, recipe: ScheduledRecipe) -> None:
        """A job never raises into the loop: an exception is logged and recorded, and
        the recipe is tried again at its next due time."""
        try:
            self._due(recipe)
        except Exception as exc:
            log.exception("%s: the scheduler's job failed", recipe.name)
            try:
                self.book.record(recipe.name, "error", f"{type(exc).__name__}: {exc}", self.now())
            except Exception:  # the ledger itself is away: the log has it
                log.exception("%s: could not record the failure in the ledger", recipe.name)

    def _due(self, recipe: ScheduledRecipe) -> None:
        name = recipe.name
        if name in self.queue:
            return  # already waiting to run: one run covers both
        now = self.now()
        decision = decide(
            recipe.timetable, self.book.standing(name), self.book.last_started(name), now
        )
        if name in self.running and decision.run:
            # It still runs: this due time is owed, once, when it ends (never two copies).
            log.info("%s: due again while running; it runs again when this run ends", name)
            self.book.record(name, "queued", "due while its previous run is still running", now)
            self.queue[name] = decision
            return
        if decision.kind == "not_due":
            return
        log.info("%s: %s", name, decision.reason)
        if not decision.run:  # each due time a paused recipe lets pass is recorded too
            if decision.kind in ("missed_skip", "first_time", "paused"):
                record_decision(self.book, name, decision, now)
            return
        self.queue[name] = decision

    def _dispatch(self) -> None:
        """Start what waits, oldest first, while there are slots; a recipe still
        running keeps its turn until it ends."""
        for name in list(self.queue):
            if len(self.running) >= self.max_parallel:
                return
            if name in self.running:
                continue
            recipe = self.known.get(name)
            decision = self.queue.pop(name)
            if recipe is None:  # dropped by a reload while it waited
                continue
            now = self.now()
            record_decision(self.book, name, decision, now)
            try:
                child = self.launcher(recipe)
            except (OSError, FleetError) as exc:
                log.error("%s: could not start its run: %s", name, exc)
                self.book.record(name, "error", f"could not start its run: {exc}", now)
                record_finish(self.book, name, recipe.pause_after, 3, now, due=decision.due)
                continue
            self.running[name] = Running(recipe, child, decision.due)
            threading.Thread(target=self._watch, args=(child,), daemon=True).start()
            log.info("%s: started (%d running)", name, len(self.running))

    def _watch(self, child: Child) -> None:
        child.wait()
        self.wake.set()

    def _reap(self) -> None:
        for name, run in list(self.running.items()):
            code = run.child.poll()
            if code is None:
                continue
            del self.running[name]
            standing = record_finish(
                self.book, name, run.recipe.pause_after, code, self.now(), due=run.due
            )
            log.info("%s: finished, exit %s", name, code)
            if standing.paused:
                log.error("%s: PAUSED: %s", name, standing.paused_reason)
                self.queue.pop(name, None)

    # -- signals ---------------------------------------------------------------------

    def install_signals(self) -> Callable[[], None]:
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {sig: signal.getsignal(sig) for sig in handled}

        def handler(signum: int, _frame: object) -> None:
            if signum == signal.SIGHUP:
                self.reload_asked = True
            else:
                self.stopping = signal.Signals(signum).name
            self.wake.set()

        for sig in handled:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def _stop_children(self) -> None:
        """Ask every run to finish the document in hand and stop (SIGTERM does that in
        `run`), and wait for them: nothing is cut off half-way."""
        log.info(
            "%s: stopping; %d run(s) finish their current documents",
            self.stopping,
            len(self.running),
        )
        for run in self.running.values():
            with contextlib.suppress(ProcessLookupError):  # it has just ended
                run.child.send_signal(signal.SIGTERM)
        for run in list(self.running.values()):
            run.child.wait()
        self._reap()

    def now(self) -> datetime:
        return self.clock.now()


def _local(timetable: Timetable, instant: datetime | None) -> str:
    if instant is None:
        return "never"
    return timetable.local(instant).strftime("%Y-%m-%d %H:%M %Z")
