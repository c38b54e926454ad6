"""The archive's own word: inventory of its list pages, with fixity, against tampering."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sims.control import post_json
from tests.e2e import ROOT, World, ledger_rows, world

pytestmark = pytest.mark.e2e


def inventory(w: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "runner.py", "inventory", "demo", *args],
        cwd=ROOT,
        env=w.env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def snapshot(w: World) -> dict[str, dict[str, Any]]:
    """The newest inventory in the ledger, by archive id."""
    runs = ledger_rows(w.logs_dir, "runs", action="inventory")
    newest = max(runs, key=lambda r: r["started_at"])["run_id"]
    return {r["archive_id"]: r for r in ledger_rows(w.logs_dir, "inventory", run_id=newest)}


def test_inventory_reads_the_archive_and_fixity_finds_tampering(tmp_path: Path) -> None:
    with world(tmp_path, reports=23) as w:  # 23: the archive's list has two pages of 20
        assert w.run().code == 0
        truth = {i["archive_id"]: i for i in w.archive_state()}
        result = inventory(w, "--fixity")
        assert result.returncode == 0, result.stderr
        assert "the archive lists 23 items, 23 read back" in result.stdout
        seen = snapshot(w)
        assert set(seen) == set(truth)
        for archive_id, item in truth.items():
            row = seen[archive_id]
            assert row["reference_code"] == item["reference_code"]
            assert row["size"] == item["size"]
            assert row["sha256"] == item["sha256"]
            assert row["title"] == item["metadata"]["title"]

        gone, rotten = sorted(truth)[3], sorted(truth)[7]
        post_json(f"{w.archive_url}/_sim/tamper", {"delete": gone})
        post_json(f"{w.archive_url}/_sim/tamper", {"corrupt": rotten})
        result = inventory(w, "--fixity")
        assert result.returncode == 0, result.stderr
        seen = snapshot(w)
        assert gone not in seen and len(seen) == 22
        assert seen[rotten]["sha256"] != truth[rotten]["sha256"]  # the bytes, not the record
        assert seen[rotten]["size"] == truth[rotten]["size"]
        # Without --fixity the archive's list is taken as it is: no digests read.
        result = inventory(w)
        assert result.returncode == 0, result.stderr
        assert all(row["sha256"] is None for row in snapshot(w).values())
