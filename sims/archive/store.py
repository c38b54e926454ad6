"""The archive's holdings: an SQLite catalogue plus one stored file per item.

Layout of the data directory::

    archive.sqlite3     the catalogue (items table; deleted_items keeps retired numbers)
    files/A000001       the original of item A000001, exactly the bytes received
    tmp/*.part          uploads being received; renamed into files/ on commit

Uploads are written to ``tmp/`` while the request body is parsed, hashed as the bytes
arrive, and renamed into ``files/`` inside the same SQLite write transaction that
assigns the numbers, so a crash leaves either a catalogued item with its file or a stray
``.part`` (swept at the next start), never a catalogue row without a file.

Numbers are never reused. An item deleted (by ``POST /_sim/tamper``, playing an archive
that loses things) leaves a row in ``deleted_items``, and numbering takes the highest
number ever assigned, live or deleted: a reference code (档号) is cited in other records
long after it is assigned, and a real archive leaves a gap (断号) where an item was
removed rather than give its number to a different document.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .validation import ItemMetadata, reference_code

# The simulated system runs in Beijing time, as the systems it imitates do (no DST).
ARCHIVE_TZ = dt.timezone(dt.timedelta(hours=8), "CST")

DB_NAME = "archive.sqlite3"
_SCHEMA_VERSION = 2  # 2: deleted_items; CREATE ... IF NOT EXISTS upgrades a version 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq            INTEGER PRIMARY KEY,          -- archive_id = 'A' || printf('%06d', seq)
    archive_id     TEXT    NOT NULL UNIQUE,
    reference_code TEXT    NOT NULL UNIQUE,
    fonds          TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    year           TEXT    NOT NULL,
    retention      TEXT    NOT NULL,
    department     TEXT    NOT NULL,
    item_number    INTEGER NOT NULL,
    title          TEXT    NOT NULL,
    author         TEXT    NOT NULL,
    date           TEXT    NOT NULL,
    doc_number     TEXT    NOT NULL,
    classification TEXT    NOT NULL,
    pages          INTEGER,
    remarks        TEXT    NOT NULL,
    filename       TEXT    NOT NULL,
    size           INTEGER NOT NULL,
    sha256         TEXT    NOT NULL,
    ingested_at    TEXT    NOT NULL,
    -- the numbering rule, enforced by the database as a last line of defence
    UNIQUE (fonds, category, year, retention, department, item_number)
);
-- Tombstones of deleted items: only what numbering needs, plus what was lost, for debugging.
CREATE TABLE IF NOT EXISTS deleted_items (
    seq            INTEGER PRIMARY KEY,
    archive_id     TEXT    NOT NULL UNIQUE,
    reference_code TEXT    NOT NULL UNIQUE,
    fonds          TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    year           TEXT    NOT NULL,
    retention      TEXT    NOT NULL,
    department     TEXT    NOT NULL,
    item_number    INTEGER NOT NULL,
    sha256         TEXT    NOT NULL,
    deleted_at     TEXT    NOT NULL
);
"""

# The highest number in a group / overall, over live and deleted items alike, so that a
# deleted item's number is never handed out again (see the module docstring).
_GROUP = "fonds=? AND category=? AND year=? AND retention=? AND department=?"
_HIGHEST_ITEM_NUMBER = (
    f"SELECT MAX((SELECT COALESCE(MAX(item_number), 0) FROM items WHERE {_GROUP}),"
    f" (SELECT COALESCE(MAX(item_number), 0) FROM deleted_items WHERE {_GROUP}))"
)
_HIGHEST_SEQ = (
    "SELECT MAX((SELECT COALESCE(MAX(seq), 0) FROM items),"
    " (SELECT COALESCE(MAX(seq), 0) FROM deleted_items))"
)

_CHUNK = 64 * 1024


class IncomingFile:
    """A file-like sink for one uploaded file: written to disk, hashed as bytes arrive.

    Werkzeug's multipart parser calls ``write`` once per received chunk, then ``seek(0)``.
    Hashing in ``write`` means the digest is of exactly the bytes received, computed
    without holding the file in memory and without reading it back.
    """

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(fd, "w+b")
        self._hash = hashlib.sha256()
        self.size = 0
        self.committed = False

    # --- the file protocol the multipart parser and FileStorage use ---
    def write(self, data: bytes) -> int:
        # The digest is only valid for append-only writes, which is how the parser streams.
        if self._file.tell() != self.size:
            raise RuntimeError("IncomingFile supports sequential writes only")
        written = self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        return written

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._file.readline(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    # --- archive side ---
    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def commit_to(self, final: Path) -> None:
        """Make the bytes durable, then move them to their final name atomically."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.path, final)
        self.committed = True

    def discard(self) -> None:
        """Remove the temporary file unless it was committed; safe to call repeatedly."""
        if not self._file.closed:
            self._file.close()
        if not self.committed:
            self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class StoredItem:
    """One catalogued item as the archive holds it."""

    archive_id: str
    reference_code: str
    item_number: int
    meta: ItemMetadata
    filename: str
    size: int
    sha256: str
    ingested_at: str

    def to_state(self) -> dict[str, Any]:
        """The ground-truth shape served at ``/_sim/state``."""
        m = self.meta
        return {
            "archive_id": self.archive_id,
            "reference_code": self.reference_code,
            "sha256": self.sha256,
            "size": self.size,
            "filename": self.filename,
            "ingested_at": self.ingested_at,
            "metadata": {
                "fonds": m.fonds,
                "category": m.category,
                "year": m.year,
                "retention": m.retention,
                "department": m.department,
                "title": m.title,
                "author": m.author,
                "date": m.date,
                "doc_number": m.doc_number,
                "classification": m.classification,
                "pages": m.pages,
                "remarks": m.remarks,
                "item_number": self.item_number,
            },
        }


def _row_to_item(row: sqlite3.Row) -> StoredItem:
    return StoredItem(
        archive_id=row["archive_id"],
        reference_code=row["reference_code"],
        item_number=row["item_number"],
        meta=ItemMetadata(
            fonds=row["fonds"],
            category=row["category"],
            year=row["year"],
            retention=row["retention"],
            department=row["department"],
            title=row["title"],
            author=row["author"],
            date=row["date"],
            doc_number=row["doc_number"],
            classification=row["classification"],
            pages=row["pages"],
            remarks=row["remarks"],
        ),
        filename=row["filename"],
        size=row["size"],
        sha256=row["sha256"],
        ingested_at=row["ingested_at"],
    )


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` as a plain substring (escape % _ and \\)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ArchiveStore:
    """Catalogue and file store under one data directory; safe to share between threads."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.files_dir = data_dir / "files"
        self.tmp_dir = data_dir / "tmp"
        self.db_path = data_dir / DB_NAME
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        # Leftovers of uploads interrupted by a crash or kill: never catalogued, so garbage.
        for stale in self.tmp_dir.glob("*.part"):
            stale.unlink(missing_ok=True)
        # Serialises writers in this process; BEGIN IMMEDIATE does the same across
        # processes sharing the directory. Either alone would do for numbering; the lock
        # avoids threads spinning on SQLite's busy timeout.
        self._write_lock = threading.Lock()
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per operation: sqlite3 connections must not be shared
        # between threads, and opening one is cheap next to the simulated latency.
        # isolation_level=None: transactions are begun explicitly, never implicitly.
        conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        finally:
            conn.close()

    def open_incoming(self) -> IncomingFile:
        return IncomingFile(self.tmp_dir)

    def file_path(self, archive_id: str) -> Path:
        return self.files_dir / archive_id

    def ingest(self, meta: ItemMetadata, upload: IncomingFile, filename: str) -> StoredItem:
        """Catalogue one item and keep its file, all or nothing.

        Item number and archive id are read and written in the same write transaction,
        so two concurrent uploads can never be given the same number; numbers of deleted
        items count as taken.
        """
        with self._write_lock, self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            final_path: Path | None = None
            try:
                group = (meta.fonds, meta.category, meta.year, meta.retention, meta.department)
                (highest,) = conn.execute(_HIGHEST_ITEM_NUMBER, group * 2).fetchone()
                (last_seq,) = conn.execute(_HIGHEST_SEQ).fetchone()
                item_number = highest + 1
                seq = last_seq + 1
                item = StoredItem(
                    archive_id=f"A{seq:06d}",
                    reference_code=reference_code(meta, item_number),
                    item_number=item_number,
                    meta=meta,
                    filename=filename,
                    size=upload.size,
                    sha256=upload.sha256,
                    ingested_at=dt.datetime.now(ARCHIVE_TZ).isoformat(timespec="seconds"),
                )
                conn.execute(
                    "INSERT INTO items (seq, archive_id, reference_code, fonds, category, year,"
                    " retention, department, item_number, title, author, date, doc_number,"
                    " classification, pages, remarks, filename, size, sha256, ingested_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        seq,
                        item.archive_id,
                        item.reference_code,
                        meta.fonds,
                        meta.category,
                        meta.year,
                        meta.retention,
                        meta.department,
                        item_number,
                        meta.title,
                        meta.author,
                        meta.date,
                        meta.doc_number,
                        meta.classification,
                        meta.pages,
                        meta.remarks,
                        filename,
                        item.size,
                        item.sha256,
                        item.ingested_at,
                    ),
                )
                final_path = self.file_path(item.archive_id)
                upload.commit_to(final_path)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT may already have rolled back
                    conn.execute("ROLLBACK")
                if final_path is not None and upload.committed:
                    final_path.unlink(missing_ok=True)
                raise
        return item

    def get(self, archive_id: str) -> StoredItem | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM items WHERE archive_id=?", (archive_id,)).fetchone()
        return _row_to_item(row) if row else None

    def search(self, query: str, *, offset: int, limit: int) -> tuple[list[StoredItem], int]:
        """Items whose title, reference code, archive id, remarks or sha256 contains
        ``query``, oldest first.

        Returns one page and the total number of matches. LIKE is case-insensitive for
        ASCII, so ``a000001`` finds ``A000001`` as a person typing in a search box expects,
        and an upper-case digest finds the stored lower-case one. Remarks and digest are
        searched so that a robot unsure whether an upload went through can look the item
        up by the source key it wrote into the remarks, or by the file's sha256.
        """
        where = ""
        params: tuple[str, ...] = ()
        if query:
            pattern = _like_pattern(query)
            columns = ("title", "reference_code", "archive_id", "remarks", "sha256")
            where = " WHERE " + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns)
            params = (pattern,) * len(columns)
        with self._connect() as conn:
            # One read transaction, so the count and the page describe the same snapshot.
            conn.execute("BEGIN")
            (total,) = conn.execute(f"SELECT COUNT(*) FROM items{where}", params).fetchone()
            rows = conn.execute(
                f"SELECT * FROM items{where} ORDER BY seq LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            conn.execute("COMMIT")
        return [_row_to_item(r) for r in rows], total

    def all_items(self) -> list[StoredItem]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM items ORDER BY seq").fetchall()
        return [_row_to_item(r) for r in rows]

    # --- tampering: the archive misbehaving on purpose (POST /_sim/tamper) ---

    def delete(self, archive_id: str) -> StoredItem | None:
        """Remove an item and its file as if the archive lost it; None if there is no such item.

        The row moves to ``deleted_items`` in one write transaction, so its numbers stay
        taken. The file is removed only after the commit: a crash in between leaves a
        stray file that no catalogue row names (its archive id is never reused, so it is
        never served), never a catalogue row without its file.
        """
        with self._write_lock, self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT * FROM items WHERE archive_id=?", (archive_id,)
                ).fetchone()
                if row is None:
                    conn.execute("ROLLBACK")
                    return None
                conn.execute(
                    "INSERT INTO deleted_items (seq, archive_id, reference_code, fonds,"
                    " category, year, retention, department, item_number, sha256, deleted_at)"
                    " SELECT seq, archive_id, reference_code, fonds, category, year, retention,"
                    " department, item_number, sha256, ? FROM items WHERE archive_id=?",
                    (dt.datetime.now(ARCHIVE_TZ).isoformat(timespec="seconds"), archive_id),
                )
                conn.execute("DELETE FROM items WHERE archive_id=?", (archive_id,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            # Still under the write lock, so no other tampering sees the file half-gone.
            self.file_path(archive_id).unlink(missing_ok=True)
        return _row_to_item(row)

    def corrupt(self, archive_id: str) -> tuple[str, str] | None:
        """Flip one byte in the middle of an item's stored file, in place, leaving the
        catalogue's size and sha256 as they were: silent bit rot, which only re-hashing the
        served bytes can detect.

        Returns the file's sha256 before and after (of the bytes on disk, which differ from
        the catalogue's if the file was corrupted before), or None if there is no such item.
        Raises ValueError for an empty file, which has no byte to flip.
        """
        # The write lock and an IMMEDIATE transaction keep a concurrent delete (in this
        # process or another) from removing the item between the lookup and the write.
        with self._write_lock, self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT archive_id FROM items WHERE archive_id=?", (archive_id,)
                ).fetchone()
                if row is None:
                    return None
                with self.file_path(archive_id).open("r+b") as file:
                    before = _sha256_of(file)
                    size = file.tell()
                    if size == 0:
                        raise ValueError(f"{archive_id}: the stored file is empty")
                    file.seek(size // 2)
                    (byte,) = file.read(1)
                    file.seek(size // 2)
                    file.write(bytes([byte ^ 0xFF]))  # every bit flipped: never a no-op
                    file.flush()
                    os.fsync(file.fileno())
                    file.seek(0)
                    after = _sha256_of(file)
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")  # nothing was written to the catalogue
        return before, after


def _sha256_of(file: IO[bytes]) -> str:
    """Digest of ``file`` from its current position to the end, read in chunks."""
    digest = hashlib.sha256()
    while chunk := file.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()
