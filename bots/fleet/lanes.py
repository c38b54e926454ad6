"""A worker's lanes: threads that keep logged-in sessions between document jobs.

Procrastinate runs each synchronous job on a thread of its own pool, a different one
each time; sync Playwright (and a desktop display) belongs to the thread that started
it. So a worker keeps as many lanes as it runs jobs at once: a lane is a thread that
owns a session on each system of one recipe, and a job hands its work to an idle lane
and waits for it. Logging in per job would cost more than the documents.

A lane holds a fleet-wide session slot (``bots.ledger.SessionSlots``) for each session
it keeps: taken before it logs in, given back after it logs out. It logs out and gives
its slots back when it has worked ``recycle_after`` documents, when a job for another
recipe needs it, when it has been idle for ``idle_after`` seconds (other workers may be
waiting for those slots), when a heartbeat finds a slot lost, and when the worker stops.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..ledger import Holder, SessionSlots, Slot
from ..pipeline.run import Sessions
from ..pipeline.stages import System

T = TypeVar("T")


class NoSessionSlot(Exception):  # noqa: N818 - a condition, not a failure: the job is deferred again
    """Every slot of a system is taken across the fleet: try the job again later."""


@dataclass
class Held:
    """What a lane holds for one recipe: its sessions and their slots."""

    recipe: str
    sessions: Sessions
    slots: list[Slot]
    documents: int = 0  # worked since these sessions were opened

    @property
    def systems(self) -> dict[str, System]:
        return self.sessions.systems


@dataclass
class Lane:
    """One thread and what it holds; ``call`` runs work on that thread."""

    number: int
    holder: Holder
    inbox: queue.Queue[tuple[Callable[[Lane], Any], Future[Any]] | None] = field(
        default_factory=queue.Queue
    )
    held: Held | None = None
    idle_since: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None
    # A heartbeat found one of its slots lost: its sessions end after this document.
    lost: str | None = None

    def mark_lost(self, reason: str) -> None:
        self.lost = reason

    def start(self) -> None:
        self.thread = threading.Thread(target=self._serve, name=f"lane-{self.number}", daemon=True)
        self.thread.start()

    def call(self, work: Callable[[Lane], T]) -> T:
        """Run ``work(self)`` on the lane's thread; its result, or its exception."""
        done: Future[T] = Future()
        self.inbox.put((work, done))
        return done.result()

    def stop(self) -> None:
        self.inbox.put(None)

    def _serve(self) -> None:
        while (item := self.inbox.get()) is not None:
            work, done = item
            try:
                done.set_result(work(self))
            except BaseException as exc:  # the caller (the job) decides what it means
                done.set_exception(exc)
            finally:
                self.idle_since = time.monotonic()


class LanePool:
    """The worker's lanes; ``lane(recipe)`` lends an idle one, preferring one that
    already holds sessions for that recipe."""

    def __init__(self, count: int, holder: Holder) -> None:
        self.lanes = [
            Lane(n, Holder(f"{holder.worker}/lane-{n}", holder.host, holder.pid))
            for n in range(count)
        ]
        self._idle = list(self.lanes)
        self._changed = threading.Condition()

    def start(self) -> None:
        for lane in self.lanes:
            lane.start()

    def borrow(self, recipe: str, timeout: float) -> Lane:
        """An idle lane (one holding ``recipe``'s sessions first); waits up to ``timeout``
        seconds (the worker runs no more jobs than it has lanes, so one is free)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._idle, timeout):
                raise RuntimeError(f"no lane free within {timeout:g} s")
            mine = [lane for lane in self._idle if lane.held and lane.held.recipe == recipe]
            lane = (mine or self._idle)[0]
            self._idle.remove(lane)
            return lane

    def take(self, lane: Lane) -> bool:
        """Borrow ``lane`` itself if it is idle (False when a job has it)."""
        with self._changed:
            if lane not in self._idle:
                return False
            self._idle.remove(lane)
            return True

    def give_back(self, lane: Lane) -> None:
        with self._changed:
            self._idle.append(lane)
            self._changed.notify()

    def idle(self) -> list[Lane]:
        with self._changed:
            return list(self._idle)

    def stop(self) -> None:
        for lane in self.lanes:
            lane.stop()
        for lane in self.lanes:
            if lane.thread is not None:
                lane.thread.join()


def take_slots(
    slots: SessionSlots, systems: list[tuple[str, int]], holder: Holder, ttl: float
) -> list[Slot]:
    """A slot on each ``(system, cap)``, all or none: ``NoSessionSlot`` (having given
    back what it took) when one system has none free."""
    taken: list[Slot] = []
    for system, cap in systems:
        slot = slots.acquire_slot(system, cap, holder, ttl)
        if slot is None:
            for held in taken:
                slots.release_slot(held)
            raise NoSessionSlot(f"every one of the {cap} session slot(s) of {system} is taken")
        taken.append(slot)
    return taken
