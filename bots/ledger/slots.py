"""Session slots: a fleet-wide cap on concurrent logged-in sessions per legacy system,
whatever the number of workers (a system that refuses its tenth login must never see it).

A worker takes a slot before it logs in and gives it back after it logs out; while the
session lives it beats the slot's heartbeat. A slot is a row of ``session_slots``:
``(system, slot)`` with its holder, the cap it was taken under and when it expires. A
SIGKILLed worker's slots expire after their time to live and count as free again; as with
leases, an expired slot is gone for its holder (``heartbeat`` raises ``SlotLost``) even
before anyone takes it, so a late heartbeat never pushes a system over its cap.

**Which cap, when callers disagree.** Each recipe says how many sessions its system
tolerates, and two recipes may say different numbers for one system. A slot is granted
only when the live slots number fewer than the smallest cap among the caller's and those
the live slots were taken under: every holder's cap is honoured for as long as its slot
lives, and the system never sees more sessions than any live holder allowed. A recipe
with a larger cap therefore gets fewer sessions while one with a smaller cap is working
that system; once those end it gets its own number again.

**Atomic.** Counting then inserting races, so acquisitions for one system are serialised:
a PostgreSQL transaction-level advisory lock per system (other systems do not wait), and
on SQLite the write lock every ledger transaction takes as it begins. Heartbeats and
releases are compare-and-set on the holder. Time is the database's, as for leases
(``bots.ledger.leases``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, delete, insert, select, text, update
from sqlalchemy.engine import Connection, RowMapping

from ..errors import SystemFailure
from .leases import (
    Clock,
    Holder,
    check_ttl,
    database_now,
    holder_of,
    require_ledger_engine,
    stored_time,
)
from .schema import session_slots

slots = session_slots


@dataclass(frozen=True)
class Slot:
    """One session's place on ``system``: ``slot`` is 0 .. cap-1. ``taken_over_from``:
    the holder whose expired slot this was (a dead worker's session, worth a log line)."""

    system: str
    slot: int
    cap: int
    holder: Holder
    acquired_at: datetime
    expires_at: datetime
    taken_over_from: Holder | None = None


class SlotLost(SystemFailure):
    """Our slot expired or was taken: the session it covered must end (log out)."""


class SessionSlots:
    """The fleet's session slots in the ledger's database (the ``Ledger``'s engine; a
    ledger at version 8 or later)."""

    def __init__(self, engine: Engine, *, clock: Clock | None = None) -> None:
        require_ledger_engine(engine)
        self.engine = engine
        self._clock = clock

    def acquire_slot(self, system: str, cap: int, holder: Holder, ttl: float) -> Slot | None:
        """A slot on ``system`` for ``ttl`` seconds, or None when the live slots already
        reach ``cap`` or the smallest cap a live slot was taken under (see the module).
        A holder may hold several slots (one per session it runs)."""
        if cap < 1:
            raise ValueError(f"a session cap must be at least 1, not {cap!r}")
        check_ttl(ttl)
        with self.engine.begin() as conn:
            _serialise(conn, system)
            now = database_now(conn, self._clock)  # after the wait for the lock
            rows = conn.execute(select(slots).where(slots.c.system == system)).mappings().all()
            live = [r for r in rows if stored_time(r["expires_at"]) > now]
            if len(live) >= min([cap, *(r["cap"] for r in live)]):
                return None
            taken = {r["slot"] for r in live}
            number = next(n for n in range(len(live) + 1) if n not in taken)  # < cap
            expired = next((r for r in rows if r["slot"] == number), None)
            expires = now + timedelta(seconds=ttl)
            values = {
                "cap": cap,
                "holder": holder.worker,
                "host": holder.host,
                "pid": holder.pid,
                "acquired_at": now,
                "heartbeat_at": now,
                "expires_at": expires,
            }
            where = (slots.c.system == system, slots.c.slot == number)
            if expired is None:
                conn.execute(insert(slots).values(system=system, slot=number, **values))
            else:  # serialised: nobody else can have changed it since we read it
                conn.execute(update(slots).where(*where).values(**values))
            return Slot(
                system,
                number,
                cap,
                holder,
                now,
                expires,
                holder_of(expired) if expired is not None else None,
            )

    def heartbeat(self, slot: Slot, ttl: float) -> Slot:
        """Extend ``slot`` to ``ttl`` seconds from now; ``SlotLost`` when it expired or
        was taken (its session must end)."""
        check_ttl(ttl)
        with self.engine.begin() as conn:
            now = database_now(conn, self._clock)
            expires = now + timedelta(seconds=ttl)
            result = conn.execute(
                update(slots)
                .where(*_ours(slot), slots.c.expires_at > now)
                .values(heartbeat_at=now, expires_at=expires)
            )
            if result.rowcount == 1:
                return replace(slot, expires_at=expires, taken_over_from=None)
            row = _row(conn, slot)
        if row is not None and row["holder"] != slot.holder.worker:
            raise SlotLost(
                f"session slot {slot.slot} on {slot.system} of {slot.holder} was taken by "
                f"{holder_of(row)} at {stored_time(row['acquired_at']).isoformat()}"
            )
        raise SlotLost(
            f"session slot {slot.slot} on {slot.system} of {slot.holder} expired before this "
            f"heartbeat ({now.isoformat()}): another worker may be using it"
        )

    def release_slot(self, slot: Slot) -> bool:
        """Give ``slot`` back; False when it was not ours any more (expired and taken)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(slots).where(*_ours(slot))).rowcount == 1

    def live(self, system: str) -> list[Slot]:
        """The unexpired slots on ``system``, by number (for status and tests)."""
        with self.engine.connect() as conn:
            now = database_now(conn, self._clock)
            rows = conn.execute(
                select(slots).where(slots.c.system == system).order_by(slots.c.slot)
            ).mappings()
            return [_slot(r) for r in rows if stored_time(r["expires_at"]) > now]


def _serialise(conn: Connection, system: str) -> None:
    """Hold ``system``'s slot lock until this transaction ends (see the module)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            # Per schema too, as the ledger's migration lock: ledgers beside each other
            # on one server do not wait for each other.
            text(
                "SELECT pg_advisory_xact_lock(hashtext('rpa-fleet session slots '"
                " || coalesce(current_schema(), '') || ' ' || :system))"
            ),
            {"system": system},
        )
    # SQLite: the transaction began IMMEDIATE (require_ledger_engine), holding the lock.


def _ours(slot: Slot) -> tuple[ColumnElement[bool], ...]:
    return (
        slots.c.system == slot.system,
        slots.c.slot == slot.slot,
        slots.c.holder == slot.holder.worker,
    )


def _row(conn: Connection, slot: Slot) -> RowMapping | None:
    query = select(slots).where(slots.c.system == slot.system, slots.c.slot == slot.slot)
    return conn.execute(query).mappings().first()


def _slot(row: RowMapping) -> Slot:
    return Slot(
        system=row["system"],
        slot=row["slot"],
        cap=row["cap"],
        holder=holder_of(row),
        acquired_at=stored_time(row["acquired_at"]),
        expires_at=stored_time(row["expires_at"]),
    )
