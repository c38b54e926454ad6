"""What a fleet worker does with its jobs (``runner.py worker``).

One worker process has one run of its own (action ``worker``): its run log, hash-chained
and indexed like any run's, tells every document job it worked, on this machine. A
listing job is a run of its recipe (action ``capture``) with a run log of its own, as
when a recipe runs on one machine, holding the ledger's lease ``recipe:NAME`` instead of
the local lock file: one listing of a recipe at a time across the fleet. A lease or slot
whose holder stopped beating (a SIGKILLed worker) expires, and whoever takes it over
says so in its log.

Nothing lost, nothing doubled, whatever the queue does (it may run a job twice: a worker
taken for dead while it was alive, a retried stalled job): each document is worked under
a lease of its own (``doc:RECIPE:KEY``), so no two workers ever work one document at the
same time; and the ledger's states say where it resumes (a document whose upload was in
flight is looked up with ``find`` before anything is sent again).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ..archival.evidence import Evidence, Shot
from ..errors import FleetError, MachineFailure, Stopped, SystemFailure, UsageError
from ..ledger import (
    Document,
    FailureKind,
    Holder,
    LeaseHeld,
    LeaseLost,
    Leases,
    LedgerError,
    SessionSlots,
    Slot,
    SlotLost,
    State,
    is_held,
)
from ..pipeline import listing
from ..pipeline.capture import work_document
from ..pipeline.context import RunContext, run_context
from ..pipeline.document import DocumentWork
from ..pipeline.run import (
    CaptureRun,
    Credentials,
    Sessions,
    Target,
    base_vars,
    recipe_details,
    render_setting,
    resolve_systems,
)
from ..pipeline.stages import StageRunner
from ..pipeline.summary import RunSummary
from ..recipe import LoadedRecipe, load_recipe
from ..redaction import Redactor
from ..resilience import StopFlag
from ..settings import PROJECT_ROOT, Settings
from .lanes import Held, Lane, LanePool, NoSessionSlot, take_slots
from .settings import FleetSettings

# A deferring callable: (task name, its arguments, queueing lock or None, seconds from now)
Defer = Callable[[str, dict[str, Any], str | None, float], None]


# A lane idle this long logs out and frees its slots: other workers may be waiting.
IDLE_AFTER = 30.0
# The lease a worker holds on its own run while it lives: ``run:RUN_ID``.
RUN_LEASE = "run:"
# A job that found no session slot free runs again after this many seconds; the rest of
# a batch whose system failed (the breaker), after this many.
NO_SLOT_DELAY = 5.0
# A document job that finds no slot free looks again every SLOT_POLL seconds for up to
# SLOT_WAIT before handing its documents back (fewer jobs churning through the queue).
SLOT_WAIT = 30.0
SLOT_POLL = 1.0
SYSTEM_DOWN_DELAY = 60.0
# A batch whose system keeps failing is deferred again this many times, then left for
# the recipe's next listing (the ledger still has it pending).
MAX_TRIES = 5


def recipe_ref(path: Path) -> str:
    """How a job names a recipe file: relative to the project when inside it (every
    machine has its own checkout), else as given."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(resolved)


@dataclass
class RecipeWork:
    """A recipe as this worker works its documents: loaded once per digest."""

    loaded: LoadedRecipe
    ctx: RunContext  # the worker's run, as this recipe's (its name, its evidence)
    stages: StageRunner
    targets: dict[str, Target]


class FleetWorker:
    def __init__(
        self,
        ctx: RunContext,
        store: Credentials,
        lanes: int,
        holder: Holder,
        defer: Defer,
        fleet: FleetSettings,
    ) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx.settings
        self.redactor: Redactor = ctx.redactor
        self.store = store
        self.holder = holder
        self.defer = defer
        self.fleet = fleet
        self.leases = Leases(ctx.ledger.engine)
        self.slots = SessionSlots(ctx.ledger.engine)
        self.pool = LanePool(lanes, holder)
        self._recipes: dict[tuple[str, str], RecipeWork] = {}
        self._lock = threading.Lock()
        self._loading = threading.Lock()
        # What the heartbeat keeps alive: leases by name (with what to do when lost).
        self._leases: dict[str, tuple[Holder, Callable[[str], None]]] = {}
        self._listings: set[StopFlag] = set()
        # Every slot this worker holds, from the moment it is taken (a browser may take a
        # while to start), with what to do when a heartbeat finds it lost.
        self._slots: dict[tuple[str, int, str], tuple[Slot, Callable[[str], None]]] = {}
        self._beating = threading.Event()
        self._beater: threading.Thread | None = None

    # -- the worker's life ---------------------------------------------------------------

    def start(self) -> None:
        # The worker's own run lives as long as this lease is beaten: when it expires,
        # the run's process is dead and any worker closes the run (``_close_dead_runs``).
        run_lease = RUN_LEASE + self.ctx.run_id
        self.leases.acquire(run_lease, self.holder, self.fleet.lease_ttl)
        with self._lock:
            self._leases[run_lease] = (self.holder, self._run_lease_lost)
        self._close_dead_runs()
        self.pool.start()
        self._beater = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._beater.start()

    def stop(self, reason: str) -> None:
        """A stop (SIGTERM): every lane finishes its document; listings stop."""
        self.ctx.stop.set(reason)
        with self._lock:
            flags = list(self._listings)
        for flag in flags:
            flag.set(reason)

    def close(self) -> None:
        """After the last job: every lane logs out and gives its slots back."""
        for lane in self.pool.lanes:
            lane.call(self._close_lane)
        self.pool.stop()
        self._beating.set()
        if self._beater is not None:
            self._beater.join()
        run_lease = RUN_LEASE + self.ctx.run_id
        with self._lock:
            self._leases.pop(run_lease, None)
        self.leases.release(run_lease, self.holder)

    def _run_lease_lost(self, reason: str) -> None:
        # The heartbeat stalled past the lease's time to live (a suspended machine): other
        # workers may have closed this run as interrupted; its end will say so.
        self.ctx.log.event("run_lease_lost", outcome="warning", error=reason)

    def _close_dead_runs(self) -> None:
        """Close as interrupted the runs of workers that died (their run lease expired),
        so that no run reads as going on forever; each closing is logged here."""
        for lease in self.leases.expired(RUN_LEASE):
            run_id = lease.name.removeprefix(RUN_LEASE)
            # The run first, then the lease: an expired lease cannot be beaten back to life,
            # so its holder will not write the run again.
            if self.ctx.ledger.close_interrupted_run(run_id):
                self.ctx.log.event(
                    "dead_worker_run_closed",
                    outcome="warning",
                    run=run_id,
                    worker=str(lease.holder),
                    expired_at=lease.expires_at.isoformat(),
                )
            self.leases.clear_expired(lease)

    # -- recipes -------------------------------------------------------------------------

    def recipe(self, ref: str, digest: str) -> RecipeWork:
        """The recipe a job names, as this machine has it; refused when its digest is not
        the one the job was deferred with."""
        with self._loading:  # (not self._lock: the heartbeat must not wait for a keyring)
            known = self._recipes.get((ref, digest))
            if known is not None:
                return known
            path = Path(ref) if Path(ref).is_absolute() else PROJECT_ROOT / ref
            loaded = load_recipe(path)
            if loaded.digest != digest:
                raise UsageError(
                    f"{path}: this machine's copy of the recipe is not the one the job was "
                    f"deferred with (digest {loaded.digest[:12]} here, {digest[:12]} in the "
                    "job): deploy the same recipes on every machine of the fleet"
                )
            ctx = dataclasses.replace(
                self.ctx,
                name=loaded.name,
                evidence=Evidence(
                    self.ctx.ledger,
                    self.ctx.log,
                    run_id=self.ctx.run_id,
                    recipe=loaded.name,
                    directory=self.settings.logs_dir / "evidence",
                    clock=self.ctx.clock,
                    agent=self.ctx.agent,
                ),
            )
            variables = base_vars(ctx, loaded)
            stages = StageRunner(loaded.recipe.retry, ctx.log, ctx.stop, variables)
            targets = resolve_systems(loaded, self.store, variables)
            work = RecipeWork(loaded, ctx, stages, targets)
            self._recipes[(ref, digest)] = work
            return work

    # -- document jobs ---------------------------------------------------------------------

    def capture_documents(
        self,
        ref: str,
        digest: str,
        rows: dict[str, dict[str, Any]],
        shots: dict[str, list[str]],
        job: int | None = None,
        tries: int = 0,
    ) -> dict[str, Any]:
        """A document job: its documents worked in a lane; what could not be done now
        deferred again (after a stop at once; no slot: seconds; the system failing: a
        minute, at most ``MAX_TRIES`` times, then the next listing; another worker's
        lease: once it has expired)."""
        try:
            work = self.recipe(ref, digest)
            lane = self.pool.borrow(work.loaded.name, timeout=60)
            busy: list[str] = []
            try:
                summary, left, why = lane.call(
                    lambda lane: self._documents(lane, work, rows, shots, busy)
                )
            finally:
                self.pool.give_back(lane)
        except Exception as exc:
            # The queue tries the job again later (jobs.JOB_RETRY); the ledger says where
            # each of its documents stands. Said here too: the queue's own log is not the
            # run's, and a person reading the run log must see the job that failed.
            self._job_failed(job, list(rows), exc)
            raise
        counts = summary.counts()
        self.ctx.log.event(
            "job_end",
            key=None,
            outcome="ok" if not left else "warning",
            job=job,
            recipe=work.loaded.name,
            **counts,
            **({"left": list(left), "why": why} if left else {}),
        )
        if busy:  # a dead worker's document lease expires, then they are taken over
            self.defer_documents(
                work.loaded, ref, {k: rows[k] for k in busy}, shots, self.fleet.lease_ttl
            )
        if left and why == "system failure" and tries + 1 >= MAX_TRIES:
            self.ctx.log.event(
                "documents_left_for_next_listing",
                outcome="warning",
                recipe=work.loaded.name,
                keys=left,
                tries=tries + 1,
            )
        elif left:  # stopped, no session slot, the system down: the rest in a new job
            delay = (
                0.0
                if why == "stopped"
                else (NO_SLOT_DELAY if why == "no session slot" else SYSTEM_DOWN_DELAY)
            )
            again = tries + 1 if why == "system failure" else tries
            self.defer_documents(
                work.loaded, ref, {k: rows[k] for k in left}, shots, delay, tries=again
            )
        return {"recipe": work.loaded.name, **counts, "left": len(left), "busy": len(busy)}

    def _job_failed(self, job: int | None, keys: list[str], exc: Exception) -> None:
        with suppress(MachineFailure):  # a log that cannot be written: the queue's says it
            self.ctx.log.event(
                "job_failed",
                outcome="error",
                job=job,
                keys=keys,
                error=self.redactor.scrub(str(exc)),
                error_type=type(exc).__name__,
            )

    def _documents(
        self,
        lane: Lane,
        work: RecipeWork,
        rows: dict[str, dict[str, Any]],
        shots: dict[str, list[str]],
        busy: list[str],
    ) -> tuple[RunSummary, list[str], str | None]:
        """On the lane's thread: each document in turn. Returns the summary, the keys
        not worked and why; ``busy`` gets the keys another worker's lease still holds."""
        loaded, ctx = work.loaded, work.ctx
        variables = base_vars(ctx, loaded)
        work.stages.base_vars = variables
        run = CaptureRun(
            ctx=ctx,
            loaded=loaded,
            vars=variables,
            stages=work.stages,
            summary=RunSummary(ctx.run_id, loaded.name, ctx.log.path),
        )
        run.rows = dict(rows)
        run.row_shots = {key: Shot(Path(path), sha) for key, (path, sha) in shots.items()}
        work.stages.on_failure = run.failure_shot
        left = list(rows)
        waiting_until = time.monotonic() + SLOT_WAIT
        while left:
            if ctx.stop.is_set():
                return run.summary, left, "stopped"
            try:
                held = self._sessions(lane, work)
            except NoSessionSlot as exc:
                # Slots come free as other lanes finish: look again for a while (a stop
                # cuts the wait short), then hand the rest back to the queue.
                if time.monotonic() < waiting_until:
                    if ctx.stop.wait(SLOT_POLL):
                        return run.summary, left, "stopped"
                    continue
                ctx.log.event(
                    "no_session_slot", outcome="warning", lane=lane.number, error=str(exc)
                )
                return run.summary, left, "no session slot"
            except Stopped:  # while logging in
                return run.summary, left, "stopped"
            except MachineFailure:
                raise
            except FleetError as exc:  # the system refuses one more login; a login that fails
                ctx.log.event("lane_failed", outcome="warning", lane=lane.number, error=str(exc))
                return run.summary, left, "system failure"
            key = left.pop(0)
            try:
                if not self._document(run, lane, held, key):
                    busy.append(key)
                    continue
            except Stopped:
                left.insert(0, key)  # as the ledger has it: the next job resumes it
                return run.summary, left, "stopped"
            except (MachineFailure, SlotLost):
                raise  # the job fails; the queue retries it, and the ledger says where
            except SystemFailure:  # recorded on the document (the breaker): later
                self._close_lane(lane)
                return run.summary, left, "system failure"
            held.documents += 1
        return run.summary, left, None

    def _document(self, run: CaptureRun, lane: Lane, held: Held, key: str) -> bool:
        """One document, under its own lease: no other worker works it meanwhile. False
        when another holds its lease (a dead worker's, until it expires): try later."""
        ledger, name = run.ctx.ledger, run.loaded.name
        doc = ledger.get(name, key)
        if doc is None or doc.state is State.CONFIRMED or is_held(doc, run.loaded.digest):
            return True  # done since it was listed, or held for a person
        lease_name = f"doc:{name}:{key}"
        try:
            with self.lease(lease_name, lane.holder, lambda why: None) as lease:
                if lease.taken_over_from is not None:
                    run.ctx.log.event(
                        "document_taken_over",
                        key=key,
                        outcome="warning",
                        previous_holder=str(lease.taken_over_from),
                    )
                doc = ledger.get(name, key) or doc  # as it stands now that it is ours
                if doc.state is State.CONFIRMED:
                    return True
                with DocumentWork(run, doc) as document:
                    work_document(run, document, held.systems["source"], held.systems["archive"])
        except (LeaseHeld, LedgerError) as exc:  # another worker's, alive or not yet expired
            run.ctx.log.event("document_busy", key=key, outcome="warning", error=str(exc))
            return False
        return True

    def _sessions(self, lane: Lane, work: RecipeWork) -> Held:
        """The lane's sessions on ``work``'s systems, logged in: kept, renewed or opened."""
        held, loaded = lane.held, work.loaded
        recycle = min(loaded.recipe.source.recycle_after, loaded.recipe.archive.recycle_after)
        if held is not None and (
            held.recipe != loaded.name or held.documents >= recycle or lane.lost
        ):
            reason = lane.lost or ("recycled" if held.recipe == loaded.name else "other recipe")
            self.ctx.log.event("sessions_closed", lane=lane.number, recipe=held.recipe, why=reason)
            self._close_lane(lane)
        if lane.held is not None:
            return lane.held
        specs = [loaded.recipe.source, loaded.recipe.archive]
        slots = take_slots(
            self.slots, [(s.system, s.sessions) for s in specs], lane.holder, self.fleet.slot_ttl
        )
        lane.lost = None
        self._hold_slots(slots, lane.mark_lost)
        sessions: Sessions | None = None
        try:
            sessions = Sessions(
                work.ctx,
                loaded,
                work.stages,
                work.targets,
                work.stages.base_vars,
                lane=lane.number,
            )
            for system in sessions.systems.values():
                work.stages.login(system)
        except BaseException:
            if sessions is not None:
                sessions.close()
            self._free_slots(slots)
            raise
        lane.held = Held(loaded.name, sessions, slots)
        return lane.held

    def _close_lane(self, lane: Lane) -> None:
        """Log the lane's sessions out and give their slots back (on its own thread)."""
        held, lane.held = lane.held, None
        if held is None:
            return
        try:
            held.sessions.close()
        finally:
            self._free_slots(held.slots)

    # -- listing jobs ------------------------------------------------------------------------

    def list_recipe(self, ref: str, digest: str, job: int | None = None) -> dict[str, Any]:
        """A run of the recipe that lists it, under its lease, and defers its documents."""
        work = self.recipe(ref, digest)
        loaded = work.loaded
        source = loaded.recipe.source
        listing_holder = Holder(
            f"{self.holder.worker}/list-{job}", self.holder.host, self.holder.pid
        )
        try:
            slots = take_slots(
                self.slots,
                [(source.system, source.sessions)],
                listing_holder,
                self.fleet.slot_ttl,
            )
        except NoSessionSlot as exc:
            self.ctx.log.event(
                "no_session_slot", outcome="warning", recipe=loaded.name, error=str(exc)
            )
            self.defer_listing(loaded, ref, NO_SLOT_DELAY)
            return {"recipe": loaded.name, "deferred": str(exc)}
        stop = StopFlag()
        with self._lock:
            self._listings.add(stop)
        try:
            if self.ctx.stop.is_set():
                stop.set(self.ctx.stop.reason or "stop")
            self._hold_slots(slots, stop.set)
            with self.lease(f"recipe:{loaded.name}", listing_holder, stop.set) as lease:
                return self._list(work, ref, stop, lease.taken_over_from, job)
        except LeaseHeld as exc:  # another worker lists it now
            self.ctx.log.event(
                "listing_busy", outcome="warning", recipe=loaded.name, error=str(exc)
            )
            return {"recipe": loaded.name, "busy": str(exc)}
        finally:
            with self._lock:
                self._listings.discard(stop)
            self._free_slots(slots)

    def _list(
        self, work: RecipeWork, ref: str, stop: StopFlag, taken_from: Holder | None, job: int | None
    ) -> dict[str, Any]:
        loaded, settings = work.loaded, self.settings
        with run_context(
            name=loaded.name,
            action="capture",
            settings=settings,
            redactor=self.redactor,
            digest=loaded.digest,
            clock=self.ctx.clock,
            stop=stop,
            lock=False,  # the lease is the lock
            start_details={**recipe_details(loaded), "job": job, "worker": str(self.holder)},
        ) as ctx:
            if taken_from is not None:
                ctx.log.event(
                    "lease_taken_over", outcome="warning", previous_holder=str(taken_from)
                )
            interrupted = ctx.ledger.close_interrupted_runs(loaded.name, ctx.run_id)
            if interrupted:
                ctx.log.event("previous_runs_interrupted", outcome="warning", runs=interrupted)
            variables = base_vars(ctx, loaded)
            stages = StageRunner(loaded.recipe.retry, ctx.log, ctx.stop, variables)
            run = CaptureRun(
                ctx, loaded, variables, stages, RunSummary(ctx.run_id, loaded.name, ctx.log.path)
            )
            stages.on_failure = run.failure_shot
            spec = loaded.recipe.source
            window = {
                "start": render_setting(
                    loaded, spec.window.start, variables, "source.window.start"
                ),
                "end": render_setting(loaded, spec.window.end, variables, "source.window.end"),
            }
            targets = {"source": work.targets["source"]}
            with Sessions(ctx, loaded, stages, targets, variables) as systems:
                source = systems["source"]
                ctx.log.event("window", source=source.target, **window)
                stages.login(source)
                pending = listing.list_pending(run, source, window)
            rows = {doc.source_key: run.rows.get(doc.source_key, doc.listing) for doc in pending}
            shots = {
                key: [str(shot.path), shot.sha256]
                for key, shot in run.row_shots.items()
                if key in rows
            }
            jobs = self.defer_documents(loaded, ref, rows, shots)
            ctx.log.event("documents_deferred", documents=len(rows), jobs=jobs)
            ctx.outcome = "ok"
            ctx.counts = {
                "listed": run.summary.listed,
                "new": run.summary.new,
                "pending": len(pending),
                "deferred_jobs": jobs,
                "held": len(run.summary.held),
            }
            return {"recipe": loaded.name, **ctx.counts}

    # -- deferring ---------------------------------------------------------------------------

    def defer_documents(
        self,
        loaded: LoadedRecipe,
        ref: str,
        rows: dict[str, dict[str, Any]],
        shots: dict[str, list[str]],
        delay: float = 0.0,
        tries: int = 0,
    ) -> int:
        from .jobs import BATCH, DOCUMENTS

        keys = list(rows)
        batches = [keys[i : i + BATCH] for i in range(0, len(keys), BATCH)]
        for batch in batches:
            self.defer(
                DOCUMENTS,
                {
                    "recipe": ref,
                    "digest": loaded.digest,
                    "rows": {k: rows[k] for k in batch},
                    "shots": {k: shots[k] for k in batch if k in shots},
                    **({"tries": tries} if tries else {}),
                },
                None,
                delay,
            )
        return len(batches)

    def defer_listing(self, loaded: LoadedRecipe, ref: str, delay: float = 0.0) -> None:
        from .jobs import LIST

        self.defer(LIST, {"recipe": ref, "digest": loaded.digest}, f"list:{loaded.name}", delay)

    # -- leases and heartbeats --------------------------------------------------------------

    @contextmanager
    def lease(self, name: str, holder: Holder, on_lost: Callable[[str], None]) -> Iterator[Any]:
        """Lease ``name`` for the block, beaten by the heartbeat; ``on_lost(reason)`` if a
        heartbeat finds it gone. ``LeaseHeld`` when another holder has it."""
        lease = self.leases.acquire(name, holder, self.fleet.lease_ttl)
        with self._lock:
            self._leases[name] = (holder, on_lost)
        try:
            yield lease
        finally:
            with self._lock:
                self._leases.pop(name, None)
            self.leases.release(name, holder)

    def _hold_slots(self, slots: list[Slot], on_lost: Callable[[str], None]) -> None:
        """Beat ``slots`` from now on; ``on_lost(reason)`` when one is found lost."""
        with self._lock:
            for slot in slots:
                self._slots[_slot_key(slot)] = (slot, on_lost)

    def _free_slots(self, slots: list[Slot]) -> None:
        """Stop beating ``slots`` and give them back."""
        with self._lock:
            for slot in slots:
                self._slots.pop(_slot_key(slot), None)
        for slot in slots:
            self.slots.release_slot(slot)

    def _beat(self) -> None:
        """Every third of a time to live: each lease and slot this worker holds; a lost
        one stops what it guarded."""
        period = min(self.fleet.lease_heartbeat, self.fleet.slot_heartbeat)
        looked = time.monotonic()
        while not self._beating.wait(period):
            if time.monotonic() - looked >= self.fleet.lease_ttl:
                looked = time.monotonic()
                try:
                    self._close_dead_runs()
                except SQLAlchemyError as exc:  # the heartbeat must go on; next time then
                    self.ctx.log.event("dead_runs_not_closed", outcome="warning", error=str(exc))
            with self._lock:
                leases = dict(self._leases)
                slots = dict(self._slots)
            for name, (holder, on_lost) in leases.items():
                try:
                    self.leases.heartbeat(name, holder, self.fleet.lease_ttl)
                except LeaseLost as exc:
                    self.ctx.log.event("lease_lost", outcome="warning", lease=name, error=str(exc))
                    on_lost("lease lost")
            for key, (slot, on_lost) in slots.items():
                try:
                    beaten = self.slots.heartbeat(slot, self.fleet.slot_ttl)
                except SlotLost as exc:
                    with self._lock:
                        self._slots.pop(key, None)
                    on_lost(str(exc))
                    continue
                with self._lock:
                    if key in self._slots:  # not given back meanwhile
                        self._slots[key] = (beaten, on_lost)
            self._close_idle()

    def _close_idle(self) -> None:
        """Lanes idle for ``idle_after`` seconds log out: other workers may wait for the
        slots they hold."""
        for lane in self.pool.idle():
            idle = time.monotonic() - lane.idle_since
            if lane.held is None or idle < IDLE_AFTER:
                continue
            if not self.pool.take(lane):  # a job borrowed it meanwhile
                continue
            try:
                self.ctx.log.event("sessions_closed", lane=lane.number, why="idle")
                lane.call(self._close_lane)
            finally:
                self.pool.give_back(lane)

    # -- given up -----------------------------------------------------------------------------

    def hold_documents(self, ref: str, digest: str, keys: list[str], why: str) -> None:
        """A job whose worker died too often: its documents held for a person."""
        work = self.recipe(ref, digest)
        ledger = self.ctx.ledger
        for key in keys:
            doc: Document | None = ledger.get(work.loaded.name, key)
            if doc is None or doc.state is State.CONFIRMED:
                continue
            ledger.advance(
                doc,
                State.FAILED,
                self.ctx.run_id,
                last_error=why,
                failure_kind=FailureKind.BUSINESS,
                failed_stage=doc.failed_stage if doc.state is State.FAILED else doc.state,
                failed_recipe_digest=digest,
            )
            self.ctx.log.event("state", key=key, outcome="failed", to=State.FAILED, error=why)


def _slot_key(slot: Slot) -> tuple[str, int, str]:
    return (slot.system, slot.slot, slot.holder.worker)
