"""Lanes: the sessions of one run, working documents side by side.

A system says how many logged-in sessions it tolerates (`sessions: N`); a run works its
pending documents in as many lanes as both its systems allow (and no more than there are
documents). A lane is a session on each system, held by one thread for as long as it
lives: Playwright's sync API and a desktop display belong to the thread that opened them.
Lane 0 is the run's own thread, whose source session did the listing; the others start
their own drivers and log in when they first need to.

Lanes take documents one at a time from one queue, and a document is worked by one lane
from download to confirm (its staged file never changes hands). The queue is what keeps
two lanes from one document; the ledger's compare-and-set (``count_attempt``) would
refuse a second taker anyway. After ``recycle_after`` documents a lane logs out and opens
fresh sessions (a browser context grows while it is reused).

A stop (SIGTERM, Ctrl-C) is seen by every lane between documents and in backoffs: each
finishes the document in hand. A failure that stops the run (the breaker, a refused
login, a full disk, a recipe error found while running) halts the queue: the other lanes
finish the document in hand and take no more. A lane whose sessions cannot be opened at
all (no browser) ends, and the others go on; the run's own lane always exists.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import FleetError, MachineFailure, Stopped, SystemFailure
from ..ledger import Document
from ..recipe import LoadedRecipe
from .document import DocumentWork
from .run import CaptureRun, Sessions, Target
from .stages import System

# What a lane does with one document: bots.pipeline.capture.work_document.
Work = Callable[[CaptureRun, DocumentWork, System, System], None]


def lane_count(loaded: LoadedRecipe, pending: int) -> int:
    """How many lanes a run opens for ``pending`` documents."""
    recipe = loaded.recipe
    return max(1, min(recipe.source.sessions, recipe.archive.sessions, pending))


def recycle_after(loaded: LoadedRecipe) -> int:
    """Documents a lane works before it opens fresh sessions (the stricter system's)."""
    return min(loaded.recipe.source.recycle_after, loaded.recipe.archive.recycle_after)


class Queue:
    """The run's pending documents, handed out one at a time to whichever lane asks."""

    def __init__(self, documents: list[Document]) -> None:
        self._documents = deque(documents)
        self._lock = threading.Lock()
        self.halted = False  # a failure that stops the run: no lane takes another

    def take(self) -> Document | None:
        with self._lock:
            if self.halted or not self._documents:
                return None
            return self._documents.popleft()

    def halt(self) -> None:
        with self._lock:
            self.halted = True

    def left(self) -> int:
        with self._lock:
            return len(self._documents)


@dataclass
class Outcome:
    """How the lanes ended, for the capture to report once."""

    stopped_by: str | None = None  # the signal a document's work was stopped by
    interrupted: list[str] = field(default_factory=list)  # keys stopped in the middle
    error: BaseException | None = None  # what stops the run (raised again by `work`)
    left: int = 0  # documents not finished: the next run's
    lost: list[str] = field(default_factory=list)  # why lanes could not open or log in


def work(
    run: CaptureRun,
    targets: dict[str, Target],
    first: Sessions,
    pending: list[Document],
    one: Work,
) -> Outcome:
    """Work ``pending`` in the run's lanes; ``first`` is lane 0's (the listing's)
    sessions. Returns when every lane has ended; an error that stops the run is raised
    after all lanes have finished the document in hand."""
    queue = Queue(pending)
    outcome = Outcome()
    count = lane_count(run.loaded, len(pending))
    if count > 1:
        run.ctx.log.event("lanes", lanes=count, documents=len(pending))
    threads = [
        threading.Thread(
            target=_lane,
            args=(run, number, targets, None, queue, one, outcome),
            name=f"{run.name}-lane-{number}",
            daemon=True,  # a second Ctrl-C ends the process, not a wait for lanes
        )
        for number in range(1, count)
    ]
    for thread in threads:
        thread.start()
    try:
        _lane(run, 0, targets, first, queue, one, outcome, eager=count > 1)
    finally:
        if outcome.error is not None or run.ctx.stop.is_set():
            queue.halt()
        for thread in threads:
            thread.join()
    if outcome.error is not None:
        raise outcome.error
    outcome.left = queue.left() + len(outcome.interrupted)
    if queue.left() and not queue.halted and not run.ctx.stop.is_set():
        # Every lane ended with documents left: none could log in (again).
        run.summary.system_failure = run.summary.system_failure or (
            f"no session could be opened to work the {queue.left()} document(s) left: "
            f"{outcome.lost[-1] if outcome.lost else 'every lane ended'}"
        )
    return outcome


def _lane(
    run: CaptureRun,
    number: int,
    targets: dict[str, Target],
    sessions: Sessions | None,
    queue: Queue,
    one: Work,
    outcome: Outcome,
    eager: bool = False,
) -> None:
    """One lane: sessions opened (or given), documents taken until none are left, the
    sessions renewed every ``recycle_after`` documents. Fresh sessions log in to every
    system before the lane takes a document, and so do given ones when ``eager`` (lane 0
    beside other lanes): a system refusing one more session costs the lane, not a
    document. With one lane, the archive is logged in to when first needed, as ever.
    Records how it ended in ``outcome`` rather than raising: the run's thread raises
    once, after every lane."""
    limit = recycle_after(run.loaded)
    try:
        while not run.ctx.stop.is_set() and not queue.halted:
            if not queue.left():  # nothing pending, or the others took the last ones
                return
            if sessions is None:  # fresh sessions log in before taking a document
                sessions = _open(run, number, targets, outcome)
                if sessions is None or not _logged_in(run, number, sessions, outcome):
                    return
            elif eager:  # the listing's, beside other lanes: the archive too, first
                eager = False
                if not _logged_in(run, number, sessions, outcome):
                    sessions = None
                    return
            try:
                if not _documents(run, sessions.systems, queue, one, outcome, limit):
                    return
            finally:
                sessions.close()
                sessions = None
            run.ctx.log.event("sessions_recycled", lane=number, after=limit)
    except Stopped as exc:  # while logging in: the stop is the run's, as between documents
        outcome.stopped_by = outcome.stopped_by or exc.signal
    except BaseException as exc:  # a bug, a second Ctrl-C: the run stops with it
        queue.halt()
        outcome.error = outcome.error or exc
        if sessions is not None:
            sessions.close(log_out=False)
    finally:
        if sessions is not None:
            sessions.close()


def _open(
    run: CaptureRun, number: int, targets: dict[str, Target], outcome: Outcome
) -> Sessions | None:
    """Fresh sessions for lane ``number``; None when they cannot be opened (no browser
    starts): the lane ends and the others go on."""
    try:
        return Sessions(run.ctx, run.loaded, run.stages, targets, run.vars, lane=number)
    except FleetError as exc:
        if isinstance(exc, (Stopped, MachineFailure)):  # the run's, not the lane's
            raise
        _lost(run, number, outcome, exc)
        return None


def _logged_in(run: CaptureRun, number: int, sessions: Sessions, outcome: Outcome) -> bool:
    """Log the lane in to every system before it takes a document. A lane that cannot
    (the system refuses one more session, the credential is refused) ends, and its
    documents stay in the queue for the others: the failure is the lane's, not a
    document's."""
    try:
        for system in sessions.systems.values():
            if not system.logged_in:
                run.stages.login(system)
    except FleetError as exc:
        if isinstance(exc, (Stopped, MachineFailure)):
            raise
        sessions.close()
        _lost(run, number, outcome, exc)
        return False
    return True


def _lost(run: CaptureRun, number: int, outcome: Outcome, exc: FleetError) -> None:
    outcome.lost.append(str(exc))
    run.ctx.log.event("lane_failed", outcome="warning", lane=number, error=str(exc))


def _documents(
    run: CaptureRun,
    systems: dict[str, System],
    queue: Queue,
    one: Work,
    outcome: Outcome,
    limit: int,
) -> bool:
    """Work documents from ``queue`` with ``systems``, at most ``limit``. True when the
    lane should go on with fresh sessions, False when it is done."""
    source, archive = systems["source"], systems["archive"]
    for _ in range(limit):
        if run.ctx.stop.is_set():
            return False
        doc = queue.take()
        if doc is None:
            return False
        try:
            with DocumentWork(run, doc) as document:
                one(run, document, source, archive)
            run.ctx.progress.advance()
        except Stopped as exc:  # its state is one the next run resumes from
            outcome.stopped_by = outcome.stopped_by or exc.signal
            outcome.interrupted.append(doc.source_key)
            return False
        except MachineFailure as exc:  # the machine cannot keep what we write: stop now
            run.summary.machine_failure = run.summary.machine_failure or str(exc)
            queue.halt()
            return False
        except SystemFailure:  # recorded on the document; the run stops here
            queue.halt()
            return False
        except BaseException as exc:  # a recipe error found while running; a bug
            queue.halt()
            outcome.error = outcome.error or exc
            return False
    return True
