"""Start-up cost of the command line against the bare interpreter, side by side.

    python bench/startup.py [--rounds 15]

Runs `python -c pass`, `runner.py --help` and `runner.py check recipes/demo.yaml` as
fresh processes, interleaved round by round so that a noisy moment hits all three alike,
and prints each one's median and minimum wall time and its ratio to the bare interpreter
(the target for `--help`: within 10x). Cron calls these on its no-op paths, so they
should cost what the interpreter costs, not what Playwright and pandas cost to import.
The figures go here, not into a timed test: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "runner.py --help": ["runner.py", "--help"],
    "runner.py check recipes/demo.yaml": ["runner.py", "check", "recipes/demo.yaml"],
}


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    for command in COMMANDS.values():  # warm the file cache; not counted
        timed(command)
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, command in COMMANDS.items():
            seconds[name].append(timed(command))
    bare_median = statistics.median(seconds["python -c pass"])
    bare_min = min(seconds["python -c pass"])
    print(f"start-up, {args.rounds} interleaved rounds ({sys.executable}):")
    for name, times in seconds.items():
        median, least = statistics.median(times), min(times)
        print(
            f"  {name:<36} median {median * 1000:7.1f} ms  min {least * 1000:7.1f} ms  "
            f"ratio {median / bare_median:5.1f}x (min {least / bare_min:5.1f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
