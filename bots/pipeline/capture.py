"""A capture run: list what is new, and pass each document down the stages once.

listing → download → checks → upload → confirm (with fixity). The ledger decides what
is new and where each document resumes (bots.ledger): a document's state advances only
after the effect it records has happened, and the intent to upload is recorded before
the upload is sent, so a run killed anywhere is resumed, not repeated, by the next.
A stop (SIGTERM, Ctrl-C) is honoured between documents and during backoffs.
"""

from __future__ import annotations

from typing import Any

from ..archival.metadata import gaps_and_repeats
from ..errors import MachineFailure, Stopped
from ..ledger import Resume, resume_point
from ..recipe import LoadedRecipe
from ..redaction import Redactor
from ..resilience import StopFlag
from ..settings import Settings
from . import checks, confirm, download, lanes, listing, upload
from .context import Clock, local_now
from .document import DocumentWork
from .run import (
    CaptureRun,
    Credentials,
    Sessions,
    base_vars,
    recipe_run,
    render_setting,
    resolve_systems,
)
from .stages import StageRunner, System
from .summary import RunSummary


def capture(
    loaded: LoadedRecipe,
    settings: Settings,
    store: Credentials,
    redactor: Redactor,
    *,
    clock: Clock = local_now,
    stop: StopFlag | None = None,
    lock_wait: float | None = None,
    progress: Any = None,
) -> RunSummary:
    """Run ``loaded`` once (holding its lock) and say what happened."""
    with recipe_run(
        loaded,
        "capture",
        settings,
        redactor,
        clock=clock,
        stop=stop,
        progress=progress,
        lock_wait=lock_wait,
    ) as ctx:
        variables = base_vars(ctx, loaded)
        run = CaptureRun(
            ctx=ctx,
            loaded=loaded,
            vars=variables,
            stages=StageRunner(loaded.recipe.retry, ctx.log, ctx.stop, variables),
            summary=RunSummary(ctx.run_id, loaded.name, ctx.log.path),
        )
        run.stages.on_failure = run.failure_shot
        try:
            _capture(run, store)
        except Stopped as exc:
            _stopped(run, exc.signal)
        except MachineFailure as exc:  # met outside a document: listing, a login, the log
            run.summary.machine_failure = str(exc)
        finally:
            ctx.outcome, ctx.counts = run.summary.outcome, run.summary.counts()
        if run.summary.machine_failure is None:  # else nothing more is written
            _batch_check(run)
    return run.summary


def _capture(run: CaptureRun, store: Credentials) -> None:
    loaded, ctx = run.loaded, run.ctx
    source_spec = loaded.recipe.source
    window = {
        "start": render_setting(loaded, source_spec.window.start, run.vars, "source.window.start"),
        "end": render_setting(loaded, source_spec.window.end, run.vars, "source.window.end"),
    }
    targets = resolve_systems(loaded, store, run.vars)
    first = Sessions(ctx, loaded, run.stages, targets, run.vars)  # lane 0's: it lists
    with first as systems:
        source, archive = systems["source"], systems["archive"]
        ctx.log.event("window", source=source.target, archive=archive.target, **window)
        ctx.progress.stage(f"{loaded.name}: listing {source.name}")
        run.stages.login(source)
        pending = listing.list_pending(run, source, window)
        ctx.progress.stage(f"{loaded.name}: capturing", total=len(pending))
        ended = lanes.work(run, targets, first, pending, work_document)
    stopped = ended.stopped_by or (ctx.stop.reason if ctx.stop.is_set() else None)
    if stopped and (ended.left or ended.interrupted):
        key = ended.interrupted[0] if len(ended.interrupted) == 1 else None
        _stopped(run, stopped, key=key, left=ended.left)
    elif stopped:  # it arrived while the last document was worked
        run.summary.stopped_by = stopped


def work_document(run: CaptureRun, work: DocumentWork, source: System, archive: System) -> None:
    """One document, from wherever the ledger says it stands, to confirmed."""
    resume = resume_point(work.doc, staged_intact=lambda: download.staged_intact(work.doc))
    if resume is Resume.DONE:
        return
    if resume is not Resume.CONFIRM:  # no archive id yet
        if resume is Resume.FETCH:
            if not source.logged_in:  # a lane of its own, or fresh sessions
                run.stages.login(source)
            download.fetch(run, work, source)
        elif resume is Resume.FIND_THEN_UPLOAD and not download.staged_intact(work.doc):
            if not source.logged_in:  # its file is on a machine that died, or cleaned up
                run.stages.login(source)
            download.restage(run, work, source)
        prepared = checks.before_upload(run, work.doc)
        if not archive.logged_in:
            run.stages.login(archive)
        upload.upload(run, work, archive, prepared)
    checks.reference(run, work.doc)
    if not archive.logged_in:
        run.stages.login(archive)
    confirm.confirm(run, work, archive)


def _stopped(
    run: CaptureRun, signal: str | None, key: str | None = None, left: int | None = None
) -> None:
    run.summary.stopped_by = signal or run.ctx.stop.reason or "stop"
    details: dict[str, Any] = {"signal": run.summary.stopped_by}
    if left is not None:
        details["left_for_next_run"] = left
    run.ctx.log.event("stop", key=key, outcome="stopped", **details)


def _batch_check(run: CaptureRun) -> None:
    """Per run: listed, downloaded and archived counts, and item-number continuity."""
    summary = run.summary
    groups: dict[str, list[str]] = {}
    # Continuity is a rule of DA/T reference codes; a profile without them has none.
    if run.loaded.recipe.metadata_profile.has_codes:
        for code in run.ctx.ledger.references(run.name):
            groups.setdefault(code.rsplit("-", 1)[0], []).append(code)
    continuity = {
        group: problems
        for group, codes in sorted(groups.items())
        if (problems := gaps_and_repeats(codes))
    }
    run.ctx.log.event(
        "batch_check",
        outcome="ok" if not continuity and summary.new == len(summary.archived) else "warning",
        listed=summary.listed,
        new=summary.new,
        downloaded=summary.downloaded,
        archived=len(summary.archived),
        failed=[key for key, *_ in summary.failures],
        held=[d.source_key for d in summary.held],
        # Gaps among this recipe's own items; items other producers filed in the same
        # group fill them, which only the archive's inventory can show.
        item_number_breaks=continuity,
    )
