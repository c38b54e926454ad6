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
        {  # extra: another title, size, digest and code than anything listed
            **item(docs["R1"]),
            "archive_id": "A777777",
            "title": "手工录入",
            "size": 5,
            "sha256": "e" * 64,
            "reference_code": "Z109-WS·2025-D10-BGS-0001",
        },
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
    assert rows.loc["R5", "detail"] == "the archive holds 2 copies (A000005, A999005)"
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


def test_an_inventory_without_sizes_is_compared_by_the_digests_read_back() -> None:
    """No size in the archive's list is no 摘要不符: the digest the capture read back for
    that archive id decides, and only a real disagreement is a mismatch."""
    docs = [doc(f"R{n}", read_back_sha256=f"{n:064x}") for n in (1, 2, 3)]
    docs[1]["read_back_sha256"] = "a" * 64  # the archive gave back other bytes' digest
    docs[2]["read_back_sha256"] = None  # nothing read back: nothing to compare
    inventory = [item(d, size=None, sha256=None) for d in docs]

    result = classify(pd.DataFrame(docs), pd.DataFrame(inventory)).set_index("key")

    assert list(result["result"]) == [Result.MATCH, Result.DIGEST_MISMATCH, Result.MATCH]
    assert list(result["digest_match"]) == [True, False, pd.NA]
    assert "a" * 64 in result.loc["R2", "detail"] and "(not listed)" in result.loc["R2", "detail"]
    assert result.loc["R3", "detail"].startswith("bytes not compared")
    matched = classify(pd.DataFrame([docs[0]]), pd.DataFrame([inventory[0]]))
    assert batch_closes(matched)


def test_empty_reference_codes_on_both_sides_agree() -> None:
    docs = [doc("R1", reference_code=None), doc("R2", reference_code="")]
    inventory = [item(docs[0], reference_code=""), item(docs[1], reference_code=None)]

    result = classify(pd.DataFrame(docs), pd.DataFrame(inventory))

    assert set(result["result"]) == {Result.MATCH} and batch_closes(result)
    one_side = classify(
        pd.DataFrame([doc("R3")]), pd.DataFrame([item(doc("R3"), reference_code="")])
    )
    assert list(one_side["result"]) == [Result.METADATA_MISMATCH]


def test_copies_of_one_document_read_duplicate_not_extra() -> None:
    r1, r2, r3, r4 = doc("R1"), doc("R2"), doc("R3"), doc("R4")
    inventory = [
        item(r1),
        # R1 again: same bytes, filed under another title and code, no size listed
        item(
            r1, archive_id="C1", title="副本", reference_code="Z109-KU·2025-D10-CWB-0101", size=None
        ),
        # R2 under ids the ledger does not know: two copies, found by title (no sizes)
        item(r2, archive_id="C2", sha256=None, size=None, reference_code=""),
        item(r2, archive_id="C3", sha256=None, size=None, reference_code=None),
        # R3 once, but under another id than the ledger's: the ledger's id is wrong
        item(r3, archive_id="C4", sha256=None),
        # R4 under its id, and the same reference code filed once more
        item(r4),
        item(r4, archive_id="C5", title="另一题名", sha256=None, size=None),
        # same title as R1, another size: not a copy
        item(r1, archive_id="X1", size=7, sha256=None, reference_code=None),
    ]

    result = classify(pd.DataFrame([r1, r2, r3, r4]), pd.DataFrame(inventory)).set_index("key")

    assert result["result"].to_dict() == {
        "R1": Result.DUPLICATE,
        "R2": Result.DUPLICATE,
        "R3": Result.METADATA_MISMATCH,
        "R4": Result.DUPLICATE,
        "X1": Result.EXTRA,
    }
    assert result.loc["R1", "detail"] == "the archive holds 2 copies (A000001, C1)"
    assert result.loc["R2", "detail"] == "the archive holds 2 copies (C2, C3)"
    assert result.loc["R3", "detail"].startswith("the archive holds it as C4, not as A000003")
    assert result.loc["R4", "detail"] == "the archive holds 2 copies (A000004, C5)"
