"""Named leases: one holder at a time across the fleet, kept alive by heartbeats, taken over
when their holder stops beating (``recipe:demo``: one listing of a recipe at a time).

A lease is a row in ``leases``: its holder (worker id, host, pid) and when it expires.
``acquire`` takes it when there is no row, when the row is ours (a renewal), or when it
has expired, and says whose expired lease it took, so that the caller can log the
take-over. ``heartbeat`` pushes the expiry on and raises ``LeaseLost`` when the lease is
no longer ours: someone took it over, or it expired (an expired lease is gone even before
anyone takes it, so a late heartbeat can never bring back a lease another worker may
already be acting on). ``release`` deletes our row.

Atomic on both databases without locking the table: the first holder is an ``INSERT ...
ON CONFLICT DO NOTHING`` (of two racing inserts one lands), every later change is a
compare-and-set ``UPDATE`` that names the holder it expects, and, for a take-over, that
the lease is still expired (a heartbeat that landed meanwhile makes it miss). SQLite's
transactions begin ``IMMEDIATE`` (``bots.ledger.engine``); PostgreSQL re-checks an
``UPDATE``'s condition against the row a concurrent writer committed.

Time is the database's: every machine asks one clock, so several machines with skewed
clocks agree on when a lease expires. PostgreSQL: ``clock_timestamp()``, read once per
operation inside its transaction (not ``now()``, the transaction's start, which is stale
after waiting for a row lock). SQLite has no server: its file lives on one machine, whose
clock every process there shares (``datetime.now(UTC)``). Times are stored in UTC, so a
change of daylight saving time on that machine does not move an expiry. A ``clock`` may
be given instead, on either database (tests freeze time with it).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.engine import Connection, RowMapping

from ..errors import Locked, SystemFailure
from .engine import begins_immediate
from .schema import leases

Clock = Callable[[], datetime]
ROUNDS = 3  # looks at a lease within one acquisition before giving up (churn, not holds)


@dataclass(frozen=True)
class Holder:
    """Who holds a lease or a slot: ``worker`` identifies it (unique per process); the
    host and pid say where to look for it."""

    worker: str
    host: str
    pid: int

    @classmethod
    def this_process(cls, worker: str | None = None) -> Holder:
        """This process, as ``worker`` (default: ``host:pid:random``, never reused)."""
        host, pid = socket.gethostname(), os.getpid()
        return cls(worker or f"{host}:{pid}:{uuid.uuid4().hex[:8]}", host, pid)

    def __str__(self) -> str:
        return f"worker {self.worker} (host {self.host}, pid {self.pid})"


@dataclass(frozen=True)
class Lease:
    """A lease as its holder now holds it. ``taken_over_from``: the holder whose expired
    lease this acquisition took (log it), and when that one had expired."""

    name: str
    holder: Holder
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    taken_over_from: Holder | None = None
    taken_over_expired_at: datetime | None = None


class LeaseHeld(Locked):
    """Another holder's lease has not expired: nothing was changed (exit 75, like a
    recipe lock held on this machine)."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(
            f"lease {lease.name} is held by {lease.holder} since "
            f"{lease.acquired_at.isoformat()}, until {lease.expires_at.isoformat()} "
            "unless it beats again"
        )
        self.lease = lease


class LeaseLost(SystemFailure):
    """Our lease expired or another holder took it over: stop the work it guarded."""


class Leases:
    """Named leases in the ledger's database. ``engine``: the ``Ledger``'s (its SQLite
    transactions begin IMMEDIATE); the ledger must be at version 8 or later."""

    def __init__(self, engine: Engine, *, clock: Clock | None = None) -> None:
        require_ledger_engine(engine)
        self.engine = engine
        self._clock = clock

    def acquire(self, name: str, holder: Holder, ttl: float) -> Lease:
        """Take lease ``name`` for ``ttl`` seconds: when free, ours already (renewed) or
        expired (``taken_over_from`` says whose). ``LeaseHeld`` when another holder's
        lease has not expired."""
        check_ttl(ttl)
        with self.engine.begin() as conn:
            now = database_now(conn, self._clock)
            # A row released between our insert and our read sends us round again; any
            # other race ends in a refusal or a take-over within one round.
            for _ in range(ROUNDS):
                lease = _acquire_once(conn, name, holder, now, now + timedelta(seconds=ttl))
                if lease is not None:
                    return lease
        raise SystemFailure(f"lease {name} changed under us {ROUNDS} times in a row")

    def heartbeat(self, name: str, holder: Holder, ttl: float) -> Lease:
        """Extend our lease to ``ttl`` seconds from now; ``LeaseLost`` when it is not ours
        any more (taken over) or has expired (anyone may be taking it over)."""
        check_ttl(ttl)
        with self.engine.begin() as conn:
            now = database_now(conn, self._clock)
            expires = now + timedelta(seconds=ttl)
            result = conn.execute(
                update(leases)
                .where(
                    leases.c.name == name,
                    leases.c.holder == holder.worker,
                    leases.c.expires_at > now,
                )
                .values(heartbeat_at=now, expires_at=expires)
            )
            if result.rowcount == 1:
                row = _row(conn, name)
                assert row is not None
                return _lease(row)
            row = _row(conn, name)
        if row is None:
            raise LeaseLost(f"lease {name} of {holder} is gone: it was released or taken")
        found = _lease(row)
        if found.holder.worker != holder.worker:
            raise LeaseLost(
                f"lease {name} was taken over by {found.holder} at "
                f"{found.acquired_at.isoformat()}; {holder} must stop what it guarded"
            )
        raise LeaseLost(
            f"lease {name} of {holder} expired at {found.expires_at.isoformat()} before "
            f"this heartbeat ({now.isoformat()}): another worker may already hold it"
        )

    def release(self, name: str, holder: Holder) -> bool:
        """Give lease ``name`` up; False when it was not ours any more (taken over)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(leases).where(leases.c.name == name, leases.c.holder == holder.worker)
            )
            return result.rowcount == 1

    def expired(self, prefix: str) -> list[Lease]:
        """The leases named ``prefix``... that have expired: their holders stopped beating
        them (dead, or cut off long enough to count as dead)."""
        with self.engine.connect() as conn:
            now = database_now(conn, self._clock)
            rows = conn.execute(
                select(leases).where(
                    leases.c.name.startswith(prefix, autoescape=True), leases.c.expires_at <= now
                )
            ).mappings()
            return [_lease(row) for row in rows]

    def clear_expired(self, lease: Lease) -> bool:
        """Remove ``lease`` if it is still expired and still its holder's (an expired
        lease cannot be beaten back to life): True when this call removed it."""
        with self.engine.begin() as conn:
            now = database_now(conn, self._clock)
            result = conn.execute(
                delete(leases).where(
                    leases.c.name == lease.name,
                    leases.c.holder == lease.holder.worker,
                    leases.c.expires_at <= now,
                )
            )
            return result.rowcount == 1

    def current(self, name: str) -> Lease | None:
        """Lease ``name`` as stored (expired or not), or None when nobody holds it."""
        with self.engine.connect() as conn:
            row = _row(conn, name)
        return _lease(row) if row is not None else None

    def now(self) -> datetime:
        """The time leases are measured by (the database's clock; see the module)."""
        with self.engine.connect() as conn:
            return database_now(conn, self._clock)


# -- shared with bots.ledger.slots -------------------------------------------------------


def database_now(conn: Connection, clock: Clock | None) -> datetime:
    """The time, in UTC: ``clock``'s when given, else the database's (see the module)."""
    if clock is not None:
        now = clock()
    elif conn.dialect.name == "postgresql":
        now = conn.execute(select(func.clock_timestamp())).scalar_one()
    else:
        now = datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("the clock must give aware datetimes")
    return now.astimezone(UTC)


def stored_time(value: datetime) -> datetime:
    """A time read back: SQLite returns the UTC wall time it was given, without zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def require_ledger_engine(engine: Engine) -> None:
    """Refuse a SQLite engine whose transactions would not take the write lock up front:
    a read then a write could then fail half-way, or two writers both read "free"."""
    if engine.dialect.name == "sqlite" and not begins_immediate(engine):
        raise ValueError("leases and slots need the ledger's engine (bots.ledger.engine)")


def check_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"a time to live must be positive seconds, not {ttl!r}")


def holder_of(row: RowMapping) -> Holder:
    return Holder(row["holder"], row["host"], row["pid"])


def _holder_values(holder: Holder) -> dict[str, Any]:
    return {"holder": holder.worker, "host": holder.host, "pid": holder.pid}


def _row(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(leases).where(leases.c.name == name)).mappings().first()


def _lease(row: RowMapping) -> Lease:
    return Lease(
        name=row["name"],
        holder=holder_of(row),
        acquired_at=stored_time(row["acquired_at"]),
        heartbeat_at=stored_time(row["heartbeat_at"]),
        expires_at=stored_time(row["expires_at"]),
    )


def _acquire_once(
    conn: Connection, name: str, holder: Holder, now: datetime, expires: datetime
) -> Lease | None:
    """One look and one compare-and-set: the lease, ``LeaseHeld``, or None (look again)."""
    row = _row(conn, name)
    if row is None:
        if _insert(conn, name, holder, now, expires):
            return Lease(name, holder, now, now, expires)
        return None  # another holder inserted first: look at theirs
    current = _lease(row)
    mine = current.holder.worker == holder.worker
    renewal = mine and current.expires_at > now
    if not mine and current.expires_at > now:
        raise LeaseHeld(current)
    condition = [leases.c.name == name, leases.c.holder == current.holder.worker]
    if not mine:
        condition.append(leases.c.expires_at <= now)  # still expired: no heartbeat landed
    values: dict[str, Any] = {"heartbeat_at": now, "expires_at": expires}
    if not renewal:  # a new tenure
        values.update(_holder_values(holder), acquired_at=now)
    if not conn.execute(update(leases).where(*condition).values(**values)).rowcount:
        return None
    if renewal:
        return Lease(name, holder, current.acquired_at, now, expires)
    if mine:  # our own lease had expired and nobody took it: a new tenure, no take-over
        return Lease(name, holder, now, now, expires)
    return Lease(name, holder, now, now, expires, current.holder, current.expires_at)


def _insert(conn: Connection, name: str, holder: Holder, now: datetime, expires: datetime) -> bool:
    """Insert the first holder's row; False when another row is there (theirs stands)."""
    values = {
        "name": name,
        **_holder_values(holder),
        "acquired_at": now,
        "heartbeat_at": now,
        "expires_at": expires,
    }
    # The dialects' own INSERTs (ON CONFLICT is not in SQLAlchemy's portable one), imported
    # here: commands that never take a lease need not load them.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement: Any = postgresql.insert(leases).values(**values).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(leases).values(**values).on_conflict_do_nothing()
    return conn.execute(statement).rowcount == 1
