"""Reconciliation speed on 100,000 synthetic documents, with every kind of discrepancy.

    python bench/reconcile.py [--documents 100000] [--no-workbook]

Prints, on one core (pandas does not thread this work):
1. the join and classification (``classify``), the figure the issue bounds at 5 s;
2. building all eight sheets' frames from ledger-shaped inputs (``report.build``, the
   code ``runner.py reconcile`` runs: listing, downloads, catalogue from item metadata,
   receipt, 15 checks per document pivoted to item x check, discrepancies, batch);
3. writing the workbook (bounded at 60 s), its size and the process's peak memory.
The figures go here, not into a timed test: these machines are shared and noisy.
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

from bots.reconcile.classify import classify, summary  # noqa: E402
from bots.reconcile.report import BatchFacts, RecipeInputs, build  # noqa: E402
from bots.reconcile.sources import InventoryRun  # noqa: E402
from bots.reconcile.workbook import write_workbook  # noqa: E402

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
            # filed by hand: codes of their own (a code one of ours has would be a copy)
            "reference_code": [f"Z109-WS·2025-D10-BGS-{n:04d}" for n in range(documents // 100)],
            "title": "手工归档",
            "size": 1,
            "sha256": None,
            "ingested_at": pd.Timestamp("2026-11-21T02:00:00+08:00"),
        }
    )
    return ledger, pd.concat([inventory, copies, extras], ignore_index=True)


CHECKS = (
    ("authenticity", "digest_unchanged"),
    ("authenticity", "retention_schedule"),
    ("authenticity", "metadata_valid"),
    ("authenticity", "retention_not_shorter"),
    ("authenticity", "pages_match_file"),
    ("completeness", "size_matches_listing"),
    ("completeness", "mandatory_fields"),
    ("usability", "format_identified"),
    ("usability", "format_matches_extension"),
    ("usability", "format_accepted"),
    ("usability", "opens"),
    ("usability", "not_encrypted"),
    ("security", "filename_safe"),
    ("security", "size_limit"),
    ("security", "virus_scan"),
)


def inputs(ledger: pd.DataFrame, inventory: pd.DataFrame) -> RecipeInputs:
    """The rest of what the ledger holds for such a batch, in ``sources``' shapes: the
    listing each document came from, its metadata, one sighting each, 15 checks each."""
    n = len(ledger)
    seconds = pd.to_timedelta(np.arange(n), unit="s")
    months = (np.arange(n) % 12) + 1
    listings = [
        {"id": k, "title": t, "date": f"2025-{m:02d}-28", "size": "1.2 MB"}
        for k, t, m in zip(ledger["key"], ledger["title"], months, strict=True)
    ]
    metadata = [
        {
            "fonds": "Z109",
            "year": "2025",
            "title": t,
            "author": "财务部",
            "date": f"2025{m:02d}28",
            "pages": "3",
            "retention": "D10",
            "classification": "内部",
            "department": "CWB",
            "doc_number": None,
            "remarks": None,
        }
        for t, m in zip(ledger["title"], months, strict=True)
    ]
    got = ledger["sha256"].notna()
    full = ledger.assign(
        listing=listings,
        item_metadata=metadata,
        filename=ledger["key"] + ".pdf",
        file_format=np.where(got, "PDF 1.7", None),
        listed_at=LISTED_AT + seconds // 100,
        downloaded_at=(LISTED_AT + pd.Timedelta(minutes=5) + seconds // 10).where(got),
        confirmed_at=(LISTED_AT + pd.Timedelta(minutes=9) + seconds // 10).where(
            ledger["state"].eq("confirmed")
        ),
        last_error=np.where(ledger["checks_failed"], "failed checks: usability/opens", None),
    )
    sightings = pd.DataFrame(
        {"run_id": "demo-bench", "key": ledger["key"], "seen_at": LISTED_AT, "listing": listings}
    )
    checked = ledger.loc[got, ["key", "checks_failed"]]
    per_check = len(CHECKS)
    names = np.tile([name for _, name in CHECKS], len(checked))
    failing = np.repeat(checked["checks_failed"].to_numpy(), per_check) & (names == "opens")
    checks = pd.DataFrame(
        {
            "key": np.repeat(checked["key"].to_numpy(), per_check),
            "run_id": "demo-bench",
            "property": np.tile([prop for prop, _ in CHECKS], len(checked)),
            "name": names,
            "outcome": np.where(failing, "fail", "pass"),
            "reason": np.where(failing, "login page saved as .pdf", "ok"),
            "checked_at": LISTED_AT,
        }
    )
    reviews = pd.DataFrame(
        columns=["key", "archive_id", "result", "action", "owner", "note", "decided_at"]
    )
    taken = InventoryRun("demo-inventory", LISTED_AT.to_pydatetime(), len(inventory))
    return RecipeInputs(
        recipe="demo",
        ledger=full,
        inventory=inventory,
        inventory_run=taken,
        sightings=sightings,
        checks=checks,
        reviews=reviews,
        digest="0" * 64,
        source_system="ERP 6.0 (synthetic)",
        archive_system="档案系统 (synthetic)",
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
    part = inputs(ledger, inventory)
    facts = BatchFacts(
        batch_id="BENCH-0001",
        written_at=pd.Timestamp.now(tz="Asia/Shanghai").to_pydatetime(),
        bot="rpa-fleet bench",
        logs="not verified (benchmark)",
    )
    started = time.perf_counter()
    built = build([part], facts)
    build_s = time.perf_counter() - started
    sheets = built.sheets
    rows = sum(len(getattr(sheets, name)) for name in ("listing", "downloads", "catalogue"))
    rows += sum(len(getattr(sheets, name)) for name in ("receipt", "reconciliation", "checks"))
    print(
        f"reconcile: all eight sheets' frames={build_s:.2f}s (classify again, listing, "
        f"downloads, catalogue, receipt, {len(part.checks)} checks pivoted)"
    )
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
