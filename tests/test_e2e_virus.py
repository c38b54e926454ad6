"""The virus check end to end: ClamAV finds the EICAR test file, and it never reaches the
archive.

The ERP serves one report whose file is the EICAR anti-virus test string; the runner scans
with clamscan and a signature database this test writes itself (offline: ClamAV's own
signatures need the internet). Judged by the simulators' ground truth and the ledger.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

import pytest

from sims.erp.reports import EICAR
from tests.e2e import (
    Result,
    World,
    files_containing,
    ledger_rows,
    publish_reports,
    world,
    world_root,
)
from tests.test_inspect import CLAMSCAN, EICAR_SIGNATURE, eicar_database

pytestmark = pytest.mark.e2e

EICAR_SHA256 = hashlib.sha256(EICAR).hexdigest()


@pytest.fixture(scope="module")
def infected_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str, Result]]:
    """A world of 6 reports plus 1 infected one, after one run with the EICAR database."""
    assert CLAMSCAN, "clamscan is not installed: scripts/setup.sh installs Debian's clamav"
    tmp = tmp_path_factory.mktemp("virus")
    with world(tmp, reports=6) as w:
        database = eicar_database(tmp)
        w.env["FLEET_CLAMAV_DATABASE"] = str(database)
        [infected] = publish_reports(w, count=1, infected=True)
        result = w.run()
        yield w, infected, result


def test_the_infected_report_is_held_with_the_signature_named(
    infected_run: tuple[World, str, Result],
) -> None:
    w, infected, result = infected_run
    # exit 1, a business failure: one document held, the run went on
    assert result.code == 1, result.output
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, result.output
    assert re.search(
        rf"FAILED demo {infected} \(business\): .*security/virus_scan: clamscan -d \S+ "
        rf"found a virus: {EICAR_SIGNATURE}\.UNOFFICIAL",
        failed[0],
    ), failed[0]

    [doc] = [d for d in ledger_rows(w.logs_dir, "documents") if d["source_key"] == infected]
    assert (doc["state"], doc["failure_kind"], doc["archive_id"]) == ("failed", "business", None)
    assert doc["sha256"] == EICAR_SHA256  # what was downloaded is what the ERP served
    checks = ledger_rows(w.logs_dir, "checks", source_key=infected, name="virus_scan")
    assert [c["outcome"] for c in checks] == ["fail"]
    assert EICAR_SIGNATURE in checks[0]["reason"]
    [event] = ledger_rows(w.logs_dir, "events", source_key=infected, event_type="virus check")
    assert event["outcome"] == "failure"
    assert EICAR_SIGNATURE in json.loads(event["detail"])["reason"]
    assert not ledger_rows(w.logs_dir, "events", source_key=infected, event_type="ingestion")


def test_every_other_report_is_scanned_clean_and_archived(
    infected_run: tuple[World, str, Result],
) -> None:
    w, infected, _ = infected_run
    reports = w.erp_state()
    assert [r["id"] for r in reports if r["infected"]] == [infected]  # the ERP's own word
    clean = [r for r in reports if not r["infected"]]
    assert len(clean) == 6
    items = w.archive_state()
    assert sorted(i["sha256"] for i in items) == sorted(r["sha256"] for r in clean)
    for report in clean:
        [check] = ledger_rows(w.logs_dir, "checks", source_key=report["id"], name="virus_scan")
        assert check["outcome"] == "pass", check
        assert check["reason"].endswith(": no virus found")


def test_the_eicar_bytes_never_reach_the_archive(infected_run: tuple[World, str, Result]) -> None:
    w, _, _ = infected_run
    assert EICAR_SHA256 not in {i["sha256"] for i in w.archive_state()}
    stored = [p for p in (world_root(w) / "archive-data").rglob("*") if p.is_file()]
    assert stored  # the other reports' files are there
    for path in stored:
        assert hashlib.sha256(path.read_bytes()).hexdigest() != EICAR_SHA256, path
    assert files_containing(world_root(w) / "archive-data", EICAR.decode("ascii")) == []
