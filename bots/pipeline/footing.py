"""Where a run writes, as it found it: the logs folder, the runs folder, its run log and
the SQLite ledger's file, each known by device and inode.

A folder removed under a running process does not stop it writing: its open files go on
taking lines (the run log) and transactions (SQLite, through its open handle) into files
no one will ever see again, and the run would report documents archived that no ledger
remembers. So the run checks, before every change of a document's state and after
recording one archived, that each of these is still the one it opened (``check``); one
removed or replaced stops the run with ``MachineFailure``.

The ledger is what keeps the next run from archiving a document twice: it says which
documents are archived, and which uploads may have gone through (UPLOADING: the recipe's
`archive.find` looks before uploading again). A next run that started a fresh ledger in
place of a removed one would know none of this, and nothing else protects against
duplicates then (`find` is asked only for uploads the ledger calls uncertain). So when
the ledger's file is gone, the run writes what its open connection still sees back to
the ledger's path (SQLite's backup API), and the next run resumes from it. When another
ledger already stands there (the folder was replaced by one holding a ledger), this
run's is written beside it and the error says so: only a person can tell which is right.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import FleetError, MachineFailure
from ..ledger import Ledger


@dataclass(frozen=True)
class _Held:
    what: str
    path: Path
    identity: tuple[int, int]  # st_dev, st_ino


def _identity(path: Path) -> tuple[int, int]:
    found = os.stat(path)
    return found.st_dev, found.st_ino


class Footing:
    """The paths a run writes to, held by identity from the moment it opened them."""

    def __init__(self, ledger: Ledger, run_id: str) -> None:
        self._ledger = ledger
        self._run_id = run_id
        self._held: list[_Held] = []
        self.failure: MachineFailure | None = None  # once lost, always lost

    def hold(self, what: str, path: Path) -> None:
        self._held.append(_Held(what, path, _identity(path)))

    def hold_ledger(self) -> None:
        path = self._ledger.file
        if path is not None and path.exists():
            self.hold("the ledger", path)

    def _changed(self, held: _Held) -> str | None:
        try:
            identity = _identity(held.path)
        except FileNotFoundError:
            return "removed"
        except OSError as exc:
            return f"unreachable ({exc.strerror or exc})"
        return None if identity == held.identity else "replaced by another"

    def intact(self, *paths: Path) -> bool:
        """Whether ``paths`` (all that are held, when none are given) are unchanged."""
        return not any(self._changed(h) for h in self._held if not paths or h.path in paths)

    def check(self) -> None:
        """Raise ``MachineFailure`` when anything held was removed or replaced."""
        if self.failure is not None:
            raise MachineFailure(str(self.failure))
        changed = [(h, how) for h in self._held if (how := self._changed(h))]
        if not changed:
            return
        held, how = changed[0]  # the outermost: the logs folder before what is in it
        message = (
            f"{held.what} {held.path} was {how} while the run was writing to it: the run "
            "stops, since what it recorded from now on would be lost."
        )
        if any(h.what == "the ledger" for h, _ in changed):
            message += " " + self._save_ledger()
        self.failure = MachineFailure(message)
        raise self.failure

    def _save_ledger(self) -> str:
        path = self._ledger.file
        assert path is not None
        target = path
        if path.exists():
            target = path.with_name(f"{path.name}.from-{self._run_id}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._ledger.copy_to(target)
        except (OSError, sqlite3.Error, FleetError) as exc:
            return (
                f"The ledger as this run knew it could not be written back ({exc}): a fresh "
                "ledger will not know what was archived, and only the recipe's "
                "`archive.find` could keep documents from being archived twice. Check the "
                "archive before the next run."
            )
        if target == path:
            return (
                f"The ledger as this run knew it was written back to {path}: the next run "
                "carries on from it."
            )
        return (
            f"Another ledger stands at {path} now; this run's was written to {target}. "
            "Put the right one in place before the next run: one that does not know what "
            "this run archived would archive it again."
        )
