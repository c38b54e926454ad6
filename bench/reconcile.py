"""Reconciliation speed: classify 100,000 synthetic documents against their inventory,
then write the archivists' workbook (every sheet at that scale) to a temporary file.

    python bench/reconcile.py [--documents 100000] [--no-workbook]

Prints the join-and-classify time on one core (pandas does not thread this work), then the
workbook's write time, size and the process's peak memory. The figures go here, not into a
timed test: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bots.reconcile.classify import (  # noqa: E402
    RESULT_ENGLISH,
    Result,
    batch_closes,
    classify,
    summary,
)
from bots.reconcile.workbook import Sheets, write_workbook  # noqa: E402

LISTED_AT = pd.Timestamp("2026-11-21T01:00:00+08:00")


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


def workbook_sheets(
    ledger: pd.DataFrame, inventory: pd.DataFrame, classified: pd.DataFrame
) -> Sheets:
    """Plausible sheets for the synthetic batch: every sheet at the ledger's scale."""
    n = len(ledger)
    seconds = pd.to_timedelta(np.arange(n), unit="s")
    months = (np.arange(n) % 12) + 1
    listing = pd.DataFrame(
        {
            "source_id": ledger["key"],
            "title": ledger["title"],
            "period": [f"2025-{m:02d}" for m in months],
            "url": "http://erp.example/reports/" + ledger["key"],
            "listed_at": LISTED_AT + seconds // 100,
        }
    )
    got = ledger.loc[ledger["sha256"].notna()]
    downloads = pd.DataFrame(
        {
            "source_id": got["key"],
            "file_name": got["key"] + ".pdf",
            "bytes": got["size"],
            "sha256": got["sha256"],
            "downloaded_at": LISTED_AT + pd.Timedelta(minutes=5) + seconds[got.index] // 10,
            "http_status": 200,
            "format": "PDF 1.7",
        }
    )
    coded = ledger.loc[ledger["reference_code"].notna()]
    catalogue = pd.DataFrame(
        {
            "seq": np.arange(1, len(coded) + 1),
            "reference_code": coded["reference_code"],
            "document_number": None,
            "author": "财务部",
            "title": coded["title"],
            "date": [f"2025{m:02d}28" for m in months[coded.index]],
            "classification": "内部",
            "pages": (coded["size"] // 40_000 + 1).to_numpy(),
            "remarks": None,
            "retention": "D10",
            "department": "CWB",
        }
    )
    receipt = pd.DataFrame(
        {
            "archive_id": inventory["archive_id"],
            "reference_code": inventory["reference_code"],
            "archive_sha256": inventory["sha256"],
            "ingested_at": inventory["ingested_at"],
        }
    )
    checks = pd.DataFrame(
        {
            "key": got["key"],
            "property": "可用性 usability",
            "check": "opens as PDF, has pages",
            "outcome": np.where(got["checks_failed"], "fail", "pass"),
            "reason": np.where(got["checks_failed"], "login page saved as .pdf", None),
        }
    )
    counts = summary(classified)
    discrepancies = pd.DataFrame(
        {
            "issue": [f"{r.value} {RESULT_ENGLISH[r]}" for r in Result if r is not Result.MATCH],
            "items": [counts[r.value] for r in Result if r is not Result.MATCH],
            "cause": "synthetic",
            "resolution": None,
        }
    )
    batch = pd.DataFrame(
        {
            "measure": [
                "batch id",
                "source system",
                "window",
                "bot/version",
                "expected count",
                "expected bytes",
                "downloaded count",
                "archived count",
                "manifest digest",
                "written at",
            ],
            "value": [
                "BENCH-0001",
                "ERP 6.0 (synthetic)",
                "2025-01-01/2025-12-31",
                "capture-bot 0.1.0",
                n,
                int(ledger["size"].sum()),
                len(got),
                len(inventory),
                "0" * 64,
                pd.Timestamp.now(tz="Asia/Shanghai"),
            ],
        }
    )
    return Sheets(
        batch=batch,
        listing=listing,
        downloads=downloads,
        catalogue=catalogue,
        receipt=receipt,
        reconciliation=classified,
        checks=checks,
        discrepancies=discrepancies,
        closes=batch_closes(classified),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--no-workbook", action="store_true", help="classify only")
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
    if args.no_workbook:
        return 0
    sheets = workbook_sheets(ledger, inventory, classified)
    rows = sum(len(getattr(sheets, name)) for name in ("listing", "downloads", "catalogue"))
    rows += sum(len(getattr(sheets, name)) for name in ("receipt", "reconciliation", "checks"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reconciliation.xlsx"
        started = time.perf_counter()
        write_workbook(sheets, path, title="BENCH-0001 核对 Reconciliation")
        workbook_s = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"reconcile: workbook={workbook_s:.1f}s size={size_mb:.1f} MB (one core, {rows} rows "
        f"in 8 sheets; peak RSS {rss_before:.0f} MB before, {rss_after:.0f} MB after)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
