"""Leases and session slots: one holder per lease and never more sessions than the cap,
across threads racing on their own connections; an expired holder's lease or slot is
taken over and named; time is the database's. SQLite always, PostgreSQL when
FLEET_TEST_DATABASE_URL names a server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bots.ledger import (
    Holder,
    LeaseHeld,
    LeaseLost,
    Leases,
    Ledger,
    SessionSlots,
    Slot,
    SlotLost,
)
from bots.ledger.engine import connect
from tests.conftest import FrozenClock

STAGING = Path("/srv/rpa-fleet/logs/staging")  # only ever joined, never touched
TTL = 30.0
ALICE = Holder("alice", "host-a", 101)
BOB = Holder("bob", "host-b", 202)
CAROL = Holder("carol", "host-c", 303)


@pytest.fixture
def ledger(ledger_url: str, clock: FrozenClock) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url, clock, staging_root=STAGING)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def leases(ledger: Ledger, clock: FrozenClock) -> Leases:
    return Leases(ledger.engine, clock=clock)


@pytest.fixture
def slots(ledger: Ledger, clock: FrozenClock) -> SessionSlots:
    return SessionSlots(ledger.engine, clock=clock)


# -- leases ------------------------------------------------------------------------------


def test_a_free_lease_is_taken_and_a_held_one_refused(leases: Leases, clock: FrozenClock) -> None:
    lease = leases.acquire("recipe:demo", ALICE, TTL)
    assert lease.holder == ALICE and lease.taken_over_from is None
    assert lease.expires_at - lease.acquired_at == timedelta(seconds=TTL)
    assert lease.acquired_at == clock().astimezone(UTC)
    with pytest.raises(LeaseHeld, match="held by worker alice .host host-a, pid 101.") as held:
        leases.acquire("recipe:demo", BOB, TTL)
    assert held.value.exit_code == 75 and held.value.lease.holder == ALICE
    assert leases.acquire("recipe:other", BOB, TTL).holder == BOB  # another name, free


def test_acquiring_its_own_lease_again_renews_it(leases: Leases, clock: FrozenClock) -> None:
    first = leases.acquire("recipe:demo", ALICE, TTL)
    clock.advance(seconds=10)
    again = leases.acquire("recipe:demo", ALICE, TTL)
    assert again.acquired_at == first.acquired_at  # the same tenure
    assert again.expires_at == first.expires_at + timedelta(seconds=10)
    assert again.taken_over_from is None


def test_heartbeats_keep_a_lease_past_its_first_expiry(leases: Leases, clock: FrozenClock) -> None:
    leases.acquire("recipe:demo", ALICE, TTL)
    for _ in range(5):
        clock.advance(seconds=TTL * 0.6)
        beat = leases.heartbeat("recipe:demo", ALICE, TTL)
        assert beat.heartbeat_at == clock().astimezone(UTC)
    with pytest.raises(LeaseHeld):
        leases.acquire("recipe:demo", BOB, TTL)


def test_an_expired_lease_is_taken_over_and_its_holder_told(
    leases: Leases, clock: FrozenClock
) -> None:
    first = leases.acquire("recipe:demo", ALICE, TTL)
    clock.advance(seconds=TTL + 1)
    taken = leases.acquire("recipe:demo", BOB, TTL)
    assert taken.holder == BOB
    assert taken.taken_over_from == ALICE  # for the log: who died, and when it expired
    assert taken.taken_over_expired_at == first.expires_at
    with pytest.raises(LeaseLost, match="taken over by worker bob"):
        leases.heartbeat("recipe:demo", ALICE, TTL)
    assert leases.release("recipe:demo", ALICE) is False  # not ours: bob's stays
    current = leases.current("recipe:demo")
    assert current is not None and current.holder == BOB


def test_an_expired_lease_cannot_be_revived_by_a_late_heartbeat(
    leases: Leases, clock: FrozenClock
) -> None:
    """Someone may be taking it over at that very moment: expired is lost."""
    leases.acquire("recipe:demo", ALICE, TTL)
    clock.advance(seconds=TTL)
    with pytest.raises(LeaseLost, match="expired at .* before this heartbeat"):
        leases.heartbeat("recipe:demo", ALICE, TTL)
    again = leases.acquire("recipe:demo", ALICE, TTL)  # a new tenure, nobody taken over
    assert again.acquired_at == clock().astimezone(UTC) and again.taken_over_from is None


def test_expired_leases_are_found_by_prefix_and_cleared_once(
    ledger: Ledger, leases: Leases, clock: FrozenClock
) -> None:
    """A dead worker's run lease: found once expired, never while beaten; cleared by one
    of the workers that find it, and its run closed as interrupted by one of them."""
    for run_id in ("worker-1", "worker-2"):
        ledger.start_run(
            run_id=run_id,
            recipe="worker",
            recipe_digest="d" * 64,
            host="h",
            user="u",
            bot_version="0.1.0",
            log_path=f"/logs/{run_id}.jsonl",
        )
    leases.acquire("run:worker-1", ALICE, TTL)
    leases.acquire("run:worker-2", BOB, TTL)
    leases.acquire("recipe:demo", ALICE, TTL)
    assert leases.expired("run:") == []
    clock.advance(seconds=TTL / 2)
    leases.heartbeat("run:worker-2", BOB, TTL)  # Bob lives; Alice died
    clock.advance(seconds=TTL / 2)
    dead = leases.expired("run:")
    assert [(lease.name, lease.holder) for lease in dead] == [("run:worker-1", ALICE)]
    assert ledger.close_interrupted_run("worker-1") is True
    assert ledger.close_interrupted_run("worker-1") is False  # another finder was first
    assert leases.clear_expired(dead[0]) is True
    assert leases.clear_expired(dead[0]) is False
    assert leases.expired("run:") == []
    assert leases.current("recipe:demo") is not None  # another prefix: not touched
    outcomes = {r["run_id"]: r["outcome"] for r in ledger.runs("worker")}
    assert outcomes == {"worker-1": "interrupted", "worker-2": None}


def test_a_lease_taken_over_after_it_was_found_expired_is_not_cleared(
    leases: Leases, clock: FrozenClock
) -> None:
    leases.acquire("run:worker-1", ALICE, TTL)
    clock.advance(seconds=TTL)
    (found,) = leases.expired("run:")
    leases.acquire("run:worker-1", BOB, TTL)  # (not what workers do; the guard holds)
    assert leases.clear_expired(found) is False
    current = leases.current("run:worker-1")
    assert current is not None and current.holder == BOB


def test_a_released_lease_is_free_and_a_heartbeat_on_it_fails(leases: Leases) -> None:
    leases.acquire("recipe:demo", ALICE, TTL)
    assert leases.release("recipe:demo", ALICE) is True
    assert leases.current("recipe:demo") is None
    with pytest.raises(LeaseLost, match="is gone"):
        leases.heartbeat("recipe:demo", ALICE, TTL)
    assert leases.acquire("recipe:demo", BOB, TTL).taken_over_from is None


def test_nonsense_times_to_live_are_refused(leases: Leases, slots: SessionSlots) -> None:
    for ttl in (0, -1.0):
        with pytest.raises(ValueError, match="positive"):
            leases.acquire("recipe:demo", ALICE, ttl)
        with pytest.raises(ValueError, match="positive"):
            slots.acquire_slot("erp", 2, ALICE, ttl)
    with pytest.raises(ValueError, match="at least 1"):
        slots.acquire_slot("erp", 0, ALICE, TTL)


def test_without_a_clock_the_time_is_the_databases(ledger: Ledger) -> None:
    """PostgreSQL's clock_timestamp() (every machine asks the server), SQLite's machine."""
    leases = Leases(ledger.engine)
    with ledger.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            before = conn.execute(select(func.clock_timestamp())).scalar_one()
        else:
            before = leases.now()
    lease = leases.acquire("recipe:demo", ALICE, TTL)
    after = leases.now()
    assert before <= lease.acquired_at <= after  # aware, in UTC, whatever the ledger's clock
    assert lease.acquired_at.utcoffset() == timedelta(0)
    assert lease.expires_at - lease.acquired_at == timedelta(seconds=TTL)


def test_a_plain_engine_is_refused(tmp_path: Path) -> None:
    """SQLite transactions must take the write lock as they begin (the ledger's engine)."""
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(ValueError, match="ledger's engine"):
        Leases(engine)
    with pytest.raises(ValueError, match="ledger's engine"):
        SessionSlots(engine)
    engine.dispose()


# -- session slots -----------------------------------------------------------------------


def test_slots_are_numbered_up_to_the_cap_and_then_refused(slots: SessionSlots) -> None:
    first = slots.acquire_slot("erp", 2, ALICE, TTL)
    second = slots.acquire_slot("erp", 2, ALICE, TTL)  # one holder, two sessions
    assert first is not None and second is not None
    assert (first.slot, second.slot) == (0, 1)
    assert slots.acquire_slot("erp", 2, BOB, TTL) is None
    assert slots.acquire_slot("archive", 2, BOB, TTL) is not None  # caps are per system
    assert slots.release_slot(first) is True
    again = slots.acquire_slot("erp", 2, BOB, TTL)
    assert again is not None and again.slot == 0 and again.taken_over_from is None
    assert [s.holder for s in slots.live("erp")] == [BOB, ALICE]


def test_a_dead_workers_slots_come_back_after_their_ttl(
    slots: SessionSlots, clock: FrozenClock
) -> None:
    held = [slots.acquire_slot("erp", 2, ALICE, TTL) for _ in range(2)]
    assert slots.acquire_slot("erp", 2, BOB, TTL) is None
    clock.advance(seconds=TTL - 1)
    assert slots.acquire_slot("erp", 2, BOB, TTL) is None  # not yet
    clock.advance(seconds=1)
    taken = slots.acquire_slot("erp", 2, BOB, TTL)
    assert taken is not None and taken.slot == 0 and taken.taken_over_from == ALICE
    assert held[0] is not None and held[1] is not None
    with pytest.raises(SlotLost, match="taken by worker bob"):
        slots.heartbeat(held[0], TTL)
    with pytest.raises(SlotLost, match="expired before this heartbeat"):
        slots.heartbeat(held[1], TTL)  # expired, not yet taken: lost all the same
    assert slots.release_slot(held[0]) is False


def test_heartbeats_keep_a_slot(slots: SessionSlots, clock: FrozenClock) -> None:
    slot = slots.acquire_slot("erp", 1, ALICE, TTL)
    assert slot is not None
    for _ in range(4):
        clock.advance(seconds=TTL * 0.6)
        slot = slots.heartbeat(slot, TTL)
    assert slot.expires_at == clock().astimezone(UTC) + timedelta(seconds=TTL)
    assert slots.acquire_slot("erp", 1, BOB, TTL) is None


def test_the_smallest_cap_among_live_holders_holds_for_everyone(slots: SessionSlots) -> None:
    """Two recipes disagree on what one system tolerates: each live holder's cap holds."""
    assert slots.acquire_slot("erp", 3, ALICE, TTL) is not None
    small = slots.acquire_slot("erp", 2, BOB, TTL)
    assert small is not None
    assert slots.acquire_slot("erp", 3, ALICE, TTL) is None  # bob's session allows 2
    assert slots.acquire_slot("erp", 2, CAROL, TTL) is None
    slots.release_slot(small)
    assert slots.acquire_slot("erp", 3, ALICE, TTL) is not None  # only cap-3 holders live
    assert slots.acquire_slot("erp", 3, ALICE, TTL) is not None
    assert slots.acquire_slot("erp", 3, ALICE, TTL) is None
    assert slots.acquire_slot("erp", 2, BOB, TTL) is None  # already 3 > bob's 2
    assert [s.slot for s in slots.live("erp")] == [0, 1, 2]


# -- races: each thread its own engine (its own connections), as separate processes --------

THREADS, ROUNDS = 8, 20
Work = Callable[[Leases, SessionSlots, Holder, threading.Barrier], None]


def race(ledger: Ledger, work: Work) -> list[BaseException]:
    """Run ``work(leases, slots, holder, barrier)`` ``ROUNDS`` times in each of ``THREADS``
    threads, each with its own engine; the errors they met. ``barrier``: all threads."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def go(number: int) -> None:
        engine = connect(ledger.url)
        try:
            leases, slots = Leases(engine), SessionSlots(engine)
            holder = Holder(f"w{number}", "host", number)
            barrier.wait()
            for _ in range(ROUNDS):
                work(leases, slots, holder, barrier)
        except BaseException as exc:  # noqa: BLE001 - reported by the test, whatever it is
            errors.append(exc)
            barrier.abort()  # the others would wait for this one for ever
        finally:
            engine.dispose()

    started = [threading.Thread(target=go, args=(n,)) for n in range(THREADS)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in started), "a racing thread hung"
    return errors


class Counter:
    """How many hold at once, counted by the test itself (not read from the table)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = self.peak = self.total = 0

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


def test_racing_workers_take_one_lease_once(ledger: Ledger) -> None:
    """Every round all threads try at the same moment and keep what they got until all
    have tried: exactly one holds it, and holding is counted by the test."""
    holding = Counter()

    def work(leases: Leases, _slots: SessionSlots, holder: Holder, both: threading.Barrier) -> None:
        try:
            leases.acquire("recipe:demo", holder, 60)
            holding.enter()
        except LeaseHeld:
            got = False
        else:
            got = True
        both.wait()  # everyone has tried while the winner holds it
        if got:
            leases.heartbeat("recipe:demo", holder, 60)  # still ours
            holding.leave()
            assert leases.release("recipe:demo", holder)
        both.wait()  # released before the next round's race

    assert race(ledger, work) == []
    assert holding.peak == 1 and holding.total == ROUNDS


def test_racing_workers_take_exactly_the_cap_of_two(ledger: Ledger) -> None:
    sessions = Counter()

    def work(_leases: Leases, slots: SessionSlots, holder: Holder, all_: threading.Barrier) -> None:
        slot = slots.acquire_slot("erp", 2, holder, 60)
        if slot is not None:
            sessions.enter()
        all_.wait()  # everyone has tried while the winners hold theirs
        if slot is not None:
            slots.heartbeat(slot, 60)
            sessions.leave()
            assert slots.release_slot(slot)
        all_.wait()

    assert race(ledger, work) == []
    assert sessions.peak == 2 and sessions.total == 2 * ROUNDS


def test_free_running_workers_never_exceed_a_cap_of_two(ledger: Ledger) -> None:
    """No rounds: takes, heartbeats and releases interleave as they come."""
    sessions = Counter()

    def work(_leases: Leases, slots: SessionSlots, holder: Holder, _: threading.Barrier) -> None:
        slot: Slot | None = slots.acquire_slot("erp", 2, holder, 60)
        if slot is None:
            return
        sessions.enter()
        slots.heartbeat(slot, 60)
        sessions.leave()
        assert slots.release_slot(slot)

    assert race(ledger, work) == []
    assert 1 <= sessions.peak <= 2
    assert SessionSlots(ledger.engine).live("erp") == []
