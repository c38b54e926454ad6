"""The run log: one JSON Lines file per run, one event per step and state change.

Each line is complete JSON written and flushed at once, so a crash loses at most the
line being written. Every line passes through the run's ``Redactor`` first: a secret
never reaches the file, whatever a step or an error message happened to contain, in any
encoding (raw, JSON, URL-encoded, HTML-escaped, repr). Every URL in an event's details
(the ``url`` of step and download events, a URL an error quotes) is written without its
query string's values (``?user=…&token=…``): a query can carry a secret nobody registered.

The logs are tamper-evident (checked by ``bots.logchain.verify``, ``runner.py logs verify``):

- Every record carries ``seq`` (its 0-based line number) and ``prev``, the SHA-256 (hex)
  of the previous line's exact UTF-8 bytes, newline excluded. The first record's ``prev``
  is the ``last_hash`` of the index's last entry when the run started (64 zeros when the
  index was empty), so the runs form one chain.
- The last line is the closing record, ``event: "run_end"``, whose ``details.lines`` is the
  number of records before it.
- On close, one line is appended to the index ``index.ndjson`` beside the run files
  (under ``flock``, then fsync): ``seq``, ``run_id``, ``file``, ``after`` (the index
  ``seq`` that was last when the run started, -1 for none), ``first_prev``, ``last_hash``
  (SHA-256 of the file's closing line), ``lines`` (all lines of the file, closing record
  included), ``closed_at`` (the closing record's ``ts``) and ``prev`` (SHA-256 of the
  previous index line, or 64 zeros).
  The index is not named ``*.jsonl`` so that it is never taken for a run's log.
- While a run is open, ``pending/<run file>.json`` beside the run files says where its
  chain started (``run_id``, ``file``, ``after``, ``first_prev``); ``close`` removes it
  (and the folder, once empty) when the index line is written. When that line could not
  be written (a full disk), the next run to start finds the closed file through it and
  indexes it then, the entry carrying ``indexed_by`` (that run's id): ``logs verify``
  reports the late indexing instead of tampering. A half-written index line is cut off
  again before the error is raised.

The index is this machine's. A ledger shared by several machines is the one index across
them: when a run closes, ``RunLog.seal`` (the file's name, line count, first ``prev`` and
last hash: what its index line records) goes into its ``runs`` row too
(``Ledger.finish_run``), so that ``logs verify`` checks each machine's files against what
their worker recorded, and ``logs verify --fleet`` every run of every host.

``seq`` and ``prev`` are added after redaction: they hold no secret, and a secret that
happened to look like part of a digest must not break the chain.

Nothing in the fleet rotates, truncates or deletes run logs or the index, and nothing
may: a missing or shortened file is exactly what the verification reports as tampering.
Archive old logs by copying the whole runs folder, index included.

A write the machine refuses (a full disk, a read-only file system, an I/O error) raises
``MachineFailure``: the line it may have half written is cut off again, and the log is
given up (``failure``): no more lines, no closing record and no index entry, so the file
reads as a run that was killed, which is what it is. An index line that could not be
written whole is cut off too: the index never ends with half a line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import resource
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from .errors import MACHINE_ERRNOS, MachineFailure, SystemFailure
from .redaction import Redactor, strip_url_queries

INDEX_NAME = "index.ndjson"
PENDING_DIR = "pending"  # beside the run files: one marker per run not yet indexed
GENESIS = "0" * 64  # the ``prev`` of the very first record and the first index line


@dataclass(frozen=True)
class LogSeal:
    """A closed run file as its index line describes it: what the ledger keeps of it too."""

    file: str  # the run file's name
    lines: int  # all lines, the closing record included
    first_prev: str  # the first record's prev: where its chain joins the index
    last_hash: str  # SHA-256 of the closing record's line


def line_hash(line: str | bytes) -> str:
    """SHA-256 (hex) of one line as written, without its newline."""
    data = line.encode("utf-8") if isinstance(line, str) else line
    return hashlib.sha256(data).hexdigest()


def read_last_line(f: BinaryIO) -> bytes | None:
    """The last line of an open binary file, without its newline (None when empty).

    Reads backwards from the end in blocks: the index grows by one line per run for
    years, and is never read whole to append to it.
    """
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return None
    block = 4096
    tail = b""
    pos = end
    while pos > 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        tail = f.read(step) + tail
        # A newline before the (newline-terminated) last line marks its start.
        cut = tail.rfind(b"\n", 0, len(tail) - 1)
        if cut >= 0:
            return tail[cut + 1 :].rstrip(b"\n")
    return tail.rstrip(b"\n")


@contextmanager
def locked_index(path: Path) -> Iterator[BinaryIO]:
    """The index opened for appending, under an exclusive ``flock`` (blocks until free)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield f
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def index_last_line(path: Path) -> bytes | None:
    """The index's last line (None when empty), read under a shared ``flock``: a run
    closing now appends whole lines. Raises FileNotFoundError when there is no index."""
    with open(path, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        try:
            return read_last_line(f)
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _index_tail(f: BinaryIO, path: Path) -> tuple[dict[str, Any] | None, bytes | None]:
    """The index's last entry and that line's bytes; refuses a damaged last line."""
    last = read_last_line(f)
    if last is None:
        return None, None
    f.seek(0, os.SEEK_END)
    f.seek(f.tell() - 1)
    if f.read(1) != b"\n":
        raise SystemFailure(
            f"the run log index {path} ends with an incomplete line; "
            "run `python runner.py logs verify` and repair it before running"
        )
    try:
        entry = json.loads(last)
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
            raise ValueError("not an index entry")
        if not isinstance(entry.get("last_hash"), str):
            raise ValueError("no last_hash")
    except ValueError as exc:
        raise SystemFailure(
            f"the run log index {path} ends with a damaged line ({exc}); "
            "run `python runner.py logs verify` and repair it before running"
        ) from exc
    return entry, last


class RunLog:
    """Append events for one run; ``close`` writes the closing record and indexes the file."""

    def __init__(
        self,
        path: Path,
        *,
        run_id: str,
        recipe: str,
        redactor: Redactor,
        clock: Callable[[], datetime],
        index: Path | None = None,
    ) -> None:
        self.path = path
        self.run_id = run_id
        self.recipe = recipe
        self.index_path = index if index is not None else path.parent / INDEX_NAME
        self._redactor = redactor
        self._clock = clock
        # Where the chain stands when this run starts: the last closed run in the index,
        # once any run whose index line could not be written is indexed.
        self._pending = path.parent / PENDING_DIR / f"{path.name}.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with locked_index(self.index_path) as f:
                index_late(f, self.index_path, by=run_id)
                entry, _ = _index_tail(f, self.index_path)
                self.after: int = entry["seq"] if entry is not None else -1
                self.first_prev: str = entry["last_hash"] if entry is not None else GENESIS
                self._pending.parent.mkdir(exist_ok=True)
                marker = {
                    "run_id": run_id,
                    "file": path.name,
                    "after": self.after,
                    "first_prev": self.first_prev,
                }
                with open(self._pending, "x", encoding="utf-8") as m:
                    m.write(json.dumps(marker) + "\n")
        except OSError as exc:
            if exc.errno not in MACHINE_ERRNOS:
                raise
            what = f"cannot open the run logs in {path.parent}"
            raise MachineFailure.from_os_error(exc, what) from exc
        self._seq = 0
        self._prev = self.first_prev
        self._last_line = ""
        self._size = 0  # bytes of whole lines written
        self._lock = threading.RLock()  # close() writes its record through event()
        # Set when the machine refused a write: the log is given up.
        self.failure: MachineFailure | None = None
        # Set once the closing record is safely written (even if its index line is not).
        self.seal: LogSeal | None = None
        # Exclusive create: a run never appends to, or overwrites, another run's story.
        # Unbuffered bytes: a refused write is seen at once, with how much got through.
        try:
            self._file: BinaryIO | None = open(path, "xb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            if exc.errno not in MACHINE_ERRNOS:
                raise
            raise MachineFailure.from_os_error(exc, f"cannot create the run log {path}") from exc

    def scrub(self, value: Any) -> Any:
        """``value`` with every secret this run knows replaced: for records kept beside the
        log (the ledger's events), which must be as clean as the log itself."""
        return self._redactor.scrub_data(strip_url_queries(value))

    def event(
        self, event: str, *, key: str | None = None, outcome: str = "ok", **details: Any
    ) -> None:
        """Append one event. Lanes of one run (threads) share the log: one at a time,
        so the chain (``seq``, ``prev``) stays one line after another."""
        with self._lock:
            self._event(event, key, outcome, details)

    def _event(self, event: str, key: str | None, outcome: str, details: dict[str, Any]) -> None:
        if self.failure is not None:
            raise MachineFailure(str(self.failure))
        if self._file is None:
            raise RuntimeError(f"run log {self.path} is closed")
        record = {
            "ts": self._clock().isoformat(timespec="milliseconds"),
            "run_id": self.run_id,
            "recipe": self.recipe,
            "key": key,
            "event": event,
            "outcome": outcome,
            # URLs without their query values: a query can carry a secret nobody registered.
            "details": self._redactor.scrub_data(strip_url_queries(details)),
        }
        body = self._redactor.scrub(json.dumps(record, ensure_ascii=False, default=str))
        if not (body.startswith("{") and body.endswith("}")):  # a secret like '{"ts'
            raise RuntimeError("redaction broke a run log record")
        line = f'{{"seq": {self._seq}, "prev": "{self._prev}", {body[1:]}'
        self._write(line)
        self._seq += 1
        self._prev = line_hash(line)
        self._last_line = line

    def _write(self, line: str) -> None:
        assert self._file is not None
        data = memoryview((line + "\n").encode("utf-8"))
        try:
            while data:
                written = self._file.write(data)
                data = data[written or 0 :]
        except OSError as exc:
            self._give_up(exc, f"cannot write the run log {self.path}")
        self._size += len(line.encode("utf-8")) + 1

    def _give_up(self, exc: OSError, what: str) -> None:
        """The machine refused a write: cut off a half-written line, give the log up."""
        if self._file is not None:
            with contextlib.suppress(OSError):  # else verification names the cut line
                os.ftruncate(self._file.fileno(), self._size)
            self.abandon()
        self.failure = MachineFailure.from_os_error(exc, what)
        raise self.failure from exc

    def abandon(self) -> None:
        """Stop writing without a closing record or an index entry: the file reads as a
        run that was killed. For a log the machine no longer keeps (a full disk, its
        folder removed or replaced: an index entry would go to a folder that is not the
        one this run's file is in)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def close(self, outcome: str, **details: Any) -> None:
        with self._lock:
            if self._file is None:
                return
            # ru_maxrss is in KiB on Linux: the run's own peak memory, browser excluded.
            peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            # The closing record and the index line go together, under the index's lock: a
            # check that takes the lock never sees a closed run file the index lacks.
            with locked_index(self.index_path) as index:
                closing = {"peak_rss_mb": peak_mb, **details, "lines": self._seq}
                self.event("run_end", outcome=outcome, **closing)
                try:
                    os.fsync(self._file.fileno())
                except OSError as exc:
                    self._give_up(exc, f"cannot write the run log {self.path}")
                self._file.close()
                self._file = None
                self.seal = LogSeal(self.path.name, self._seq, self.first_prev, self._prev)
                closing = json.loads(self._last_line)
                try:
                    _append_index(
                        index,
                        self.index_path,
                        run_id=closing["run_id"],
                        file=self.path.name,
                        after=self.after,
                        first_prev=self.first_prev,
                        last_hash=self._prev,
                        lines=self._seq,
                        closed_at=closing["ts"],
                    )
                except OSError as exc:
                    # The marker in pending/ stays: the next run to start indexes this file.
                    what = f"cannot write the run log index {self.index_path}"
                    self.failure = MachineFailure.from_os_error(exc, what)
                    raise self.failure from exc
                self._pending.unlink(missing_ok=True)
                with suppress(OSError):  # other runs' markers still there: keep the folder
                    self._pending.parent.rmdir()


def _append_index(f: BinaryIO, path: Path, **fields: Any) -> None:
    """Append one chained entry (``fields`` but ``seq`` and ``prev``) to the locked index.

    On failure (a full disk) whatever part of the line reached the file is cut off again,
    so that the index never ends with half a line; then the error is raised.
    """
    last, last_line = _index_tail(f, path)
    entry = {
        "seq": last["seq"] + 1 if last is not None else 0,
        **fields,
        "prev": line_hash(last_line) if last_line is not None else GENESIS,
    }
    end = f.seek(0, os.SEEK_END)  # "a" mode appends anyway; be explicit
    try:
        # Past the buffer: a refused write must not linger in it to be retried.
        data = memoryview((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
        while data:
            data = data[os.write(f.fileno(), data) :]
        os.fsync(f.fileno())
    except OSError:
        with suppress(OSError):  # never leave half an index line behind (frees space too)
            os.ftruncate(f.fileno(), end)
        raise


def _closing_record(path: Path) -> tuple[dict[str, Any], int, str] | None:
    """A run file's closing record, its line count and last line's hash; None if unclosed."""
    try:
        with open(path, "rb") as f:
            last = read_last_line(f)
            f.seek(0, os.SEEK_END)
            if last is None or f.tell() == 0:
                return None
            f.seek(f.tell() - 1)
            if f.read(1) != b"\n":
                return None
            record = json.loads(last)
            if not isinstance(record, dict) or record.get("event") != "run_end":
                return None
            f.seek(0)
            count = sum(1 for _ in f)
    except (OSError, ValueError):
        return None
    details = record.get("details")
    if not isinstance(details, dict) or details.get("lines") != count - 1:
        return None
    return record, count, line_hash(last)


def index_late(f: BinaryIO, index_path: Path, *, by: str) -> list[str]:
    """Index the closed run files whose own index line could not be written (their marker
    is still in ``pending/``), the entries saying ``indexed_by``: run ``by``. Called with the
    index locked; returns the files indexed. Unclosed runs (going on, or killed) are left."""
    pending = index_path.parent / PENDING_DIR
    if not pending.is_dir():
        return []
    done: list[str] = []
    listed: set[str] | None = None
    for marker in sorted(pending.glob("*.jsonl.json")):
        try:
            info = json.loads(marker.read_text("utf-8"))
            file = info["file"]
            after, first_prev = info["after"], info["first_prev"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a marker being written, or damaged: nothing to go by
        run_file = index_path.parent / str(file)
        closed = _closing_record(run_file) if Path(str(file)).name == file else None
        if closed is None:
            continue
        if listed is None:  # rare: read the whole index once, to know what it lists
            f.seek(0)
            listed = set()
            for raw in f:
                with suppress(ValueError, TypeError):
                    listed.add(json.loads(raw)["file"])
        if file not in listed:
            record, count, last_hash = closed
            _append_index(
                f,
                index_path,
                run_id=record.get("run_id"),
                file=file,
                after=after,
                first_prev=first_prev,
                last_hash=last_hash,
                lines=count,
                closed_at=record.get("ts"),
                indexed_by=by,
            )
            listed.add(file)
            done.append(file)
        marker.unlink(missing_ok=True)
    return done
