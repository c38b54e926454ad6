"""``runner.py reconcile``: a fresh inventory, the three-way match, the workbook."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import UsageError
from ..files import sha256_file
from ..ledger import Ledger, queries
from ..logchain import verify
from ..pipeline.context import RunContext, local_now, run_context
from ..pipeline.summary import RunSummary
from ..progress import Progress
from ..recipe import LoadedRecipe, load_recipe
from ..redaction import Redactor
from ..settings import PROJECT_ROOT, Settings
from .report import BatchFacts, RecipeInputs, build
from .sources import checks_frame, inventory_frame, ledger_frame, reviews_frame, sightings_frame
from .workbook import write_workbook


@dataclass
class Outcome:
    path: Path | None = None
    line: str = ""
    closes: bool = False
    inventory_failed: RunSummary | None = None  # the inventory that did not finish


def reconcile(
    settings: Settings,
    recipe_paths: list[Path],
    *,
    since: datetime | None,
    out: Path | None,
    inventory: Callable[[LoadedRecipe], RunSummary] | None,
    progress: Progress,
    redactor: Redactor,
) -> Outcome:
    """Reconcile the recipes (default: every recipe the ledger knows) into ``out``.

    ``inventory`` takes a fresh inventory of one recipe's archive (None: use the newest
    one already in the ledger); each is a run of its own. A failed inventory stops here:
    a workbook built on an old one would tell the archivist the archive holds what it may
    no longer hold. The reconciliation itself is a run too (action "reconcile"; its run
    id is the batch id), so the auditor sees who reconciled what, when, with what result.
    """
    ledger = Ledger.open(settings.ledger_url, local_now, staging_root=settings.staging_root)
    try:
        loaded = _recipes(ledger, recipe_paths, need_files=inventory is not None)
    finally:
        ledger.close()
    if not loaded:
        raise UsageError("the ledger holds no documents yet: nothing to reconcile")
    if inventory is not None:
        for recipe in loaded.values():
            assert recipe is not None  # need_files
            if not recipe.recipe.archive.inventory:
                raise UsageError(
                    f"{recipe.path}: no `archive.inventory` steps, so the archive cannot "
                    "be asked what it holds; add them, or use --no-inventory"
                )
            summary = inventory(recipe)
            if summary.exit_code or summary.stopped_by:
                return Outcome(inventory_failed=summary)
    with run_context(
        name="reconcile",
        action="reconcile",
        settings=settings,
        redactor=redactor,
        digest=_digest(loaded),
        clock=local_now,
        progress=progress,
        lock=False,  # it reads; the inventories it took held their recipes' locks
        start_details={
            "recipes": {name: r.digest if r else None for name, r in loaded.items()},
            "since": since.isoformat() if since else None,
        },
    ) as ctx:
        outcome = _reconcile(ctx, loaded, since, out)
    return outcome


def _reconcile(
    ctx: RunContext,
    loaded: dict[str, LoadedRecipe | None],
    since: datetime | None,
    out: Path | None,
) -> Outcome:
    settings, ledger = ctx.settings, ctx.ledger
    ctx.progress.stage("reconciling")
    parts = [_inputs(ledger, name, recipe, since) for name, recipe in loaded.items()]
    missing = [p.recipe for p in parts if p.inventory_run is None]
    if missing:
        raise UsageError(
            f"no inventory of the archive for {', '.join(missing)} yet: "
            "run reconcile without --no-inventory"
        )
    in_frames = set().union(*(set(p.ledger["archive_id"].dropna()) for p in parts))
    claimed = queries.archive_ids(ledger) - in_frames
    logs = verify(settings.runs_dir)  # this run's own log is open: a warning, not a fault
    facts = BatchFacts(
        batch_id=ctx.run_id,
        written_at=ctx.clock(),
        bot=str(ctx.agent),
        since=since,
        logs=(
            f"intact: {logs.files} files, {logs.records} records (runner.py logs verify)"
            if logs.ok
            else f"NOT intact: {logs.problems[0]} (runner.py logs verify)"
        ),
        claimed_elsewhere=frozenset(claimed),
    )
    result = build(parts, facts)
    path = out or settings.logs_dir / "reconcile" / f"{ctx.run_id}.xlsx"
    ctx.progress.stage(f"writing {path.name}")
    write_workbook(result.sheets, path, title=f"核对 Reconciliation {ctx.run_id}")
    ctx.log.event(
        "workbook",
        path=str(path),
        sha256=sha256_file(path)[0],
        rows=len(result.rows),
        results=result.counts,
        closes=result.closes,
        inventories={p.recipe: p.inventory_run.run_id for p in parts if p.inventory_run},
    )
    ctx.outcome = "ok" if result.closes else "partial"
    ctx.counts = {"rows": len(result.rows), **{str(k): v for k, v in result.counts.items()}}
    return Outcome(path=path, line=result.line(), closes=result.closes)


def _digest(loaded: dict[str, LoadedRecipe | None]) -> str:
    """What a reconciliation works from: the recipes (and schedules), by their digests."""
    lines = "".join(f"{name}\t{r.digest if r else '-'}\n" for name, r in sorted(loaded.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def _recipes(
    ledger: Ledger, paths: list[Path], *, need_files: bool
) -> dict[str, LoadedRecipe | None]:
    """Recipe name -> its loaded file (None when there is none and none is needed)."""
    if paths:
        loaded = [load_recipe(p) for p in paths]
        return {r.recipe.recipe: r for r in loaded}
    names = queries.recipes(ledger)
    found: dict[str, LoadedRecipe | None] = {}
    for name in names:
        path = PROJECT_ROOT / "recipes" / f"{name}.yaml"
        if path.is_file():
            found[name] = load_recipe(path)
        elif need_files:
            raise UsageError(
                f"the ledger holds documents of recipe {name!r}, but {path} does not exist: "
                "name its file with --recipe, or use --no-inventory"
            )
        else:
            found[name] = None
    return found


def _inputs(
    ledger: Ledger, name: str, loaded: LoadedRecipe | None, since: datetime | None
) -> RecipeInputs:
    taken, inventory = inventory_frame(ledger, name)
    return RecipeInputs(
        recipe=name,
        ledger=ledger_frame(ledger, name, since),
        inventory=inventory,
        inventory_run=taken,
        sightings=sightings_frame(ledger, name, since),
        checks=checks_frame(ledger, name),
        reviews=reviews_frame(ledger, name),
        digest=loaded.digest if loaded else None,
        source_system=loaded.recipe.source.system if loaded else None,
        archive_system=loaded.recipe.archive.system if loaded else None,
        field_labels=loaded.recipe.metadata_profile.labels() if loaded else {},
    )
