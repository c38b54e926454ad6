"""RecipeLock: one run per recipe at a time, a dead holder's lock taken over (no browser)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bots.errors import EXIT_LOCKED, Locked
from bots.lock import RecipeLock
from tests.conftest import ROOT


def now() -> datetime:
    return datetime.now().astimezone()


def dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


@pytest.fixture
def locks(tmp_path: Path) -> Iterator[list[RecipeLock]]:
    """Locks made by a test; every one is released afterwards."""
    made: list[RecipeLock] = []
    yield made
    for lock in made:
        lock.release()


def new_lock(locks: list[RecipeLock], directory: Path, recipe: str = "demo") -> RecipeLock:
    lock = RecipeLock(directory, recipe)
    locks.append(lock)
    return lock


def holder_of(directory: Path, recipe: str = "demo") -> str:
    return (directory / f"{recipe}.lock").read_text(encoding="utf-8")


def test_acquire_records_this_process_as_holder_and_release_clears_it(
    tmp_path: Path, locks: list[RecipeLock]
) -> None:
    lock = new_lock(locks, tmp_path / "locks")
    lock.acquire(wait=None, now=now, run_id="demo-run-1")
    holder = json.loads(holder_of(tmp_path / "locks"))
    assert holder["pid"] == os.getpid()
    assert holder["host"] == socket.gethostname()
    assert holder["run_id"] == "demo-run-1"
    assert datetime.fromisoformat(holder["since"]).tzinfo is not None
    assert lock.taken_over is None
    lock.release()
    assert holder_of(tmp_path / "locks") == ""  # a clean end leaves no holder to report


def test_second_lock_on_the_same_recipe_is_refused_at_once_naming_the_holder_pid(
    tmp_path: Path, locks: list[RecipeLock]
) -> None:
    new_lock(locks, tmp_path).acquire(wait=None, now=now)
    started = time.monotonic()
    with pytest.raises(Locked) as refused:
        new_lock(locks, tmp_path).acquire(wait=None, now=now)
    assert time.monotonic() - started < 1.0  # at once, no polling
    message = str(refused.value)
    assert "'demo' is already running" in message
    assert f"pid {os.getpid()} on {socket.gethostname()}" in message
    assert "at once" in message and "--wait" in message
    assert refused.value.exit_code == EXIT_LOCKED == 75


def test_locks_of_different_recipes_do_not_block_each_other(
    tmp_path: Path, locks: list[RecipeLock]
) -> None:
    new_lock(locks, tmp_path, "demo").acquire(wait=None, now=now)
    new_lock(locks, tmp_path, "finance").acquire(wait=None, now=now)  # no Locked


def test_acquire_with_wait_waits_about_that_long_then_gives_up(
    tmp_path: Path, locks: list[RecipeLock]
) -> None:
    new_lock(locks, tmp_path).acquire(wait=None, now=now)
    started = time.monotonic()
    with pytest.raises(Locked) as refused:
        new_lock(locks, tmp_path).acquire(wait=0.5, now=now)
    waited = time.monotonic() - started
    assert 0.45 <= waited < 2.0
    assert "after waiting 0.5s" in str(refused.value)


def test_after_release_another_lock_can_acquire(tmp_path: Path, locks: list[RecipeLock]) -> None:
    first = new_lock(locks, tmp_path)
    first.acquire(wait=None, now=now)
    first.release()
    second = new_lock(locks, tmp_path)
    second.acquire(wait=None, now=now, run_id="second")
    assert json.loads(holder_of(tmp_path))["run_id"] == "second"
    assert second.taken_over is None  # a released lock is not a take-over


def test_waiting_acquire_gets_the_lock_as_soon_as_the_holder_releases(
    tmp_path: Path, locks: list[RecipeLock]
) -> None:
    first = new_lock(locks, tmp_path)
    first.acquire(wait=None, now=now)
    second = new_lock(locks, tmp_path)
    entered, done = threading.Event(), threading.Event()
    outcome: list[BaseException | float] = []

    def queue() -> None:
        entered.set()
        try:
            second.acquire(wait=30, now=now, run_id="queued")
            outcome.append(time.monotonic())
        except BaseException as exc:  # reported to the test below
            outcome.append(exc)
        done.set()

    waiter = threading.Thread(target=queue)
    waiter.start()
    try:
        assert entered.wait(10)
        assert not done.wait(0.6), f"the waiter got a lock that is held: {outcome}"
        released = time.monotonic()
        first.release()
        assert done.wait(5), "the waiter must get the lock within a few polls"
    finally:
        first.release()
        waiter.join(timeout=35)
    assert len(outcome) == 1 and isinstance(outcome[0], float), outcome
    assert released <= outcome[0] < released + 5
    assert json.loads(holder_of(tmp_path))["run_id"] == "queued"


def test_a_lock_file_naming_a_dead_holder_is_taken_over_and_reported(
    tmp_path: Path, locks: list[RecipeLock]
) -> None:
    stale = {"pid": dead_pid(), "host": socket.gethostname(), "since": "2026-11-20T02:15:00+08:00"}
    (tmp_path / "demo.lock").write_text(json.dumps(stale), encoding="utf-8")
    lock = new_lock(locks, tmp_path)
    lock.acquire(wait=None, now=now, run_id="after-crash")
    assert lock.taken_over == stale
    assert json.loads(holder_of(tmp_path))["pid"] == os.getpid()


def test_a_dead_holder_on_another_host_is_not_reported_as_taken_over(
    tmp_path: Path, locks: list[RecipeLock]
) -> None:
    """A pid means nothing on another machine: no claim about it is made."""
    stale = {"pid": dead_pid(), "host": "some-other-host.invalid", "since": "2026-11-20"}
    (tmp_path / "demo.lock").write_text(json.dumps(stale), encoding="utf-8")
    lock = new_lock(locks, tmp_path)
    lock.acquire(wait=None, now=now)
    assert lock.taken_over is None


def test_a_garbled_lock_file_does_not_stop_a_run(tmp_path: Path, locks: list[RecipeLock]) -> None:
    (tmp_path / "demo.lock").write_bytes(b"\xff\xfe not json")
    lock = new_lock(locks, tmp_path)
    lock.acquire(wait=None, now=now)
    assert lock.taken_over is None
    assert json.loads(holder_of(tmp_path))["pid"] == os.getpid()


HOLDER = """
import subprocess, sys, time
from datetime import datetime
from pathlib import Path
from bots.lock import RecipeLock
lock = RecipeLock(Path(sys.argv[1]), "demo")
lock.acquire(wait=None, now=lambda: datetime.now().astimezone(), run_id="child")
grandchild = None
if sys.argv[2] == "spawn":  # as the runner starts Chromium: a child that outlives us
    grandchild = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], close_fds=False
    )
print("HELD", grandchild.pid if grandchild else 0, flush=True)
time.sleep(60)
"""


def start_holder(directory: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    """A child process that takes the lock and sleeps (at most a minute)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if readable else ""
    if not line.startswith("HELD"):
        proc.kill()
        proc.wait(timeout=30)
        pytest.fail(f"the child did not take the lock: {line!r}")
    return proc, int(line.split()[1])


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it is gone already
        os.kill(pid, signal.SIGKILL)


def test_a_lock_held_by_another_process_blocks_us_until_that_process_is_killed(
    tmp_path: Path, locks: list[RecipeLock]
) -> None:
    child, _ = start_holder(tmp_path, "plain")
    try:
        with pytest.raises(Locked, match=f"pid {child.pid} "):
            new_lock(locks, tmp_path).acquire(wait=None, now=now)
        child.kill()  # SIGKILL: no clean-up runs; the kernel drops the flock
        child.wait(timeout=30)
        lock = new_lock(locks, tmp_path)
        lock.acquire(wait=None, now=now)
        assert lock.taken_over is not None and lock.taken_over["pid"] == child.pid
        assert lock.taken_over["run_id"] == "child"
    finally:
        kill(child.pid)
        child.wait(timeout=30)
        if child.stdout:
            child.stdout.close()


def test_children_of_a_killed_holder_do_not_keep_its_lock(
    tmp_path: Path, locks: list[RecipeLock]
) -> None:
    """The runner's lock is not inherited by what it starts (Chromium), so a browser
    left behind by a killed run cannot block the next run."""
    child, grandchild = start_holder(tmp_path, "spawn")
    try:
        assert grandchild > 0
        child.kill()
        child.wait(timeout=30)
        os.kill(grandchild, 0)  # still alive (raises if not)
        lock = new_lock(locks, tmp_path)
        lock.acquire(wait=None, now=now)
        assert lock.taken_over is not None and lock.taken_over["pid"] == child.pid
    finally:
        kill(child.pid)
        child.wait(timeout=30)
        kill(grandchild)
        if child.stdout:
            child.stdout.close()
