"""Gathering a period: the ledger's runs and events, evidence re-hashed, the logs verified.

``collect`` reads, for [since, until), each run that started in it and each event in it
(``ledger.queries``), checks each cited evidence file against the SHA-256 recorded when it
was taken, verifies the whole runs folder (``bots.logchain.verify``) and reads the index's
latest hash. What it returns, an ``AuditReport``, holds pandas frames of plain Python
values, which ``views`` turns into what the page and the book show.

Times: on SQLite the ledger keeps wall times in its clock's zone (the offset is dropped),
so the period is converted into that zone before comparing, as ``Ledger.captured`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UsageError
from ..files import sha256_file
from ..ledger import Ledger, queries
from ..logchain import VerifyReport, verify
from ..runlog import INDEX_NAME, index_last_line

# The ledger's columns each frame carries (the contract), then what ``collect`` adds.
RUN_FIELDS = (
    "run_id",
    "recipe",
    "action",
    "user",
    "host",
    "recipe_digest",
    "bot_version",
    "started_at",
    "ended_at",
    "outcome",
    "counts",
    "log_path",
)
RUN_ADDED = ("log_file", "log_status", "log_note")  # where the log was checked, and how
EVENT_FIELDS = (
    "event_time",
    "recipe",
    "source_key",
    "run_id",
    "event_type",
    "outcome",
    "detail",
    "agent",
    "evidence_path",
    "evidence_sha256",
)
EVENT_ADDED = ("evidence_file", "evidence_status")  # the file found, and whether it matches


@dataclass(frozen=True)
class AuditReport:
    """What an auditor sees for [since, until). Times are tz-aware."""

    since: datetime
    until: datetime | None  # exclusive; None: up to now
    generated_at: datetime
    runs: pd.DataFrame  # RUN_FIELDS + RUN_ADDED, one row per run started in the period
    events: pd.DataFrame  # EVENT_FIELDS + EVENT_ADDED, one row per event in the period
    logs: VerifyReport  # the whole runs folder, verified
    index_head: str | None  # last_hash of the index's last line; None when no index


def collect(
    ledger: Ledger,
    runs_dir: Path,
    since: datetime,
    until: datetime | None = None,
    *,
    now: datetime | None = None,
) -> AuditReport:
    """Everything the auditor's report shows, read from the ledger and the runs folder.

    A naive ``since``/``until`` is read in the ledger clock's zone.
    """
    zone = ledger.zone
    start = ledger.wall_time(since)
    end = ledger.wall_time(until) if until is not None else None
    if end is not None and end <= start:
        raise UsageError(f"the period is empty: until ({end}) is not after since ({start})")
    generated = ledger.wall_time(now) if now is not None else ledger.now()
    runs_dir = Path(runs_dir)
    # The head first: the index only grows, so the verification below covers at least
    # the chain this value ends; read after it, it could name a run never verified.
    head = _index_head(runs_dir)
    logs = _verify_logs(runs_dir, ledger)
    read = queries.runs_and_events(ledger, start, end, RUN_FIELDS, EVENT_FIELDS)
    run_frame, event_frame = _plain(read[0]), _plain(read[1])
    run_frame["started_at"] = _aware(run_frame["started_at"], zone)
    run_frame["ended_at"] = _aware(run_frame["ended_at"], zone)
    # Older ledgers have no action column values: those runs were captures.
    run_frame["action"] = run_frame["action"].fillna("capture")
    run_frame["counts"] = run_frame["counts"].map(_counts)
    event_frame["event_time"] = _aware(event_frame["event_time"], zone)
    return AuditReport(
        since=start,
        until=end,
        generated_at=generated,
        runs=_with_log_states(run_frame, runs_dir, logs),
        events=_with_evidence_states(event_frame, runs_dir),
        logs=logs,
        index_head=head,
    )


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Python objects, missing values as None (not NaN/NaT), for the page and the book."""
    return frame.astype(object).where(frame.notna(), None).reset_index(drop=True)


def _aware(values: pd.Series, zone: tzinfo) -> pd.Series:
    """Times as tz-aware timestamps in ``zone``, whichever database they came from."""
    present = values.dropna()
    if len(present) and getattr(present.iloc[0], "tzinfo", None) is not None:
        return pd.to_datetime(values, utc=True).dt.tz_convert(zone)  # real instants
    return pd.to_datetime(values).dt.tz_localize(zone)  # SQLite: wall times of the clock


def _counts(text: object) -> dict[str, Any] | str | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict) else text


def _index_head(runs_dir: Path) -> str | None:
    try:
        last = index_last_line(runs_dir / INDEX_NAME)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        entry = json.loads(last) if last is not None else None
    except ValueError:
        return None  # the verification names the damaged line
    head = entry.get("last_hash") if isinstance(entry, dict) else None
    return head if isinstance(head, str) else None


def _verify_logs(runs_dir: Path, ledger: Ledger) -> VerifyReport:
    """verify(runs_dir); a missing or empty folder is tampering only if the ledger knows
    of runs (``logs verify`` calls an empty folder an error: there, nothing was audited)."""
    if not runs_dir.exists():
        what = "no such runs folder"
    elif not any(runs_dir.glob("*.jsonl")) and not (runs_dir / INDEX_NAME).exists():
        what = "no run logs in the runs folder"
    else:
        return verify(runs_dir)
    known = queries.run_count(ledger)
    if known:
        return VerifyReport(problems=[f"{runs_dir}: {what}, yet the ledger records {known} run(s)"])
    return VerifyReport(warnings=[f"{runs_dir}: {what} (no run was logged yet)"])


def _with_log_states(frame: pd.DataFrame, runs_dir: Path, logs: VerifyReport) -> pd.DataFrame:
    """Add where each run's log was checked and what the check said of it."""
    frame = frame.copy()
    files, states, notes = [], [], []
    for log_path in frame["log_path"]:
        # The ledger keeps the path the bot was given (often relative to where it ran);
        # the file verified is the one of that name in the runs folder.
        name = Path(str(log_path or "")).name
        file = (runs_dir / name).resolve()
        problems = _naming(logs.problems, name)
        warnings = _naming(logs.warnings, name)
        if not name or not file.is_file():
            state, note = "missing", "; ".join(problems) or f"{file}: no such file"
        elif problems:
            state, note = "altered", "; ".join(problems)
        elif warnings:
            state, note = "unclosed", "; ".join(warnings)
        else:
            state, note = "intact", ""
        files.append(str(file))
        states.append(state)
        notes.append(note)
    for name, values in (("log_file", files), ("log_status", states), ("log_note", notes)):
        frame[name] = _objects(values, frame.index)
    return frame


def _naming(messages: Iterable[str], name: str) -> list[str]:
    """The messages about file ``name`` (verify starts each with the file's name)."""
    return [m for m in messages if name and (m.startswith(f"{name} ") or m.startswith(f"{name}:"))]


def _with_evidence_states(frame: pd.DataFrame, runs_dir: Path) -> pd.DataFrame:
    """Add the evidence file found for each event and whether its digest still matches."""
    frame = frame.copy()
    digests: dict[Path, str | None] = {}  # one read per file, however many events cite it
    files: list[str | None] = []
    states: list[str | None] = []
    for path, recorded in zip(frame["evidence_path"], frame["evidence_sha256"], strict=True):
        if not path:
            files.append(None)
            states.append(None)
            continue
        file = _find_evidence(Path(str(path)), runs_dir)
        if file not in digests:
            digests[file] = _digest(file)
        files.append(str(file))
        states.append(_evidence_state(digests[file], file, recorded))
    frame["evidence_file"] = _objects(files, frame.index)
    frame["evidence_status"] = _objects(states, frame.index)
    return frame


def _objects(values: list[Any], index: pd.Index) -> pd.Series:
    """A column that keeps None as None (pandas would make text columns NaN-holding str)."""
    return pd.Series(values, index=index, dtype=object)


def _find_evidence(path: Path, runs_dir: Path) -> Path:
    """Where an evidence path recorded by a bot is now.

    The bot records paths as it was given them: with the default logs folder, relative to
    where runner.py ran (the project folder, where an audit runs too). Failing that, the
    folder that holds the logs folder is the project folder of the default layout.
    """
    if path.is_absolute():
        return path
    here = Path.cwd() / path
    project = runs_dir.resolve().parent.parent / path
    return (project if not here.exists() and project.exists() else here).resolve()


def _digest(file: Path) -> str | None:
    try:
        return sha256_file(file)[0] if file.is_file() else None
    except OSError:
        return None


def _evidence_state(digest: str | None, file: Path, recorded: object) -> str:
    if digest is None:
        return "missing" if not file.exists() else "unreadable"
    if not isinstance(recorded, str) or not recorded:
        return "unrecorded"
    return "ok" if digest == recorded.strip().lower() else "differs"
