"""Run logs across machines: each machine's logs chain into its own index, and the one
ledger they share records every run's log as it closed, so that `logs verify` checks a
machine's files against both, and `logs verify --fleet` accounts for every run of every
host (issue 15). On SQLite and, when FLEET_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bots.cli import main
from bots.ledger import Ledger, queries
from bots.logchain import BROKEN, OPEN, VERIFIED, KnownRun, fleet_rows, verify
from bots.pipeline.context import run_context
from bots.redaction import Redactor
from bots.runlog import INDEX_NAME, LogSeal, RunLog, line_hash
from bots.settings import Settings
from tests.conftest import FrozenClock


def machine(tmp_path: Path, name: str, ledger_url: str) -> Settings:
    """A machine of the fleet: a logs folder of its own, the shared ledger."""
    return Settings.from_env({}, logs_dir=tmp_path / name / "logs", ledger_url=ledger_url)


def a_run(settings: Settings, ledger: Ledger, clock: FrozenClock, steps: int) -> str:
    """A run that closes normally (through the run context, as every run does)."""
    with run_context(
        name="worker",
        action="worker",
        settings=settings,
        redactor=Redactor(),
        digest="0" * 64,
        clock=clock,
        lock=False,
        ledger=ledger,
    ) as ctx:
        for n in range(steps):
            clock.advance(seconds=1)
            ctx.log.event("document_done", key=f"R{n:06d}")
        ctx.outcome = "ok"
    return ctx.run_id


def a_killed_run(settings: Settings, ledger: Ledger, clock: FrozenClock) -> str:
    """A worker SIGKILLed mid-run: its `runs` row and its log stay open."""
    run_id = f"worker-killed-{len(list(settings.runs_dir.glob('*.jsonl')))}"
    log = RunLog(
        settings.runs_dir / f"{run_id}.jsonl",
        run_id=run_id,
        recipe="worker",
        redactor=Redactor(),
        clock=clock,
    )
    ledger.start_run(
        run_id=run_id,
        recipe="worker",
        recipe_digest="0" * 64,
        host=socket.gethostname(),
        user="rpa",
        bot_version="test",
        log_path=str(log.path),
        action="worker",
    )
    log.event("run_start")
    log.event("document_start", key="R000009")
    log.abandon()  # no closing record, no index line: what a SIGKILL leaves
    return run_id


def known(ledger: Ledger) -> list[KnownRun]:
    found = []
    for row in queries.run_logs(ledger):
        sealed = (row["log_lines"], row["log_first_prev"], row["log_last_hash"])
        seal = LogSeal(Path(row["log_path"]).name, *sealed) if None not in sealed else None
        found.append(
            KnownRun(
                row["run_id"],
                row["log_path"],
                row["outcome"],
                host=row["host"],
                action=row["action"],
                seal=seal,
            )
        )
    return found


@pytest.fixture
def fleet(tmp_path: Path, ledger_url: str, clock: FrozenClock) -> tuple[Settings, Settings, Ledger]:
    """Machine a ran two runs; machine b one, then its worker was killed."""
    a, b = machine(tmp_path, "a", ledger_url), machine(tmp_path, "b", ledger_url)
    ledger = Ledger.open(ledger_url, clock, staging_root=a.staging_root)
    a_run(a, ledger, clock, 3)
    a_run(b, ledger, clock, 2)
    a_run(a, ledger, clock, 4)
    a_killed_run(b, ledger, clock)
    yield a, b, ledger
    ledger.close()


def test_the_ledger_records_each_log_as_its_index_line_does(
    fleet: tuple[Settings, Settings, Ledger],
) -> None:
    a, b, ledger = fleet
    entries = {}
    for settings in (a, b):
        for raw in (settings.runs_dir / INDEX_NAME).read_bytes().splitlines():
            entry = json.loads(raw)
            entries[entry["run_id"]] = entry
    rows = {row["run_id"]: row for row in queries.run_logs(ledger)}
    assert len(rows) == 4 and len(entries) == 3
    for run_id, entry in entries.items():
        row = rows[run_id]
        assert (row["log_lines"], row["log_first_prev"], row["log_last_hash"]) == (
            entry["lines"],
            entry["first_prev"],
            entry["last_hash"],
        )
        file = Path(row["log_path"])
        assert file.name == entry["file"]
        assert line_hash(file.read_bytes().splitlines()[-1]) == row["log_last_hash"]
    killed = next(r for r in rows.values() if r["run_id"] not in entries)
    assert killed["outcome"] is None and killed["log_last_hash"] is None


def test_each_machine_verifies_its_own_runs_against_the_ledger(
    fleet: tuple[Settings, Settings, Ledger],
) -> None:
    a, b, ledger = fleet
    runs = known(ledger)
    on_a = verify(a.runs_dir, known_runs=runs, host=socket.gethostname())
    assert on_a.ok, on_a.problems
    assert sorted(on_a.runs.values()) == [VERIFIED, VERIFIED]  # b's runs are not a's business
    on_b = verify(b.runs_dir, known_runs=runs, host=socket.gethostname())
    assert on_b.ok, on_b.problems
    assert sorted(on_b.runs.values()) == [OPEN, VERIFIED]
    assert any("unclosed" in w for w in on_b.warnings)  # killed: a warning, not tampering


def test_a_consistent_rewrite_of_one_machines_files_and_index_is_named_by_the_ledger(
    fleet: tuple[Settings, Settings, Ledger], clock: FrozenClock
) -> None:
    a, _b, ledger = fleet
    runs = known(ledger)
    last = next(r for r in reversed(runs) if r.folder == str(a.runs_dir) and r.seal)
    # Someone able to write a's logs removes its last run with its index line, and writes
    # a run file of that name anew (closed and indexed as the writer does): chain and
    # index agree, and the file alone cannot tell.
    path = Path(last.log_path)
    path.unlink()
    index = a.runs_dir / INDEX_NAME
    index.write_bytes(b"".join(line + b"\n" for line in index.read_bytes().splitlines()[:-1]))
    forged = RunLog(path, run_id=last.run_id, recipe="worker", redactor=Redactor(), clock=clock)
    forged.event("run_start")
    forged.close("ok")
    assert verify(a.runs_dir).ok
    checked = verify(a.runs_dir, known_runs=runs, host=socket.gethostname())
    assert checked.problems == [
        f"run {last.run_id}: {path.name} is not the log its worker recorded in the ledger "
        f"when the run closed (cut short: the ledger records {last.seal.lines} lines ending "
        f"in {last.seal.last_hash[:12]}, the file has 2 ending in "
        f"{line_hash(path.read_bytes().splitlines()[-1])[:12]})"
    ]
    assert checked.runs[last.run_id] == BROKEN


def test_runs_of_another_host_under_the_same_path_are_not_this_machines(
    fleet: tuple[Settings, Settings, Ledger],
) -> None:
    a, _b, ledger = fleet
    # Machines of a fleet usually have one logs path (/srv/rpa/logs): the ledger then
    # holds another host's runs under this folder's path, whose files are not here.
    other = KnownRun(
        "worker-elsewhere",
        str(a.runs_dir / "worker-elsewhere.jsonl"),
        "ok",
        host="bot-2.invalid",
        action="worker",
        seal=LogSeal("worker-elsewhere.jsonl", 3, "0" * 64, "1" * 64),
    )
    checked = verify(a.runs_dir, known_runs=[*known(ledger), other], host=socket.gethostname())
    assert checked.ok, checked.problems
    assert "worker-elsewhere" not in checked.runs
    # The same run of this host would be missing, and named.
    mine = KnownRun(other.run_id, other.log_path, "ok", host=socket.gethostname())
    missing = verify(a.runs_dir, known_runs=[*known(ledger), mine], host=socket.gethostname())
    assert missing.problems == [
        "run worker-elsewhere: its log worker-elsewhere.jsonl is missing, and the ledger's "
        "runs table lists it (deleted, with its index line if it had one)"
    ]


def test_fleet_rows_account_for_every_run_of_every_host(
    fleet: tuple[Settings, Settings, Ledger],
) -> None:
    a, b, ledger = fleet
    runs = known(ledger)
    here = [(a.runs_dir, verify(a.runs_dir, known_runs=runs))]
    alone = fleet_rows(runs, here)
    assert [r.state for r in alone] == ["verified", "", "verified", ""]
    assert "not verified here: its log is on" in alone[1].status
    assert "open in the ledger (no closing record yet: killed, or still going)" in alone[3].status
    both = fleet_rows(runs, [*here, (b.runs_dir, verify(b.runs_dir, known_runs=runs))])
    assert [r.state for r in both] == ["verified", "verified", "verified", "open"]
    assert "killed, or still going" in both[3].status


def logs_cli(settings: Settings, *args: str | Path) -> Result:
    env = {"FLEET_LEDGER_URL": settings.ledger_url, "FLEET_LOGS_DIR": str(settings.logs_dir)}
    return CliRunner().invoke(main, ["logs", "verify", *map(str, args)], env=env)


def test_cli_fleet_lists_every_run_and_verifies_the_folders_given(
    fleet: tuple[Settings, Settings, Ledger],
) -> None:
    a, b, ledger = fleet
    assert logs_cli(a).exit_code == 0
    alone = logs_cli(a, "--fleet")
    assert alone.exit_code == 0, alone.output
    assert f"host {socket.gethostname()}: 4 run(s)" in alone.output
    assert "2 verified here, 0 open (killed, or still going), 2 not here, 0 NOT intact" in (
        alone.output
    )
    both = logs_cli(a, "--fleet", b.logs_dir)
    assert both.exit_code == 0, both.output
    assert "3 verified here, 1 open (killed, or still going), 0 not here, 0 NOT intact" in (
        both.output
    )
    # A run cut on b (its last line gone) is named, and the exit says so.
    cut = next(r for r in known(ledger) if r.folder == str(b.runs_dir) and r.seal)
    path = Path(cut.log_path)
    path.write_bytes(b"".join(line + b"\n" for line in path.read_bytes().splitlines()[:-1]))
    broken = logs_cli(a, "--fleet", b.logs_dir)
    assert broken.exit_code == 1
    assert f"TAMPERED: {path.name} line" in broken.output
    assert "1 NOT intact" in broken.output
