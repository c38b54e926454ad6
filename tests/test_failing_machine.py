"""A failing machine (issue 12, item 4): a full disk, a read-only ledger, the logs folder
removed or replaced mid-run.

Each run stops at once with exit 3 naming the cause; no document is counted archived
that the ledger lacks; and the next run, against the same fake archive (its ground
truth), leaves every report in the archive exactly once. The ledger lives in the logs
folder, as by default. Faults are real where this machine allows (a small tmpfs, SQLite's
own read-only mode, ``rm -rf``) and injected at the write points otherwise.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

import bots.pipeline.context as context_module
from bots.errors import MachineFailure
from bots.ledger import Ledger, State
from bots.logchain import verify
from bots.pipeline import RunSummary
from bots.runlog import INDEX_NAME, RunLog
from bots.settings import Settings
from tests import test_pipeline
from tests.test_pipeline import REPORTS, Bench, assert_archived_once, keys, retry_command

bench = test_pipeline.bench  # the fake-driver bench, with its fake systems


@pytest.fixture
def machine(bench: Bench) -> Bench:
    """The bench with its ledger in the logs folder, where a run keeps it by default."""
    logs = bench.tmp / "logs"
    bench.settings = Settings(logs_dir=logs, ledger_url=f"sqlite:///{logs}/ledger.sqlite3", env={})
    return bench


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The ledger and run log each run opens, as the run holds them."""
    held: dict[str, Any] = {}
    real_open = Ledger.open

    def ledger_open(*args: Any, **kwargs: Any) -> Ledger:
        held["ledger"] = real_open(*args, **kwargs)
        return held["ledger"]

    class KeptLog(RunLog):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            held["log"] = self

    monkeypatch.setattr(context_module.Ledger, "open", ledger_open)
    monkeypatch.setattr(context_module, "RunLog", KeptLog)
    return held


def at_r2_after_upload(bench: Bench, action: Any) -> None:
    """``action`` once R2's upload went through, before the run records it."""
    bench.archive.hook("read", action, key="R2", phase="upload")


def assert_stopped_by_the_machine(bench: Bench, summary: RunSummary, cause: str) -> None:
    assert summary.exit_code == 3, summary.line()
    assert summary.machine_failure is not None and cause in summary.machine_failure
    assert cause in summary.line()
    # Counted archived only what the ledger (the one the next run reads) holds confirmed.
    for doc in summary.archived:
        assert bench.doc(doc.source_key).state is State.CONFIRMED


def assert_the_next_run_finishes_without_duplicates(bench: Bench) -> RunSummary:
    bench.archive.heal()
    again = bench.run()
    assert again.exit_code == 0, again.line()
    assert_archived_once(bench, REPORTS)
    assert len(bench.archive.items) == len(REPORTS)
    assert set(bench.states().values()) == {State.CONFIRMED}
    return again


def run_lines(summary: RunSummary) -> list[dict[str, Any]]:
    """Every line of the run's file parses: no half-written line was left."""
    return [json.loads(line) for line in summary.log_path.read_text("utf-8").splitlines()]


def indexed(bench: Bench) -> list[str]:
    index = bench.settings.runs_dir / INDEX_NAME
    if not index.exists():
        return []
    return [json.loads(line)["run_id"] for line in index.read_text("utf-8").splitlines()]


# -- the logs folder removed or replaced ---------------------------------------------


def test_a_logs_folder_removed_mid_run_stops_it_and_the_next_run_adds_no_duplicate(
    machine: Bench,
) -> None:
    logs = machine.settings.logs_dir
    machine.source.hook("download", lambda: shutil.rmtree(logs), key="R2")

    summary = machine.run()

    # Removed, then made again by R2's download into staging: no longer the same folder.
    assert_stopped_by_the_machine(machine, summary, "the logs folder")
    assert keys(summary.archived) == ["R1"]
    assert "written back" in summary.machine_failure  # type: ignore[operator]
    assert machine.archive.keys_touched() == {"R1"}
    # Nothing of the lost run went into the folder that took the old one's place: an
    # index entry there would name a run file that is not beside it.
    assert summary.run_id not in indexed(machine)
    assert not summary.log_path.exists()

    again = assert_the_next_run_finishes_without_duplicates(machine)
    assert keys(again.archived) == ["R2", "R3"]
    assert machine.archive.count("upload", key="R1") == 1


def test_a_logs_folder_removed_after_an_upload_is_found_in_the_archive_never_uploaded_again(
    machine: Bench,
) -> None:
    logs = machine.settings.logs_dir
    at_r2_after_upload(machine, lambda: shutil.rmtree(logs))

    summary = machine.run()

    assert_stopped_by_the_machine(machine, summary, "the logs folder")
    assert "was removed" in summary.machine_failure  # type: ignore[operator]
    assert keys(summary.archived) == ["R1"]
    # R2 is in the archive, and the ledger written back says its upload may have gone
    # through. Its staged file went with the folder: the next run fetches it again (the
    # same SHA-256 as captured), looks it up with `find` first and confirms the copy the
    # archive holds, instead of uploading it again.
    assert len(machine.archive.holding("R2")) == 1
    assert machine.doc("R2").state is State.UPLOADING

    machine.archive.heal()
    again = machine.run()

    assert again.exit_code == 0, again.line()
    assert keys(again.archived) == ["R2", "R3"]
    assert_archived_once(machine, REPORTS)

    assert machine.archive.count("upload", key="R2") == 1
    assert machine.archive.count("find", key="R2") == 1
    assert machine.states() == {s: State.CONFIRMED for s in ("R1", "R2", "R3")}


def test_a_logs_folder_replaced_mid_run_stops_it_and_the_next_run_adds_no_duplicate(
    machine: Bench,
) -> None:
    logs = machine.settings.logs_dir

    def replace() -> None:
        logs.rename(logs.with_name("logs.old"))
        logs.mkdir()

    machine.source.hook("download", replace, key="R2")

    summary = machine.run()

    assert_stopped_by_the_machine(machine, summary, "replaced by another")
    assert keys(summary.archived) == ["R1"]
    assert summary.run_id not in indexed(machine)

    assert_the_next_run_finishes_without_duplicates(machine)


def test_a_ledger_replaced_by_another_is_not_overwritten_and_the_error_says_where_it_went(
    machine: Bench,
) -> None:
    ledger = Path(machine.settings.ledger_url.removeprefix("sqlite:///"))
    backup = machine.tmp / "backup.sqlite3"

    def restore_an_old_copy() -> None:
        shutil.copy(ledger, backup)
        ledger.unlink()
        shutil.copy(backup, ledger)

    at_r2_after_upload(machine, restore_an_old_copy)

    summary = machine.run()

    assert_stopped_by_the_machine(machine, summary, "replaced by another")
    kept = ledger.with_name(f"{ledger.name}.from-{summary.run_id}")
    assert f"this run's was written to {kept}" in summary.machine_failure  # type: ignore[operator]
    with sqlite3.connect(kept) as copy:
        states = dict(copy.execute("select source_key, state from documents"))
    assert states["R1"] == State.CONFIRMED and states["R2"] == State.UPLOADING


# -- a full disk ---------------------------------------------------------------------


class FullDisk:
    """A run log's file on a disk that fills up: a write gets 7 bytes through, then
    every write fails with ENOSPC, as the kernel does."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self._room = 7

    def write(self, data: bytes) -> int:
        if self._room == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self._file.write(bytes(data[: self._room]))
        self._room -= written
        return int(written)

    def fileno(self) -> int:
        return int(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def test_a_full_disk_under_the_run_log_stops_the_run_and_leaves_whole_lines(
    machine: Bench, opened: dict[str, Any]
) -> None:
    def fill() -> None:
        log = opened["log"]
        log._file = FullDisk(log._file)

    at_r2_after_upload(machine, fill)

    summary = machine.run()

    assert_stopped_by_the_machine(machine, summary, "the disk is full (ENOSPC")
    assert keys(summary.archived) == ["R1"]
    assert run_lines(summary)[-1]["event"] != "run_end"  # reads as a killed run
    assert summary.run_id not in indexed(machine)
    report = verify(machine.settings.runs_dir)
    assert report.ok, report.problems

    assert_the_next_run_finishes_without_duplicates(machine)
    assert machine.archive.count("upload", key="R2") == 1


@pytest.mark.parametrize(
    ("said", "cause"),
    [
        ("database or disk is full", "the disk is full"),
        ("disk I/O error", "a disk I/O error"),
        ("attempt to write a readonly database", "the ledger is read-only"),
    ],
)
def test_a_ledger_that_cannot_write_stops_the_run_naming_why(
    machine: Bench, opened: dict[str, Any], said: str, cause: str
) -> None:
    def fail_writes() -> None:
        def refuse(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if not statement.lstrip().upper().startswith("SELECT"):
                raise sqlite3.OperationalError(said)

        event.listen(opened["ledger"].engine, "before_cursor_execute", refuse)

    at_r2_after_upload(machine, fail_writes)

    summary = machine.run()

    assert_stopped_by_the_machine(machine, summary, cause)
    assert keys(summary.archived) == ["R1"]
    assert machine.doc("R2").state is State.UPLOADING  # the intent was written before
    # The run log is whole and closed: only the ledger failed.
    assert run_lines(summary)[-1]["event"] == "run_end"

    assert_the_next_run_finishes_without_duplicates(machine)
    assert machine.archive.count("upload", key="R2") == 1


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs, where this machine lets the tests mount one (root, in a container
    that allows it); otherwise the simulated full disks above stand in."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    tools = "/usr/bin:/bin:/usr/sbin:/sbin"  # the bench empties PATH
    mount_cmd, umount_cmd = shutil.which("mount", path=tools), shutil.which("umount", path=tools)
    if os.geteuid() != 0 or mount_cmd is None or umount_cmd is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        [mount_cmd, "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace')}")
    try:
        yield mount
    finally:
        subprocess.run([umount_cmd, "-l", str(mount)], check=False)


def test_a_really_full_disk_stops_the_run_and_the_next_run_adds_no_duplicate(
    machine: Bench, small_disk: Path
) -> None:
    logs = small_disk / "logs"
    machine.settings = Settings(
        logs_dir=logs, ledger_url=f"sqlite:///{logs}/ledger.sqlite3", env={}
    )
    filler = small_disk / "filler"

    def fill() -> None:
        with open(filler, "wb", buffering=0) as f:
            while True:
                try:
                    f.write(b"\0" * 65536)
                except OSError:
                    break
            while True:
                try:
                    f.write(b"\0")
                except OSError:
                    break

    at_r2_after_upload(machine, fill)

    summary = machine.run()

    assert_stopped_by_the_machine(machine, summary, "the disk is full")
    assert "R2" not in keys(summary.archived)
    filler.unlink()

    assert_the_next_run_finishes_without_duplicates(machine)
    assert machine.archive.count("upload", key="R2") == 1


# -- a read-only ledger ----------------------------------------------------------------


def test_a_read_only_ledger_mid_run_stops_it_with_exit_3(
    machine: Bench, opened: dict[str, Any]
) -> None:
    def read_only() -> None:  # SQLite's own read-only mode: its real error
        engine = opened["ledger"].engine
        event.listen(engine, "checkout", lambda dbapi, *_: dbapi.execute("PRAGMA query_only=ON"))

    at_r2_after_upload(machine, read_only)

    summary = machine.run()

    assert_stopped_by_the_machine(machine, summary, "the ledger is read-only")
    assert "attempt to write a readonly database" in summary.line()
    assert keys(summary.archived) == ["R1"]

    assert_the_next_run_finishes_without_duplicates(machine)


def test_a_ledger_read_only_from_the_start_is_exit_3_not_a_traceback(machine: Bench) -> None:
    machine.archive.refuse(key="R2")
    machine.run()  # the ledger exists, and R2 is held: something for `retry` to write
    path = machine.settings.ledger_url.removeprefix("sqlite:///")
    machine.settings = Settings(
        logs_dir=machine.settings.logs_dir,
        ledger_url=f"sqlite:///file:{path}?mode=ro&uri=true",
        env={},
    )

    with pytest.raises(MachineFailure, match="the ledger is read-only"):
        machine.run()
    code, output = retry_command(machine, "R2")

    assert code == 3, output
    assert "the ledger is read-only" in output and "Traceback" not in output
