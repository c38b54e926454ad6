"""Throughput: parallel sessions in one run, and fleet workers on one PostgreSQL.

    python bench/fleet.py                          # 100 reports; 1, 2, 4 sessions; 2, 4 workers
    python bench/fleet.py --reports 30 --workers ""   # sessions only (no PostgreSQL needed)

Every measurement has fresh simulators, both with ``--latency-ms`` per request (100 ms by
default: a slow legacy system), uncapped, and ``--reports`` reports to capture.

- ``sessions N``: one ``runner.py run`` of the demo recipe with ``sessions: N`` on both
  systems (its SQLite ledger); wall time from starting the run to its end.
- ``workers N``: N ``runner.py worker --lanes 1`` processes on this machine, each with a
  logs folder of its own, on a PostgreSQL schema of their own (dropped after: see
  bench/fleetrig.py), the recipe's ``sessions:`` = N so that the cap is not the limit.
  Wall time from deferring the listing (``run --fleet``) to the archive simulator holding
  every report; the workers are started and registered before.

- ``script xN`` (``--scripts``): N copies of the hand-written script (bench/handwritten.py,
  what bench/overhead.py measures the fleet against) side by side, each listing and
  taking every N-th report: what a user writes instead, and this machine's ceiling for
  it. Judged by the simulators' state (each report archived once, digests equal).

Each line: documents per minute over the whole wall time and the speed-up over the first
line (1 session), and the same over the document phase alone (first document started to
last confirmed, from the run logs: no start-up, login or listing). Every measurement is
judged against ground truth (each report archived once, digests equal, the ledger
agreeing: bench/chaos.py ``ground_truth``) and shows the most sessions each simulator saw
logged in at once. A second line says where the CPU went (bench/cpumeter.py): CPU-seconds
per document by kind of process, and how many cores were kept busy on average; on a
2-core machine that figure, not the simulators' latency, bounds the speed-up. Exits 1 when
a measurement's ground truth is not clean.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chaos import (  # noqa: E402
    SEEDED_CATALOGUE_MAX,
    Truth,
    demo_env,
    ground_truth,
    upload_recipe,
)  # noqa: E402
from bench.cpumeter import CpuMeter  # noqa: E402
from bench.fleetrig import document_phase, fleet_rig, server_url, wait_for  # noqa: E402
from bench.overhead import HAND as HANDWRITTEN  # noqa: E402
from bench.overhead import judge_archive  # noqa: E402
from bots.demo import simulator  # noqa: E402
from bots.ledger import Ledger  # noqa: E402
from bots.pipeline import local_now  # noqa: E402
from sims.control import get_json, post_json  # noqa: E402

RUN_TIMEOUT = 3600.0  # seconds for one measurement: a bound, not an expectation
ARCHIVE_POLL = 0.5  # seconds between looks at the archive's /_sim/state


@dataclass
class World:
    """Both simulators of one measurement and the environment its commands get."""

    erp: str
    archive: str
    env: dict[str, str]
    work: Path

    def state(self, system: str) -> Any:
        return get_json(f"{getattr(self, system)}/_sim/state")

    def archived(self) -> int:
        return len(self.state("archive")["items"])

    def peaks(self) -> dict[str, int]:
        return {s: self.state(s)["sessions"]["peak"] for s in ("erp", "archive")}

    def truth(self, ledger: Ledger) -> Truth:
        return ground_truth(
            self.state("erp")["reports"], self.state("archive")["items"], ledger, "demo"
        )


@contextmanager
def world(work: Path, reports: int, latency_ms: int, seed: int) -> Iterator[World]:
    """Fresh simulators (``latency_ms`` on every request, uncapped) holding ``reports``
    reports, and a keyring with the demo's credentials; stopped on exit."""
    env = demo_env(work, f"bench-fleet-key-{seed}")
    seeded = min(reports, SEEDED_CATALOGUE_MAX)
    latency = ["--latency-ms", f"{latency_ms},{latency_ms}"]
    with ExitStack() as stack:
        erp = stack.enter_context(
            simulator(
                "sims.erp",
                ["--reports", str(seeded), "--seed", str(seed), "--gen-seconds", "1", *latency],
                work / "erp.log",
            )
        )
        archive = stack.enter_context(
            simulator(
                "sims.archive",
                ["--data", str(work / "archive-data"), *latency],
                work / "archive.log",
            )
        )
        if reports > seeded:
            post_json(f"{erp}/_sim/publish", {"count": reports - seeded})
        yield World(erp, archive, {**env, "ERP_URL": erp, "ARCHIVE_URL": archive}, work)


@dataclass
class Measurement:
    label: str
    reports: int
    wall_s: float
    phase_s: float | None  # the document phase, when the run logs show one
    peaks: dict[str, int]
    truth: Truth

    def per_minute(self, seconds: float | None) -> float | None:
        return self.reports * 60.0 / seconds if seconds else None

    def line(self, base: Measurement) -> str:
        def rate(mine: float | None, theirs: float | None) -> str:
            if mine is None:
                return "      -"
            speedup = f" ({mine / theirs:.2f}x)" if theirs else ""
            return f"{mine:6.1f}/min{speedup}"

        t = self.truth
        verdict = (
            "clean"
            if t.clean
            else f"NOT CLEAN missing={len(t.missing)} duplicated={len(t.duplicated)} "
            f"digest_mismatch={len(t.digest_mismatch)} ledger_disagrees={len(t.ledger_disagrees)} "
            f"number_breaks={len(t.number_breaks)}"
        )
        phase = f"{self.phase_s:.1f}s" if self.phase_s else "-"
        whole = rate(self.per_minute(self.wall_s), base.per_minute(base.wall_s))
        documents = rate(self.per_minute(self.phase_s), base.per_minute(base.phase_s))
        return (
            f"fleet: {self.label:<10} reports={self.reports} wall={self.wall_s:.1f}s {whole}  "
            f"documents={phase} {documents}  "
            f"peak_sessions[erp={self.peaks['erp']},archive={self.peaks['archive']}]  {verdict}"
        )


def measure_sessions(
    work: Path, sessions: int, reports: int, latency_ms: int, seed: int
) -> Measurement:
    """One run of the recipe with ``sessions`` sessions on each system."""
    recipe = upload_recipe("form", work / "recipe", sessions=sessions)
    with world(work, reports, latency_ms, seed) as w:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "runner.py", "run", str(recipe)],
            cwd=ROOT,
            env=w.env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        wall = time.monotonic() - started
        if done.returncode != 0:
            print(f"fleet: the run exited {done.returncode}: {(done.stdout + done.stderr)[-500:]}")
        logs = work / "logs"
        ledger = Ledger(
            f"sqlite:///{logs / 'ledger.sqlite3'}", local_now, staging_root=logs / "staging"
        )
        return Measurement(
            f"sessions {sessions}",
            reports,
            wall,
            document_phase([logs]),
            w.peaks(),
            w.truth(ledger),
        )


def measure_workers(
    work: Path, workers: int, reports: int, latency_ms: int, seed: int, server: str
) -> Measurement:
    """``workers`` worker processes of one lane each, the recipe allowing as many sessions."""
    recipe = upload_recipe("form", work / "recipe", sessions=workers)
    with world(work, reports, latency_ms, seed) as w, fleet_rig(server, work, w.env) as rig:
        for _ in range(workers):
            rig.start_worker(lanes=1)
        rig.wait_registered(workers)
        started = time.monotonic()
        rig.checked("run", str(recipe), "--fleet")

        def all_archived() -> bool:
            dead = [x for x in rig.workers if not x.alive]
            if dead:
                raise RuntimeError(f"worker {dead[0].number} exited: {dead[0].said()}")
            return w.archived() >= reports

        wait_for(
            all_archived, RUN_TIMEOUT, f"the archive holds all {reports} reports", ARCHIVE_POLL
        )
        wall = time.monotonic() - started
        # The last upload is archived before the ledger says confirmed: wait for the fleet
        # to finish its jobs, so that the ledger is judged as it is left.
        wait_for(lambda: rig.busy_jobs() == 0, RUN_TIMEOUT, "the queue to empty")
        codes = rig.stop()
        if any(codes):
            print(f"fleet: a worker did not stop with 0 on SIGTERM: exit codes {codes}")
        return Measurement(
            f"workers {workers}",
            reports,
            wall,
            document_phase(rig.log_dirs()),
            w.peaks(),
            w.truth(rig.ledger()),
        )


def measure_scripts(
    work: Path, copies: int, reports: int, latency_ms: int, seed: int
) -> tuple[float, list[str]]:
    """``copies`` of the hand-written script (bench/handwritten.py) side by side, each
    taking every ``copies``-th report: what a user does instead of sessions. The wall
    time and what the archive's state says went wrong (bench/overhead.py's judge)."""
    with world(work, reports, latency_ms, seed) as w:
        started = time.monotonic()
        scripts = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(HANDWRITTEN),
                    w.erp,
                    w.archive,
                    str(work / f"files-{n}"),
                    f"{n}/{copies}",
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(copies)
        ]
        failures = []
        for script in scripts:
            _, err = script.communicate(timeout=RUN_TIMEOUT)
            if script.returncode:
                failures.append(f"a script exited {script.returncode}: {err[-300:]}")
        wall = time.monotonic() - started
        return wall, failures + judge_archive(w.erp, w.archive, None)


def counts(text: str) -> list[int]:
    """``"2,4"`` -> [2, 4]; ``""`` or ``"0"`` -> none."""
    return [int(n) for n in text.split(",") if n.strip() and int(n) > 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=100)
    parser.add_argument(
        "--sessions", default="1,2,4", help="sessions per run to measure (first: the base)"
    )
    parser.add_argument(
        "--workers", default="2,4", help='worker processes to measure ("" for none: no PostgreSQL)'
    )
    parser.add_argument(
        "--scripts",
        default="1,4",
        help='copies of the hand-written script side by side to measure too ("" for none)',
    )
    parser.add_argument(
        "--latency-ms", type=int, default=100, help="per request, on both simulators"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--database", help="PostgreSQL server URL (default: $FLEET_BENCH_DATABASE_URL, ...)"
    )
    parser.add_argument("--workdir", type=Path, help="keep every measurement's logs and data here")
    args = parser.parse_args(argv)
    common = {"reports": args.reports, "latency_ms": args.latency_ms, "seed": args.seed}
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench-fleet-"))
    server = server_url(args.database)
    plan: list[tuple[str, Callable[[Path], Measurement]]] = []
    for n in counts(args.sessions):
        plan.append((f"sessions-{n}", partial(measure_sessions, sessions=n, **common)))
    for n in counts(args.workers):
        plan.append((f"workers-{n}", partial(measure_workers, workers=n, server=server, **common)))
    print(
        f"fleet: {args.reports} reports, {args.latency_ms} ms per request on both simulators, "
        f"{os.cpu_count()} CPUs; logs in {root}"
    )
    results: list[Measurement] = []
    for name, measure in plan:
        with CpuMeter(postgres=name.startswith("workers")) as meter:
            result = measure(root / name)
        results.append(result)
        print(result.line(results[0]), flush=True)
        print(f"fleet: {'':<10} {meter.per_document(result.reports)}", flush=True)
    # The same machine's ceiling for what a user writes instead: N copies of the script.
    script_base: float | None = None
    problems: list[str] = []
    for n in counts(args.scripts):
        with CpuMeter() as meter:
            wall, wrong = measure_scripts(root / f"scripts-{n}", n, **common)
        problems += wrong
        script_base = script_base or wall
        print(
            f"fleet: script x{n:<4} reports={args.reports} wall={wall:.1f}s "
            f"{args.reports * 60 / wall:6.1f}/min ({script_base / wall:.2f}x)  "
            f"{'clean' if not wrong else 'NOT CLEAN ' + '; '.join(wrong[:3])}",
            flush=True,
        )
        print(f"fleet: {'':<10} {meter.per_document(args.reports)}", flush=True)
    clean = all(r.truth.clean for r in results) and not problems
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
