"""A fleet on this machine, for the benches and the chaos run.

Worker processes (``runner.py worker``) on one PostgreSQL schema of their own (the
ledger and the queue), each with a logs folder of its own as if on a machine of its own,
and each in a process group of its own: a SIGKILL of the group takes its browsers too,
as a crash does. What the rig reads back (confirmed documents, jobs in the queue,
registered workers) it reads from the database, through the ledger's API or the queue's
tables.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bench.pgschema import postgres_schema
from bots.ledger import Ledger, State
from bots.pipeline import local_now

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SERVER_ENV = ("FLEET_BENCH_DATABASE_URL", "FLEET_TEST_DATABASE_URL")

# Short timings (every worker of a fleet must share them): a SIGKILLed worker's job is
# back in the queue within about 5 s, its recipe and document leases free within 6 s.
# Session slots keep 30 s: a lane beats its slots only once it has logged in to every
# system, and starting Chromium and logging in on a loaded machine under faults can take
# longer than a short slot lives (the slot then goes to another worker meanwhile).
FAST = {
    "FLEET_HEARTBEAT_SECONDS": "1",
    "FLEET_STALLED_AFTER_SECONDS": "4",
    "FLEET_SWEEP_SECONDS": "1",
    "FLEET_LEASE_TTL_SECONDS": "6",
    "FLEET_SLOT_TTL_SECONDS": "30",
}
COMMAND_TIMEOUT = 300.0  # seconds for `ledger upgrade` or `run --fleet`: a bound
STOP_TIMEOUT = 120.0  # seconds a worker may take to finish its document after SIGTERM
POLL = 0.2  # seconds between looks at a simulator or the database


def server_url(given: str | None = None) -> str:
    """The PostgreSQL server the benches use: ``given``, else the first of SERVER_ENV
    that is set, else the local server the test command provides."""
    if given:
        return given
    return next((os.environ[v] for v in SERVER_ENV if os.environ.get(v)), DEFAULT_SERVER)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, poll: float = POLL) -> Any:
    """Poll ``predicate`` until it returns something true; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not within {timeout:g} s: {what}")
        time.sleep(poll)
    return value


@dataclass
class Worker:
    number: int
    proc: subprocess.Popen[bytes]
    output: Path  # its stdout and stderr
    _file: IO[bytes]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def said(self, last: int = 800) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")[-last:]


@dataclass
class Rig:
    """The fleet's database (``url``), the environment every command gets, and the
    workers started so far (killed ones included: their exit codes are the record)."""

    url: str
    env: dict[str, str]
    root: Path
    engine: Engine
    workers: list[Worker] = field(default_factory=list)

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``runner.py ARGS`` with the fleet's environment, to its end (bounded)."""
        return subprocess.run(
            [sys.executable, "runner.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )

    def checked(self, *args: str) -> str:
        done = self.command(*args)
        if done.returncode != 0:
            raise RuntimeError(
                f"runner.py {' '.join(args)} exited {done.returncode}: "
                f"{(done.stdout + done.stderr)[-800:]}"
            )
        return done.stdout

    def logs(self, number: int) -> Path:
        return self.root / f"machine-{number}" / "logs"

    def start_worker(self, lanes: int = 1) -> Worker:
        """``runner.py worker --lanes N``: a machine of its own (its logs folder), in a
        process group of its own. Its output goes to a file (a pipe nobody reads would
        stop it once full)."""
        number = len(self.workers)
        output = self.root / f"machine-{number}" / "worker.out"
        output.parent.mkdir(parents=True, exist_ok=True)
        file = open(output, "wb")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(
            [sys.executable, "runner.py", "worker", "--lanes", str(lanes)],
            cwd=ROOT,
            env={**self.env, "FLEET_LOGS_DIR": str(self.logs(number))},
            stdout=file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = Worker(number, proc, output, file)
        self.workers.append(worker)
        return worker

    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.alive]

    def kill(self, worker: Worker) -> None:
        """SIGKILL the worker's process group: the worker and its browsers, at once."""
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()

    def stop(self) -> list[int]:
        """SIGTERM every live worker, then wait for each to finish its document and log
        out (bounded: one that overruns is SIGKILLed, and its code says so). Every
        worker's exit code, in the order started."""
        for worker in self.alive():
            worker.proc.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(worker.proc.pid, signal.SIGKILL)
                worker.proc.wait()
            worker._file.close()
        return [w.proc.returncode for w in self.workers]

    def verify_logs(self) -> dict[int, str]:
        """``runner.py logs verify`` on each machine's logs folder (cross-checked with the
        fleet's ledger): what it said, by worker, for each that was not intact."""
        broken = {}
        for worker in self.workers:
            logs = self.logs(worker.number)
            if not (logs / "runs").is_dir():
                continue  # killed before it opened its run log
            done = self.command("logs", "verify", "--logs-dir", str(logs))
            if done.returncode != 0:
                broken[worker.number] = (done.stdout + done.stderr).strip()[:500]
        return broken

    # -- what the database says ----------------------------------------------------------

    def _count(self, query: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(query)).scalar_one())

    def registered(self) -> int:
        """Workers with a row in the queue (a started worker is ready once it has one)."""
        return self._count("SELECT count(*) FROM procrastinate_workers")

    def wait_registered(self, count: int, timeout: float = 120.0) -> None:
        def ready() -> bool:
            dead = [w for w in self.workers if w.proc.poll() not in (None, -signal.SIGKILL)]
            if dead:
                raise RuntimeError(f"worker {dead[0].number} exited: {dead[0].said()}")
            return self.registered() >= count

        wait_for(ready, timeout, f"{count} workers registered in the queue")

    def busy_jobs(self) -> int:
        """Jobs waiting (scheduled later ones too) or running: 0 when the fleet is idle."""
        return self._count(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        )

    def job_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1")
            )
            return {str(status): int(n) for status, n in rows}

    def ledger(self) -> Ledger:
        return Ledger(self.url, local_now, staging_root=self.root / "staging")

    def confirmed(self, recipe: str) -> int:
        try:
            with self.ledger() as opened:
                return opened.state_counts(recipe).get(State.CONFIRMED.value, 0)
        except SQLAlchemyError:  # the ledger not listed into yet
            return 0

    def log_dirs(self) -> list[Path]:
        return [self.logs(w.number) for w in self.workers]


@contextmanager
def fleet_rig(server: str, root: Path, env: dict[str, str]) -> Iterator[Rig]:
    """A schema of its own on ``server`` with the ledger and the queue's schema applied
    (``runner.py ledger upgrade``); every worker stopped and the schema dropped on exit."""
    with postgres_schema(server, prefix="fleet_bench") as url:
        engine = create_engine(url)
        rig = Rig(url, {**env, "FLEET_DATABASE_URL": url}, root, engine)
        try:
            rig.checked("ledger", "upgrade")
            yield rig
        finally:
            rig.stop()
            engine.dispose()


def log_events(log_dirs: list[Path]) -> Iterator[dict[str, Any]]:
    """Every event of every run log under ``log_dirs`` (one logs folder per machine); a
    SIGKILLed process's torn last line is passed over."""
    for logs in log_dirs:
        for path in sorted((logs / "runs").glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def document_phase(log_dirs: list[Path]) -> float | None:
    """Seconds from the first document started to the last confirmed, across the run
    logs under ``log_dirs``; None when no document was confirmed."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for event in log_events(log_dirs):
        if event["event"] == "document_start":
            starts.append(datetime.fromisoformat(event["ts"]))
        elif event["event"] == "state" and event["details"].get("to") == "confirmed":
            ends.append(datetime.fromisoformat(event["ts"]))
    if not starts or not ends:
        return None
    return (max(ends) - min(starts)).total_seconds()
