"""What a run did, in the numbers IT staff read: the summary line and the exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import (
    EXIT_DOCUMENT_FAILURES,
    EXIT_OK,
    EXIT_SYSTEM,
    EXIT_USAGE,
    STOP_EXIT_CODES,
)
from ..ledger import Document, FailureKind


@dataclass
class RunSummary:
    run_id: str
    recipe: str
    log_path: Path
    listed: int = 0
    new: int = 0
    already_confirmed: int = 0
    archived: list[Document] = field(default_factory=list)
    failures: list[tuple[str, str, FailureKind]] = field(default_factory=list)
    # Failed for business reasons in an earlier run under this same recipe version: not
    # retried until the recipe changes, but reported every run until someone acts.
    held: list[Document] = field(default_factory=list)
    # Held in this run because a step failed on a page that answered normally: the
    # recipe needs fixing (exit 2, unless something worse happened). Also in failures.
    recipe_problems: list[str] = field(default_factory=list)
    downloaded: int = 0  # files fetched in this run, for the batch check
    system_failure: str | None = None
    # The machine could not keep what the run wrote (disk full, read-only ledger, the
    # logs folder removed or replaced): the run stopped at once. Exit 3, named.
    machine_failure: str | None = None
    stopped_by: str | None = None  # SIGTERM / SIGINT
    # An inventory run: how many items the archive listed, and how many were read back.
    inventoried: int | None = None
    read_back: int = 0

    @property
    def exit_code(self) -> int:
        if self.stopped_by:
            return STOP_EXIT_CODES.get(self.stopped_by, EXIT_SYSTEM)
        if (
            self.machine_failure
            or self.system_failure
            or any(kind is FailureKind.SYSTEM for *_, kind in self.failures)
        ):
            return EXIT_SYSTEM
        if self.recipe_problems:
            return EXIT_USAGE
        if self.failures or self.held:
            return EXIT_DOCUMENT_FAILURES
        return EXIT_OK

    @property
    def outcome(self) -> str:
        """The run's outcome as the ledger's `runs` row and the run log's end say it."""
        if self.stopped_by:
            return "stopped"
        code = self.exit_code
        return "failed" if code == EXIT_SYSTEM else "partial" if code else "ok"

    def counts(self) -> dict[str, int]:
        if self.inventoried is not None:
            return {"inventoried": self.inventoried, "read_back": self.read_back}
        return {
            "listed": self.listed,
            "new": self.new,
            "archived": len(self.archived),
            "failed": len(self.failures),
            "held": len(self.held),
        }

    def line(self) -> str:
        if self.inventoried is not None:
            return (
                f"{self.recipe}: inventory: the archive lists {self.inventoried} items, "
                f"{self.read_back} read back for fixity "
                f"(run {self.run_id}, log {self.log_path})"
            )
        head = (
            f"{self.recipe}: {self.listed} listed, {self.new} new, {len(self.archived)} "
            f"archived, {len(self.failures)} failed"
        )
        if self.recipe_problems:
            head += f" ({len(self.recipe_problems)} for a recipe problem: fix the recipe)"
        if self.held:
            head += f", {len(self.held)} held from earlier runs"
        if self.stopped_by:
            head += f", stopped by {self.stopped_by}"
        if self.machine_failure:
            head += f", run stopped: {self.machine_failure}"
        elif self.system_failure:
            head += ", run stopped by a system failure"
        return f"{head} (run {self.run_id}, log {self.log_path})"
