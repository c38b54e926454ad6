"""A second system end to end: recipes/examples/tracker-to-dms.yaml with real Chromium.

The acceptance test of issue 11's "a recipe for a second simulated system passes end to
end": `locale`, `listings` with key prefixes, `detail`, `read` with a `pattern`, `set`,
`when: {selector: ...}`, `state: attached` on `expect` and `fill`, a multi-value
`select`, `metadata_profile` with `standard: none`, a gzip-serving source, and a
`submit` that sends the pressed button's name. The DMS's inventory shows no sizes, so
reconcile must close the batch on the digests read back.

The simulators are started by :func:`tests.e2e_second.second_world` (``python -m
sims.tracker`` and ``python -m sims.dms``, each on ``--port 0``), and the run is judged
by their own ground truth: the tracker's ``/_sim/state`` (every report, its digest) and
the DMS's (every filed document with all its fields).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sims.control import get_json
from tests.e2e import ROOT, ledger_documents, ledger_rows, summary_counts
from tests.e2e_second import RECIPE, SecondWorld, second_world
from tests.test_e2e_reconcile import results

pytestmark = pytest.mark.e2e

# The recipe's mapping, restated independently of it.
SOURCE_SYSTEM = "Northwind Tracker"
RETENTION_YEARS = {"incident": 10, "minutes": 30}  # the schedule: D10 and D30
KEY_PREFIX = {"incident": "INC/", "minutes": "MIN/"}


def expected_fields(report: dict[str, Any], tracker_url: str) -> dict[str, Any]:
    return {
        "title": report["title"],
        "report_id": report["id"],
        "source_system": SOURCE_SYSTEM,
        "retention_years": RETENTION_YEARS[report["kind"]],
        "document_date": report["date"],
        "author": report["reporter"],
        # The digest was read off the detail page with a pattern.
        "description": (
            f"Captured from {tracker_url}{report['url']}; source SHA-256 {report['sha256']}"
        ),
        "filename": report["filename"],
        "size": report["size"],
        "sha256": report["sha256"],
    }


def expected_tags(report: dict[str, Any]) -> set[str]:
    tags = {"tracker", report["kind"]}
    if report["severity"]:  # minutes have none: the empty select item is dropped
        tags.add(report["severity"])
    return tags


def assert_filed_exactly_once(
    w: SecondWorld, reports: list[dict[str, Any]], documents: list[dict[str, Any]]
) -> None:
    """Every report filed once, with the fields the recipe maps and the tracker's bytes."""
    counts = Counter(d["report_id"] for d in documents)
    duplicates = {rid: n for rid, n in counts.items() if n > 1}
    assert not duplicates, f"filed more than once: {duplicates}"
    assert set(counts) == {r["id"] for r in reports}
    by_report = {d["report_id"]: d for d in documents}
    for report in reports:
        document = by_report[report["id"]]
        want = expected_fields(report, w.tracker_url)
        assert {k: document[k] for k in want} == want, report["id"]
        assert set(document["tags"]) == expected_tags(report), report["id"]


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondWorld]:
    """A world after its first run."""
    with second_world(tmp_path_factory.mktemp("e2e-second")) as w:
        result = w.run()
        assert result.code == 0, result.output
        yield w


def test_first_run_files_every_report_once_with_the_dms_fields(captured: SecondWorld) -> None:
    reports = captured.tracker_state()
    assert Counter(r["kind"] for r in reports) == {"incident": 13, "minutes": 4}
    assert_filed_exactly_once(captured, reports, captured.dms_state())
    assert summary_counts(captured.results[0].stdout) == {
        "listed": 17,
        "new": 17,
        "archived": 17,
        "failed": 0,
    }


def test_reconcile_closes_the_batch_though_the_archive_lists_no_sizes(
    captured: SecondWorld, tmp_path: Path
) -> None:
    """The DMS's list shows no sizes: every row is 一致 on the digests read back (and the
    fixity downloads), and empty reference codes on both sides are no mismatch."""
    book = tmp_path / "batch.xlsx"
    done = subprocess.run(
        [sys.executable, "runner.py", "reconcile", "--recipe", str(RECIPE), "--out", str(book)],
        cwd=ROOT,
        env=captured.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the batch closes" in done.stdout, done.stdout
    found = results(book)
    assert set(found) == set(ledger_documents(captured.logs_dir))
    assert set(found.values()) == {"一致"}, found


def test_each_listing_keys_its_rows_with_its_own_prefix(captured: SecondWorld) -> None:
    expected = {f"{KEY_PREFIX[r['kind']]}{r['number']}" for r in captured.tracker_state()}
    assert set(ledger_documents(captured.logs_dir)) == expected


def test_each_documents_evidence_is_its_own(captured: SecondWorld) -> None:
    """INC/6 and MIN/6 (two listings, the same number) have a folder each: every picture
    the ledger's events name still has the digest recorded when it was taken."""
    events = ledger_rows(captured.logs_dir, "events")
    shots = [e for e in events if e["evidence_path"]]
    assert {e["source_key"] for e in shots} >= {"INC/1", "MIN/1"}
    for event in shots:
        path = Path(event["evidence_path"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == event["evidence_sha256"], path
    folders = {Path(e["evidence_path"]).parent for e in shots}
    assert len(folders) == len({e["source_key"] for e in shots})


def test_second_run_files_nothing(captured: SecondWorld) -> None:
    before = captured.dms_state()
    result = captured.run()
    assert result.code == 0, result.output
    assert captured.dms_state() == before
    counts = summary_counts(result.stdout)
    assert counts["new"] == 0 and counts["archived"] == 0 and counts["listed"] == len(before)


def test_after_publish_a_run_files_exactly_the_new_reports(captured: SecondWorld) -> None:
    before = captured.dms_state()
    published = captured.publish("incident", 2) + captured.publish("minutes", 1)
    result = captured.run()
    assert result.code == 0, result.output
    after = captured.dms_state()
    assert after[: len(before)] == before  # nothing already filed was touched
    reports = captured.tracker_state()
    new = [r for r in reports if r["id"] in published]
    assert_filed_exactly_once(captured, new, after[len(before) :])
    assert_filed_exactly_once(captured, reports, after)
    assert summary_counts(result.stdout)["archived"] == 3


def test_lost_responses_still_file_every_report_exactly_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The DMS files some uploads and drops the answer: `find` decides, nothing twice."""
    with second_world(
        tmp_path_factory.mktemp("e2e-second-lost"),
        incidents=8,
        minutes=3,
        dms_faults={"seed": 7, "lost_response_rate": 0.5},
    ) as w:
        result = w.run()
        assert result.code == 0, result.output
        injected = get_json(f"{w.dms_url}/_sim/faults")["injected"]
        assert injected["lost_response"] > 0, "no answer was lost: the test proved nothing"
        assert_filed_exactly_once(w, w.tracker_state(), w.dms_state())
