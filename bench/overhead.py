"""The cost of one document: the fleet beside a hand-written Playwright script.

    python bench/overhead.py                         # 30 reports, 0 and 100 ms, 3 rounds
    python bench/overhead.py --reports 60 --rounds 5 --latencies 0,100,300
    python bench/overhead.py --baseline ../main     # and main's fleet, before a change

Issue 15's claim: with one session, the fleet's seconds per document are within 1.5 times
a minimal hand-written script's, all checks and evidence included, at zero latency and at
100 ms per request.

1. The fleet: `runner.py run recipes/demo.yaml`, as a user (or cron) runs it, its
   credentials in a temporary encrypted keyring, a fresh logs folder (so a fresh ledger)
   each time.
2. The script: bench/handwritten.py, the same clicks on the same simulators with sync
   Playwright on the same Chromium: log in, list, download, upload, read back. No ledger,
   checks, evidence or retries.

Each measured run gets simulators of its own, started before the clock starts: the ERP
with ``--reports N`` (same seed every time, so the same reports and bytes), generation
jobs done at once (``--gen-seconds 0``: the simulator's own waiting is not either side's
cost), and the archive empty; both with ``--latency-ms L,L``, L milliseconds on every
request. The runs are interleaved (fleet, script, fleet, script... for each latency, for
each round) so that a machine that slows down in the middle slows both alike.

Seconds per document: the process's wall time from start to end (Python's start,
imports, Chromium, keyring, logins, listing, every document, shutdown) divided by the
number of reports, for both; nothing is subtracted from either side. Each figure is the
median over the rounds, and so is the ratio of each round's pair (the fleet and the
script run right after it), the steadier figure when the machine's load changes. Every
run is judged by the archive simulator's own ``/_sim/state``: each ERP report held
exactly once with the ERP's SHA-256 (and the script's read-back digests equal to it); a
run that fails that is reported and the bench exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpumeter import CpuMeter  # noqa: E402
from bots.demo import simulator  # noqa: E402
from bots.redaction import Redactor  # noqa: E402
from credentials import open_store  # noqa: E402
from sims.control import get_json  # noqa: E402

RECIPE = ROOT / "recipes" / "demo.yaml"
HAND = ROOT / "bench" / "handwritten.py"
RUN_TIMEOUT = 3600.0
SEED = 2005
TARGET = 1.5  # the bound on fleet / script


@dataclass
class Run:
    who: str  # "fleet", "script", or "baseline" (the fleet of another checkout)
    latency_ms: int
    seconds: float
    reports: int
    problems: list[str]
    cpu: str = ""  # where the CPU went (bench/cpumeter.py)

    @property
    def per_document(self) -> float:
        return self.seconds / self.reports


def _keyring(work: Path) -> dict[str, str]:
    """The fleet's environment: a private HOME and a keyring with the demo accounts."""
    env = {
        **os.environ,
        "HOME": str(work / "home"),
        "FLEET_KEYRING_KEY": "overhead-bench-master-key",
        "FLEET_KEYRING_FILE": str(work / "keyring.cfg"),
    }
    store = open_store(env, Redactor())
    store.set("demo-erp", "clerk", "clerk-demo")
    store.set("demo-archive", "archivist", "archivist-demo")
    return env


def judge_archive(erp: str, archive: str, read_back: dict[str, str] | None) -> list[str]:
    """What the archive holds against what the ERP has: each report once, same digest."""
    reports = {r["id"]: r["sha256"] for r in get_json(f"{erp}/_sim/state")["reports"]}
    held: dict[str, list[str]] = {}
    for item in get_json(f"{archive}/_sim/state")["items"]:
        key = (item["metadata"].get("remarks") or "").rsplit(" ", 1)[-1]
        held.setdefault(key, []).append(item["sha256"])
    problems = []
    for key, digest in reports.items():
        found = held.get(key, [])
        if len(found) != 1:
            problems.append(f"{key} held {len(found)} times")
        elif found[0] != digest:
            problems.append(f"{key} held with another digest")
        elif read_back is not None and read_back.get(key) != digest:
            problems.append(f"{key}: the viewer's digest was not read back")
    problems += [f"{key} is not an ERP report" for key in held if key not in reports]
    return problems


def measure(
    who: str,
    latency_ms: int,
    reports: int,
    work: Path,
    env: dict[str, str],
    baseline: Path | None = None,
) -> Run:
    """One measured run on simulators of its own."""
    work.mkdir(parents=True)
    latency = ["--latency-ms", f"{latency_ms},{latency_ms}"]
    with ExitStack() as stack:
        meter = stack.enter_context(CpuMeter())
        erp = stack.enter_context(
            simulator(
                "sims.erp",
                ["--reports", str(reports), "--seed", str(SEED), "--gen-seconds", "0", *latency],
                work / "erp.log",
            )
        )
        archive = stack.enter_context(
            simulator("sims.archive", ["--data", str(work / "archive"), *latency], work / "a.log")
        )
        cwd = ROOT
        if who in ("fleet", "baseline"):
            cwd = baseline if who == "baseline" and baseline is not None else ROOT
            command = [sys.executable, "runner.py", "run", str(cwd / "recipes" / "demo.yaml")]
            run_env = {
                **env,
                "FLEET_LOGS_DIR": str(work / "logs"),
                "ERP_URL": erp,
                "ARCHIVE_URL": archive,
            }
        else:
            command = [sys.executable, str(HAND), erp, archive, str(work / "files")]
            run_env = {**os.environ, "HOME": str(work)}
        started = time.perf_counter()
        proc = subprocess.run(
            command, cwd=cwd, env=run_env, capture_output=True, text=True, timeout=RUN_TIMEOUT
        )
        seconds = time.perf_counter() - started
        problems = [] if proc.returncode == 0 else [f"exit {proc.returncode}: {proc.stderr[-600:]}"]
        read_back = None
        if who == "script":
            lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
            read_back = {line["id"]: line["sha256"] for line in lines}
        problems += judge_archive(erp, archive, read_back)
    return Run(who, latency_ms, seconds, reports, problems, meter.per_document(reports))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--latencies", default="0,100", help="milliseconds per request, comma-separated"
    )
    parser.add_argument("--workdir", type=Path, help="keep logs and files here")
    parser.add_argument(
        "--only", choices=["fleet", "script"], help="measure one side only (profiling)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also the fleet of another checkout (e.g. a git worktree of main), interleaved: "
        "before and after a change under the same load",
    )
    args = parser.parse_args(argv)
    latencies = [int(text) for text in args.latencies.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="overhead-"))
    env = _keyring(work)
    sides = [args.only] if args.only else ["fleet", "script"]
    if args.baseline is not None:
        sides.insert(0, "baseline")
    runs: list[Run] = []
    for round_no in range(1, args.rounds + 1):
        for latency in latencies:
            for who in sides:
                run = measure(
                    who,
                    latency,
                    args.reports,
                    work / f"r{round_no}-{latency}ms-{who}",
                    env,
                    args.baseline,
                )
                runs.append(run)
                status = "ok" if not run.problems else f"PROBLEMS {run.problems[:3]}"
                print(
                    f"overhead: round {round_no} {latency:>4} ms {who:<8} "
                    f"{run.seconds:7.2f} s  {run.per_document:6.3f} s/doc  {status}",
                    flush=True,
                )
                print(f"overhead: {'':>31} {run.cpu}", flush=True)
    print(_summary(runs, latencies, sides, args.reports))
    print(f"overhead: files in {work}")
    return 1 if any(run.problems for run in runs) else 0


def _summary(runs: list[Run], latencies: list[int], sides: list[str], reports: int) -> str:
    lines = []
    for latency in latencies:
        median: dict[str, Any] = {
            who: statistics.median(
                r.per_document for r in runs if r.who == who and r.latency_ms == latency
            )
            for who in sides
        }
        parts = [f"{who} {median[who]:.3f} s/doc" for who in sides]
        fleets = [who for who in sides if who != "script"] if "script" in sides else []
        for fleet in fleets:
            ratio = median[fleet] / median["script"]
            verdict = "within" if ratio <= TARGET else "OVER"
            # Each round's fleet run beside the script run of the same round: on a machine
            # whose load changes between rounds, the pairs are the steadier comparison.
            paired = _paired_ratios(runs, latency, fleet)
            parts.append(
                f"{fleet}/script {ratio:.2f} ({verdict} {TARGET:g}x; per round "
                f"{', '.join(f'{r:.2f}' for r in paired)}, median {statistics.median(paired):.2f})"
            )
        lines.append(f"overhead: {reports} reports, {latency} ms/request: " + ", ".join(parts))
    return "\n".join(lines)


def _paired_ratios(runs: list[Run], latency: int, who: str) -> list[float]:
    fleet = [r.per_document for r in runs if r.who == who and r.latency_ms == latency]
    script = [r.per_document for r in runs if r.who == "script" and r.latency_ms == latency]
    return [f / s for f, s in zip(fleet, script, strict=True)]


if __name__ == "__main__":
    sys.exit(main())
