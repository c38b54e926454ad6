"""The ledger's store: ``Ledger``, which reads documents and changes them, each change
one compare-and-set transaction.

Every document write expects the state, attempt count and archive id its caller saw,
so two writers (sessions, processes, machines) holding one snapshot never both land.
SQLite by default; any SQLAlchemy URL (PostgreSQL) works the same. The records beside
the documents (runs, checks, events, ...) are in ``records``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from . import migrations, rows, states
from .engine import connect
from .records import Records
from .schema import documents
from .states import Document, LedgerError, State, Transition


class Ledger(Records):
    """Read and advance documents and runs. ``clock`` returns an aware datetime.

    Making one connects to nothing and changes nothing: use ``Ledger.open``, which
    upgrades the schema (writers) or checks it is current (readers).
    """

    def __init__(self, url: str, clock: Callable[[], datetime], *, staging_root: Path) -> None:
        self.url = url
        self._clock = clock
        # Staged files are stored relative to it, and read back as paths under it.
        self.staging_root = Path(os.path.abspath(staging_root))
        self.engine: Engine = connect(url)

    @classmethod
    def open(
        cls,
        url: str,
        clock: Callable[[], datetime],
        *,
        staging_root: Path,
        migrate: bool = True,
    ) -> Ledger:
        """The ledger at ``url``, ready to use. ``migrate``: bring its schema up to date
        first (commands that write); otherwise refuse one that is behind, saying what to
        run (commands that only read). Either way one newer than this code is refused
        (``migrations.LedgerVersionError``, exit 2)."""
        ledger = cls(url, clock, staging_root=staging_root)
        try:
            if migrate:
                ledger.upgrade()
            else:
                migrations.check(ledger.engine)
        except BaseException:
            ledger.close()
            raise
        return ledger

    def upgrade(self) -> migrations.Upgrade:
        """Bring the schema up to date (see ``migrations.upgrade``)."""
        return migrations.upgrade(self.engine, self.staging_root)

    @property
    def name(self) -> str:
        """The ledger's URL without its password, to show."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def file(self) -> Path | None:
        """The SQLite ledger's file (None for another database, or a URI filename)."""
        url = self.engine.url
        database = url.database or ""
        if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
            return None
        if database.startswith("file:"):
            return None
        return Path(os.path.abspath(database))

    def copy_to(self, target: Path) -> None:
        """Write this SQLite ledger, as this process's open connection sees it, to
        ``target`` (SQLite's backup API). Through a connection already open, it reads a
        ledger whose file was removed under it; with none open it refuses, since a new
        connection would read whatever is at the path now."""
        if self.file is None or self.engine.pool.checkedin() == 0:  # type: ignore[attr-defined]
            raise LedgerError("no open connection to this ledger to copy it from")
        raw = self.engine.raw_connection()
        try:
            source = raw.driver_connection
            assert isinstance(source, sqlite3.Connection)
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            raw.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def version(self) -> int:
        """The schema's version; 0 before the first upgrade (or before versions)."""
        return migrations.current_version(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- documents -------------------------------------------------------------

    def get(self, recipe: str, key: str) -> Document | None:
        with self.engine.connect() as conn:
            return self._fetch(conn, recipe, key)

    def documents(self, recipe: str, states: set[State] | None = None) -> list[Document]:
        query = select(documents).where(documents.c.recipe == recipe).order_by(documents.c.id)
        if states:
            query = query.where(documents.c.state.in_([s.value for s in states]))
        with self.engine.connect() as conn:
            return [rows.document(r, self.staging_root) for r in conn.execute(query).mappings()]

    def record_listed(
        self,
        recipe: str,
        key: str,
        row: dict[str, Any],
        run_id: str,
        listing_name: str | None = None,
    ) -> Document:
        """Add a newly listed document, or return the one already known (unchanged).
        ``listing_name``: which of the recipe's `listings` showed it (None: `list`)."""
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
                            listing_name=listing_name,
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
        """Move ``doc`` forward to ``to``, recording ``fields``, only if it is still in
        ``doc.state`` (the forward transition into ``to``, see ``states.TABLE``)."""
        return self.apply(doc, states.forward(doc, to), run_id, **fields)

    def apply(
        self, doc: Document, transition: Transition, run_id: str | None, **fields: Any
    ) -> Document:
        """Take ``doc`` through ``transition``, recording ``fields``: one compare-and-set
        ``UPDATE`` that lands only if the document is still as ``doc`` shows it.
        ``run_id`` None (a command that is not a run, ``retry``) keeps ``last_run_id``."""
        transition.check(doc, fields)
        values = {
            **self._effects(transition),
            **({"last_run_id": run_id} if run_id is not None else {}),
            **rows.encode(fields, self.staging_root),
        }
        with self.engine.begin() as conn:
            self._compare_and_set(conn, doc, values)
            found = self._fetch(conn, doc.recipe, doc.source_key)
        assert found is not None
        return found

    def release_held(self, recipe: str, keys: list[str]) -> list[str]:
        """Let the next run retry documents held after a business failure (``RELEASED``);
        returns the keys released: those that are failed."""
        released = []
        with self.engine.begin() as conn:
            for key in keys:
                doc = self._fetch(conn, recipe, key)
                if doc is not None and states.RELEASED.allows(doc.state):
                    self._compare_and_set(conn, doc, self._effects(states.RELEASED))
                    released.append(key)
        return released

    def reopen(self, doc: Document, run_id: str) -> Document:
        """Undo a confirmation the archive no longer bears out (its item is gone): the
        document goes back to downloaded, without its archive id and reference code, and
        the next run uploads it again, even when its source no longer lists it.

        Only ``runner.py apply-review`` calls this, for a row a reviewer marked
        ``recapture`` after the archive's inventory showed the item missing; what the
        document was archived as is in that review's record and event.
        """
        if not states.REOPENED.allows(doc.state):
            raise LedgerError(
                f"document {doc.source_key!r} of recipe {doc.recipe!r} is {doc.state}, "
                "not confirmed: there is nothing to reopen"
            )
        return self.apply(doc, states.REOPENED, run_id)

    def _effects(self, transition: Transition) -> dict[str, Any]:
        """The columns ``transition`` sets whatever the caller records with it."""
        now = self._clock()
        values: dict[str, Any] = {"state": transition.to.value, "updated_at": now}
        values.update(dict.fromkeys(transition.clears))
        if transition.stamps:
            values[transition.stamps] = now
        return values

    @staticmethod
    def _compare_and_set(conn: Connection, doc: Document, values: dict[str, Any]) -> None:
        """Write ``values`` only if the row is still as ``doc`` shows it; else refuse."""
        result = conn.execute(
            update(documents)
            .where(
                documents.c.recipe == doc.recipe,
                documents.c.source_key == doc.source_key,
                documents.c.state == doc.state.value,
                # Attempts too: a state can repeat (downloaded → downloaded), an attempt
                # cannot, so two runs holding one snapshot never both write.
                documents.c.attempts == doc.attempts,
                # A reopen expects the archive id it saw: the same item, not a later one.
                documents.c.archive_id.is_(None)
                if doc.archive_id is None
                else documents.c.archive_id == doc.archive_id,
            )
            .values(**values)
        )
        if result.rowcount != 1:
            raise LedgerError(
                f"document {doc.source_key!r} of recipe {doc.recipe!r} changed under us "
                f"(expected state {doc.state}, attempt {doc.attempts})"
            )

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
            return [rows.document(r, self.staging_root) for r in conn.execute(query).mappings()]

    def count_attempt(self, doc: Document) -> Document:
        """Record that one more attempt at this document has started: the moment a run
        takes it. Compare-and-set like every change, so of two runs holding the same
        snapshot only one takes it; the other gets ``LedgerError``."""
        values = {"attempts": doc.attempts + 1, "updated_at": self._clock()}
        with self.engine.begin() as conn:
            self._compare_and_set(conn, doc, values)
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
            return [rows.document(r, self.staging_root) for r in conn.execute(query).mappings()]

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

    def _fetch(self, conn: Connection, recipe: str, key: str) -> Document | None:
        row = (
            conn.execute(
                select(documents).where(documents.c.recipe == recipe, documents.c.source_key == key)
            )
            .mappings()
            .first()
        )
        return rows.document(row, self.staging_root) if row else None

    def holder_of_reference(
        self, reference_code: str, but: tuple[str, str], archive_system: str
    ) -> str | None:
        """The key of another document that holds ``reference_code`` in the archive
        ``archive_system`` (a recipe's archive `system` name), if any.

        A reference code is unique within the archive that assigned it: two archives
        that share a fonds code each number their own items. A document whose archive is
        not recorded (uploaded before ledger version 5, with no ingestion event to tell)
        counts as its own recipe's, as ``but``'s recipe is ``archive_system``'s.
        """
        recipe = but[0]
        query = select(documents.c.recipe, documents.c.source_key).where(
            documents.c.reference_code == reference_code,
            or_(
                documents.c.archive_system == archive_system,
                and_(documents.c.archive_system.is_(None), documents.c.recipe == recipe),
            ),
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
