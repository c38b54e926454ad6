"""Evidence per document: PREMIS-style events and screenshots an auditor can verify.

Each event (capture, message digest calculation, format identification, validation,
virus check, ingestion, fixity check) has a time, an outcome and an agent (this bot, its
version and host). It is written to the ledger, where reconciliation and exports read it,
and to the run log, where the auditor reads the story. A screenshot is saved under
logs/evidence with its own SHA-256 in the event that cites it.

No password may reach an evidence file. Screenshots are never taken while logging in,
and each driver's session refuses a picture that could show one (the web driver masks
password inputs and refuses a page whose password input holds a value).
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from .. import __version__
from ..drivers.base import ScreenshotRefused, Session
from ..files import key_folder, sha256_file
from ..ledger import Ledger
from ..runlog import RunLog


class EventType(StrEnum):
    CAPTURE = "capture"
    DIGEST = "message digest calculation"
    FORMAT = "format identification"
    VALIDATION = "validation"
    VIRUS_CHECK = "virus check"
    INGESTION = "ingestion"
    FIXITY = "fixity check"
    REVIEW = "review decision"  # a reviewer's recapture/ignore (runner.py apply-review)


class EventOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    NOT_RUN = "not_run"


@dataclass(frozen=True)
class Agent:
    name: str
    version: str
    host: str

    @classmethod
    def this_bot(cls) -> Agent:
        return cls("rpa-fleet", __version__, socket.gethostname())

    def __str__(self) -> str:
        return f"{self.name} {self.version} on {self.host}"


@dataclass(frozen=True)
class Shot:
    path: Path
    sha256: str


class Evidence:
    """Records events and takes screenshots for one run."""

    def __init__(
        self,
        ledger: Ledger,
        log: RunLog,
        *,
        run_id: str,
        recipe: str,
        directory: Path,
        clock: Callable[[], datetime],
        agent: Agent | None = None,
    ) -> None:
        self.ledger = ledger
        self.log = log
        self.run_id = run_id
        self.recipe = recipe
        self.directory = directory
        self.clock = clock
        self.agent = agent or Agent.this_bot()

    def event(
        self,
        key: str,
        kind: EventType,
        outcome: EventOutcome,
        detail: dict[str, Any],
        shot: Shot | None = None,
    ) -> None:
        event_id = str(uuid.uuid4())
        when = self.clock()
        detail = self.log.scrub(detail)
        text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
        self.ledger.record_event(
            event_id=event_id,
            recipe=self.recipe,
            source_key=key,
            run_id=self.run_id,
            event_type=kind.value,
            event_time=when,
            outcome=outcome.value,
            detail=text,
            agent=str(self.agent),
            evidence_path=str(shot.path) if shot else None,
            evidence_sha256=shot.sha256 if shot else None,
        )
        self.log.event(
            "premis",
            key=key,
            outcome=outcome.value,
            event_id=event_id,
            event_type=kind.value,
            event_time=when.isoformat(timespec="milliseconds"),
            agent={"name": self.agent.name, "version": self.agent.version, "host": self.agent.host},
            evidence=str(shot.path) if shot else None,
            evidence_sha256=shot.sha256 if shot else None,
            **detail,
        )

    def screenshot(self, session: Session, key: str, what: str, target: Any = None) -> Shot:
        """Photograph ``target`` (a listing row) or the session's whole view.

        Raises ``ScreenshotRefused`` rather than save a picture that could show a secret.
        """
        path = self._path(key, what)
        session.screenshot(path, target)
        digest, _ = sha256_file(path)
        return Shot(path, digest)

    def screenshot_rows(
        self, session: Session, what: str, rows: Sequence[tuple[str, Any]]
    ) -> list[Shot | ScreenshotRefused]:
        """Photograph each listing row (key, handle) of one page, at once; per row its
        Shot, or why it was refused."""
        paths = [self._path(key, what) for key, _ in rows]
        refusals = session.screenshot_rows(
            [(path, handle) for path, (_, handle) in zip(paths, rows, strict=True)]
        )
        return [
            refused or Shot(path, sha256_file(path)[0])
            for path, refused in zip(paths, refusals, strict=True)
        ]

    def _path(self, key: str, what: str) -> Path:
        folder = self.directory / self.recipe / key_folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{what}-{self.run_id}.png"


__all__ = ["Agent", "EventOutcome", "EventType", "Evidence", "ScreenshotRefused", "Shot"]
