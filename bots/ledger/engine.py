"""One SQLAlchemy engine per ledger URL, set up so that writers wait for each other.

SQLite: WAL (a reader can look while a run writes), a busy timeout (a second writer
waits instead of failing) and ``BEGIN IMMEDIATE`` (a transaction that reads and then
writes takes the write lock up front). PostgreSQL needs nothing here: its row locks and
compare-and-set updates do the same, and migrations take an advisory lock.

Any dialect: an error that says the machine or the database cannot keep a write (a
read-only ledger, a full disk, an I/O error, a ledger that cannot be opened or reached,
and any ``OperationalError`` met while writing) becomes ``MachineFailure``: the run
stops at once with the system exit code and the cause, never a traceback.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.exc import InternalError, OperationalError

from ..errors import MachineFailure

# What the database says, and the cause to name (SQLite's words, then PostgreSQL's).
MACHINE_CAUSES = (
    ("readonly database", "the ledger is read-only"),
    ("read-only", "the ledger is read-only"),
    ("database or disk is full", "the disk is full"),
    ("no space left", "the disk is full"),
    ("disk i/o error", "a disk I/O error"),
    ("unable to open database file", "the ledger's file cannot be opened (its folder gone?)"),
    ("could not extend file", "the disk is full"),
)
# Statements that read; anything else (and a COMMIT, which has no statement) writes.
READS = ("select", "pragma", "with", "explain")


def connect(url: str) -> Engine:
    """The ledger's engine for ``url`` (no connection is made yet)."""
    engine = create_engine(url)
    parsed = make_url(url)
    shown = parsed.database or url if parsed.get_backend_name() == "sqlite" else str(parsed)
    event.listen(engine, "handle_error", lambda context: _machine(context, shown))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def begins_immediate(engine: Engine) -> bool:
    """Whether ``engine``'s SQLite transactions take the write lock as they begin."""
    return event.contains(engine, "begin", _sqlite_begin)


def _machine(context: ExceptionContext, shown: str) -> None:
    """Raise ``MachineFailure`` for an error the machine or the database caused."""
    error = context.sqlalchemy_exception
    if not isinstance(error, (OperationalError, InternalError)):
        return
    text = str(context.original_exception).lower()
    cause = next((why for said, why in MACHINE_CAUSES if said in text), None)
    statement = (context.statement or "").lstrip().lower()
    writing = not statement.startswith(READS)
    if cause is None and not (writing and isinstance(error, OperationalError)):
        return
    said = str(context.original_exception).strip().splitlines()[0]
    raise MachineFailure(
        f"the ledger {shown} cannot keep what the run writes: "
        f"{cause or 'the database refused a write'} ({said})"
    ) from error


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets a reader (reconciliation, a person with sqlite3) look while a run writes;
    # the busy timeout makes a second writer wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    # Switching a new database to WAL needs it to itself, and SQLite answers "locked" at
    # once (no busy handler) while another connection is in a transaction: two
    # processes upgrading one new ledger met that. Wait for it, as for any writer.
    deadline = time.monotonic() + 30
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()
    # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's documented
    # remedy is to switch it off and emit BEGIN ourselves (see _sqlite_begin).
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a transaction that reads and then writes
    # cannot fail half-way with SQLITE_BUSY when another writer got there first.
    conn.exec_driver_sql("BEGIN IMMEDIATE")
