"""An inventory run: what the archive says it holds, from its own list pages.

The recipe's `archive.inventory` steps walk the list (one `table`, resumable); with
fixity, every item is downloaded back and hashed (the `archive.fixity` steps). The
snapshot goes to the ledger's `inventory` table, where reconciliation reads it.
"""

from __future__ import annotations

from typing import Any

from ..errors import FleetError, Stopped
from ..files import StagedFile, byte_count
from ..recipe import LoadedRecipe
from ..redaction import Redactor
from ..resilience import StopFlag
from ..settings import Settings
from .confirm import download_back
from .context import Clock, RunContext, local_now
from .listing import walk_table
from .run import Credentials, base_vars, open_systems, recipe_run
from .stages import StageRunner, System
from .summary import RunSummary


def inventory(
    loaded: LoadedRecipe,
    settings: Settings,
    store: Credentials,
    redactor: Redactor,
    *,
    fixity: bool = False,
    clock: Clock = local_now,
    stop: StopFlag | None = None,
    lock_wait: float | None = None,
    progress: Any = None,
) -> RunSummary:
    """Take one inventory of the recipe's archive (holding the recipe's lock)."""
    with recipe_run(
        loaded,
        "inventory",
        settings,
        redactor,
        clock=clock,
        stop=stop,
        progress=progress,
        lock_wait=lock_wait,
    ) as ctx:
        summary = RunSummary(ctx.run_id, loaded.name, ctx.log.path, inventoried=0)
        try:
            _take(ctx, loaded, store, summary, fixity)
        except Stopped as exc:
            summary.stopped_by = exc.signal or ctx.stop.reason
            ctx.log.event("stop", outcome="stopped", signal=summary.stopped_by)
        finally:
            ctx.outcome, ctx.counts = summary.outcome, summary.counts()
    return summary


def _take(
    ctx: RunContext, loaded: LoadedRecipe, store: Credentials, summary: RunSummary, fixity: bool
) -> None:
    spec = loaded.recipe.archive
    variables = base_vars(ctx, loaded)
    stages = StageRunner(loaded.recipe.retry, ctx.log, ctx.stop, variables)
    with open_systems(ctx, loaded, stages, store, variables, which=("archive",)) as systems:
        archive = systems["archive"]
        ctx.progress.stage(f"{loaded.name}: inventory of {archive.name}")
        stages.login(archive)
        rows = walk_table(
            stages,
            archive,
            "inventory",
            spec.inventory,
            dict(variables),
            what=f"the inventory of {archive.name}",
        )
        items = _items(rows)
        if fixity:
            summary.read_back = _read_back_all(ctx, loaded, stages, archive, variables, items)
    ctx.ledger.record_inventory(ctx.run_id, loaded.name, items)
    summary.inventoried = len(items)
    ctx.log.event(
        "inventory",
        system=spec.system,
        items=len(items),
        fixity=fixity,
        read_back=summary.read_back,
    )


def _read_back_all(
    ctx: RunContext,
    loaded: LoadedRecipe,
    stages: StageRunner,
    archive: System,
    variables: dict[str, Any],
    items: list[dict[str, Any]],
) -> int:
    read = 0
    ctx.progress.stage(f"{loaded.name}: fixity read-back", total=len(items))
    for done, item in enumerate(items):
        if done:
            ctx.progress.advance()
        if ctx.stop.is_set():
            raise Stopped(
                f"stopped by {ctx.stop.reason} during the fixity read-back", ctx.stop.reason
            )
        key = item["archive_id"]
        item_vars = {**variables, "archive_id": key}

        def fetch_back(item_vars: dict[str, Any] = item_vars, key: str = key) -> StagedFile:
            return download_back(ctx, loaded, archive, item_vars, key)

        try:
            back = stages.run(archive, "fixity", fetch_back, key)
        except FleetError as exc:
            if not exc.retryable:
                raise
            # Listed but not readable: a finding for reconciliation, not the end of it.
            ctx.log.event("fixity_unreadable", key=key, outcome="warning", error=str(exc))
            continue
        item["sha256"] = back.sha256
        read += 1
    return read


def _items(rows: list[dict[str, str | None]]) -> list[dict[str, Any]]:
    """The archive's list rows as inventory records, one per archive id."""
    items: dict[str, dict[str, Any]] = {}
    for row in rows:
        archive_id = row.get("archive_id")
        if not archive_id or archive_id in items:
            continue
        items[archive_id] = {
            "archive_id": archive_id,
            "reference_code": row.get("reference_code") or None,
            "title": row.get("title"),
            "size": byte_count(row.get("size") or ""),
            "sha256": (row.get("sha256") or "").lower() or None,
            "ingested_at": row.get("ingested_at"),
        }
    return list(items.values())
