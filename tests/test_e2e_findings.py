"""Findings with a way out, against the simulators through a real browser: an archive id
the archive does not hold is held by name, and `runner.py retry` takes it up through
`find`, so that every report ends archived exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import ROOT, ledger_documents, recipe_variant, world

pytestmark = pytest.mark.e2e


def test_an_id_read_off_the_wrong_element_is_held_and_retry_archives_each_report_once(
    tmp_path: Path,
) -> None:
    with world(tmp_path, reports=3) as w:
        # The upload's answer read wrongly: the reference code taken for the archive id.
        wrong = recipe_variant(
            tmp_path,
            "demo.yaml",
            [
                (
                    '- read: {selector: "#archive-id", into: archive_id}',
                    '- read: {selector: "#reference-code", into: archive_id}',
                )
            ],
        )
        first = w.run(wrong)

        assert first.code == 1, first.output
        docs = ledger_documents(w.logs_dir)
        assert len(docs) == 3 and len(w.archive_state()) == 3
        for doc in docs.values():
            assert (doc["state"], doc["failure_kind"], doc["failed_stage"]) == (
                "failed",
                "business",
                "uploaded",
            )
            assert doc["last_error"].startswith("not held by the archive")
            assert f"as {doc['archive_id']}" in doc["last_error"]  # the id it was given
            assert "档案不存在" in doc["last_error"]  # what the archive's page said

        keys = sorted(docs)
        retried = subprocess.run(
            [sys.executable, "runner.py", "retry", "demo", *keys],
            cwd=ROOT,
            env=w.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert retried.returncode == 0, retried.stdout + retried.stderr
        for key in keys:
            assert (
                f"{key}: failed (business) at uploaded → uploading: forgot archive id "
                f"{docs[key]['archive_id']}"
            ) in retried.stdout

        again = w.run()

        assert again.code == 0, again.output
        held = {item["archive_id"]: item for item in w.archive_state()}
        assert len(held) == 3  # found, not uploaded again
        for doc in ledger_documents(w.logs_dir).values():
            assert doc["state"] == "confirmed"
            assert held[doc["archive_id"]]["reference_code"] == doc["reference_code"]
            assert doc["archive_system"] == "档案系统 (archive simulator)"
