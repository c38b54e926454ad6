"""Tamper-evident run logs: the hash chain, the index, and what ``logs verify`` names."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from click.testing import CliRunner, Result

from bots import runlog
from bots.cli import main
from bots.errors import MachineFailure
from bots.ledger import Ledger
from bots.logchain import KnownRun, VerifyReport, anchor_of, verify
from bots.redaction import Redactor
from bots.runlog import GENESIS, INDEX_NAME, PENDING_DIR, RunLog, line_hash
from tests.conftest import ROOT, FrozenClock

SECRET = "hunter2-pass"

# The runs every test starts from, in the order they close (index lines 1-4).
FIRST = "demo-20261121T021305-aaaaaa.jsonl"  # 8 lines
ERP = "erp-20261121T022000-bbbbbb.jsonl"  # 6 lines, open while DEMO2 runs
DEMO2 = "demo-20261121T022001-cccccc.jsonl"  # 7 lines, closes before ERP
LAST = "demo-20261121T030000-dddddd.jsonl"  # 12 lines
TOTAL_RECORDS = 8 + 6 + 7 + 12


def open_log(runs: Path, name: str, clock: FrozenClock) -> RunLog:
    run_id = name.removesuffix(".jsonl")
    return RunLog(
        runs / name,
        run_id=run_id,
        recipe=run_id.split("-")[0],
        redactor=Redactor([SECRET]),
        clock=clock,
    )


def steps(log: RunLog, clock: FrozenClock, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        clock.advance(seconds=1)
        log.event("step", key=f"R{n:06d}", note=f"event {n}", password=SECRET, n=n)


def write_runs(runs: Path, clock: FrozenClock) -> None:
    first = open_log(runs, FIRST, clock)
    steps(first, clock, 7)
    first.close("ok", listed=7, archived=7)
    erp = open_log(runs, ERP, clock)  # a run of another recipe starts...
    steps(erp, clock, 2)
    demo2 = open_log(runs, DEMO2, clock)  # ...and this one starts while it runs
    steps(demo2, clock, 3)
    steps(erp, clock, 3, start=2)
    steps(demo2, clock, 3, start=3)
    demo2.close("ok", listed=6)  # closes first,
    erp.close("partial", listed=5, failed=1)  # then the run that started before it
    last = open_log(runs, LAST, clock)
    steps(last, clock, 11)
    last.close("ok", listed=11)


@pytest.fixture
def runs(tmp_path: Path, clock: FrozenClock) -> Path:
    folder = tmp_path / "pristine" / "runs"
    write_runs(folder, clock)
    return folder


@pytest.fixture
def copy(runs: Path, tmp_path: Path) -> Path:
    """A copy of the runs folder to tamper with."""
    return Path(shutil.copytree(runs, tmp_path / "copy" / "runs"))


def read(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read(path)]


def first_problem(report: VerifyReport) -> str:
    assert not report.ok, "the tampering went unnoticed"
    return report.problems[0]


# -- the format ---------------------------------------------------------------------------


def test_intact_runs_verify(runs: Path) -> None:
    report = verify(runs)
    assert report.ok, report.problems
    assert report.warnings == []
    assert (report.files, report.records) == (4, TOTAL_RECORDS)


def test_every_record_is_chained_and_the_run_ends_with_its_closing_record(runs: Path) -> None:
    lines = read(runs / FIRST)
    recs = [json.loads(line) for line in lines]
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert recs[0]["prev"] == GENESIS  # the very first run
    for before, record in zip(lines, recs[1:], strict=False):
        assert record["prev"] == line_hash(before)
    for record in recs:  # the keys readers already use are all there
        assert {"ts", "run_id", "recipe", "key", "event", "outcome", "details"} <= set(record)
    assert recs[-1]["event"] == "run_end" and recs[-1]["details"]["lines"] == len(recs) - 1
    assert recs[-1]["details"]["listed"] == 7
    assert SECRET not in (runs / FIRST).read_text("utf-8")
    assert recs[0]["details"]["password"] == "[REDACTED]"


def test_the_index_chains_the_runs_in_the_order_they_closed(runs: Path) -> None:
    index = read(runs / INDEX_NAME)
    entries = [json.loads(line) for line in index]
    assert [e["file"] for e in entries] == [FIRST, DEMO2, ERP, LAST]
    assert [e["seq"] for e in entries] == [0, 1, 2, 3]
    assert entries[0]["prev"] == GENESIS
    for before, entry in zip(index, entries[1:], strict=False):
        assert entry["prev"] == line_hash(before)
    for entry in entries:
        lines = read(runs / entry["file"])
        assert entry["lines"] == len(lines)
        assert entry["last_hash"] == line_hash(lines[-1])
        assert json.loads(lines[0])["prev"] == entry["first_prev"]
    # Both interleaved runs started when the first run was the last one closed.
    assert [e["after"] for e in entries] == [-1, 0, 0, 2]
    assert entries[1]["first_prev"] == entries[2]["first_prev"] == entries[0]["last_hash"]
    assert entries[3]["first_prev"] == entries[2]["last_hash"]


def test_the_index_alone_can_be_checked(copy: Path) -> None:
    report = verify(copy / INDEX_NAME)
    assert report.ok and report.files == 0
    flip(copy / INDEX_NAME, 2, b'"lines": 7', b'"lines": 8')
    assert first_problem(verify(copy / INDEX_NAME)).startswith(f"{INDEX_NAME} line 2: altered")


def test_the_index_is_never_taken_for_a_run_log(runs: Path) -> None:
    assert {p.name for p in runs.glob("*.jsonl")} == {FIRST, ERP, DEMO2, LAST}


def test_secrets_that_look_like_a_digest_or_a_year_do_not_break_the_chain(
    tmp_path: Path, clock: FrozenClock
) -> None:
    runs = tmp_path / "runs"
    redactor = Redactor(["0000", "2026"])
    log = RunLog(runs / "t-2026.jsonl", run_id="t-2026", recipe="t", redactor=redactor, clock=clock)
    log.event("step", token="0000")
    log.close("ok")
    first, closing = records(runs / "t-2026.jsonl")
    assert first["prev"] == GENESIS and first["details"]["token"] == "[REDACTED]"
    assert closing["ts"].startswith("[REDACTED]-11-21")
    [entry] = records(runs / INDEX_NAME)
    assert (entry["run_id"], entry["closed_at"]) == (closing["run_id"], closing["ts"])
    assert verify(runs).ok


def test_many_runs_closing_at_once_keep_one_index_chain(tmp_path: Path) -> None:
    """Processes of different recipes start and close their runs at the same moment."""
    runs, go = tmp_path / "runs", tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import sys, time
        from datetime import datetime, timezone
        from pathlib import Path
        from bots.redaction import Redactor
        from bots.runlog import RunLog
        recipe = sys.argv[1]
        clock = lambda: datetime.now(timezone.utc)
        for n in range(4):
            run_id = f"{{recipe}}-{{n}}"
            log = RunLog(Path({str(runs)!r}) / f"{{run_id}}.jsonl", run_id=run_id,
                         recipe=recipe, redactor=Redactor(), clock=clock)
            log.event("step", n=n)
            if n == 0:
                print("ready", flush=True)
                while not Path({str(go)!r}).exists():
                    time.sleep(0.001)
            log.close("ok")
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, f"recipe{i}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        go.touch()
        while any(proc.poll() is None for proc in procs):  # an auditor checks meanwhile
            report = verify(runs)
            assert report.ok, report.problems
        assert [proc.wait(timeout=60) for proc in procs] == [0] * len(procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    entries = records(runs / INDEX_NAME)
    assert [e["seq"] for e in entries] == list(range(32))
    report = verify(runs)
    assert report.ok, report.problems
    assert (report.files, report.records) == (32, 64)


# -- unclosed runs ------------------------------------------------------------------------


def test_an_interrupted_run_is_a_warning_not_tampering(
    runs: Path, clock: FrozenClock, tmp_path: Path
) -> None:
    killed = open_log(runs, "demo-20261121T040000-eeeeee.jsonl", clock)
    steps(killed, clock, 4)
    with open(killed.path, "ab") as f:  # died while writing a line
        f.write(b'{"seq": 4, "prev": "ab')
    # The next run carries on from the last closed run.
    after = open_log(runs, "demo-20261121T050000-ffffff.jsonl", clock)
    steps(after, clock, 2)
    after.close("ok")
    report = verify(runs)
    assert report.ok, report.problems
    [warning] = report.warnings
    assert warning.startswith("demo-20261121T040000-eeeeee.jsonl: unclosed (interrupted run")
    assert "last line cut off" in warning
    assert report.records == TOTAL_RECORDS + 5 + 3


def test_a_run_killed_with_sigkill_is_a_warning(runs: Path) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from datetime import datetime, timezone
        from pathlib import Path
        from bots.redaction import Redactor
        from bots.runlog import RunLog
        log = RunLog(Path({str(runs)!r}) / "demo-killed.jsonl", run_id="demo-killed",
                     recipe="demo", redactor=Redactor(), clock=lambda: datetime.now(timezone.utc))
        for n in range(3):
            log.event("step", n=n)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    report = verify(runs)
    assert report.ok, report.problems
    assert report.warnings == [
        "demo-killed.jsonl: unclosed (interrupted run, or one still going): 3 lines, "
        f"not in {INDEX_NAME}"
    ]


def test_an_edit_inside_an_interrupted_run_is_still_tampering(
    runs: Path, clock: FrozenClock
) -> None:
    killed = open_log(runs, "demo-killed.jsonl", clock)
    steps(killed, clock, 5)
    lines = read(killed.path)
    lines[2] = lines[2].replace(b'"note": "event 2"', b'"note": "event 9"')
    write(killed.path, lines)
    assert first_problem(verify(runs)).startswith("demo-killed.jsonl line 3: altered")


# -- tampering ----------------------------------------------------------------------------


def flip(path: Path, line: int, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (same length: one changed byte) on 1-based ``line``."""
    assert len(old) == len(new)
    lines = read(path)
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    write(path, lines)


@pytest.mark.parametrize(
    ("name", "line", "old", "new", "says"),
    [
        (LAST, 5, b'"note": "event 4"', b'"note": "event 8"', f"{LAST} line 5: altered"),
        (FIRST, 1, b'"note": "event 0"', b'"note": "Event 0"', f"{FIRST} line 1: altered"),
        (ERP, 3, b'"key": "R000002"', b'"key": "R000003"', f"{ERP} line 3: altered"),
        (LAST, 12, b'"outcome": "ok"', b'"outcome": "OK"', f"{LAST} line 12: altered"),
        (DEMO2, 7, b'"listed": 6', b'"listed": 7', f"{DEMO2} line 7: altered"),
        (FIRST, 4, b'"prev": "', b'"prev":  ', f"{FIRST} line 4: not valid JSON"),
        (LAST, 1, b'"seq": 0', b'"seq": 1', f"{LAST} line 1: out of sequence"),
    ],
)
def test_one_changed_byte_is_named(
    copy: Path, name: str, line: int, old: bytes, new: bytes, says: str
) -> None:
    flip(copy / name, line, old, new)
    assert first_problem(verify(copy)).startswith(says)


def test_a_changed_prev_is_named(copy: Path) -> None:
    path = copy / LAST
    record = json.loads(read(path)[5])
    digit = record["prev"][10]
    flip(
        path,
        6,
        record["prev"].encode(),
        (record["prev"][:10] + ("1" if digit != "1" else "2") + record["prev"][11:]).encode(),
    )
    assert first_problem(verify(copy)) == (
        f"{LAST} line 6: altered (prev does not match line 5, "
        "and the prev of line 7 does not match it)"
    )


def test_the_example_message_for_a_changed_line(copy: Path) -> None:
    flip(copy / LAST, 9, b'"note": "event 8"', b'"note": "event 1"')
    assert first_problem(verify(copy)) == (
        f"{LAST} line 9: altered (its hash does not match the prev of line 10)"
    )


@pytest.mark.parametrize("line", [1, 4, 11])
def test_a_deleted_line_is_named(copy: Path, line: int) -> None:
    lines = read(copy / LAST)
    del lines[line - 1]
    write(copy / LAST, lines)
    assert first_problem(verify(copy)).startswith(
        f"{LAST} line {line}: out of sequence (seq {line}, expected {line - 1})"
    )


def test_a_deleted_closing_record_is_a_truncation(copy: Path) -> None:
    write(copy / LAST, read(copy / LAST)[:-1])
    assert first_problem(verify(copy)) == (
        f"{LAST} line 12: missing: the file ends after 11 lines, {INDEX_NAME} line 4 says 12 "
        "(truncated)"
    )


@pytest.mark.parametrize("line", [1, 6, 11])
def test_two_swapped_lines_are_named(copy: Path, line: int) -> None:
    lines = read(copy / LAST)
    lines[line - 1], lines[line] = lines[line], lines[line - 1]
    write(copy / LAST, lines)
    assert first_problem(verify(copy)).startswith(f"{LAST} line {line}: out of sequence")


def test_an_inserted_copy_of_a_line_is_named(copy: Path) -> None:
    lines = read(copy / FIRST)
    lines.insert(4, lines[3])
    write(copy / FIRST, lines)
    assert first_problem(verify(copy)) == f"{FIRST} line 5: repeats line 4 (a copy inserted)"


def test_a_forged_line_with_a_correct_seq_and_prev_is_named(copy: Path) -> None:
    lines = read(copy / FIRST)
    forged = json.loads(lines[3])
    forged.update(seq=4, prev=line_hash(lines[3]), key="R999999")
    lines.insert(4, json.dumps(forged, ensure_ascii=False).encode())
    write(copy / FIRST, lines)
    assert first_problem(verify(copy)) == (
        f"{FIRST} line 5: inserted line (line 6 chains to what precedes it)"
    )


def test_a_line_appended_after_the_closing_record_is_named(copy: Path) -> None:
    lines = read(copy / DEMO2)
    extra = json.loads(lines[-1])
    extra.update(seq=len(lines), prev=line_hash(lines[-1]), event="step")
    write(copy / DEMO2, [*lines, json.dumps(extra).encode()])
    assert first_problem(verify(copy)) == f"{DEMO2} line 8: after the closing record (line 7)"


def test_a_deleted_run_file_is_named(copy: Path) -> None:
    (copy / ERP).unlink()
    assert verify(copy).problems == [
        f"{ERP}: missing, listed in {INDEX_NAME} line 3 (deleted or renamed)"
    ]


def test_a_file_cut_in_the_middle_of_a_line_is_named(copy: Path) -> None:
    data = (copy / LAST).read_bytes()
    cut = data.index(b"\n", len(data) // 2) - 20  # within some line
    (copy / LAST).write_bytes(data[:cut])
    line = data[:cut].count(b"\n") + 1
    assert first_problem(verify(copy)) == (
        f"{LAST} line {line}: incomplete line (the file was cut)"
    )


def test_a_file_cut_between_lines_is_named(copy: Path) -> None:
    write(copy / LAST, read(copy / LAST)[:7])
    assert first_problem(verify(copy)).startswith(
        f"{LAST} line 8: missing: the file ends after 7 lines"
    )


def test_an_emptied_file_is_named(copy: Path) -> None:
    (copy / FIRST).write_bytes(b"")
    assert first_problem(verify(copy)).startswith(f"{FIRST} line 1: missing")


ALTERED = "altered (its hash does not match the prev of line"


@pytest.mark.parametrize(
    ("line", "old", "new", "says"),
    [
        (1, b'"lines": 8', b'"lines": 9', f"line 1: {ALTERED} 2)"),
        (2, b'"after": 0', b'"after": 1', "line 2: after 1 is not an earlier entry"),
        (2, b'"closed_at": "2026', b'"closed_at": "2025', f"line 2: {ALTERED} 3)"),
        # The last line is vouched for by its run file, so the one before is named.
        (3, b'"file": "erp-', b'"file": "ERP-', f"line 3: {ALTERED} 4)"),
        # The last line has no successor: its run file shows what was changed.
        (
            4,
            b'"closed_at": "2026',
            b'"closed_at": "2027',
            f"line 4: closed_at is not the ts of {LAST} line 12",
        ),
        (4, b'"lines": 12', b'"lines": 13', f"line 4: lines is 13, {LAST} has 12"),
        (
            4,
            b'"run_id": "demo-',
            b'"run_id": "DEMO-',
            f"line 4: run_id is not that of {LAST} line 12",
        ),
    ],
)
def test_an_edited_index_line_is_named(
    copy: Path, line: int, old: bytes, new: bytes, says: str
) -> None:
    flip(copy / INDEX_NAME, line, old, new)
    assert first_problem(verify(copy)) == f"{INDEX_NAME} {says}"


def test_an_edited_last_index_line_shows_against_its_run_file(copy: Path) -> None:
    entry = json.loads(read(copy / INDEX_NAME)[3])
    flip(copy / INDEX_NAME, 4, entry["last_hash"].encode(), entry["first_prev"].encode())
    assert first_problem(verify(copy)) == (
        f"{LAST} line 12: altered (its hash does not match the last_hash in {INDEX_NAME} line 4)"
    )


def test_a_deleted_index_line_is_named(copy: Path) -> None:
    lines = read(copy / INDEX_NAME)
    del lines[1]
    write(copy / INDEX_NAME, lines)
    problems = verify(copy).problems
    assert problems[0].startswith(f"{INDEX_NAME} line 2: out of sequence")
    assert any(p.startswith(f"{DEMO2} line 7: closing record, but") for p in problems)


def test_a_deleted_index_is_named(copy: Path) -> None:
    (copy / INDEX_NAME).unlink()
    assert first_problem(verify(copy)).startswith(f"{INDEX_NAME}: missing")


def test_a_forged_run_file_is_named(copy: Path) -> None:
    shutil.copy(copy / FIRST, copy / "demo-20261122T000000-999999.jsonl")
    assert verify(copy).problems == [
        "demo-20261122T000000-999999.jsonl line 8: closing record, but the file is not in "
        f"{INDEX_NAME} (forged or renamed file)"
    ]


def test_a_renamed_run_file_is_named(copy: Path) -> None:
    (copy / DEMO2).rename(copy / "demo-renamed.jsonl")
    assert verify(copy).problems == [
        f"{DEMO2}: missing, listed in {INDEX_NAME} line 2 (deleted or renamed)",
        "demo-renamed.jsonl line 7: closing record, but the file is not in "
        f"{INDEX_NAME} (forged or renamed file)",
    ]


def test_another_runs_file_put_in_place_of_one_is_named(copy: Path) -> None:
    shutil.copy(copy / FIRST, copy / LAST)
    assert first_problem(verify(copy)).startswith(f"{LAST} line 1: ")


# -- one file -----------------------------------------------------------------------------


def test_a_single_file_is_checked_against_the_index(runs: Path, copy: Path) -> None:
    report = verify(runs / ERP)
    assert report.ok and (report.files, report.records) == (1, 6)
    write(copy / ERP, read(copy / ERP)[:-1])
    assert first_problem(verify(copy / ERP)).startswith(f"{ERP} line 6: missing")
    assert verify(copy / LAST).ok  # the other files are not this one's business


def test_a_single_file_without_an_index_is_checked_on_its_own(runs: Path, tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(runs / LAST, alone / LAST)
    report = verify(alone / LAST)
    assert report.ok and report.warnings == [
        f"{LAST}: no {INDEX_NAME} beside it, checked on its own"
    ]
    flip(alone / LAST, 3, b'"note": "event 2"', b'"note": "event 7"')
    assert first_problem(verify(alone / LAST)) == (
        f"{LAST} line 3: altered (its hash does not match the prev of line 4)"
    )


# -- the command line ---------------------------------------------------------------------


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "runner.py", "logs", "verify", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_intact_exits_0_with_one_line(runs: Path, clock: FrozenClock) -> None:
    steps(open_log(runs, "demo-unclosed.jsonl", clock), clock, 1)
    result = cli(runs)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"logs intact: 5 files, {TOTAL_RECORDS + 1} records\n"
    assert "warning: demo-unclosed.jsonl: unclosed (interrupted run" in result.stderr


def test_cli_tampered_exits_1_naming_the_first_problem(copy: Path) -> None:
    flip(copy / LAST, 9, b'"note": "event 8"', b'"note": "event 1"')
    (copy / ERP).unlink()
    result = cli(copy)
    assert result.returncode == 1
    assert result.stdout == ""
    first, *rest = result.stderr.splitlines()
    assert first == f"TAMPERED: {ERP}: missing, listed in {INDEX_NAME} line 3 (deleted or renamed)"
    assert f"problem: {LAST} line 9: altered" in rest[0]
    assert rest[-1].startswith("logs NOT intact: 2 problem(s)")


def test_cli_single_file_and_default_folder(runs: Path, copy: Path) -> None:
    assert cli(runs / FIRST).returncode == 0
    flip(copy / FIRST, 2, b'"note": "event 1"', b'"note": "event 2"')
    assert cli(copy / FIRST).returncode == 1
    result = subprocess.run(
        [sys.executable, "runner.py", "logs", "verify", "--logs-dir", str(runs.parent)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.startswith("logs intact: 4 files")


def test_cli_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = cli(tmp_path / "nowhere")
    assert result.returncode == 2 and "no such runs folder or run file" in result.stderr


# -- what cannot fool it (issue 12) ------------------------------------------------------


def known_runs(runs: Path, *, outcome: str | None = "ok") -> list[KnownRun]:
    """What a ledger's runs table would say of the four runs (absolute log paths)."""
    return [
        KnownRun(name.removesuffix(".jsonl"), str(runs.resolve() / name), outcome)
        for name in (FIRST, ERP, DEMO2, LAST)
    ]


def with_ledger(logs: Path, clock: FrozenClock) -> None:
    """The default ledger of the logs folder ``logs``, listing the four runs of its runs/."""
    ledger = Ledger.open(
        f"sqlite:///{logs / 'ledger.sqlite3'}", clock, staging_root=logs / "staging"
    )
    try:
        for run in known_runs(logs / "runs"):
            ledger.start_run(
                run_id=run.run_id,
                recipe=run.run_id.split("-")[0],
                recipe_digest="0" * 64,
                host="bot-1",
                user="rpa",
                bot_version="test",
                log_path=run.log_path,
                action="capture",
            )
            ledger.finish_run(run.run_id, "ok", {})
    finally:
        ledger.close()


def logs_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["logs", *map(str, args)], env={"FLEET_LEDGER_URL": None})


def drop_last_run(runs: Path) -> None:
    """Remove the last run file together with the last index line."""
    (runs / LAST).unlink()
    write(runs / INDEX_NAME, read(runs / INDEX_NAME)[:-1])


def test_a_logs_folder_is_checked_through_its_runs_folder(copy: Path) -> None:
    logs = copy.parent
    report = verify(logs)
    assert report.ok and (report.files, report.records) == (4, TOTAL_RECORDS)
    flip(copy / LAST, 9, b'"note": "event 8"', b'"note": "event 1"')
    assert first_problem(verify(logs)).startswith(f"{LAST} line 9: altered")
    result = logs_cli("verify", logs)
    assert result.exit_code == 1
    assert f"TAMPERED: {LAST} line 9: altered" in result.output


@pytest.mark.parametrize("make", ["empty", "logs folder with an empty runs folder"])
def test_a_folder_with_no_run_logs_is_an_error(tmp_path: Path, make: str) -> None:
    folder = tmp_path / "logs"
    (folder / "runs" if make != "empty" else folder).mkdir(parents=True)
    assert "nothing to verify" in first_problem(verify(folder))
    result = logs_cli("verify", folder)
    assert result.exit_code == 1 and "logs intact" not in result.output
    assert "nothing to verify" in result.output


def test_a_removed_last_run_is_named_by_the_ledger(copy: Path) -> None:
    drop_last_run(copy)
    assert verify(copy).ok  # the file and the index alone cannot tell
    run_id = LAST.removesuffix(".jsonl")
    # The ledger recorded the paths of the original folder, of which this is a copy.
    assert verify(
        copy, known_runs=known_runs(copy.parent.parent / "pristine" / "runs")
    ).problems == [
        f"run {run_id}: its log {LAST} is missing, and the ledger's runs table lists it "
        "(deleted, with its index line if it had one)"
    ]


def test_wiping_everything_is_named_by_the_ledger(runs: Path) -> None:
    known = known_runs(runs)
    for file in runs.iterdir():
        if file.is_file():
            file.unlink()
    problems = verify(runs, known_runs=known).problems
    assert "nothing to verify" in problems[0]
    assert sorted(p.split(":")[0] for p in problems[1:]) == sorted(f"run {r.run_id}" for r in known)


def test_a_run_that_ended_but_lost_its_closing_record_and_index_line_is_named(
    copy: Path,
) -> None:
    write(copy / LAST, read(copy / LAST)[:-1])
    write(copy / INDEX_NAME, read(copy / INDEX_NAME)[:-1])
    assert verify(copy).ok  # it looks like an interrupted run
    problems = verify(copy, known_runs=known_runs(copy)).problems
    assert problems == [
        f"run {LAST.removesuffix('.jsonl')}: the ledger says it ended (ok), but {LAST} has "
        f"no closing record and is not in {INDEX_NAME} (both removed?)"
    ]
    # A run the ledger marked interrupted (or still going) is no such case.
    assert verify(copy, known_runs=known_runs(copy, outcome="interrupted")).ok


def test_runs_logged_in_another_folder_are_not_this_folders_business(runs: Path) -> None:
    elsewhere = [KnownRun("other-1", "/srv/bot-2/logs/runs/other-1.jsonl", "ok")]
    assert verify(runs, known_runs=known_runs(runs) + elsewhere).ok


def test_cli_cross_checks_the_ledger_of_the_logs_folder(runs: Path, clock: FrozenClock) -> None:
    logs = runs.parent
    with_ledger(logs, clock)
    assert logs_cli("verify", logs).exit_code == 0
    drop_last_run(runs)
    result = logs_cli("verify", logs)
    assert result.exit_code == 1
    assert f"TAMPERED: run {LAST.removesuffix('.jsonl')}: its log {LAST} is missing" in (
        result.output
    )
    # The same through --ledger, and through the runs folder.
    url = f"sqlite:///{logs / 'ledger.sqlite3'}"
    assert logs_cli("verify", runs, "--ledger", url).exit_code == 1
    assert logs_cli("verify", runs).exit_code == 1
    assert logs_cli("verify", runs, "--no-ledger").exit_code == 0


def test_the_anchor_catches_a_consistent_rewrite(
    runs: Path, tmp_path: Path, clock: FrozenClock
) -> None:
    head = anchor_of(runs)
    seq, digest = head.split(":")
    assert seq == "3" and digest == line_hash(read(runs / INDEX_NAME)[-1])
    assert verify(runs, anchor=head).ok
    # Someone rewrites every file and the index, consistently.
    forged = tmp_path / "forged"
    clock.advance(seconds=5)
    write_runs(forged, clock)
    for name in (FIRST, ERP, DEMO2, LAST, INDEX_NAME):
        shutil.copy(forged / name, runs / name)
    assert verify(runs).ok  # the chain alone cannot tell
    assert first_problem(verify(runs, anchor=head)) == (
        f"{INDEX_NAME} line 4: does not match the anchor {head} "
        "(the logs were rewritten since it was taken)"
    )


def test_the_anchor_allows_later_runs_and_catches_removed_ones(
    runs: Path, copy: Path, clock: FrozenClock
) -> None:
    head = anchor_of(copy)
    later = open_log(runs, "demo-20261121T060000-gggggg.jsonl", clock)
    steps(later, clock, 2)
    later.close("ok")
    assert verify(runs, anchor=head).ok
    drop_last_run(copy)
    assert first_problem(verify(copy, anchor=head)).startswith(
        f"{INDEX_NAME}: 3 lines, but the anchor {head} names line 4"
    )


def test_cli_anchor_appends_and_verify_reads_the_kept_file(
    runs: Path, tmp_path: Path, copy: Path
) -> None:
    kept = tmp_path / "elsewhere" / "anchors.txt"
    kept.parent.mkdir()
    result = logs_cli("anchor", copy.parent, "--append", kept)
    assert result.exit_code == 0, result.output
    head = result.output.strip()
    assert head == anchor_of(copy)
    [line] = kept.read_text().splitlines()
    assert line.endswith(f" {copy.resolve()} {head}") and line[:4].isdigit()
    assert logs_cli("verify", copy.parent, "--anchor", kept).exit_code == 0
    assert logs_cli("verify", copy.parent, "--anchor", head).exit_code == 0
    drop_last_run(copy)
    result = logs_cli("verify", copy.parent, "--anchor", kept)
    assert result.exit_code == 1 and "names line 4" in result.output
    assert logs_cli("verify", copy, "--anchor", "nonsense").exit_code == 2
    # Tampered logs are not anchored.
    flip(runs / FIRST, 2, b'"note": "event 1"', b'"note": "event 2"')
    assert logs_cli("anchor", runs).exit_code == 1


def fail_index_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk when the index line is to be written."""

    def full(f: BinaryIO, path: Path, **fields: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runlog, "_append_index", full)


def test_a_run_whose_index_line_could_not_be_written_is_indexed_by_the_next(
    runs: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, next_name = "demo-20261121T070000-hhhhhh.jsonl", "demo-20261121T080000-iiiiii.jsonl"
    full = open_log(runs, name, clock)
    steps(full, clock, 3)
    with monkeypatch.context() as m:
        fail_index_writes(m)
        with pytest.raises(MachineFailure, match="No space left"):
            full.close("ok")
    report = verify(runs)
    assert report.ok, report.problems
    assert report.warnings == [
        f"{name}: closed but not yet in {INDEX_NAME}: its index line could not be written "
        "(a full disk?); the next run to start indexes it"
    ]
    following = open_log(runs, next_name, clock)  # the disk has room again
    steps(following, clock, 1)
    following.close("ok")
    entries = records(runs / INDEX_NAME)
    assert [e["file"] for e in entries[-2:]] == [name, next_name]
    assert entries[-2]["indexed_by"] == next_name.removesuffix(".jsonl")
    assert entries[-1]["after"] == entries[-2]["seq"]  # the next run chains after it
    assert not (runs / PENDING_DIR).exists()  # no marker left, nor their folder
    report = verify(runs)
    assert report.ok, report.problems
    assert report.warnings == [
        f"{name}: run {name.removesuffix('.jsonl')} was indexed late, by run "
        f"{next_name.removesuffix('.jsonl')} ({INDEX_NAME} line 5): its index line could "
        "not be written when it closed (a full disk?)"
    ]
    result = logs_cli("verify", runs, "--no-ledger")
    assert result.exit_code == 0 and "was indexed late, by run" in result.output


def test_half_an_index_line_is_cut_off_again(
    runs: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (runs / INDEX_NAME).read_bytes()
    log = open_log(runs, "demo-20261121T070000-jjjjjj.jsonl", clock)
    steps(log, clock, 1)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the index line is written, but the disk is full
        if os.readlink(f"/proc/self/fd/{fd}").endswith(INDEX_NAME):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(runlog.os, "fsync", fsync)
    with pytest.raises(MachineFailure, match="No space left"):
        log.close("ok")
    monkeypatch.undo()
    assert (runs / INDEX_NAME).read_bytes() == before
    assert verify(runs).ok
