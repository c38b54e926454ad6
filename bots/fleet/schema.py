"""The queue's schema in the fleet's database: Procrastinate's tables, applied and upgraded
by the one migrate command (`runner.py ledger upgrade` with FLEET_DATABASE_URL set), and
the fleet's own two tables beside them.

Procrastinate keeps no record of its schema's version (since 3.0) and its
``schema.sql`` is for an empty database only (applied twice it fails), so we keep the
record: ``fleet_queue_schema``, one row per change (the Procrastinate version it brought
the schema to, what was applied, when). On a later pinned Procrastinate the migration
files it ships (``procrastinate schema --migrations-path``, named
``xx.yy.zz_NN_{pre|post}_*.sql``, ``xx.yy.zz`` the version they lead to) between the
recorded and the installed version are applied in name order, in one transaction (a
failing one leaves the schema as it was). A schema newer than the installed
Procrastinate, or present with no record, is refused: nothing is changed.

``fleet_job_stalls`` counts, per job, how often its worker died while running it (the
sweeper's count: Procrastinate's ``attempts`` also counts ordinary retries). A job's row
goes with the job.

``migrate`` holds one advisory lock (per database and schema) around the ledger's
upgrade and the queue's, so machines upgrading at once apply each change once: the
second finds it done.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import procrastinate
import psycopg
from packaging.version import Version
from procrastinate.schema import SchemaManager

from ..dburls import libpq_conninfo
from ..errors import UsageError

VERSIONS_TABLE = "fleet_queue_schema"
STALLS_TABLE = "fleet_job_stalls"
UPGRADE_COMMAND = "runner.py ledger upgrade"

_OWN_TABLES = f"""
CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (
    id serial PRIMARY KEY,
    procrastinate_version text NOT NULL,
    applied text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {STALLS_TABLE} (
    job_id bigint PRIMARY KEY REFERENCES procrastinate_jobs (id) ON DELETE CASCADE,
    stalls integer NOT NULL,
    last_worker_id bigint,
    last_stalled_at timestamptz NOT NULL
);
"""

_MIGRATION = re.compile(r"^(\d+)\.(\d+)\.(\d+)_(\d+)_.*\.sql$")
# One lock per database and schema: fleets in other schemas of the server do not wait.
_LOCK = (
    "SELECT pg_advisory_{}(hashtext('rpa-fleet fleet schema ' || coalesce(current_schema(), '')))"
)


class QueueSchemaError(UsageError):
    """The queue's schema is not one this code can use or upgrade; nothing was changed."""


@dataclass(frozen=True)
class QueueUpgrade:
    """What ``upgrade_queue`` found and did: ``before`` None when there was no queue
    schema; ``applied`` empty when there was nothing to do."""

    before: str | None
    after: str
    applied: tuple[str, ...]

    def describe(self) -> str:
        if not self.applied and self.before == self.after:
            return f"at Procrastinate {self.after}'s schema already; nothing to do"
        if self.before is None:
            return f"created (Procrastinate {self.after}'s schema.sql)"
        what = ", ".join(self.applied) if self.applied else "no migration between them"
        return f"upgraded from Procrastinate {self.before} to {self.after} ({what})"


def installed_version() -> str:
    return str(procrastinate.__version__)


def migrations_between(directory: Path, before: str, after: str) -> list[Path]:
    """The migration files that lead from Procrastinate ``before`` to ``after``, in the
    order to apply them (pre before post: their serial numbers say so)."""
    low, high = Version(before), Version(after)
    chosen = []
    for path in directory.glob("*.sql"):
        found = _MIGRATION.match(path.name)
        if found is None:
            continue
        version = Version(".".join(str(int(part)) for part in found.group(1, 2, 3)))
        if low < version <= high:
            chosen.append(path)
    return sorted(chosen, key=lambda path: path.name)


def recorded_version(conn: psycopg.Connection) -> str | None:
    """The Procrastinate version the queue's schema was last brought to; None when there
    is no queue schema. A schema with no record is refused (QueueSchemaError)."""
    has_jobs, has_record = conn.execute(
        "SELECT to_regclass('procrastinate_jobs') IS NOT NULL, "
        f"to_regclass('{VERSIONS_TABLE}') IS NOT NULL"
    ).fetchone() or (False, False)
    row = None
    if has_record:
        row = conn.execute(
            f"SELECT procrastinate_version FROM {VERSIONS_TABLE} ORDER BY id DESC LIMIT 1"
        ).fetchone()
    if row is not None:
        return str(row[0])
    if has_jobs:
        raise QueueSchemaError(
            "the database holds a Procrastinate schema that rpa-fleet did not apply (no row "
            f"in {VERSIONS_TABLE}), so its version is unknown and it was left as it is. If "
            f"it is Procrastinate {installed_version()}'s, record that: "
            f"CREATE TABLE {VERSIONS_TABLE} (id serial PRIMARY KEY, procrastinate_version "
            "text NOT NULL, applied text NOT NULL, applied_at timestamptz NOT NULL DEFAULT "
            f"now()); INSERT INTO {VERSIONS_TABLE} (procrastinate_version, applied) VALUES "
            f"('{installed_version()}', 'by hand'); then run `{UPGRADE_COMMAND}` again"
        )
    return None


def upgrade_queue(
    conn: psycopg.Connection,
    *,
    installed: str | None = None,
    migrations_dir: Path | None = None,
) -> QueueUpgrade:
    """Bring the queue's schema to the installed Procrastinate, in one transaction on
    ``conn`` (a connection in no transaction). ``installed`` and ``migrations_dir`` are
    for tests: the installed Procrastinate's by default."""
    target = installed or installed_version()
    directory = migrations_dir or Path(SchemaManager.get_migrations_path())
    with conn.transaction():
        before = recorded_version(conn)
        if before is None:
            # schema.sql has no placeholders; without parameters psycopg sends it as is
            conn.execute(SchemaManager.get_schema().encode())
            applied: tuple[str, ...] = ("schema.sql",)
        elif Version(before) > Version(target):
            raise QueueSchemaError(
                f"the queue's schema is at Procrastinate {before}, newer than the one "
                f"installed here ({target}): a newer rpa-fleet upgraded it. Install that "
                "version here; the schema was left as it is."
            )
        elif before == target:
            applied = ()
        else:
            files = migrations_between(directory, before, target)
            for path in files:
                conn.execute(path.read_bytes())
            applied = tuple(path.name for path in files)
        conn.execute(_OWN_TABLES.encode())
        if before != target:
            conn.execute(
                f"INSERT INTO {VERSIONS_TABLE} (procrastinate_version, applied) VALUES (%s, %s)",
                (target, ", ".join(applied) or "no migration files"),
            )
    return QueueUpgrade(before, target, applied)


def check_queue(fleet_url: str) -> str:
    """The queue schema's version when it is the installed Procrastinate's (a worker or a
    deferring command checks this first); otherwise QueueSchemaError saying what to run."""
    with connect(fleet_url) as conn:
        found = recorded_version(conn)
    if found != installed_version():
        what = "has no queue schema" if found is None else f"has Procrastinate {found}'s"
        raise QueueSchemaError(
            f"the fleet's database {what}; this rpa-fleet uses Procrastinate "
            f"{installed_version()}. Run `{UPGRADE_COMMAND}` (with FLEET_DATABASE_URL set) first."
        )
    return found


T = TypeVar("T")


def migrate(
    fleet_url: str,
    upgrade_ledger: Callable[[], T],
    *,
    installed: str | None = None,
    migrations_dir: Path | None = None,
) -> tuple[T, QueueUpgrade]:
    """The ledger's upgrade (``upgrade_ledger``, e.g. ``Ledger.upgrade``) and then the
    queue's, both under one advisory lock held on a connection of its own: two machines
    upgrading at once take turns, and the second finds both done."""
    with connect(fleet_url, autocommit=True) as conn:
        conn.execute(_LOCK.format("lock"))
        try:
            ledger = upgrade_ledger()
            queue = upgrade_queue(conn, installed=installed, migrations_dir=migrations_dir)
        finally:
            conn.execute(_LOCK.format("unlock"))
    return ledger, queue


def connect(fleet_url: str, *, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(libpq_conninfo(fleet_url), autocommit=autocommit)
