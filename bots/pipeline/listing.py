"""The listing stage: read the source's list once, and decide what this run works on.

The ledger decides what is new: every listed document not yet confirmed, except those
held after a business failure under this same recipe version. Documents a reviewer
asked to capture again are worked on even when the source no longer lists them. Each
row not yet archived is photographed as it was seen (evidence of capture).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..drivers import Row, RowsHook, StepContext, TableCursor
from ..errors import FleetError, RecipeRuntimeError, SystemFailure
from ..ledger import Document, State, is_held
from ..recipe.steps import of_kind
from ..templating import TemplateProblem, render
from .run import CaptureRun
from .stages import StageRunner, System


def walk_table(
    stages: StageRunner,
    system: System,
    stage: str,
    steps: list[Any],
    variables: dict[str, Any],
    what: str,
    on_rows: RowsHook | None = None,
) -> list[Row]:
    """Run steps holding one `table` as a stage; a retry resumes at the page reached."""
    cursor = TableCursor()
    context = StepContext(variables, phase=stage, cursor=cursor, on_rows=on_rows)
    try:
        stages.run(
            system,
            stage,
            lambda: system.session.run(steps, context),
            progress=lambda: cursor.pages,
        )
    except FleetError as exc:
        if not exc.retryable:
            raise
        raise SystemFailure(f"{what} failed after {cursor.pages} page(s): {exc}") from exc
    return cursor.rows


def list_pending(run: CaptureRun, source: System, window: dict[str, str]) -> list[Document]:
    """List the source; record new rows; return the documents this run works on."""
    variables = {**run.vars, "window": window}
    key_template = of_kind(source.spec.listing, "table")[0].args.key
    rows = walk_table(
        run.stages,
        source,
        "list",
        source.spec.listing,
        variables,
        what=f"listing {source.name}",
        on_rows=_row_photographer(run, source, key_template, variables),
    )
    return _pending(run, rows, key_template, variables)


def _row_photographer(
    run: CaptureRun, source: System, key_template: str, variables: dict[str, Any]
) -> Callable[[list[Row], list[Any]], None]:
    """A hook for the listing: photograph each row not yet archived, as it was seen."""

    def shoot(rows: list[Row], handles: list[Any]) -> None:
        for row, handle in zip(rows, handles, strict=True):
            try:
                key = render(key_template, {**variables, "row": row})
            except TemplateProblem:
                continue  # reported when the listing is turned into documents
            if not key or key in run.row_shots:
                continue
            known = run.ctx.ledger.get(run.name, key)
            if known is not None and known.state is State.CONFIRMED:
                continue
            shot = run.screenshot(source, key, "listing-row", handle)
            if shot is not None:
                run.row_shots[key] = shot

    return shoot


def _pending(
    run: CaptureRun, rows: list[Row], key_template: str, variables: dict[str, Any]
) -> list[Document]:
    ctx, summary = run.ctx, run.summary
    where = str(run.loaded.path)
    pending: list[Document] = []
    seen: dict[str, None] = {}  # a set that keeps the listing's order
    for row in rows:
        try:
            key = render(key_template, {**variables, "row": row})
        except TemplateProblem as exc:
            raise RecipeRuntimeError(where, f"table key: {exc}") from exc
        if not key:
            raise RecipeRuntimeError(where, f"the table key rendered empty for row {row}")
        if key in seen:
            ctx.log.event("duplicate_row", key=key, outcome="warning", row=row)
            continue
        seen[key] = None
        run.rows[key] = row
        doc = ctx.ledger.get(run.name, key)
        if doc is None:
            doc = ctx.ledger.record_listed(run.name, key, row, ctx.run_id)
            ctx.log.event("state", key=key, to=State.LISTED, row=row)
            summary.new += 1
        if doc.state is State.CONFIRMED:
            summary.already_confirmed += 1
        elif is_held(doc, run.loaded.digest):
            summary.held.append(doc)  # same recipe, same refusal: not retried
        else:
            pending.append(doc)
    summary.listed = len(seen)
    ctx.ledger.record_sightings(ctx.run_id, run.name, [(key, run.rows[key]) for key in seen])
    # Asked for again by a reviewer (apply-review) but no longer listed: the row the
    # ledger kept still says how to fetch it.
    recaptures = [d for d in ctx.ledger.recaptures(run.name) if d.source_key not in seen]
    pending.extend(recaptures)
    ctx.log.event(
        "listing",
        listed=summary.listed,
        new=summary.new,
        pending=len(pending),
        already_confirmed=summary.already_confirmed,
        held=[d.source_key for d in summary.held],
        recapture_unlisted=[d.source_key for d in recaptures],
    )
    return pending
