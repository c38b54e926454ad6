"""The listing stage: read the source's lists once, and decide what this run works on.

A recipe's `list` is one listing, its keys as the table renders them; `listings` are
several, walked in turn (each its own stage), each key after its listing's prefix, so
the same row in two listings is two documents. A new document remembers its listing
(the ledger's ``listing_name``): later runs fetch it with that listing's steps.

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
from ..recipe.model import ListingPlan
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
    """List the source (each of its listings in turn, each its own stage); record new
    rows; return the documents this run works on."""
    rows: list[Listed] = []
    for plan in source.spec.plans():
        variables = {**run.vars, "window": window, "listing": plan.name}
        keys = _Keys(run, plan, variables)
        what = f"listing {plan.name} of {source.name}" if plan.name else f"listing {source.name}"
        found = walk_table(
            run.stages,
            source,
            "list",
            plan.steps,
            variables,
            what=what,
            on_rows=_row_photographer(run, source, keys),
        )
        rows += [(keys, row) for row in found]
    return _pending(run, rows)


class _Keys:
    """A listing's source keys: its table's key, rendered over the row, after its prefix
    (none for the `list` form: keys exactly as before `listings` existed)."""

    def __init__(self, run: CaptureRun, plan: ListingPlan, variables: dict[str, Any]) -> None:
        self.plan = plan
        self.variables = variables
        self.template = of_kind(plan.steps, "table")[0].args.key
        self.where = str(run.loaded.path)

    def key(self, row: Row) -> str:
        """The row's source key; RecipeRuntimeError when the template fails or is empty."""
        try:
            key = render(self.template, {**self.variables, "row": row})
        except TemplateProblem as exc:
            raise RecipeRuntimeError(self.where, f"table key: {exc}") from exc
        if not key:
            raise RecipeRuntimeError(self.where, f"the table key rendered empty for row {row}")
        return self.plan.prefix + key


Listed = tuple[_Keys, Row]
# The evidence folder of whole-view pictures of listing pages (bots.archival.evidence).
LISTING_PAGES = "_listing"


def _row_photographer(
    run: CaptureRun, source: System, keys: _Keys
) -> Callable[[list[Row], list[Any]], None]:
    """A hook for the listing: photograph each row not yet archived, as it was seen.

    A driver that cannot point at a row (a desktop grid: the handle is None) gets one
    picture of the whole view per listing page, shared by that page's rows, rather than
    the same picture once per row."""
    pages = 0

    def shoot(rows: list[Row], handles: list[Any]) -> None:
        nonlocal pages
        pages += 1
        pointed: list[tuple[str, Any]] = []  # (key, handle) of rows a picture can cut
        unpointed: list[str] = []
        chosen: set[str] = set()
        for row, handle in zip(rows, handles, strict=True):
            try:
                key = keys.key(row)
            except RecipeRuntimeError:
                continue  # reported when the listing is turned into documents
            if key in run.row_shots or key in chosen:
                continue
            known = run.ctx.ledger.get(run.name, key)
            if known is not None and known.state is State.CONFIRMED:
                continue
            chosen.add(key)
            if handle is not None:
                pointed.append((key, handle))
            else:
                unpointed.append(key)
        if pointed:
            run.row_shots.update(run.screenshot_rows(source, "listing-row", pointed))
        if unpointed:  # once per page, even when it was refused
            page_shot = run.screenshot(source, LISTING_PAGES, f"listing-page-{pages}")
            if page_shot is not None:
                run.row_shots.update(dict.fromkeys(unpointed, page_shot))

    return shoot


def _pending(run: CaptureRun, rows: list[Listed]) -> list[Document]:
    ctx, summary = run.ctx, run.summary
    pending: list[Document] = []
    seen: dict[str, None] = {}  # a set that keeps the listing's order
    for keys, row in rows:
        key = keys.key(row)
        if key in seen:
            ctx.log.event("duplicate_row", key=key, outcome="warning", row=row)
            continue
        seen[key] = None
        run.rows[key] = row
        doc = ctx.ledger.get(run.name, key)
        if doc is None:
            name = keys.plan.name or None  # NULL for `list`: ledgers from before stay alike
            doc = ctx.ledger.record_listed(run.name, key, row, ctx.run_id, listing_name=name)
            ctx.log.event(
                "state", key=key, to=State.LISTED, row=row, **({"listing": name} if name else {})
            )
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
    # ledger kept still says how to fetch it, and its listing_name with which steps.
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
