"""The round trip: a reviewer's actions in the reconciliation workbook, back into the ledger.

An archivist types ``recapture`` or ``ignore`` in the 处理 Action column of the
核对 Reconciliation sheet (with their name under 负责人 Owner and a note), saves the file,
and ``runner.py apply-review FILE.xlsx`` reads it here:

- ``recapture`` on a 缺失 row (confirmed, but the archive's inventory no longer shows it)
  reopens the document: the next run uploads the captured file again. Only when the
  newest inventory still lacks the item, so that a stale workbook cannot archive a second
  copy. A 缺失 row whose document never got confirmed under its archive id (the archive
  acknowledged an id it does not hold) forgets the id: the next run looks the document
  up with `find` before uploading it again. On a document without an archive id (缺失,
  未下载, 检测未通过) it does what ``runner.py retry`` does: a held one is released.
- ``ignore`` closes the row with the reviewer's note (a note is required: it is what an
  auditor reads). Later reconciliations show the row closed while the finding stays the
  same.

The whole sheet is read and checked before anything changes: a typo in one row changes
nothing. Every decision, applied or refused, goes into the ledger's ``reviews`` table, an
event of the document, and a hash-chained run log; the workbook itself is kept under
logs/evidence with its SHA-256, as the reviewer's signed word.
"""

from __future__ import annotations

import getpass
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zipfile import BadZipFile

import pandas as pd
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from ..archival.evidence import Agent, EventOutcome, EventType, Evidence, Shot
from ..errors import UsageError
from ..files import sha256_file
from ..ledger import Document, Ledger, LedgerError, State, queries
from ..pipeline.context import RunContext, new_run_id, run_context
from ..pipeline.retry import retry_document
from ..recipe import load_recipe
from ..redaction import Redactor
from ..settings import PROJECT_ROOT, Settings
from .classify import Result
from .columns import ACTIONS, COLUMNS, SHEET_NAMES
from .sources import InventoryRun, inventory_frame

SHEET = dict(SHEET_NAMES)["reconciliation"]
NEEDED = ("recipe", "key", "archive_id", "result", "action", "owner", "note")
ENGLISH = {english: name for name, (_, english) in COLUMNS.items()}


@dataclass(frozen=True)
class Decision:
    cell: str  # where the action was typed, e.g. "核对 Reconciliation!Q12"
    recipe: str
    key: str
    archive_id: str | None
    result: str
    action: str
    owner: str | None
    note: str | None


@dataclass(frozen=True)
class Applied:
    decision: Decision
    outcome: str  # applied / unchanged / refused
    reason: str


def read_decisions(path: Path) -> list[Decision]:
    """Every row with an action, checked; UsageError naming each bad cell otherwise."""
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (OSError, InvalidFileException, BadZipFile, KeyError, ValueError) as exc:
        raise UsageError(f"{path}: not a workbook openpyxl can read: {exc}") from exc
    try:
        if SHEET not in book.sheetnames:
            raise UsageError(f"{path}: no sheet {SHEET!r}: is this a reconciliation workbook?")
        rows = book[SHEET].iter_rows(values_only=True)
        columns, header_row = _find_header(rows, path)
        decisions, problems = [], []
        for number, row in enumerate(rows, header_row + 1):
            values = {name: _text(row[i]) if i < len(row) else None for name, i in columns.items()}
            if not values["action"]:
                continue
            cell = f"{SHEET}!{_letter(columns['action'])}{number}"
            action = values["action"].strip().lower()
            if action not in ACTIONS:
                problems.append(
                    f"{cell}: {values['action']!r} is not an action ({' or '.join(ACTIONS)})"
                )
                continue
            if not values["recipe"] or not values["key"] or not values["result"]:
                problems.append(f"{cell}: the row has no recipe, key or result: was it edited?")
                continue
            if action == "ignore" and not values["note"]:
                problems.append(f"{cell}: ignore needs a note saying why (the 备注 Note column)")
                continue
            decisions.append(
                Decision(
                    cell=cell,
                    recipe=values["recipe"],
                    key=values["key"],
                    archive_id=values["archive_id"],
                    result=values["result"],
                    action=action,
                    owner=values["owner"],
                    note=values["note"],
                )
            )
    finally:
        book.close()
    if problems:
        raise UsageError(
            f"{path}: nothing applied; fix these and run apply-review again:\n  "
            + "\n  ".join(problems)
        )
    return decisions


def _find_header(rows: Any, path: Path) -> tuple[dict[str, int], int]:
    """The English header row (below the Chinese one) names the columns."""
    for number, row in enumerate(rows, 1):
        names = {ENGLISH.get(_text(v) or ""): i for i, v in enumerate(row) if v is not None}
        if "key" in names and "action" in names:
            missing = [n for n in NEEDED if n not in names]
            if missing:
                raise UsageError(f"{path}: {SHEET} lacks the columns {', '.join(missing)}")
            return {n: names[n] for n in NEEDED}, number
        if number > 10:
            break
    raise UsageError(f"{path}: {SHEET} has no header row with Key and Action")


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _letter(index: int) -> str:
    return get_column_letter(index + 1)


class Review:
    """Applies one workbook's decisions, as a run of its own: a `runs` row (the workbook's
    digest as what it worked from), a run log recording each decision, the workbook kept
    as the evidence every decision points at."""

    def __init__(
        self,
        settings: Settings,
        workbook: Path,
        *,
        clock: Callable[[], datetime],
        redactor: Redactor,
        ledger: Ledger | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.redactor = redactor
        self.given_ledger = ledger
        self.workbook = workbook
        self.sha256 = sha256_file(workbook)[0]
        self.review_id = new_run_id("review", clock())
        self.who = f"{getpass.getuser()}@{socket.gethostname()}"
        self.log_path = settings.runs_dir / f"{self.review_id}.jsonl"
        self._inventories: dict[str, tuple[InventoryRun | None, pd.DataFrame]] = {}
        self._finds: dict[str, bool] = {}

    def apply(self, decisions: list[Decision]) -> list[Applied]:
        # The reviewer's file as it was applied: the evidence every decision points at.
        evidence_dir = self.settings.logs_dir / "evidence"
        kept = evidence_dir / "reviews" / f"{self.review_id}.xlsx"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.workbook, kept)
        self.kept = Shot(kept, self.sha256)
        done: list[Applied] = []
        with run_context(
            name="review",
            action="review",
            settings=self.settings,
            redactor=self.redactor,
            digest=self.sha256,
            clock=self.clock,
            lock=False,  # a review works documents one compare-and-set at a time
            run_id=self.review_id,
            ledger=self.given_ledger,
            start_event="review_start",
            start_details={
                "workbook": str(self.workbook),
                "workbook_sha256": self.sha256,
                "kept_as": str(kept),
                "by": self.who,
            },
        ) as ctx:
            self.ledger, self.log = ctx.ledger, ctx.log
            try:
                for decision in decisions:
                    outcome, reason = self._decide(decision)
                    applied = Applied(decision, outcome, reason)
                    self._record(applied, ctx)
                    done.append(applied)
            finally:
                ctx.counts = {
                    o: sum(a.outcome == o for a in done)
                    for o in ("applied", "unchanged", "refused")
                }
            ctx.outcome = "partial" if any(a.outcome == "refused" for a in done) else "ok"
        return done

    def _inventory(self, recipe: str) -> tuple[InventoryRun | None, pd.DataFrame]:
        """The newest inventory of ``recipe``'s archive, read once per review."""
        if recipe not in self._inventories:
            self._inventories[recipe] = inventory_frame(self.ledger, recipe)
        return self._inventories[recipe]

    def _decide(self, d: Decision) -> tuple[str, str]:
        if d.action == "ignore":
            return self._ignore(d)
        return self._recapture(d)

    def _ignore(self, d: Decision) -> tuple[str, str]:
        if queries.is_closed_by_review(self.ledger, d.recipe, d.key, d.result):
            return "unchanged", f"{d.result} on {d.key} was already closed by an earlier review"
        return "applied", f"{d.result} closed: {d.note}"

    def _recapture(self, d: Decision) -> tuple[str, str]:
        doc = self.ledger.get(d.recipe, d.key)
        if d.result in (Result.MISSING.value, Result.NOT_DOWNLOADED.value, Result.REJECTED.value):
            if doc is None:
                return "refused", f"the ledger has no document {d.key} of recipe {d.recipe}"
            if doc.archive_id != d.archive_id:
                return "unchanged", (
                    f"already being recaptured or recaptured (now {doc.state}, archive id "
                    f"{doc.archive_id or 'none yet'})"
                )
            if doc.archive_id is None:
                return self._take_up(doc)
            taken, inventory = self._inventory(d.recipe)
            if taken is None:
                return "refused", "no inventory of the archive: run reconcile first"
            if inventory["archive_id"].eq(doc.archive_id).any():
                return "refused", (
                    f"the newest inventory ({taken.run_id}) shows {doc.archive_id} in the "
                    "archive: recapturing would archive it twice. Reconcile again."
                )
            if doc.state is not State.CONFIRMED:
                # Acknowledged under an id the archive does not hold (held "not held by
                # the archive", or uploaded and never confirmed): forget the id; the next
                # run looks the document up with `find` before uploading it again.
                return self._take_up(doc)
            try:
                self.ledger.reopen(doc, self.review_id)
            except LedgerError as exc:
                return "refused", str(exc)
            return "applied", (
                f"reopened: was {doc.archive_id} ({doc.reference_code}); the next run "
                "uploads the captured file again"
            )
        refusals = {
            Result.MATCH.value: "the archive holds it as captured: nothing to recapture",
            Result.EXTRA.value: "no source listed it: there is nothing to capture",
            Result.DUPLICATE.value: "the archive already holds it (twice): remove the copy there",
            Result.DIGEST_MISMATCH.value: (
                "the archive holds a damaged copy: have its administrator restore or remove "
                "it; once removed the row reads 缺失 and can be recaptured"
            ),
            Result.METADATA_MISMATCH.value: "correct the record in the archive, or ignore",
        }
        return "refused", refusals.get(d.result, f"unknown result {d.result!r}")

    def _take_up(self, doc: Document) -> tuple[str, str]:
        """Any state but confirmed: what ``runner.py retry`` does, as a reviewer's."""
        try:
            done = retry_document(
                self.ledger,
                doc,
                can_find=self._can_find(doc.recipe),
                run_id=self.review_id,
                reviewer=True,
            )
        except LedgerError as exc:
            return "refused", str(exc)
        if done.refused:
            return "refused", done.said
        return ("applied" if done.changed else "unchanged"), done.said

    def _can_find(self, recipe: str) -> bool:
        """Whether ``recipe`` has `find` steps (its file in recipes/); assumed so when the
        file is not there to say (the run that takes the document up will tell)."""
        if recipe not in self._finds:
            path = PROJECT_ROOT / "recipes" / f"{recipe}.yaml"
            self._finds[recipe] = (
                bool(load_recipe(path).recipe.archive.find) if path.is_file() else True
            )
        return self._finds[recipe]

    def _record(self, a: Applied, ctx: RunContext) -> None:
        d = a.decision
        detail = {
            "action": d.action,
            "decision": a.outcome,
            "reason": a.reason,
            "result": d.result,
            "archive_id": d.archive_id,
            "owner": d.owner,
            "note": d.note,
            "cell": d.cell,
            "workbook_sha256": self.sha256,
            "applied_by": self.who,
        }
        self.ledger.record_review(
            review_id=self.review_id,
            recipe=d.recipe,
            source_key=d.key,
            archive_id=d.archive_id,
            result=d.result,
            action=d.action,
            owner=d.owner,
            note=d.note,
            outcome=a.outcome,
            reason=a.reason,
            workbook=str(self.workbook),
            workbook_sha256=self.sha256,
            decided_by=self.who,
        )
        evidence = Evidence(
            ctx.ledger,
            ctx.log,
            run_id=ctx.run_id,
            recipe=d.recipe,
            directory=ctx.settings.logs_dir / "evidence",
            clock=ctx.clock,
            agent=Agent("rpa-fleet apply-review", Agent.this_bot().version, socket.gethostname()),
        )
        outcome = EventOutcome.FAILURE if a.outcome == "refused" else EventOutcome.SUCCESS
        evidence.event(d.key, EventType.REVIEW, outcome, detail, self.kept)
