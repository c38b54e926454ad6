"""The three-way match: each discrepancy gets its own result code, and only that one."""

from __future__ import annotations

import pandas as pd

from bench.reconcile import synthetic
from bots.reconcile.classify import Result, batch_closes, classify, summary

INGESTED = pd.Timestamp("2026-11-21T02:00:00+08:00")


def doc(key: str, **overrides: object) -> dict[str, object]:
    n = int(key[1:])
    row: dict[str, object] = {
        "key": key,
        "state": "confirmed",
        "failure_kind": None,
        "checks_failed": False,
        "sha256": f"{n:064x}",
        "size": 1000 + n,
        "archive_id": f"A{n:06d}",
        "reference_code": f"Z109-KU·2025-D10-CWB-{n:04d}",
        "title": f"报表{n}",
    }
    row.update(overrides)
    return row


def item(d: dict[str, object], **overrides: object) -> dict[str, object]:
    row = {
        "archive_id": d["archive_id"],
        "reference_code": d["reference_code"],
        "title": d["title"],
        "size": d["size"],
        "sha256": d["sha256"],
        "ingested_at": INGESTED,
    }
    row.update(overrides)
    return row


def test_each_discrepancy_is_named() -> None:
    docs = {k: doc(k) for k in ("R1", "R2", "R3", "R4", "R5", "R6")}
    docs["R7"] = doc("R7", state="listed", sha256=None, archive_id=None, reference_code=None)
    docs["R8"] = doc(
        "R8", state="failed", failure_kind="business", checks_failed=True, archive_id=None
    )
    inventory = [
        item(docs["R1"]),  # match
        # R2 missing
        item(docs["R3"], sha256="f" * 64),  # corrupted in the archive
        item(docs["R4"], reference_code="Z109-KU·2025-D10-CWB-0099"),  # metadata differs
        item(docs["R5"]),
        item(docs["R5"], archive_id="A999005"),  # a second copy of R5
        item(docs["R6"], sha256=None),  # no fixity read: sizes agree, so it matches
        {**item(docs["R1"]), "archive_id": "A777777", "title": "手工录入", "size": 5},  # extra
    ]
    result = classify(pd.DataFrame(docs.values()), pd.DataFrame(inventory))
    by_key = dict(zip(result["key"], result["result"], strict=True))
    assert by_key == {
        "R1": Result.MATCH,
        "R2": Result.MISSING,
        "R3": Result.DIGEST_MISMATCH,
        "R4": Result.METADATA_MISMATCH,
        "R5": Result.DUPLICATE,
        "R6": Result.MATCH,
        "R7": Result.NOT_DOWNLOADED,
        "R8": Result.REJECTED,
        "A777777": Result.EXTRA,
    }
    rows = result.set_index("key")
    assert rows.loc["R5", "detail"] == "the archive holds 2 copies"
    assert "f" * 64 in rows.loc["R3", "detail"]
    assert not rows.loc["R2", "archived"]
    assert rows.loc["A777777", "result_en"] == "in archive but never listed"
    assert not batch_closes(result)


def test_a_clean_batch_closes_and_a_reviewed_one_too() -> None:
    docs = [doc("R1"), doc("R2")]
    clean = classify(pd.DataFrame(docs), pd.DataFrame([item(d) for d in docs]))
    assert set(clean["result"]) == {Result.MATCH} and batch_closes(clean)
    gap = classify(pd.DataFrame(docs), pd.DataFrame([item(docs[0])]))
    assert not batch_closes(gap)
    assert batch_closes(gap.assign(closed=gap["key"] == "R2"))  # the reviewer closed R2


def test_synthetic_batch_counts_add_up() -> None:
    ledger, inventory = synthetic(2_000, seed=3)
    result = classify(ledger, inventory)
    counts = summary(result)
    assert sum(counts.values()) == len(result) == len(ledger) + counts[Result.EXTRA]
    for code in (Result.MISSING, Result.DUPLICATE, Result.DIGEST_MISMATCH, Result.EXTRA):
        assert counts[code] > 0, code
