"""A 1 GiB report through the whole loop, with the runner's peak memory.

    python bench/big_download.py            # 1 GiB
    python bench/big_download.py --mib 256

The ERP simulator publishes a report of the given size (a GBK CSV, streamed); the demo
recipe captures it like any other: streamed to staging while hashed, uploaded by the
browser, read back. Prints the time and the runner process's peak resident memory (from
its run log), which must stay under 300 MB whatever the file's size. Chromium's own
memory is not the runner's and is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.demo import simulator  # noqa: E402
from bots.redaction import Redactor  # noqa: E402
from credentials import open_store  # noqa: E402
from sims.control import get_json, post_json  # noqa: E402

PEAK_LIMIT_MB = 300


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bigdl-"))
    env = {
        **os.environ,
        "HOME": str(work / "home"),
        "FLEET_LOGS_DIR": str(work / "logs"),
        "FLEET_KEYRING_KEY": "bench-master-key-0001",
        "FLEET_KEYRING_FILE": str(work / "keyring.cfg"),
    }
    store = open_store(env, Redactor())
    store.set("demo-erp", "clerk", "clerk-demo")
    store.set("demo-archive", "archivist", "archivist-demo")
    size = args.mib * 1024 * 1024
    with (
        simulator("sims.erp", ["--reports", "1", "--latency-ms", "0,0"], work / "erp.log") as erp,
        simulator(
            "sims.archive",
            ["--data", str(work / "archive"), "--latency-ms", "0,0"],
            work / "archive.log",
        ) as archive,
    ):
        [big] = post_json(f"{erp}/_sim/publish", {"count": 1, "size": size})["published"]
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "runner.py", "run", "recipes/demo.yaml"],
            cwd=ROOT,
            env={**env, "ERP_URL": erp, "ARCHIVE_URL": archive},
            capture_output=True,
            text=True,
            timeout=3600,
        )
        seconds = time.monotonic() - started
        truth = {r["id"]: r for r in get_json(f"{erp}/_sim/state")["reports"]}
        held = {i["sha256"] for i in get_json(f"{archive}/_sim/state")["items"]}
    [log] = (work / "logs" / "runs").glob("*.jsonl")
    end = json.loads(log.read_text(encoding="utf-8").splitlines()[-1])
    peak = end["details"]["peak_rss_mb"]
    archived = truth[big]["sha256"] in held
    print(
        f"big-download: {args.mib} MiB captured in {seconds:.1f}s "
        f"({args.mib / seconds:.0f} MiB/s end to end), runner peak RSS {peak} MB "
        f"(limit {PEAK_LIMIT_MB} MB), exit {proc.returncode}, "
        f"archived with equal sha256: {'yes' if archived else 'NO'}"
    )
    if proc.returncode != 0:
        print(proc.stdout[-500:], proc.stderr[-2000:])
    return 0 if (proc.returncode == 0 and archived and peak < PEAK_LIMIT_MB) else 1


if __name__ == "__main__":
    sys.exit(main())
