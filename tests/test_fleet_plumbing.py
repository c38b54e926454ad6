"""Fleet mode's plumbing: its settings, the fleet's database URL, the one migrate command
(ledger + queue schema: idempotent, safe when machines run it at once, upgrades along
Procrastinate's migration files), and the stalled-job sweeper against real worker
processes that are SIGKILLed.

The PostgreSQL cases run when FLEET_TEST_DATABASE_URL names a server (scripts/test.sh
sets it), each in a schema of its own, dropped after; otherwise they are skipped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bots.dburls import database_of, hide_password, libpq_conninfo, postgres_url
from bots.errors import UsageError
from bots.fleet.settings import FleetSettings
from bots.settings import Settings
from tests.conftest import ROOT, TEST_DATABASE_ENV, postgres_schema

# -- settings (no database) -------------------------------------------------------------


def test_fleet_settings_default_to_the_designed_numbers() -> None:
    settings = FleetSettings.from_env({})
    assert (settings.heartbeat, settings.stalled_after, settings.sweep_every) == (5, 20, 5)
    assert (settings.max_stalls, settings.lease_ttl, settings.slot_ttl) == (3, 30, 30)
    assert settings.lease_heartbeat == settings.slot_heartbeat == 10
    assert settings.stall_bound == 25
    assert settings.worker_options() == {
        "update_heartbeat_interval": 5,
        "stalled_worker_timeout": 20,
    }


def test_fleet_settings_are_read_from_the_environment() -> None:
    env = {
        "FLEET_HEARTBEAT_SECONDS": "1",
        "FLEET_STALLED_AFTER_SECONDS": "3.5",
        "FLEET_SWEEP_SECONDS": "0.5",
        "FLEET_MAX_STALLS": "2",
        "FLEET_LEASE_TTL_SECONDS": "9",
        "FLEET_SLOT_TTL_SECONDS": "12",
    }
    settings = FleetSettings.from_env(env)
    assert settings == FleetSettings(1, 3.5, 0.5, 2, 9, 12)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"FLEET_HEARTBEAT_SECONDS": "10", "FLEET_STALLED_AFTER_SECONDS": "20"},
            "FLEET_STALLED_AFTER_SECONDS (20 s) must be at least 3 heartbeats",
        ),
        ({"FLEET_SWEEP_SECONDS": "0"}, "FLEET_SWEEP_SECONDS must be a positive number"),
        ({"FLEET_LEASE_TTL_SECONDS": "nan"}, "FLEET_LEASE_TTL_SECONDS must be a positive"),
        ({"FLEET_MAX_STALLS": "0"}, "FLEET_MAX_STALLS must be a positive number"),
        ({"FLEET_MAX_STALLS": "1.5"}, "FLEET_MAX_STALLS must be a number, not '1.5'"),
        ({"FLEET_HEARTBEAT_SECONDS": "soon"}, "FLEET_HEARTBEAT_SECONDS must be a number"),
    ],
)
def test_fleet_settings_refuse_what_would_break_the_fleet(env: dict, says: str) -> None:
    with pytest.raises(UsageError, match=None) as caught:
        FleetSettings.from_env(env)
    assert says in str(caught.value)


# -- the fleet's database URL (no database) ----------------------------------------------


def test_the_ledger_defaults_to_the_fleet_database() -> None:
    settings = Settings.from_env({"FLEET_DATABASE_URL": "postgresql://fleet:s3cret@db/fleet"})
    assert settings.fleet_url == "postgresql+psycopg://fleet:s3cret@db/fleet"
    assert settings.ledger_url == settings.fleet_url
    assert Settings.from_env({}).fleet_url is None  # one machine: SQLite, no fleet


@pytest.mark.parametrize(
    "url", ["sqlite:///logs/ledger.sqlite3", "mysql://fleet:s3cret@db/fleet", "postgresql://db/"]
)
def test_a_fleet_database_that_is_not_postgresql_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        Settings.from_env({"FLEET_DATABASE_URL": url})
    assert "FLEET_DATABASE_URL" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_ledger_in_another_database_than_the_fleet_is_refused_saying_why() -> None:
    env = {
        "FLEET_DATABASE_URL": "postgresql://fleet:s3cret@db/fleet",
        "FLEET_LEDGER_URL": "postgresql+psycopg://fleet:s3cret@db/other",
    }
    with pytest.raises(UsageError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert "FLEET_LEDGER_URL" in message and "another database than FLEET_DATABASE_URL" in message
    assert "deferred inside the ledger's transactions" in message
    assert "s3cret" not in message and "fleet:***@db/other" in message
    with pytest.raises(UsageError, match="--ledger .*another database"):
        Settings.from_env({"FLEET_DATABASE_URL": env["FLEET_DATABASE_URL"]}, ledger_url="sqlite://")


def test_a_ledger_url_for_the_same_database_is_kept() -> None:
    """Another user, `localhost` for 127.0.0.1, the default port written out: the same
    database; the ledger goes through psycopg 3 like the queue."""
    settings = Settings.from_env(
        {
            "FLEET_DATABASE_URL": "postgresql://fleet@localhost/fleet",
            "FLEET_LEDGER_URL": "postgresql://ledger:pw@127.0.0.1:5432/fleet",
        }
    )
    assert settings.ledger_url == "postgresql+psycopg://ledger:pw@127.0.0.1:5432/fleet"
    other_schema = "postgresql://fleet@localhost/fleet?options=-csearch_path%3Dx"
    assert database_of(other_schema) != database_of("postgresql://fleet@localhost/fleet")


def test_urls_convert_to_libpq_and_hide_their_password() -> None:
    url = postgres_url("postgres://u:p%40ss@h:6543/db?sslmode=require", name="X")
    assert url == "postgresql+psycopg://u:p%40ss@h:6543/db?sslmode=require"
    assert libpq_conninfo(url) == "postgresql://u:p%40ss@h:6543/db?sslmode=require"
    assert hide_password(url) == "postgresql+psycopg://u:***@h:6543/db?sslmode=require"


# -- PostgreSQL: one schema per test -----------------------------------------------------


@pytest.fixture
def fleet_url() -> Iterator[str]:
    """A fleet database of its own: a fresh schema on FLEET_TEST_DATABASE_URL's server,
    first on the search path (ledger and queue tables both go there), dropped after."""
    server = os.environ.get(TEST_DATABASE_ENV)
    if not server:
        pytest.skip(f"PostgreSQL: {TEST_DATABASE_ENV} is not set")
    with postgres_schema(server) as url:
        yield url


def _runner(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "runner.py", *args],
        cwd=ROOT,
        env={**os.environ, "FLEET_LOGS_DIR": str(tmp_path / "logs"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


def test_ledger_upgrade_in_fleet_mode_applies_the_queue_schema_once(
    fleet_url: str, tmp_path: Path
) -> None:
    with_password = fleet_url.replace("postgres@", "postgres:hunter22@", 1)
    env = {"FLEET_DATABASE_URL": with_password}
    first = _runner("ledger", "upgrade", env=env, tmp_path=tmp_path)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "upgraded from version 0 to" in out
    assert "queue " in out and "created (Procrastinate 3.10.0's schema.sql)" in out
    assert "hunter22" not in out + err
    second = _runner("ledger", "upgrade", env=env, tmp_path=tmp_path)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "already; nothing to do" in out.splitlines()[0]
    assert "at Procrastinate 3.10.0's schema already; nothing to do" in out.splitlines()[1]
    rows = _query(fleet_url, "SELECT procrastinate_version, applied FROM fleet_queue_schema")
    assert rows == [("3.10.0", "schema.sql")]


def test_a_non_postgresql_fleet_database_stops_ledger_upgrade_with_exit_2(
    tmp_path: Path,
) -> None:
    proc = _runner(
        "ledger",
        "upgrade",
        env={"FLEET_DATABASE_URL": "sqlite:///x.sqlite3"},
        tmp_path=tmp_path,
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "FLEET_DATABASE_URL must be a PostgreSQL URL" in err


def test_machines_upgrading_at_once_apply_each_change_once(fleet_url: str, tmp_path: Path) -> None:
    env = {"FLEET_DATABASE_URL": fleet_url}
    procs = [_runner("ledger", "upgrade", env=env, tmp_path=tmp_path / str(n)) for n in range(3)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err for _, err in outputs]
    created = [out for out, _ in outputs if "created (Procrastinate" in out]
    assert len(created) == 1, outputs  # the others waited, then found it done
    assert len(_query(fleet_url, "SELECT * FROM fleet_queue_schema")) == 1
    steps = _query(fleet_url, "SELECT version FROM ledger_version ORDER BY version")
    assert [v for (v,) in steps] == list(range(1, len(steps) + 1))


def _write(path: Path, sql: str) -> None:
    path.write_text(sql, encoding="utf-8")


def test_a_later_procrastinate_applies_the_migration_files_between(
    fleet_url: str, tmp_path: Path
) -> None:
    from bots.fleet import schema

    shipped = tmp_path / "migrations"
    shipped.mkdir()
    _write(shipped / "03.10.00_01_pre_already_in.sql", "CREATE TABLE never_applied (x int);")
    _write(shipped / "03.11.00_50_post_second.sql", "ALTER TABLE mig ADD COLUMN b int;")
    _write(shipped / "03.11.00_01_pre_first.sql", "CREATE TABLE mig (a int);")
    _write(shipped / "03.12.00_01_pre_too_new.sql", "CREATE TABLE never_applied (x int);")
    with schema.connect(fleet_url, autocommit=True) as conn:
        created = schema.upgrade_queue(conn)
        assert created.before is None and created.applied == ("schema.sql",)
        upgraded = schema.upgrade_queue(conn, installed="3.11.0", migrations_dir=shipped)
        assert (upgraded.before, upgraded.after) == ("3.10.0", "3.11.0")
        assert upgraded.applied == ("03.11.00_01_pre_first.sql", "03.11.00_50_post_second.sql")
        again = schema.upgrade_queue(conn, installed="3.11.0", migrations_dir=shipped)
        assert again.applied == () and "nothing to do" in again.describe()
        with pytest.raises(schema.QueueSchemaError, match="newer than the one installed"):
            schema.upgrade_queue(conn, installed="3.10.0", migrations_dir=shipped)
    names = {n for (n,) in _query(fleet_url, "SELECT table_name FROM information_schema.columns")}
    assert "mig" in names and "never_applied" not in names
    history = _query(fleet_url, "SELECT procrastinate_version FROM fleet_queue_schema ORDER BY id")
    assert history == [("3.10.0",), ("3.11.0",)]


def test_a_failing_migration_leaves_the_schema_as_it_was(fleet_url: str, tmp_path: Path) -> None:
    from bots.fleet import schema

    shipped = tmp_path / "migrations"
    shipped.mkdir()
    _write(shipped / "03.11.00_01_pre_fine.sql", "CREATE TABLE fine (a int);")
    _write(shipped / "03.11.00_02_pre_broken.sql", "ALTER TABLE no_such_table ADD COLUMN b int;")
    with schema.connect(fleet_url, autocommit=True) as conn:
        schema.upgrade_queue(conn)
        with pytest.raises(Exception, match="no_such_table"):
            schema.upgrade_queue(conn, installed="3.11.0", migrations_dir=shipped)
        assert schema.recorded_version(conn) == "3.10.0"
    assert not _query(fleet_url, "SELECT to_regclass('fine') IS NOT NULL")[0][0]


def test_a_queue_schema_nobody_recorded_is_refused_not_guessed(fleet_url: str) -> None:
    from procrastinate.schema import SchemaManager

    from bots.fleet import schema

    _query(fleet_url, SchemaManager.get_schema())  # as `procrastinate schema --apply` would
    with (
        schema.connect(fleet_url, autocommit=True) as conn,
        pytest.raises(schema.QueueSchemaError, match="did not apply"),
    ):
        schema.upgrade_queue(conn)
    with pytest.raises(schema.QueueSchemaError, match="did not apply"):
        schema.check_queue(fleet_url)


def test_check_queue_asks_for_the_upgrade_until_it_is_done(fleet_url: str) -> None:
    from bots.fleet import schema

    with pytest.raises(schema.QueueSchemaError, match="has no queue schema"):
        schema.check_queue(fleet_url)
    with schema.connect(fleet_url, autocommit=True) as conn:
        schema.upgrade_queue(conn)
    assert schema.check_queue(fleet_url) == "3.10.0"


# -- the sweeper, against real workers ---------------------------------------------------

# Short fleet timings for the tests: a dead worker's job is back within about 2 s.
FAST = {
    "FLEET_HEARTBEAT_SECONDS": "0.5",
    "FLEET_STALLED_AFTER_SECONDS": "1.5",
    "FLEET_SWEEP_SECONDS": "0.5",
    "FLEET_MAX_STALLS": "2",
}
FAST_SETTINGS = FleetSettings.from_env(FAST)


@pytest.fixture
def queue_url(fleet_url: str) -> str:
    """A fleet database with the queue's schema and the test worker's tables."""
    from bots.fleet import schema
    from tests.fleet_worker import TABLES

    with schema.connect(fleet_url, autocommit=True) as conn:
        schema.upgrade_queue(conn)
        conn.execute(TABLES.encode())
    return fleet_url


class Workers:
    """Worker processes (tests/fleet_worker.py) this test started; all stopped after."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *, sweep: bool = False) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "tests.fleet_worker", self.url]
        proc = subprocess.Popen(
            args + (["--sweep"] if sweep else []),
            cwd=ROOT,
            env={**os.environ, **FAST},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def workers(queue_url: str) -> Iterator[Workers]:
    started = Workers(queue_url)
    try:
        yield started
    finally:
        started.stop_all()


def _wait_for(what: str, found: Callable[[], Any], *, within: float) -> Any:
    """Poll ``found`` until it returns something truthy; fail naming ``what`` after
    ``within`` seconds (a bounded wait, never a sleep that hopes)."""
    deadline = time.monotonic() + within
    while True:
        result = found()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within} s")
        time.sleep(0.05)


def _defer_hold(url: str, label: str) -> int:
    from bots.fleet.app import make_app

    app = make_app(url, FAST_SETTINGS, [])
    with app.open():
        return int(app.configure_task("fleet:hold").defer(label=label))


def _runs(url: str, label: str) -> list[tuple[int, int, str]]:
    return [
        (pid, attempts, phase)
        for pid, attempts, phase in _query(
            url, "SELECT pid, attempts, phase FROM test_runs WHERE label = %s ORDER BY id", label
        )
    ]


def _status(url: str, job_id: int) -> str:
    return str(_query(url, "SELECT status FROM procrastinate_jobs WHERE id = %s", job_id)[0][0])


def test_a_sigkilled_workers_job_is_retried_by_another_worker_and_runs_once_more(
    workers: Workers, queue_url: str
) -> None:
    doomed = workers.start()
    job_id = _defer_hold(queue_url, "a")
    _wait_for("the first worker starts the job", lambda: _runs(queue_url, "a"), within=30)
    sweeper = workers.start(sweep=True)  # idle: the job is the doomed worker's
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)
    killed_at = time.monotonic()
    _query(queue_url, "INSERT INTO test_release VALUES ('a')")  # the next run may finish

    runs = _wait_for(
        "the job to run to the end on the sweeping worker",
        lambda: [r for r in _runs(queue_url, "a") if r[2] == "finished"],
        within=FAST_SETTINGS.stall_bound + 20,  # + the second worker's start-up
    )
    elapsed = time.monotonic() - killed_at
    assert runs == [(sweeper.pid, 1, "finished")]
    assert _runs(queue_url, "a") == [
        (doomed.pid, 0, "started"),
        (sweeper.pid, 1, "started"),
        (sweeper.pid, 1, "finished"),
    ]  # exactly once more, by the live worker
    assert elapsed < FAST_SETTINGS.stall_bound + 20
    _wait_for("the job succeeded", lambda: _status(queue_url, job_id) == "succeeded", within=10)
    reported = _query(queue_url, "SELECT job_id, stalls, given_up, pid FROM test_stalls")
    assert reported == [(job_id, 1, False, sweeper.pid)]


def test_the_retry_comes_within_the_stall_bound(workers: Workers, queue_url: str) -> None:
    """Measured from the kill to the job being back in the queue, with a sweeper
    already running: stalled_after + one sweep period, plus a margin for a loaded
    machine."""
    workers.start(sweep=True)
    doomed = workers.start()
    # The sweeping worker also takes jobs: defer until the doomed one has one.
    label = _wait_for(
        "a job on the doomed worker",
        lambda: _doomed_label(queue_url, doomed.pid),
        within=30,
    )
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)
    killed_at = time.monotonic()
    _wait_for(
        "the stalled job back in the queue",
        lambda: _query(queue_url, "SELECT 1 FROM test_stalls"),
        within=FAST_SETTINGS.stall_bound + 10,
    )
    assert time.monotonic() - killed_at <= FAST_SETTINGS.stall_bound + 3
    _query(queue_url, "INSERT INTO test_release SELECT label FROM test_runs ON CONFLICT DO NOTHING")
    _wait_for(
        "the retried job finishes",
        lambda: [r for r in _runs(queue_url, label) if r[2] == "finished"],
        within=30,
    )


def _doomed_label(url: str, pid: int) -> str | None:
    """Defer one more held job; the label of a job the doomed worker runs, if any."""
    on_doomed = _query(url, "SELECT label FROM test_runs WHERE pid = %s", pid)
    if on_doomed:
        return str(on_doomed[0][0])
    held = len(_query(url, "SELECT 1 FROM procrastinate_jobs"))
    if held < 2:  # one job per worker: each holds one at a time
        _defer_hold(url, f"job{held}")
    return None


def test_a_job_whose_worker_dies_max_stalls_times_is_given_up(
    workers: Workers, queue_url: str
) -> None:
    from bots.fleet.app import make_app
    from bots.fleet.sweeper import Sweeper

    given_up: list[int] = []
    retried: list[int] = []
    app = make_app(queue_url, FAST_SETTINGS, [])
    sweeper = Sweeper(
        app,
        queue_url,
        FAST_SETTINGS,
        on_retried=lambda job, stall: retried.append(stall.stalls),
        on_given_up=lambda job, stall: given_up.append(stall.stalls),
    )

    async def sweep_until(settled: Callable[[], bool], within: float) -> None:
        deadline = time.monotonic() + within
        async with app.open_async():
            while not settled():
                assert time.monotonic() < deadline, "the sweeper settled nothing in time"
                await sweeper.sweep()
                await asyncio.sleep(FAST_SETTINGS.sweep_every)

    job_id = _defer_hold(queue_url, "poison")
    for death in range(1, FAST_SETTINGS.max_stalls + 1):
        doomed = workers.start()
        _wait_for(
            f"run {death} starts",
            lambda n=death: len(_runs(queue_url, "poison")) == n,  # type: ignore[misc]
            within=30,
        )
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
        asyncio.run(
            sweep_until(lambda n=death: len(retried) + len(given_up) == n, within=20)  # type: ignore[misc]
        )
    assert retried == [1] and given_up == [2]
    assert _status(queue_url, job_id) == "failed"
    assert [phase for *_, phase in _runs(queue_url, "poison")] == ["started", "started"]
    stalls = _query(queue_url, "SELECT stalls FROM fleet_job_stalls WHERE job_id = %s", job_id)
    assert stalls == [(2,)]


def test_two_sweepers_retry_a_stalled_job_once(workers: Workers, queue_url: str) -> None:
    from bots.fleet.app import make_app
    from bots.fleet.sweeper import Stall, Sweeper

    job_id = _defer_hold(queue_url, "raced")
    doomed = workers.start()
    _wait_for("the job starts", lambda: _runs(queue_url, "raced"), within=30)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)
    app = make_app(queue_url, FAST_SETTINGS, [])

    def noop(job: object, stall: Stall) -> None:
        return None

    async def race() -> list[list[Stall]]:
        sweepers = [
            Sweeper(app, queue_url, FAST_SETTINGS, on_retried=noop, on_given_up=noop)
            for _ in range(2)
        ]
        deadline = time.monotonic() + FAST_SETTINGS.stall_bound + 10
        async with app.open_async():
            while True:
                # Both sweepers were shown the same stalled run.
                found = list(
                    await app.job_manager.get_stalled_jobs(
                        seconds_since_heartbeat=FAST_SETTINGS.stalled_after
                    )
                )
                if found:
                    racing = await asyncio.gather(*(s.settle(found) for s in sweepers))
                    late = await sweepers[0].settle(found)  # a third look, after both
                    return [*racing, late]
                assert time.monotonic() < deadline, "the job never showed as stalled"
                await asyncio.sleep(0.1)

    results = asyncio.run(race())
    assert sorted(len(r) for r in results) == [0, 0, 1], results
    assert _status(queue_url, job_id) == "todo"
    assert _query(queue_url, "SELECT attempts FROM procrastinate_jobs") == [(1,)]
    stalls = _query(queue_url, "SELECT stalls FROM fleet_job_stalls")
    assert stalls == [(1,)]
