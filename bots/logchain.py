"""Verify the run logs' hash chains (see ``bots.runlog`` for the format).

``verify(path)`` checks a runs folder (every ``*.jsonl`` run file and the index) or one run
file (on its own, and against the index beside it when there is one). It streams each file
line by line and names, per file, the first record that is wrong: a changed byte, a
deleted, inserted or moved line, a cut file, an edited index line, a run file listed in the
index but missing, or a closed run file the index does not list (forged or renamed).

A run file that has no closing record and is not in the index is a run that was killed
(or is still going): a warning, not tampering. Its chain is still checked, except for its
last line, which nothing after it vouches for. Likewise nothing vouches for the index's
last line but its agreement with the run file it describes.

A closed run file whose index line could not be written (a full disk) is not tampering
while its ``pending/`` marker is there (a warning), nor once the next run indexed it late
(the entry's ``indexed_by``: a warning naming both runs).

Given a logs folder (one holding ``runs/``), its runs folder is checked. A runs folder with
no run file and no index is a problem: nothing verified is never "intact".

``known_runs`` (the ledger's ``runs`` table: run id, recorded log path, outcome, host, and
the log as it closed) makes the check ask after every run the ledger knows that was logged
in this folder: its file must be there, a run the ledger saw end must have a closing record
or an index entry, and a run whose worker recorded its log as it closed (``LogSeal``: line
count, first prev, last hash; ledger version 9) must still be that file, whatever the index
beside it says. A ledger shared by several machines is so the one index across them, and a
rewrite of one machine's files and index together no longer goes unseen.
``verify_fleet`` lists every run of every host from the ledger, with what became of its
log in the folders given (this machine's, and copies of other machines').
``anchor`` (``"SEQ:SHA256"`` of an index line, from ``anchor_of``, kept elsewhere) must
still match: a consistent rewrite of files and index cannot keep it.

Line numbers in messages start at 1, as in an editor; ``seq`` in the records starts at 0.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .runlog import (
    GENESIS,
    INDEX_NAME,
    PENDING_DIR,
    LogSeal,
    index_last_line,
    line_hash,
    read_last_line,
)


@dataclass(frozen=True)
class KnownRun:
    """A run as the ledger's ``runs`` table records it."""

    run_id: str
    log_path: str
    outcome: str | None  # None: not ended (yet)
    host: str | None = None  # None: any (a ledger row read without it)
    action: str | None = None
    seal: LogSeal | None = None  # the log as its worker closed it (None: not recorded)

    @property
    def file(self) -> str:
        return Path(self.log_path).name

    @property
    def folder(self) -> str:
        return str(Path(self.log_path).parent)


# What became of a known run's log in the folder that holds it (VerifyReport.runs).
VERIFIED = "verified"  # its file is intact, and matches the ledger's record when there is one
OPEN = "open"  # no closing record, and the ledger records none: killed, or still going
LATE = "closed, not indexed yet"  # its index line waits for the next run (pending/)
BROKEN = "NOT intact"  # missing, cut, altered, or not what its worker recorded


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: int = 0
    records: int = 0
    # Each run of ``known_runs`` logged in this folder -> VERIFIED, OPEN, LATE or BROKEN.
    runs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class IndexEntry:
    line: int  # 1-based line in the index
    seq: int
    run_id: str
    file: str
    after: int
    first_prev: str
    last_hash: str
    lines: int
    closed_at: str
    indexed_by: str | None = None


class _Chain:
    """Follows one hash chain, a line at a time, and keeps its first break.

    A record is vouched for by the next one's ``prev`` (the last by the index's
    ``last_hash``). When a link breaks with ``seq`` in order, the line after tells which
    side was changed: if it vouches for the line that broke the link, the line before
    was altered; otherwise that line itself was.
    """

    def __init__(
        self,
        name: str,
        starts: Collection[str] | None,
        start_what: str = "the chain start recorded in the index",
    ) -> None:
        self.name = name
        self.starts = starts  # what the first prev may be (None: anything)
        self.start_what = start_what
        self.problem: str | None = None
        self.bad_line: int | None = None  # 1-based
        self._back1: str | None = None  # hash of the previous line
        self._back2: str | None = None  # hash of the line before that
        self._pending: tuple[int, str] | None = None  # (0-based line, its hash)

    def fail(self, line: int, what: str) -> None:
        if self.problem is None:
            self.problem = f"{self.name} line {line}: {what}"
            self.bad_line = line

    def feed(self, p: int, raw: bytes) -> dict[str, Any] | None:
        """Check 0-based line ``p`` (newline removed); its record, or None on a break."""
        if self.problem is not None:
            return None
        h = line_hash(raw)
        record = _parse(raw)
        if self._pending is not None:
            self._resolve(record.get("prev") if record else None, f"the prev of line {p + 1}")
            return None
        back1, back2 = self._back1, self._back2
        self._back2, self._back1 = back1, h
        if record is None:
            self.fail(p + 1, "not valid JSON (altered or cut)")
            return None
        seq, prev = record.get("seq"), record.get("prev")
        if type(seq) is not int or not isinstance(prev, str):
            self.fail(p + 1, "not a chained record (no seq or prev)")
            return None
        if p == 0:
            if seq != 0:
                self.fail(1, f"out of sequence (seq {seq}, expected 0): lines deleted or moved")
            elif self.starts is not None and prev not in self.starts:
                self._pending = (p, h)
            else:
                return record
            return None
        if seq == p and prev == back1:
            return record
        skipped = back2 if p >= 2 else None
        if h == back1:
            self.fail(p + 1, f"repeats line {p} (a copy inserted)")
        elif prev != back1 and (
            prev == skipped or (p == 1 and self.starts is not None and prev in self.starts)
        ):
            self.fail(p, f"inserted line (line {p + 1} chains to what precedes it)")
        elif seq > p:
            self.fail(p + 1, f"out of sequence (seq {seq}, expected {p}): lines deleted or moved")
        elif seq < p:
            self.fail(p + 1, f"out of sequence (seq {seq}, expected {p}): lines inserted or moved")
        else:
            self._pending = (p, h)
        return None

    @property
    def pending(self) -> tuple[int, str] | None:
        """A break not yet settled: (0-based line, that line's hash)."""
        return self._pending if self.problem is None else None

    def finish(self, tail_hash: str | None, witness: str = "the index's last_hash") -> None:
        """End of file: settle a pending break with what vouches for the last line, if any."""
        if self.problem is None and self._pending is not None:
            if tail_hash is None:
                p = self._pending[0]
                start = "the chain start" if p == 0 else f"line {p}"
                self.fail(p + 1, f"hash chain broken (prev does not match {start})")
            else:
                self._resolve(tail_hash, witness)

    @property
    def last_hash(self) -> str | None:
        return self._back1

    def _resolve(self, next_prev: object, witness: str) -> None:
        assert self._pending is not None
        p, h = self._pending
        self._pending = None
        if next_prev == h:  # line p is vouched for: the line before it was changed
            if p == 0:
                self.fail(1, f"prev does not match {self.start_what}")
            else:
                self.fail(p, f"altered (its hash does not match the prev of line {p + 1})")
        else:
            start = "the chain start" if p == 0 else f"line {p}"
            self.fail(
                p + 1, f"altered (prev does not match {start}, and {witness} does not match it)"
            )


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        return None
    return value if isinstance(value, dict) else None


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(0-based number, line without its newline, whether it had one), streamed."""
    with open(path, "rb") as f:
        for p, raw in enumerate(f):
            complete = raw.endswith(b"\n")
            yield p, raw[:-1] if complete else raw, complete


def _file_last_hash(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            last = read_last_line(f)
    except OSError:
        return None
    return line_hash(last) if last is not None else None


_INDEX_FIELDS: dict[str, type] = {
    "seq": int,
    "run_id": str,
    "file": str,
    "after": int,
    "first_prev": str,
    "last_hash": str,
    "lines": int,
    "closed_at": str,
    "prev": str,
}


def _read_index(path: Path, report: VerifyReport) -> tuple[list[IndexEntry], int | None]:
    """The index's entries (all that parse, to check the files against) and the line its
    chain names as bad, if any."""
    chain = _Chain(INDEX_NAME, {GENESIS})
    entries: list[IndexEntry] = []
    first_line: dict[str, int] = {}
    problems: list[str] = []
    for p, raw, complete in _lines(path):
        if not complete:
            chain.fail(p + 1, "incomplete line (the index was cut)")
        chain.feed(p, raw)  # does nothing once the chain is broken
        record = _parse(raw)
        if record is None:
            continue
        wrong = [k for k, kind in _INDEX_FIELDS.items() if type(record.get(k)) is not kind]
        if wrong:
            chain.fail(p + 1, f"not an index entry (bad {', '.join(wrong)})")
            continue
        entry = IndexEntry(
            line=p + 1,
            seq=record["seq"],
            run_id=record["run_id"],
            file=record["file"],
            after=record["after"],
            first_prev=record["first_prev"],
            last_hash=record["last_hash"],
            lines=record["lines"],
            closed_at=record["closed_at"],
            indexed_by=record["indexed_by"] if isinstance(record.get("indexed_by"), str) else None,
        )
        if chain.problem is None:  # so far entries[i] is line i + 1, seq i
            if Path(entry.file).name != entry.file or not entry.file.endswith(".jsonl"):
                chain.fail(entry.line, f"file {entry.file!r} is not a run file name")
            elif entry.file in first_line:
                chain.fail(
                    entry.line, f"{entry.file} listed again (see line {first_line[entry.file]})"
                )
            elif not -1 <= entry.after < entry.seq:
                chain.fail(entry.line, f"after {entry.after} is not an earlier entry")
            elif entry.first_prev != (
                GENESIS if entry.after == -1 else entries[entry.after].last_hash
            ):
                problems.append(
                    f"{INDEX_NAME} line {entry.line}: first_prev is not the last_hash of "
                    f"line {entry.after + 1}, the last closed run when this one started"
                )
        first_line.setdefault(entry.file, entry.line)
        entries.append(entry)
    # Nothing follows the last line to vouch for it, but its run file can.
    pending, vouched = chain.pending, None
    if pending is not None and entries and entries[-1].line == pending[0] + 1:
        last = entries[-1]
        if _file_last_hash(path.parent / last.file) == last.last_hash:
            vouched = pending[1]
    chain.finish(vouched, "its run file")
    if chain.problem is not None:
        report.problems.append(chain.problem)
    report.problems.extend(problems)
    return entries, chain.bad_line


class _RunFile:
    """One run file, walked line by line."""

    def __init__(self, path: Path, entry: IndexEntry | None, chain: _Chain) -> None:
        self.path = path
        self.entry = entry
        self.chain = chain
        self.count = 0
        self.first_prev: str | None = None  # the first record's prev, as written
        self.closed_at: int | None = None  # 1-based line of the closing record
        self.closing: dict[str, Any] | None = None
        self.incomplete = False
        self.index_problem: str | None = None  # the index line disagrees with the file

    def walk(self) -> None:
        chain = self.chain
        for p, raw, complete in _lines(self.path):
            self.count = p + 1
            if chain.problem is not None:
                continue  # count the records, report the first break only
            if not complete:
                self.incomplete = True
                if self.entry is not None or self.closed_at is not None:
                    chain.fail(p + 1, "incomplete line (the file was cut)")
                continue  # an interrupted run's last words: nothing vouches for them
            if p == 0:
                first = _parse(raw)
                if first is not None and isinstance(first.get("prev"), str):
                    self.first_prev = first["prev"]
            record = chain.feed(p, raw)
            if record is None:
                continue
            if self.closed_at is not None:
                chain.fail(p + 1, f"after the closing record (line {self.closed_at})")
            elif record.get("event") == "run_end":
                self.closed_at, self.closing = p + 1, record

    def finish(self) -> None:
        chain, entry = self.chain, self.entry
        if entry is None:
            chain.finish(None)
            return
        chain.finish(entry.last_hash)
        if chain.problem is not None:
            return
        where = f"{INDEX_NAME} line {entry.line}"
        closing = self.closing or {}
        details = closing.get("details")
        closed = (
            self.closed_at == self.count
            and isinstance(details, dict)
            and details.get("lines") == self.count - 1
        )
        if closed and chain.last_hash == entry.last_hash:
            # The file is whole and its last line is the one the index vouches for:
            # whatever else disagrees is the index line's fault.
            name, last = self.path.name, self.count
            if entry.lines != self.count:
                self.index_problem = f"{where}: lines is {entry.lines}, {name} has {last}"
            elif closing.get("ts") != entry.closed_at:
                self.index_problem = f"{where}: closed_at is not the ts of {name} line {last}"
            elif closing.get("run_id") != entry.run_id:
                self.index_problem = f"{where}: run_id is not that of {name} line {last}"
        elif self.count < entry.lines:
            chain.fail(
                self.count + 1,
                f"missing: the file ends after {self.count} lines, {where} says "
                f"{entry.lines} (truncated)",
            )
        elif self.count > entry.lines:
            chain.fail(entry.lines + 1, f"beyond the {entry.lines} lines {where} records")
        elif self.closed_at != self.count:
            chain.fail(self.count, "the last line is not the closing record (run_end)")
        elif not closed:
            chain.fail(self.count, "the closing record's lines count does not match the file")
        else:
            chain.fail(self.count, f"altered (its hash does not match the last_hash in {where})")


def runs_folder(path: Path) -> Path:
    """``path``, or its ``runs`` folder when ``path`` is a logs folder holding one."""
    if (
        path.is_dir()
        and (path / "runs").is_dir()
        and not (path / INDEX_NAME).exists()
        and not any(path.glob("*.jsonl"))
    ):
        return path / "runs"
    return path


ANCHOR = re.compile(r"(\d+):([0-9a-f]{64})")


def anchor_of(path: Path) -> str:
    """The index head as ``SEQ:SHA256`` (the last index line's number and hash): kept
    elsewhere, it vouches for every index line up to it, and so for every run file."""
    index = runs_folder(path) / INDEX_NAME
    try:
        last = index_last_line(index)
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"{index}: no such index: nothing to anchor") from None
    record = _parse(last) if last is not None else None
    if record is None or type(record.get("seq")) is not int:
        raise UsageError(f"{index}: no index entry at its end: run `logs verify`")
    return f"{record['seq']}:{line_hash(last or b'')}"


def parse_anchor(value: str) -> str:
    """An anchor given as ``SEQ:SHA256`` or as a file of them (its last one counts)."""
    text = value.strip()
    if not ANCHOR.fullmatch(text):
        path = Path(value)
        if not path.is_file():
            raise UsageError(f"--anchor {value!r}: neither SEQ:SHA256 nor a file")
        found = ANCHOR.findall(path.read_text("utf-8", errors="replace"))
        if not found:
            raise UsageError(f"{path}: holds no anchor (SEQ:SHA256)")
        text = ":".join(found[-1])
    return text


def verify(
    path: Path,
    *,
    known_runs: Iterable[KnownRun] | None = None,
    anchor: str | None = None,
    host: str | None = None,
) -> VerifyReport:
    """Check a runs folder (or a logs folder, or one run file) for any sign of editing.

    Safe while runs go on: a run that closes during the check (its file then has a closing
    record the index read earlier lacked) makes the check start again, up to ten times.
    ``host`` is the machine whose folder this is, when it is this machine's own: the
    ledger's runs of that host logged under this path are its business even when none of
    their files is left (with a ledger shared by machines whose logs folders have one path).
    """
    if not path.exists():
        raise UsageError(f"{path}: no such runs folder or run file")
    path = runs_folder(path)
    known = list(known_runs) if known_runs is not None else None
    index = (path.parent if path.is_file() else path) / INDEX_NAME
    for _ in range(10):
        report, size = _verify_once(path, index, known, host)
        if report.ok or _size(index) == size:
            break
    if anchor is not None:
        _check_anchor(index, parse_anchor(anchor), report)
    return report


def _check_anchor(index: Path, anchor: str, report: VerifyReport) -> None:
    """The index line the anchor names must still be there, byte for byte."""
    seq_text, digest = anchor.split(":")
    seq, count = int(seq_text), 0
    if index.is_file():
        for p, raw, _complete in _lines(index):
            count = p + 1
            if p == seq:
                if line_hash(raw) != digest:
                    report.problems.insert(
                        0,
                        f"{INDEX_NAME} line {seq + 1}: does not match the anchor {anchor} "
                        "(the logs were rewritten since it was taken)",
                    )
                return
    report.problems.insert(
        0,
        f"{INDEX_NAME}: {count} lines, but the anchor {anchor} names line {seq + 1} "
        "(runs removed since it was taken)",
    )


def _size(path: Path) -> int | None:
    """The index's size, once no run is closing (closing holds the lock)."""
    try:
        with open(path, "rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            try:
                return os.fstat(f.fileno()).st_size
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except FileNotFoundError:
        return None


def _verify_once(
    path: Path, index: Path, known: list[KnownRun] | None, host: str | None = None
) -> tuple[VerifyReport, int | None]:
    """The report, and the size of the index as read."""
    report = VerifyReport()
    single = path.is_file()
    runs_dir = index.parent
    have_index = index.is_file()
    size = None
    entries: list[IndexEntry] = []
    bad_line = None
    if have_index:
        with open(index, "rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)  # no half-appended line
            try:
                size = os.fstat(f.fileno()).st_size
                entries, bad_line = _read_index(index, report)
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    if single and path.name == INDEX_NAME:
        return report, size  # the index alone
    by_file = {e.file: e for e in entries}
    # An interrupted run's file starts after some closed run, or at the very start.
    any_start = {GENESIS, *(e.last_hash for e in entries)}
    # A closed run must be in the index: always in a runs folder, where a missing index
    # is itself a problem, and for a single file when an index is beside it.
    must_be_listed = have_index or not single

    pending = runs_dir / PENDING_DIR
    runs: dict[str, _RunFile] = {}

    def check(file: Path) -> None:
        entry = by_file.get(file.name)
        if entry is not None and entry.line == bad_line:
            # An altered index line vouches for nothing: check the file on its own.
            run = _RunFile(file, None, _Chain(file.name, None))
        elif entry is not None:
            run = _RunFile(file, entry, _Chain(file.name, {entry.first_prev}))
        elif have_index:
            what = "the last_hash of any run in the index"
            run = _RunFile(file, None, _Chain(file.name, any_start, what))
        else:
            run = _RunFile(file, None, _Chain(file.name, None))
        run.walk()
        run.finish()
        runs[file.name] = run
        report.files += 1
        report.records += run.count
        if run.chain.problem is not None:
            report.problems.append(run.chain.problem)
        elif run.index_problem is not None:
            report.problems.append(run.index_problem)
        elif entry is not None and entry.indexed_by is not None:
            report.warnings.append(
                f"{file.name}: run {entry.run_id} was indexed late, by run {entry.indexed_by} "
                f"({INDEX_NAME} line {entry.line}): its index line could not be written "
                "when it closed (a full disk?)"
            )
        elif entry is not None:
            pass
        elif run.closed_at is not None and (pending / f"{file.name}.json").is_file():
            report.warnings.append(
                f"{file.name}: closed but not yet in {INDEX_NAME}: its index line could not "
                "be written (a full disk?); the next run to start indexes it"
            )
        elif run.closed_at is not None and must_be_listed:
            report.problems.append(
                f"{file.name} line {run.closed_at}: closing record, but the file is not in "
                f"{INDEX_NAME} (forged or renamed file)"
            )
        elif run.closed_at is not None:
            report.warnings.append(f"{file.name}: no {INDEX_NAME} beside it, checked on its own")
        else:
            cut = ", its last line cut off" if run.incomplete else ""
            report.warnings.append(
                f"{file.name}: unclosed (interrupted run, or one still going): "
                f"{run.count} lines{cut}, not in {INDEX_NAME}"
            )

    if single:
        check(path)
        return report, size
    files = sorted(p for p in runs_dir.glob("*.jsonl") if p.is_file())
    present = {p.name for p in files}
    if not have_index and files:
        report.problems.append(f"{INDEX_NAME}: missing from {runs_dir} (deleted?)")
    for entry in entries:
        if entry.file not in present and entry.line != bad_line:
            report.problems.append(
                f"{entry.file}: missing, listed in {INDEX_NAME} line {entry.line} "
                "(deleted or renamed)"
            )
    ordered = [runs_dir / e.file for e in entries if e.file in present]
    ordered += [p for p in files if p.name not in by_file]
    for file in dict.fromkeys(ordered):
        check(file)
    if not files and not have_index:
        report.problems.append(
            f"{runs_dir}: no run logs and no {INDEX_NAME}: nothing to verify "
            "(not a runs or logs folder, or everything was removed)"
        )
    if known is not None:
        _cross_check(known, runs_dir, runs, by_file, bad_line, report, host)
    return report, size


def _cross_check(
    known: list[KnownRun],
    runs_dir: Path,
    runs: dict[str, _RunFile],
    by_file: dict[str, IndexEntry],
    bad_line: int | None,
    report: VerifyReport,
    host: str | None = None,
) -> None:
    """Every run the ledger knows to be logged in this folder must have left its file; one
    the ledger saw end, a closing record or an index line; and one whose worker recorded
    its log as it closed, that very file (lines, first prev, last hash).

    The runs that count are those recorded under this folder's path (as the ledger records
    absolute paths) or under the path the ledger names for a file that is here (a copy),
    on the hosts whose files are here (and ``host``): a ledger shared by several machines
    lists runs logged elsewhere, maybe under the same path on another host, which are no
    business of this folder.
    """
    present = [r for r in known if r.file in runs]
    here = {str(runs_dir), str(runs_dir.resolve())} | {r.folder for r in present}
    hosts = {r.host for r in present if r.host is not None}
    if host is not None:
        hosts.add(host)
    elsewhere = 0
    for run in known:
        if run.folder not in here or (hosts and run.host is not None and run.host not in hosts):
            elsewhere += 1
            continue
        problem = _known_problem(run, by_file.get(run.file), runs.get(run.file), bad_line)
        walked = runs.get(run.file)
        if problem is not None:
            report.problems.append(f"run {run.run_id}: {problem}")
            report.runs[run.run_id] = BROKEN
        elif walked is None or walked.chain.problem is not None or walked.index_problem:
            report.runs[run.run_id] = BROKEN  # the index or the file's own check says why
        elif walked.closed_at is None:
            report.runs[run.run_id] = OPEN
        elif run.file not in by_file:
            report.runs[run.run_id] = LATE
        else:
            report.runs[run.run_id] = VERIFIED
    if elsewhere and not runs:
        report.warnings.append(
            f"the ledger lists {elsewhere} run(s) logged in other folders: not cross-checked"
        )


def _known_problem(
    run: KnownRun, entry: IndexEntry | None, walked: _RunFile | None, bad_line: int | None
) -> str | None:
    """What is wrong with one known run's log, if the file and index checks do not say it."""
    name, seal = run.file, run.seal
    if walked is None:
        if entry is None or entry.line == bad_line:  # else the index says it already
            return (
                f"its log {name} is missing, and the ledger's runs table lists it "
                "(deleted, with its index line if it had one)"
            )
        return None
    if seal is None:
        if entry is None and walked.closed_at is None and run.outcome not in (None, "interrupted"):
            return (
                f"the ledger says it ended ({run.outcome}), but {name} has "
                f"no closing record and is not in {INDEX_NAME} (both removed?)"
            )
        return None
    if walked.chain.problem is not None:
        return None  # named already, where the file breaks
    found = (walked.count, walked.first_prev, walked.chain.last_hash)
    if found != (seal.lines, seal.first_prev, seal.last_hash):
        cut = walked.count < seal.lines
        what = "cut short" if cut else "rewritten" if walked.count == seal.lines else "extended"
        return (
            f"{name} is not the log its worker recorded in the ledger when the run closed "
            f"({what}: the ledger records {seal.lines} lines ending in "
            f"{seal.last_hash[:12]}, the file has {walked.count} ending in "
            f"{(walked.chain.last_hash or '-')[:12]})"
        )
    if entry is not None and (entry.lines, entry.first_prev, entry.last_hash) != found:
        return (
            f"{INDEX_NAME} line {entry.line} does not describe {name} as its worker "
            "recorded it in the ledger (the index line was rewritten)"
        )
    return None


@dataclass(frozen=True)
class FleetRow:
    """One run of the ledger, and what became of its log in the folders verified."""

    host: str
    run_id: str
    action: str
    state: str  # verified, open, late, BROKEN, or "" (not here)
    status: str  # for a person
    folder: Path | None  # the runs folder that holds its log, None: none of those given


def fleet_rows(
    known: Iterable[KnownRun], folders: list[tuple[Path, VerifyReport]]
) -> list[FleetRow]:
    """Every run the ledger knows (in its order), with its log's fate: verified in one of
    ``folders`` (each with the report ``verify`` gave it with these known runs), open
    (killed or still going: no closing record, and none recorded), or not here."""
    rows = []
    for run in known:
        found = next(((f, r.runs[run.run_id]) for f, r in folders if run.run_id in r.runs), None)
        host, action = run.host or "(unknown host)", run.action or "capture"
        if found is None:
            where = f"its log is on {host} ({run.log_path})"
            if run.seal is None and run.outcome in (None, "interrupted"):
                said = "marked interrupted" if run.outcome else "no closing record yet"
                status = f"open in the ledger ({said}: killed, or still going); {where}, not here"
            else:
                status = f"not verified here: {where}; give a copy of that logs folder"
            rows.append(FleetRow(host, run.run_id, action, "", status, None))
            continue
        folder, state = found
        path = folder / run.file
        if state == VERIFIED:
            how = (
                f"{run.seal.lines} lines, as its worker recorded them in the ledger"
                if run.seal is not None
                else "by its index only: the ledger has no record of its log (closed before "
                "ledger version 9, or its close was not recorded)"
            )
            status, short = f"verified here ({path}, {how})", "verified"
        elif state == OPEN:
            said = "marked interrupted" if run.outcome == "interrupted" else "not ended"
            status = (
                f"open: {path} has no closing record, the ledger none either ({said}): "
                "killed, or still going; its lines so far are chained"
            )
            short = "open"
        elif state == LATE:
            status = f"closed, its index line not written yet ({path}): the next run indexes it"
            short = "late"
        else:
            status, short = f"NOT intact ({path}): see the problems above", "BROKEN"
        rows.append(FleetRow(host, run.run_id, action, short, status, folder))
    return rows
