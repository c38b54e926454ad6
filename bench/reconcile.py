"""Reconciliation speed: classify 100,000 synthetic documents against their inventory.

    python bench/reconcile.py [--documents 100000]

Prints the join-and-classify time on one core (pandas does not thread this work). The
figures go here, not into a timed test: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bots.reconcile.classify import classify, summary  # noqa: E402


def synthetic(documents: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ledger and an inventory with every kind of discrepancy sprinkled in (~1% each)."""
    rng = np.random.default_rng(seed)
    keys = np.array([f"R{n:07d}" for n in range(documents)])
    sizes = rng.integers(1_000, 5_000_000, documents)
    digests = np.array([f"{n:064x}" for n in range(documents)])
    archive_ids = np.array([f"A{n:07d}" for n in range(documents)])
    codes = np.array([f"Z109-KU·2025-D10-CWB-{n % 10000:04d}" for n in range(documents)])
    titles = np.array([f"报表{n}" for n in range(documents)])
    roll = rng.random(documents)
    not_downloaded = roll < 0.01
    rejected = (roll >= 0.01) & (roll < 0.02)
    ledger = pd.DataFrame(
        {
            "key": keys,
            "state": np.where(not_downloaded, "listed", np.where(rejected, "failed", "confirmed")),
            "failure_kind": np.where(rejected, "business", None),
            "checks_failed": rejected,
            "sha256": np.where(not_downloaded, None, digests),
            "size": sizes,
            "archive_id": np.where(not_downloaded | rejected, None, archive_ids),
            "reference_code": np.where(not_downloaded | rejected, None, codes),
            "title": titles,
        }
    )
    held = ~(not_downloaded | rejected)
    missing = held & (roll >= 0.02) & (roll < 0.03)
    present = held & ~missing
    inventory = pd.DataFrame(
        {
            "archive_id": archive_ids[present],
            "reference_code": codes[present],
            "title": titles[present],
            "size": sizes[present],
            "sha256": digests[present],
            "ingested_at": pd.Timestamp("2026-11-21T02:00:00+08:00"),
        }
    )
    corrupt = rng.random(len(inventory)) < 0.01
    inventory.loc[corrupt, "sha256"] = "0" * 64
    copies = inventory.sample(frac=0.01, random_state=seed).assign(
        archive_id=lambda f: "B" + f["archive_id"].str[1:]
    )
    extras = pd.DataFrame(
        {
            "archive_id": [f"X{n:07d}" for n in range(documents // 100)],
            "reference_code": "Z109-KU·2025-D10-CWB-9999",
            "title": "手工归档",
            "size": 1,
            "sha256": None,
            "ingested_at": pd.Timestamp("2026-11-21T02:00:00+08:00"),
        }
    )
    return ledger, pd.concat([inventory, copies, extras], ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the issue asks
    ledger, inventory = synthetic(args.documents)
    started = time.perf_counter()
    classified = classify(ledger, inventory)
    classify_s = time.perf_counter() - started
    counts = ", ".join(f"{code}={n}" for code, n in summary(classified).items())
    print(
        f"reconcile: documents={args.documents} rows={len(classified)} "
        f"join+classify={classify_s:.2f}s (one core) [{counts}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
