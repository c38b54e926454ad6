"""One document's turn in a run, as a context manager that records its own outcome.

Like a robocorp work item: ``with DocumentWork(run, doc) as work:`` runs the stages,
and on the way out the document is done (archived), failed for business reasons (held,
never retried as it stands), failed for system reasons (the next run retries it), or
left as it is for the next run (a stop; a failure that stops the whole run). A step
that fails on a page that answered normally (a recipe problem) holds the document too,
and the run ends with the usage exit code. Stages
move the document through the ledger with ``work.advance``, one named transition at
a time, each logged.

A machine that cannot keep what the run writes (``MachineFailure``, or an OSError such
as a full disk met in a stage) stops the run at once, and the document is left as the
ledger has it: nothing more is written about it (the write would fail, or go where no
one will see it). Before every change of state, and after recording it confirmed, the
run checks its logs folder and ledger are still the ones it opened (``Footing``). A
document counts as archived only once the ledger returned it confirmed.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from ..errors import (
    Category,
    CircuitOpen,
    FleetError,
    RecipeStepError,
    Stopped,
    machine_failure,
)
from ..files import visible
from ..ledger import Document, FailureKind, State
from .run import CaptureRun


class DocumentWork:
    def __init__(self, run: CaptureRun, doc: Document) -> None:
        self.run = run
        self.doc = doc

    @property
    def key(self) -> str:
        return self.doc.source_key

    def __enter__(self) -> DocumentWork:
        self.run.ctx.footing.check()
        ledger = self.run.ctx.ledger
        self.doc = ledger.count_attempt(self.doc)
        self.run.ctx.log.event(
            "document_start", key=self.key, state=self.doc.state, attempt=self.doc.attempts
        )
        return self

    def advance(self, to: State, **fields: Any) -> Document:
        """Move the document to ``to`` in the ledger (compare-and-set), and log it."""
        ctx = self.run.ctx
        if to is State.UPLOADED:
            # The archive that gave the id and the code: codes are unique within it.
            fields.setdefault("archive_system", self.run.loaded.recipe.archive.system)
        ctx.footing.check()
        new = ctx.ledger.advance(self.doc, to, ctx.run_id, **fields)
        if to is State.CONFIRMED:  # it counts only if it went where the next run looks
            ctx.footing.check()
        ctx.log.event(
            "state",
            key=self.key,
            **{"from": self.doc.state, "to": to},
            # The source's file name as sent may hold a right-to-left override: written out.
            **{k: _shown(v) for k, v in fields.items() if k != "staged_path"},
        )
        self.doc = new
        return new

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        summary = self.run.summary
        if exc is None:
            if self.doc.state is State.CONFIRMED:  # as the ledger returned it
                summary.archived.append(self.doc)
            return False
        machine = machine_failure(exc, f"{self.key}: a write failed")
        if machine is not None:  # the run stops; the ledger is left as it stands
            summary.machine_failure = str(machine)
            if machine is not exc:
                raise machine from exc
            return False
        if isinstance(exc, Stopped) or not isinstance(exc, FleetError):
            return False  # every state is one the next run resumes from
        if isinstance(exc, RecipeStepError):  # the recipe does not fit this document's
            self._fail(exc, FailureKind.BUSINESS)  # pages: held; the run goes on, exit 2
            summary.recipe_problems.append(self.key)
            return True
        if exc.category is Category.BUSINESS:
            self._fail(exc, FailureKind.BUSINESS)
            return True
        if exc.retryable:  # its stage ran out of attempts: the next run tries again
            self._fail(exc, FailureKind.SYSTEM)
            return True
        if exc.category is Category.SYSTEM:  # the breaker, a refused login: the run stops
            self._fail(exc, FailureKind.SYSTEM)
            summary.system_failure = str(exc)
        return False  # a recipe error found while running stops the run too

    def _fail(self, exc: FleetError, kind: FailureKind) -> None:
        ctx = self.run.ctx
        reason = ctx.redactor.scrub(str(exc))
        current = ctx.ledger.get(self.doc.recipe, self.key) or self.doc
        if current.state is not State.CONFIRMED:
            stage = current.failed_stage if current.state is State.FAILED else current.state
            self.doc = ctx.ledger.advance(
                current,
                State.FAILED,
                ctx.run_id,
                last_error=reason,
                failure_kind=kind,
                failed_stage=stage,
                failed_recipe_digest=self.run.loaded.digest,
            )
        ctx.log.event(
            "state",
            key=self.key,
            outcome="failed",
            to=State.FAILED,
            kind=kind,
            error=reason,
            error_type=type(exc).__name__,
        )
        self.run.summary.failures.append((self.key, reason, kind))
        if isinstance(exc, CircuitOpen):
            ctx.log.event("circuit_open", outcome="error", error=reason)


def _shown(value: Any) -> Any:
    return visible(value, keep="\t\n\r") if isinstance(value, str) else value
