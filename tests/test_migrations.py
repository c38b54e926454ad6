"""The ledger's schema version: created once, upgraded in order, never by accident, and
never by two processes at once; a ledger newer than the code is left alone."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, insert, inspect, select
from sqlalchemy.engine import Connection

from bots.cli import main
from bots.errors import EXIT_USAGE
from bots.ledger import (
    LATEST,
    Holder,
    Leases,
    Ledger,
    LedgerVersionError,
    SessionSlots,
    Upgrade,
    migrations,
    queries,
    schema,
)
from tests.conftest import FrozenClock

STAGING = Path("/srv/rpa-fleet/logs/staging")  # only ever joined, never touched


def versions(ledger: Ledger) -> list[int]:
    with ledger.engine.connect() as conn:
        table = migrations.ledger_version
        return list(conn.execute(select(table.c.version).order_by(table.c.version)).scalars())


def tables(ledger: Ledger) -> set[str]:
    with ledger.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def test_making_a_ledger_creates_nothing(ledger_url: str, clock: FrozenClock) -> None:
    ledger = Ledger(ledger_url, clock, staging_root=STAGING)
    try:
        assert ledger.version() == 0 and tables(ledger) == set()
    finally:
        ledger.close()


def test_open_creates_the_schema_once(ledger_url: str, clock: FrozenClock) -> None:
    ledger = Ledger.open(ledger_url, clock, staging_root=STAGING)
    try:
        assert ledger.version() == LATEST
        assert versions(ledger) == list(range(1, LATEST + 1))
        assert {"documents", "runs", "checks", "events", "inventory", "sightings"} < tables(ledger)
        assert ledger.upgrade() == Upgrade(LATEST, LATEST)  # current: nothing to do
        assert versions(ledger) == list(range(1, LATEST + 1))
    finally:
        ledger.close()


def test_a_reader_is_told_what_to_run(ledger_url: str, clock: FrozenClock) -> None:
    with pytest.raises(LedgerVersionError, match="is empty .*`runner.py ledger upgrade`") as e:
        Ledger.open(ledger_url, clock, staging_root=STAGING, migrate=False)
    assert e.value.exit_code == EXIT_USAGE
    ledger = Ledger.open(ledger_url, clock, staging_root=STAGING)
    with ledger.engine.begin() as conn:  # as if only step 1 had run
        table = migrations.ledger_version
        conn.execute(table.delete().where(table.c.version > 1))
    ledger.close()
    with pytest.raises(LedgerVersionError, match=f"is at version 1; .* reads version {LATEST}"):
        Ledger.open(ledger_url, clock, staging_root=STAGING, migrate=False)
    Ledger.open(ledger_url, clock, staging_root=STAGING).close()  # a writer upgrades it
    Ledger.open(ledger_url, clock, staging_root=STAGING, migrate=False).close()


@pytest.mark.parametrize("migrate", [True, False])
def test_a_newer_ledger_is_refused_and_left_alone(
    ledger_url: str, clock: FrozenClock, migrate: bool
) -> None:
    ledger = Ledger.open(ledger_url, clock, staging_root=STAGING)
    with ledger.engine.begin() as conn:
        conn.execute(
            insert(migrations.ledger_version).values(
                version=LATEST + 1, step="from the future", applied_at=datetime.now().astimezone()
            )
        )
    with pytest.raises(LedgerVersionError) as refused:
        Ledger.open(ledger_url, clock, staging_root=STAGING, migrate=migrate)
    message = str(refused.value)
    assert f"version {LATEST + 1}, newer than" in message
    assert f"up to version {LATEST}" in message and "left as it is" in message
    assert refused.value.exit_code == EXIT_USAGE
    assert versions(ledger) == [*range(1, LATEST + 1), LATEST + 1]
    ledger.close()


def test_two_processes_upgrading_at_once(ledger_url: str, clock: FrozenClock) -> None:
    """Each its own connection, all at the same moment: one upgrades, the others find it
    done; every step is applied once."""
    ledgers = [Ledger(ledger_url, clock, staging_root=STAGING) for _ in range(4)]
    barrier = threading.Barrier(len(ledgers))
    results: list[Upgrade] = []
    errors: list[BaseException] = []

    def go(ledger: Ledger) -> None:
        barrier.wait()
        try:
            results.append(ledger.upgrade())
        except BaseException as exc:  # noqa: BLE001 - reported below, whatever it is
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(ledger,)) for ledger in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert errors == []
        assert sorted(r.before for r in results) == [0, *[LATEST] * (len(ledgers) - 1)]
        assert {r.after for r in results} == {LATEST}
        assert versions(ledgers[0]) == list(range(1, LATEST + 1))
    finally:
        for ledger in ledgers:
            ledger.close()


def test_a_failing_step_leaves_the_ledger_as_it_was(
    ledger_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger.open(ledger_url, clock, staging_root=STAGING)

    def half_done(conn: Connection, _root: Path) -> None:
        conn.exec_driver_sql("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("the step failed half-way")

    broken = migrations.Step(LATEST + 1, "a step that fails", half_done)
    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, broken))
    monkeypatch.setattr(migrations, "LATEST", LATEST + 1)
    with pytest.raises(RuntimeError, match="half-way"):
        ledger.upgrade()
    assert ledger.version() == LATEST and "half_done" not in tables(ledger)
    ledger.close()


def test_the_upgrade_command(tmp_path: Path) -> None:
    env = {"FLEET_LOGS_DIR": str(tmp_path / "logs")}
    (tmp_path / "logs").mkdir()
    runner = CliRunner()
    read = runner.invoke(main, ["audit", "--since", "2026-11-01"], env=env)
    assert read.exit_code == EXIT_USAGE
    assert "Run `runner.py ledger upgrade`" in read.output
    first = runner.invoke(main, ["ledger", "upgrade"], env=env)
    assert first.exit_code == 0, first.output
    assert f"upgraded from version 0 to {LATEST}" in first.output
    again = runner.invoke(main, ["ledger", "upgrade"], env=env)
    assert again.exit_code == 0 and f"at version {LATEST} already" in again.output
    read = runner.invoke(main, ["audit", "--since", "2026-11-01"], env=env)
    assert read.exit_code == 0, read.output


def test_step_6_scopes_reference_codes_by_the_archive_that_gave_them(
    ledger_url: str, clock: FrozenClock
) -> None:
    """A ledger at version 5 (no ``archive_system``) gains the column and its index; its
    uploaded documents learn their archive from their ingestion events."""
    ledger = Ledger.open(ledger_url, clock, staging_root=STAGING)
    documents, events = schema.documents, schema.events
    with ledger.engine.begin() as conn:  # back to version 5, as that code wrote it
        conn.exec_driver_sql("DROP INDEX ix_documents_archive_reference")
        conn.exec_driver_sql("ALTER TABLE documents DROP COLUMN archive_system")
        conn.exec_driver_sql("DROP TABLE schedule_state")  # step 7's, which follows
        conn.exec_driver_sql("DROP TABLE schedule_events")
        conn.exec_driver_sql("DROP TABLE leases")  # step 8's
        conn.exec_driver_sql("DROP TABLE session_slots")
        conn.execute(
            delete(migrations.ledger_version).where(migrations.ledger_version.c.version >= 6)
        )
        now = clock()
        for n, (recipe, archive_id) in enumerate(
            [("a", "A1"), ("b", "B1"), ("b", "B2"), ("c", None), ("c", "C1")], 1
        ):
            key = f"R{n}"
            conn.execute(  # only the columns version 5 has
                insert(documents).values(
                    recipe=recipe,
                    source_key=key,
                    state="uploaded" if archive_id else "listed",
                    listing="{}",
                    archive_id=archive_id,
                    reference_code="Z109-KU·2026-D10-CWB-0001" if archive_id else None,
                    attempts=1,
                    listed_at=now,
                    updated_at=now,
                )
            )
        gave = {"R1": "档案馆 A", "R2": "档案馆 B", "R3": "档案馆 B"}  # R5: no event
        for n, (key, system) in enumerate(gave.items()):
            archive_id = {"R1": "A1", "R2": "B1", "R3": "B2"}[key]
            conn.execute(
                insert(events).values(
                    event_id=f"e{n}",
                    recipe="a" if key == "R1" else "b",
                    source_key=key,
                    run_id="run-1",
                    event_type="ingestion",
                    event_time=now,
                    outcome="success",
                    detail=json.dumps({"archive_id": archive_id, "system": system}),
                    agent="rpa-fleet test",
                )
            )
    assert ledger.version() == 5

    assert ledger.upgrade() == Upgrade(5, LATEST)
    with ledger.engine.connect() as conn:  # steps 7 and 8 ran after step 5 found them missing
        assert {"schedule_state", "schedule_events", "leases", "session_slots"} <= set(
            inspect(conn).get_table_names()
        )

    with ledger.engine.connect() as conn:
        indexes = {i["name"] for i in inspect(conn).get_indexes("documents")}
        found = dict(conn.execute(select(documents.c.source_key, documents.c.archive_system)).all())
    assert "ix_documents_archive_reference" in indexes
    assert found == {"R1": "档案馆 A", "R2": "档案馆 B", "R3": "档案馆 B", "R4": None, "R5": None}
    code = "Z109-KU·2026-D10-CWB-0001"
    # The same code in two archives is no conflict; within one archive it is.
    assert ledger.holder_of_reference(code, ("a", "R1"), "档案馆 A") is None
    assert ledger.holder_of_reference(code, ("b", "R2"), "档案馆 B") == "b/R3"
    # Not recorded (R5): counted as its own recipe's archive, and only its.
    assert ledger.holder_of_reference(code, ("c", "R9"), "档案馆 C") == "c/R5"
    assert ledger.holder_of_reference(code, ("d", "R9"), "档案馆 C") is None
    assert ledger.upgrade() == Upgrade(LATEST, LATEST)
    ledger.close()


def test_step_8_gives_a_version_7_ledger_leases_and_session_slots(
    ledger_url: str, clock: FrozenClock
) -> None:
    """A ledger as version 7 wrote it (no lease tables) upgrades to 8, keeping its
    documents, and its leases and slots work at once."""
    ledger = Ledger.open(ledger_url, clock, staging_root=STAGING)
    ledger.record_listed("demo", "R000001", {"id": "R000001"}, "run-1")
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE leases")
        conn.exec_driver_sql("DROP TABLE session_slots")
        conn.execute(
            delete(migrations.ledger_version).where(migrations.ledger_version.c.version >= 8)
        )
    assert ledger.version() == 7 and not {"leases", "session_slots"} & tables(ledger)
    with pytest.raises(LedgerVersionError, match="is at version 7"):
        Ledger.open(ledger_url, clock, staging_root=STAGING, migrate=False)

    assert ledger.upgrade() == Upgrade(7, LATEST) and LATEST >= 8
    assert {"leases", "session_slots"} <= tables(ledger)
    assert [d.source_key for d in ledger.documents("demo")] == ["R000001"]
    holder = Holder("w1", "host", 1)
    assert Leases(ledger.engine, clock=clock).acquire("recipe:demo", holder, 30).holder == holder
    slot = SessionSlots(ledger.engine, clock=clock).acquire_slot("erp", 2, holder, 30)
    assert slot is not None and slot.slot == 0
    ledger.close()


def test_step_9_gives_a_version_8_ledger_runs_that_record_their_log(
    ledger_url: str, clock: FrozenClock
) -> None:
    """A ledger as version 8 wrote it (runs without the log's chain) upgrades to 9: its
    runs stay, with no record of their log (verified by their index only), and a run
    closed now records its log as it closed."""
    ledger = Ledger.open(ledger_url, clock, staging_root=STAGING)
    run = {
        "recipe": "demo",
        "recipe_digest": "0" * 64,
        "host": "bot-1",
        "user": "rpa",
        "bot_version": "test",
        "action": "capture",
    }
    ledger.start_run(run_id="run-1", log_path="/logs/runs/run-1.jsonl", **run)
    ledger.finish_run("run-1", "ok", {})
    with ledger.engine.begin() as conn:
        for column in ("log_lines", "log_first_prev", "log_last_hash"):
            conn.exec_driver_sql(f"ALTER TABLE runs DROP COLUMN {column}")
        conn.execute(
            delete(migrations.ledger_version).where(migrations.ledger_version.c.version >= 9)
        )
    assert ledger.version() == 8
    assert ledger.upgrade() == Upgrade(8, LATEST) and LATEST >= 9
    ledger.start_run(run_id="run-2", log_path="/logs/runs/run-2.jsonl", **run)
    ledger.finish_run("run-2", "ok", {}, log=(5, "0" * 64, "a" * 64))
    found = {r["run_id"]: r for r in queries.run_logs(ledger)}
    assert found["run-1"]["outcome"] == "ok" and found["run-1"]["log_lines"] is None
    assert (found["run-2"]["log_lines"], found["run-2"]["log_last_hash"]) == (5, "a" * 64)
    ledger.close()
