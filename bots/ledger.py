"""The ledger: the truth about each document, one row per (recipe, source key).

States move forward only: listed → downloaded → uploading → uploaded → confirmed, or to
failed. ``uploading`` is written *before* the upload is submitted: a document found in it
(or failed from it) may or may not be in the archive, and is looked up there before any
new upload. Each change is one transaction that also checks the state it starts from, so
two writers can never both advance the same document. SQLite by default; any SQLAlchemy
URL (PostgreSQL) works the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from .errors import FleetError


class State(StrEnum):
    LISTED = "listed"
    DOWNLOADED = "downloaded"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    CONFIRMED = "confirmed"
    FAILED = "failed"


# Where each state may go next. FAILED may resume at any stage whose effect is already
# recorded (a file that was downloaded need not be fetched again).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.LISTED: frozenset({State.DOWNLOADED, State.FAILED}),
    State.DOWNLOADED: frozenset({State.DOWNLOADED, State.UPLOADING, State.FAILED}),
    State.UPLOADING: frozenset({State.UPLOADED, State.FAILED}),
    State.UPLOADED: frozenset({State.CONFIRMED, State.FAILED}),
    State.FAILED: frozenset(
        {State.DOWNLOADED, State.UPLOADING, State.UPLOADED, State.CONFIRMED, State.FAILED}
    ),
    State.CONFIRMED: frozenset(),
}


class FailureKind(StrEnum):
    BUSINESS = "business"  # bad data or a refusal: not retried until the recipe changes
    SYSTEM = "system"  # retries ran out: the next run tries again


# What must be known before a document may be in a state.
REQUIRED: dict[State, tuple[str, ...]] = {
    State.DOWNLOADED: ("sha256", "size", "staged_path"),
    State.UPLOADED: ("archive_id",),
    State.CONFIRMED: ("archive_id",),
    State.FAILED: ("last_error", "failure_kind", "failed_stage"),
}

metadata_obj = MetaData()

documents = Table(
    "documents",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipe", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("title", Text),
    Column("listing", Text, nullable=False),  # the listing row as seen, JSON
    Column("filename", Text),
    Column("staged_path", Text),
    Column("sha256", String(64)),
    Column("size", Integer),
    Column("item_metadata", Text),  # JSON, as sent to the archive
    Column("archive_id", String(128)),
    Column("reference_code", String(128)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("failure_kind", String(16)),
    Column("failed_stage", String(16)),  # the state it failed from
    Column("failed_recipe_digest", String(64)),  # which recipe version refused it
    Column("source_filename", Text),  # the name the source sent, before it was made safe
    Column("file_format", String(32)),  # sniffed from the bytes: "PDF 1.4", "XLSX", "CSV"
    Column("last_run_id", String(64)),
    # A reviewer asked for it to be captured again (runner.py apply-review): the next run
    # takes it even when its source no longer lists it. Cleared when it is confirmed.
    Column("recapture_requested_at", DateTime(timezone=True)),
    Column("listed_at", DateTime(timezone=True), nullable=False),
    Column("downloaded_at", DateTime(timezone=True)),
    Column("uploaded_at", DateTime(timezone=True)),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("recipe", "source_key", name="uq_documents_recipe_key"),
)

runs = Table(
    "runs",
    metadata_obj,
    Column("run_id", String(64), primary_key=True),
    Column("recipe", String(64), nullable=False),
    Column("recipe_digest", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("user", String(255), nullable=False),
    Column("bot_version", String(32), nullable=False),
    Column("log_path", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("outcome", String(32)),
    Column("counts", Text),  # JSON
    Column("action", String(16)),  # "capture" or "inventory" (NULL: capture, older ledgers)
)

# The four-property checks, one row per document, run and check (bots.archival.checks).
checks = Table(
    "checks",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipe", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("property", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
)

# PREMIS-style events (capture, message digest calculation, ...), one row per event.
events = Table(
    "events",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("recipe", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("agent", Text, nullable=False),  # "rpa-fleet 0.1.0 on host"
    Column("evidence_path", Text),  # a screenshot under logs/evidence
    Column("evidence_sha256", String(64)),
)

# What the archive said it held, per inventory run (bots.capture, action "inventory").
inventory = Table(
    "inventory",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),  # the inventory run: one snapshot
    Column("recipe", String(64), nullable=False),
    Column("archive_id", String(128), nullable=False),
    Column("reference_code", String(128)),
    Column("title", Text),
    Column("size", Integer),
    Column("sha256", String(64)),  # read back with --fixity; NULL when not read
    Column("ingested_at", Text),  # as the archive shows it
    Column("taken_at", DateTime(timezone=True), nullable=False),
)


# What each run's listing showed, one row per run and key: the ledger's documents keep
# only the first sighting, and reconciliation's source listing is "what each run saw".
sightings = Table(
    "sightings",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("recipe", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("listing", Text, nullable=False),  # the row as this run saw it, JSON
    Column("seen_at", DateTime(timezone=True), nullable=False),
)

# A reviewer's decision on one reconciliation row (runner.py apply-review), applied or not.
reviews = Table(
    "reviews",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("review_id", String(64), nullable=False),  # one apply-review: its run log's id
    Column("recipe", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("archive_id", String(128)),  # as the workbook row showed it
    Column("result", String(16), nullable=False),  # the row's result code (缺失, ...)
    Column("action", String(16), nullable=False),  # recapture / ignore
    Column("owner", Text),  # the reviewer, as typed in the owner column
    Column("note", Text),
    Column("outcome", String(16), nullable=False),  # applied / refused / unchanged
    Column("reason", Text, nullable=False),
    Column("workbook", Text, nullable=False),
    Column("workbook_sha256", String(64), nullable=False),
    Column("decided_by", Text, nullable=False),  # user@host who applied the workbook
    Column("decided_at", DateTime(timezone=True), nullable=False),
)


class LedgerError(FleetError):
    """A state change the ledger refuses: the caller's idea of the document is stale."""


@dataclass(frozen=True)
class Document:
    """One document as the ledger knows it."""

    recipe: str
    source_key: str
    state: State
    title: str | None
    listing: dict[str, Any]
    filename: str | None
    staged_path: str | None
    sha256: str | None
    size: int | None
    item_metadata: dict[str, Any] | None
    archive_id: str | None
    reference_code: str | None
    attempts: int
    last_error: str | None
    failure_kind: FailureKind | None = None
    failed_stage: State | None = None
    failed_recipe_digest: str | None = None
    source_filename: str | None = None
    file_format: str | None = None

    @property
    def upload_uncertain(self) -> bool:
        """The upload may have gone through: look in the archive before uploading."""
        return self.state is State.UPLOADING or (
            self.state is State.FAILED and self.failed_stage is State.UPLOADING
        )

    @classmethod
    def from_row(cls, row: RowMapping) -> Document:
        return cls(
            recipe=row["recipe"],
            source_key=row["source_key"],
            state=State(row["state"]),
            title=row["title"],
            listing=json.loads(row["listing"]),
            filename=row["filename"],
            staged_path=row["staged_path"],
            sha256=row["sha256"],
            size=row["size"],
            item_metadata=json.loads(row["item_metadata"]) if row["item_metadata"] else None,
            archive_id=row["archive_id"],
            reference_code=row["reference_code"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            failure_kind=FailureKind(row["failure_kind"]) if row["failure_kind"] else None,
            failed_stage=State(row["failed_stage"]) if row["failed_stage"] else None,
            failed_recipe_digest=row["failed_recipe_digest"],
            source_filename=row["source_filename"],
            file_format=row["file_format"],
        )


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets a reader (reconciliation, a person with sqlite3) look while a run writes;
    # the busy timeout makes a second writer wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's documented
    # remedy is to switch it off and emit BEGIN ourselves (see _sqlite_begin).
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a transaction that reads and then writes
    # cannot fail half-way with SQLITE_BUSY when another writer got there first.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Ledger:
    """Read and advance documents and runs. ``clock`` returns an aware datetime."""

    def __init__(self, url: str, clock: Callable[[], datetime]) -> None:
        self.url = url
        self._clock = clock
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        metadata_obj.create_all(self.engine)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Ledgers written by an older version gain the newer (nullable) columns."""
        with self.engine.begin() as conn:
            inspector = inspect(conn)  # on this connection: a second one would wait for our lock
            for table in (documents, runs, checks, events, inventory, sightings, reviews):
                present = {c["name"] for c in inspector.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in present and column.nullable:
                        kind = column.type.compile(dialect=self.engine.dialect)
                        conn.exec_driver_sql(
                            f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'
                        )

    def close(self) -> None:
        self.engine.dispose()

    # -- documents -------------------------------------------------------------

    def get(self, recipe: str, key: str) -> Document | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(documents).where(
                        documents.c.recipe == recipe, documents.c.source_key == key
                    )
                )
                .mappings()
                .first()
            )
        return Document.from_row(row) if row else None

    def documents(self, recipe: str, states: set[State] | None = None) -> list[Document]:
        query = select(documents).where(documents.c.recipe == recipe).order_by(documents.c.id)
        if states:
            query = query.where(documents.c.state.in_([s.value for s in states]))
        with self.engine.connect() as conn:
            return [Document.from_row(r) for r in conn.execute(query).mappings()]

    def record_listed(self, recipe: str, key: str, row: dict[str, Any], run_id: str) -> Document:
        """Add a newly listed document, or return the one already known (unchanged)."""
        now = self._clock()
        with self.engine.begin() as conn:
            existing = self._fetch(conn, recipe, key)
            if existing is not None:
                return existing
            try:
                # A savepoint: on PostgreSQL a failed INSERT would otherwise abort the
                # whole transaction, and the read below with it.
                with conn.begin_nested():
                    conn.execute(
                        insert(documents).values(
                            recipe=recipe,
                            source_key=key,
                            state=State.LISTED.value,
                            title=row.get("title"),
                            listing=json.dumps(row, ensure_ascii=False, sort_keys=True),
                            attempts=0,
                            last_run_id=run_id,
                            listed_at=now,
                            updated_at=now,
                        )
                    )
            except IntegrityError:
                # Another writer listed it between our read and insert: theirs stands.
                pass
            found = self._fetch(conn, recipe, key)
            assert found is not None
            return found

    def advance(self, doc: Document, to: State, run_id: str, **fields: Any) -> Document:
        """Move ``doc`` to ``to``, recording ``fields``, only if it is still in ``doc.state``."""
        if to not in TRANSITIONS[doc.state]:
            raise LedgerError(
                f"document {doc.source_key!r} of recipe {doc.recipe!r} cannot go from "
                f"{doc.state} to {to}"
            )
        merged = {**doc.__dict__, **fields}
        missing = [name for name in REQUIRED.get(to, ()) if merged.get(name) in (None, "")]
        if missing:
            raise LedgerError(
                f"document {doc.source_key!r} cannot be {to} without {', '.join(missing)}"
            )
        now = self._clock()
        values: dict[str, Any] = {
            "state": to.value,
            "updated_at": now,
            "last_run_id": run_id,
            **{k: v for k, v in fields.items() if k != "item_metadata"},
        }
        if "item_metadata" in fields:
            values["item_metadata"] = json.dumps(fields["item_metadata"], ensure_ascii=False)
        for name in ("failure_kind", "failed_stage"):
            if isinstance(values.get(name), StrEnum):
                values[name] = values[name].value
        if to is not State.FAILED:
            values.update(
                last_error=None, failure_kind=None, failed_stage=None, failed_recipe_digest=None
            )
            if to is not State.UPLOADING:
                values[f"{to.value}_at"] = now
            if to is State.CONFIRMED:
                values["recapture_requested_at"] = None
        with self.engine.begin() as conn:
            result = conn.execute(
                update(documents)
                .where(
                    documents.c.recipe == doc.recipe,
                    documents.c.source_key == doc.source_key,
                    documents.c.state == doc.state.value,
                )
                .values(**values)
            )
            if result.rowcount != 1:
                raise LedgerError(
                    f"document {doc.source_key!r} of recipe {doc.recipe!r} changed under us "
                    f"(expected state {doc.state})"
                )
            found = self._fetch(conn, doc.recipe, doc.source_key)
        assert found is not None
        return found

    def release_held(self, recipe: str, keys: list[str]) -> list[str]:
        """Let the next run retry documents held after a business failure."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(documents)
                .where(
                    documents.c.recipe == recipe,
                    documents.c.source_key.in_(keys),
                    documents.c.state == State.FAILED.value,
                )
                .values(failed_recipe_digest=None, updated_at=self._clock())
            )
            released = [
                r.source_key
                for r in conn.execute(
                    select(documents.c.source_key).where(
                        documents.c.recipe == recipe,
                        documents.c.source_key.in_(keys),
                        documents.c.state == State.FAILED.value,
                    )
                )
            ]
        assert result.rowcount == len(released)
        return released

    def reopen(self, doc: Document, run_id: str) -> Document:
        """Undo a confirmation the archive no longer bears out (its item is gone): the
        document goes back to downloaded, without its archive id and reference code, and
        the next run uploads it again, even when its source no longer lists it.

        Only ``runner.py apply-review`` calls this, for a row a reviewer marked
        ``recapture`` after the archive's inventory showed the item missing; what the
        document was archived as is in that review's record and event.
        """
        if doc.state is not State.CONFIRMED:
            raise LedgerError(
                f"document {doc.source_key!r} of recipe {doc.recipe!r} is {doc.state}, "
                "not confirmed: there is nothing to reopen"
            )
        now = self._clock()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(documents)
                .where(
                    documents.c.recipe == doc.recipe,
                    documents.c.source_key == doc.source_key,
                    documents.c.state == State.CONFIRMED.value,
                    documents.c.archive_id == doc.archive_id,
                )
                .values(
                    state=State.DOWNLOADED.value,
                    archive_id=None,
                    reference_code=None,
                    uploaded_at=None,
                    confirmed_at=None,
                    recapture_requested_at=now,
                    last_run_id=run_id,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                raise LedgerError(
                    f"document {doc.source_key!r} of recipe {doc.recipe!r} changed under us"
                )
            found = self._fetch(conn, doc.recipe, doc.source_key)
        assert found is not None
        return found

    def recaptures(self, recipe: str) -> list[Document]:
        """Documents a reviewer asked to capture again that are not confirmed yet."""
        query = (
            select(documents)
            .where(
                documents.c.recipe == recipe,
                documents.c.recapture_requested_at.is_not(None),
                documents.c.state != State.CONFIRMED.value,
            )
            .order_by(documents.c.id)
        )
        with self.engine.connect() as conn:
            return [Document.from_row(r) for r in conn.execute(query).mappings()]

    def count_attempt(self, doc: Document) -> Document:
        """Record that one more attempt at this document has started."""
        with self.engine.begin() as conn:
            conn.execute(
                update(documents)
                .where(documents.c.recipe == doc.recipe, documents.c.source_key == doc.source_key)
                .values(attempts=documents.c.attempts + 1, updated_at=self._clock())
            )
            found = self._fetch(conn, doc.recipe, doc.source_key)
        assert found is not None
        return found

    def state_counts(self, recipe: str) -> dict[str, int]:
        query = (
            select(documents.c.state, func.count())
            .where(documents.c.recipe == recipe)
            .group_by(documents.c.state)
        )
        with self.engine.connect() as conn:
            return {state: n for state, n in conn.execute(query)}

    def captured(
        self,
        *,
        run_id: str | None = None,
        since: datetime | None = None,
        recipe: str | None = None,
    ) -> list[Document]:
        """Confirmed documents: those a run confirmed, or confirmed at or after ``since``.

        Confirmed is final, so a confirmed document's ``last_run_id`` is the run that
        confirmed it. A naive ``since`` is read in the ledger clock's zone.
        """
        if (run_id is None) == (since is None):
            raise ValueError("give exactly one of run_id and since")
        query = select(documents).where(documents.c.state == State.CONFIRMED.value)
        if run_id is not None:
            query = query.where(documents.c.last_run_id == run_id)
        if since is not None:
            # SQLite keeps only the wall time the clock gave (the offset is dropped), so
            # ``since`` is compared as a wall time in the clock's zone; on PostgreSQL the
            # conversion names the same instant and changes nothing.
            query = query.where(documents.c.confirmed_at >= self.wall_time(since))
        if recipe is not None:
            query = query.where(documents.c.recipe == recipe)
        query = query.order_by(documents.c.confirmed_at, documents.c.id)
        with self.engine.connect() as conn:
            return [Document.from_row(r) for r in conn.execute(query).mappings()]

    def now(self) -> datetime:
        """The ledger clock's time: what it stamps on every row."""
        return self._clock()

    @property
    def zone(self) -> tzinfo:
        """The zone the ledger's clock stamps times in."""
        now = self._clock()
        return now.tzinfo or now.astimezone().tzinfo or UTC

    def wall_time(self, when: datetime) -> datetime:
        """``when`` in the clock's zone (naive: read as a wall time there), for comparing
        with stored times: SQLite keeps only the wall time the clock gave."""
        zone = self.zone
        return when.replace(tzinfo=zone) if when.tzinfo is None else when.astimezone(zone)

    @staticmethod
    def _fetch(conn: Connection, recipe: str, key: str) -> Document | None:
        row = (
            conn.execute(
                select(documents).where(documents.c.recipe == recipe, documents.c.source_key == key)
            )
            .mappings()
            .first()
        )
        return Document.from_row(row) if row else None

    # -- runs --------------------------------------------------------------------

    def start_run(self, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(runs).values(started_at=self._clock(), **values))

    def finish_run(self, run_id: str, outcome: str, counts: dict[str, int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(ended_at=self._clock(), outcome=outcome, counts=json.dumps(counts))
            )

    def close_interrupted_runs(self, recipe: str, current_run: str) -> list[str]:
        """Runs of ``recipe`` that never finished (killed): mark them, return their ids.

        Called while holding the recipe's lock, so none of them can still be running.
        """
        with self.engine.begin() as conn:
            stale = [
                r.run_id
                for r in conn.execute(
                    select(runs.c.run_id).where(
                        runs.c.recipe == recipe,
                        runs.c.ended_at.is_(None),
                        runs.c.outcome.is_(None),
                        runs.c.run_id != current_run,
                    )
                )
            ]
            if stale:
                conn.execute(
                    update(runs).where(runs.c.run_id.in_(stale)).values(outcome="interrupted")
                )
        return stale

    def runs(self, recipe: str | None = None) -> Iterator[RowMapping]:
        query = select(runs).order_by(runs.c.started_at)
        if recipe:
            query = query.where(runs.c.recipe == recipe)
        with self.engine.connect() as conn:
            yield from conn.execute(query).mappings().all()

    # -- evidence ------------------------------------------------------------------

    def record_checks(
        self, recipe: str, key: str, run_id: str, results: list[dict[str, str]]
    ) -> None:
        """One row per check: ``property``, ``name``, ``outcome``, ``reason``."""
        if not results:
            return
        now = self._clock()
        with self.engine.begin() as conn:
            conn.execute(
                insert(checks),
                [
                    {"recipe": recipe, "source_key": key, "run_id": run_id, "checked_at": now, **r}
                    for r in results
                ],
            )

    def record_event(self, **values: Any) -> None:
        """A PREMIS-style event (see bots.archival.evidence)."""
        with self.engine.begin() as conn:
            conn.execute(insert(events).values(**values))

    def holder_of_reference(self, reference_code: str, but: tuple[str, str]) -> str | None:
        """The key of another document that holds ``reference_code``, if any."""
        query = select(documents.c.recipe, documents.c.source_key).where(
            documents.c.reference_code == reference_code
        )
        with self.engine.connect() as conn:
            for recipe, key in conn.execute(query):
                if (recipe, key) != but:
                    return f"{recipe}/{key}"
        return None

    def references(self, recipe: str) -> list[str]:
        """Reference codes of this recipe's confirmed documents."""
        query = select(documents.c.reference_code).where(
            documents.c.recipe == recipe,
            documents.c.state == State.CONFIRMED.value,
            documents.c.reference_code.is_not(None),
        )
        with self.engine.connect() as conn:
            return [code for (code,) in conn.execute(query)]

    # -- listings and reviews ------------------------------------------------------------

    def record_sightings(
        self, run_id: str, recipe: str, rows: list[tuple[str, dict[str, Any]]]
    ) -> None:
        """What one run's listing showed: (key, row) pairs, in the order seen."""
        if not rows:
            return
        now = self._clock()
        with self.engine.begin() as conn:
            conn.execute(
                insert(sightings),
                [
                    {
                        "run_id": run_id,
                        "recipe": recipe,
                        "source_key": key,
                        "listing": json.dumps(row, ensure_ascii=False, sort_keys=True),
                        "seen_at": now,
                    }
                    for key, row in rows
                ],
            )

    def record_review(self, **values: Any) -> None:
        """One reviewer decision (see ``reviews``); ``decided_at`` is now."""
        with self.engine.begin() as conn:
            conn.execute(insert(reviews).values(decided_at=self._clock(), **values))

    # -- archive inventory -----------------------------------------------------------

    def record_inventory(self, run_id: str, recipe: str, items: list[dict[str, Any]]) -> None:
        """One snapshot of what the archive holds (rows: archive_id, reference_code, ...)."""
        now = self._clock()
        with self.engine.begin() as conn:
            if items:
                conn.execute(
                    insert(inventory),
                    [{"run_id": run_id, "recipe": recipe, "taken_at": now, **i} for i in items],
                )
