"""``runner.py reconcile``: a fresh inventory, the three-way match, the workbook."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .. import __version__
from ..errors import UsageError
from ..ledger import Ledger, queries
from ..logchain import verify
from ..pipeline.context import local_now
from ..pipeline.summary import RunSummary
from ..progress import Progress
from ..recipe import LoadedRecipe, load_recipe
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
) -> Outcome:
    """Reconcile the recipes (default: every recipe the ledger knows) into ``out``.

    ``inventory`` takes a fresh inventory of one recipe's archive (None: use the newest
    one already in the ledger). A failed inventory stops here: a workbook built on an old
    one would tell the archivist the archive holds what it may no longer hold.
    """
    ledger = Ledger.open(settings.ledger_url, local_now, staging_root=settings.staging_root)
    try:
        loaded = _recipes(ledger, recipe_paths, need_files=inventory is not None)
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
        progress.stage("reconciling")
        parts = [_inputs(ledger, name, recipe, since) for name, recipe in loaded.items()]
        missing = [p.recipe for p in parts if p.inventory_run is None]
        if missing:
            raise UsageError(
                f"no inventory of the archive for {', '.join(missing)} yet: "
                "run reconcile without --no-inventory"
            )
        in_frames = set().union(*(set(p.ledger["archive_id"].dropna()) for p in parts))
        claimed = queries.archive_ids(ledger) - in_frames
    finally:
        ledger.close()

    now = local_now()
    batch_id = f"reconcile-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    logs = verify(settings.runs_dir)
    facts = BatchFacts(
        batch_id=batch_id,
        written_at=now,
        bot=f"rpa-fleet {__version__} on {socket.gethostname()}",
        since=since,
        logs=(
            f"intact: {logs.files} files, {logs.records} records (runner.py logs verify)"
            if logs.ok
            else f"NOT intact: {logs.problems[0]} (runner.py logs verify)"
        ),
        claimed_elsewhere=frozenset(claimed),
    )
    result = build(parts, facts)
    path = out or settings.logs_dir / "reconcile" / f"{batch_id}.xlsx"
    progress.stage(f"writing {path.name}")
    write_workbook(result.sheets, path, title=f"核对 Reconciliation {batch_id}")
    return Outcome(path=path, line=result.line(), closes=result.closes)


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
    )
