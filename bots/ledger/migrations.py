"""The ledger's schema version, and the ordered steps that bring any ledger up to it.

Nothing creates or alters tables as a side effect of connecting any more: the commands
that write call ``upgrade`` once (through ``Ledger.open``), and the ones that only read
are refused with what to run when the ledger is behind. A ledger newer than this code is
refused by both, untouched.

The table ``ledger_version`` holds one row per step applied. A ledger written before
versions existed (tables, no ``ledger_version``) is at version 0, as is an empty
database: every step is written so that it also brings such a ledger up (step 1 creates
only the tables missing, step 2 adds only the columns missing).

Two processes may upgrade at once: the steps run in one transaction that holds the
ledger's write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level
advisory lock), and re-read the version once they hold it. Both databases roll DDL back
with the transaction, so a step that fails leaves the ledger at its version before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection

from ..errors import UsageError
from . import rows, schema
from .engine import begins_immediate

ledger_version = Table(
    "ledger_version",
    MetaData(),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("step", Text, nullable=False),  # what the step did, for a person reading it
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

UPGRADE_COMMAND = "runner.py ledger upgrade"


class LedgerVersionError(UsageError):
    """The ledger's schema is not the one this code reads: behind (upgrade it) or ahead
    (upgrade the bot). Nothing was changed."""


@dataclass(frozen=True)
class Step:
    version: int
    does: str
    apply: Callable[[Connection, Path], None]  # (connection, this machine's staging root)


@dataclass(frozen=True)
class Upgrade:
    """What ``upgrade`` found and left: equal when there was nothing to do."""

    before: int
    after: int


# Each step gets the connection (in the upgrade's transaction) and this machine's root.


def _create_tables(conn: Connection, _root: Path) -> None:
    # checkfirst: a ledger from before versions already has some of them.
    schema.metadata.create_all(conn, checkfirst=True)


def _add_missing_columns(conn: Connection, _root: Path) -> None:
    """Ledgers written before versions existed gain the columns added since (nullable).

    Step 1 creates the tables as ``schema`` declares them today, so a column added to
    ``schema`` later must come with a step that, like this one, skips it when present.
    """
    inspector = inspect(conn)  # on this connection: a second one would wait for our lock
    for table in schema.TABLES:
        if not inspector.has_table(table.name):
            continue  # a table added later: the step that adds it creates it whole
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


def _relative_staged_paths(conn: Connection, root: Path) -> None:
    """Staged paths under this machine's staging root become relative to it (see
    ``rows``); others (another root, another machine) are kept, and read as they are."""
    documents = schema.documents
    found = conn.execute(
        select(documents.c.id, documents.c.staged_path).where(documents.c.staged_path.is_not(None))
    )
    for row_id, stored in list(found):
        relative = rows.relative_if_under(root, stored)
        if relative is not None:
            conn.execute(
                update(documents).where(documents.c.id == row_id).values(staged_path=relative)
            )


def _sizes_in_64_bits(conn: Connection, _root: Path) -> None:
    """File sizes as 64-bit integers. PostgreSQL ledgers created before had INTEGER, which
    refuses a file of 2 GiB or more; SQLite's INTEGER is 64-bit already."""
    if conn.dialect.name != "postgresql":
        return
    inspector = inspect(conn)
    for table in (schema.documents, schema.inventory):
        kinds = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
        if not isinstance(kinds["size"], BigInteger):
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ALTER COLUMN size TYPE BIGINT")


def _reference_codes_per_archive(conn: Connection, _root: Path) -> None:
    """Reference codes are unique within the archive that assigned them, not the whole
    ledger: documents record that archive (``archive_system``, the recipe's archive
    `system` name) beside the code, with an index to look holders up by both. Documents
    already uploaded get it from their ingestion event, which names the system that gave
    the id; those without one keep NULL (read as "this recipe's archive")."""
    documents, events = schema.documents, schema.events
    inspector = inspect(conn)
    present = {c["name"] for c in inspector.get_columns(documents.name)}
    if "archive_system" not in present:  # a ledger from before versions got it in step 2
        kind = documents.c.archive_system.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f'ALTER TABLE {documents.name} ADD COLUMN "archive_system" {kind}')
    index = next(i for i in documents.indexes if i.name == "ix_documents_archive_reference")
    if index.name not in {i["name"] for i in inspector.get_indexes(documents.name)}:
        index.create(conn)
    # Which system gave which id, as each ingestion event recorded it (newest last).
    gave: dict[tuple[str, str, str], str] = {}
    found = conn.execute(
        select(events.c.recipe, events.c.source_key, events.c.detail)
        .where(events.c.event_type == "ingestion")
        .order_by(events.c.id)
    )
    for recipe, key, stored in found:
        detail = _json_object(stored)
        archive_id, system = detail.get("archive_id"), detail.get("system")
        if isinstance(archive_id, str) and isinstance(system, str) and system:
            gave[(recipe, key, archive_id)] = system
    held = conn.execute(
        select(
            documents.c.id, documents.c.recipe, documents.c.source_key, documents.c.archive_id
        ).where(documents.c.archive_id.is_not(None), documents.c.archive_system.is_(None))
    )
    by_system: dict[str, list[int]] = {}
    for row_id, recipe, key, archive_id in list(held):
        system = gave.get((recipe, key, archive_id))
        if system is not None:
            by_system.setdefault(system, []).append(row_id)
    for system, ids in by_system.items():
        for start in range(0, len(ids), 500):  # bounded IN lists
            conn.execute(
                update(documents)
                .where(documents.c.id.in_(ids[start : start + 500]))
                .values(archive_system=system)
            )


def _json_object(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


STEPS: tuple[Step, ...] = (
    Step(1, "create the tables", _create_tables),
    Step(2, "add the columns ledgers from before versions lack", _add_missing_columns),
    Step(3, "store staged paths relative to the staging root", _relative_staged_paths),
    Step(4, "file sizes as 64-bit integers", _sizes_in_64_bits),
    # The columns are nullable: step 2's "add what is missing" does exactly this.
    Step(5, "documents remember their listing and detail fields", _add_missing_columns),
    Step(6, "reference codes unique per archive system", _reference_codes_per_archive),
    # Creating only what is missing: step 1 on a new ledger has made them already.
    Step(7, "schedule state and decisions", _create_tables),
    Step(8, "leases and session slots for workers on several machines", _create_tables),
    # Nullable columns again: runs closed before keep NULL (verified by their index only).
    Step(9, "runs record their log's chain as it closed", _add_missing_columns),
)
LATEST = STEPS[-1].version
assert [s.version for s in STEPS] == list(range(1, LATEST + 1)), "steps are numbered 1, 2, ..."


def current_version(engine: Engine) -> int:
    """The ledger's version: 0 for an empty database or one from before versions."""
    with engine.connect() as conn:
        return _version(conn)


def check(engine: Engine) -> int:
    """The ledger's version when it is the one this code reads; else LedgerVersionError."""
    found = current_version(engine)
    _refuse_newer(engine, found)
    if found < LATEST:
        with engine.connect() as conn:
            empty = not inspect(conn).has_table(schema.documents.name)
        what = (
            "is empty (no tables yet)"
            if empty
            else "was written by an older rpa-fleet (before ledger versions)"
            if found == 0
            else f"is at version {found}"
        )
        raise LedgerVersionError(
            f"the ledger {_name(engine)} {what}; this rpa-fleet reads version {LATEST}. "
            f"Run `{UPGRADE_COMMAND}` (or any capture run, which upgrades it) first."
        )
    return found


def upgrade(engine: Engine, staging_root: Path) -> Upgrade:
    """Bring the ledger up to ``LATEST``: idempotent, one cheap read when it is current,
    safe when several processes run it at once. ``engine`` comes from
    ``bots.ledger.engine.connect`` (on SQLite its transactions take the write lock);
    ``staging_root`` is this machine's staging folder (``Ledger.staging_root``)."""
    before = current_version(engine)
    _refuse_newer(engine, before)
    if before == LATEST:
        return Upgrade(before, before)
    with engine.begin() as conn:
        _lock(conn)
        before = _version(conn)  # another process may have upgraded while we waited
        ledger_version.create(conn, checkfirst=True)
        _refuse_newer(engine, before)
        for step in STEPS[before:]:
            step.apply(conn, Path(os.path.abspath(staging_root)))
            conn.execute(
                insert(ledger_version).values(
                    version=step.version, step=step.does, applied_at=datetime.now().astimezone()
                )
            )
    return Upgrade(before, LATEST)


def _version(conn: Connection) -> int:
    if not inspect(conn).has_table(ledger_version.name):
        return 0
    return int(conn.execute(select(func.max(ledger_version.c.version))).scalar() or 0)


def _lock(conn: Connection) -> None:
    """Hold the ledger's write lock until this transaction ends."""
    if conn.dialect.name == "sqlite":
        # Our engines begin every transaction IMMEDIATE (bots.ledger.engine): held already.
        if not begins_immediate(conn.engine):
            raise ValueError("upgrade needs an engine from bots.ledger.engine.connect")
    elif conn.dialect.name == "postgresql":
        # One lock per schema, so ledgers in other schemas of the server do not wait.
        conn.execute(
            text(
                "SELECT pg_advisory_xact_lock("
                "hashtext('rpa-fleet ledger ' || coalesce(current_schema(), '')))"
            )
        )


def _refuse_newer(engine: Engine, found: int) -> None:
    if found > LATEST:
        raise LedgerVersionError(
            f"the ledger {_name(engine)} is at version {found}, newer than this rpa-fleet "
            f"knows (up to version {LATEST}): a newer rpa-fleet wrote it. Install that "
            "version here; the ledger was left as it is."
        )


def _name(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
