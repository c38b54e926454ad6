"""What archivists and auditors read, end to end: reconcile the demo against the archive's
own inventory, tamper with the archive, review the workbook, recapture, and verify the logs.

Judged by the simulators' ground truth (/_sim/state), the workbook as openpyxl and
LibreOffice read it, and the command line's exit codes.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from sims.control import post_json
from tests.e2e import ROOT, World, ledger_rows, recipe_variant, world
from tests.office import to_pdf

pytestmark = pytest.mark.e2e

RECON = "核对 Reconciliation"
REPORTS = 8


def runner(w: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "runner.py", *args],
        cwd=ROOT,
        env=w.env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def sheet_rows(path: Path, sheet: str) -> list[dict[str, Any]]:
    """A sheet's data rows by English header (the second header row)."""
    book = load_workbook(path, read_only=True)
    try:
        rows = list(book[sheet].iter_rows(values_only=True))
    finally:
        book.close()
    # Chinese headers, then English; the batch sheet has its verdict above them.
    at = next(i for i, row in enumerate(rows) if "Measure" in row) if "Batch" in sheet else 1
    english = rows[at]
    return [dict(zip(english, row, strict=False)) for row in rows[at + 1 :]]


def batch(path: Path) -> dict[str, Any]:
    return {r["Measure"]: r["Value"] for r in sheet_rows(path, "批次 Batch")}


def results(path: Path) -> dict[str, str]:
    return {r["Key"]: r["Result"] for r in sheet_rows(path, RECON)}


def review(path: Path, actions: dict[str, tuple[str, str, str]]) -> None:
    """Type actions into the reconciliation sheet the way a reviewer would, and save."""
    book = load_workbook(path)
    ws = book[RECON]
    header = next(r for r in range(1, 6) if "Key" in [c.value for c in ws[r]])
    english = [c.value for c in ws[header]]
    col = {name: english.index(name) + 1 for name in ("Key", "Action", "Owner", "Note")}
    for row in range(header + 1, ws.max_row + 1):
        key = ws.cell(row, col["Key"]).value
        if key in actions:
            action, owner, note = actions[key]
            ws.cell(row, col["Action"]).value = action
            ws.cell(row, col["Owner"]).value = owner
            ws.cell(row, col["Note"]).value = note
    book.save(path)


def test_reconcile_tamper_review_recapture(tmp_path: Path) -> None:
    with world(tmp_path, reports=REPORTS) as w:
        assert w.run().code == 0
        truth = {r["id"] for r in w.erp_state()}
        held = {i["archive_id"]: i for i in w.archive_state()}
        assert len(truth) == len(held) == REPORTS

        # After the demo: every report 一致, and the batch closes. Under cron (no TTY):
        # one line on standard output and nothing else.
        first = tmp_path / "first.xlsx"
        done = runner(w, "reconcile", "--out", str(first))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count("\n") == 1 and done.stderr == "", done.stdout + done.stderr
        assert "the batch closes" in done.stdout
        assert results(first) == dict.fromkeys(truth, "一致")
        facts = batch(first)
        assert facts["批次是否闭合 Batch closes"] == "是 Y"
        assert facts["源清单件数 Listed (items)"] == REPORTS
        assert f"{REPORTS} of {REPORTS} files read back" in facts["档案盘点 Archive inventory"]
        receipt = {r["Archive id"]: r for r in sheet_rows(first, "入库回执 Receipt")}
        assert set(receipt) == set(held)
        for archive_id, item in held.items():  # the archive's own digests, read back
            assert receipt[archive_id]["Digest reported by archive"] == item["sha256"]
            assert receipt[archive_id]["Reference code"] == item["reference_code"]
        catalogue = sheet_rows(first, "归档文件目录 Catalogue")
        assert [r["Reference code"] for r in catalogue] == sorted(
            i["reference_code"] for i in held.values()
        )
        assert [r["Seq."] for r in catalogue] == list(range(1, REPORTS + 1))
        listing = sheet_rows(first, "源清单 Listing")
        assert {r["Source id"] for r in listing} == truth

        # The archive loses one item and damages another.
        by_key = {d["source_key"]: d for d in ledger_rows(w.logs_dir, "documents")}
        gone_key, rotten_key, fine_key = sorted(truth)[1], sorted(truth)[4], sorted(truth)[6]
        gone, rotten = by_key[gone_key]["archive_id"], by_key[rotten_key]["archive_id"]
        post_json(f"{w.archive_url}/_sim/tamper", {"delete": gone})
        post_json(f"{w.archive_url}/_sim/tamper", {"corrupt": rotten})

        second = tmp_path / "second.xlsx"
        done = runner(w, "reconcile", "--out", str(second))
        assert done.returncode == 1, done.stdout + done.stderr
        assert "the batch does NOT close" in done.stdout
        found = results(second)
        assert found[gone_key] == "缺失" and found[rotten_key] == "摘要不符"
        assert {k for k, v in found.items() if v != "一致"} == {gone_key, rotten_key}
        assert batch(second)["批次是否闭合 Batch closes"] == "否 N"
        issues = {r["Issue"]: r for r in sheet_rows(second, "差异台账 Discrepancies")}
        assert issues["缺失 missing in archive"]["Items"] == 1
        assert gone_key in issues["缺失 missing in archive"]["Keys"]
        assert issues["摘要不符 digest mismatch"]["Items"] == 1

        # LibreOffice opens it without complaint and prints the headers, both languages.
        text = "\n".join(to_pdf(second, tmp_path / "office"))
        for header in ("核对结果", "Result", "档号", "Reference code", "缺失", "摘要不符"):
            assert header in text, header

        # The reviewer: recapture the missing one, ignore the damaged one (the archive's
        # administrator restores it), and (wrongly) recapture one that is fine.
        review(
            second,
            {
                gone_key: ("recapture", "王档案", "archive lost it"),
                rotten_key: ("ignore", "王档案", "archive admin restoring from backup"),
                fine_key: ("Recapture", "王档案", ""),
            },
        )
        before = {i["archive_id"] for i in w.archive_state()}
        done = runner(w, "apply-review", str(second))
        assert done.returncode == 1, done.stdout + done.stderr  # one refused
        assert f"APPLIED recapture demo/{gone_key}" in done.stdout
        assert f"APPLIED ignore demo/{rotten_key}" in done.stdout
        assert f"REFUSED recapture demo/{fine_key}" in done.stderr
        assert "nothing to recapture" in done.stderr
        # Applying the same file again changes nothing more.
        again = runner(w, "apply-review", str(second))
        assert f"UNCHANGED recapture demo/{gone_key}" in again.stdout

        # The next run uploads exactly the missing document, and nothing else.
        assert w.run().code == 0
        after = {i["archive_id"]: i for i in w.archive_state()}
        new = set(after) - before
        assert len(new) == 1 and set(after) >= before
        [restored] = [after[a] for a in new]
        assert restored["sha256"] == by_key[gone_key]["sha256"]
        assert restored["sha256"] == held[gone]["sha256"]

        # Now: the recaptured row matches, the ignored one is closed: the batch closes.
        third = tmp_path / "third.xlsx"
        done = runner(w, "reconcile", "--out", str(third))
        assert done.returncode == 0, done.stdout + done.stderr
        rows = {r["Key"]: r for r in sheet_rows(third, RECON)}
        assert rows[gone_key]["Result"] == "一致"
        assert rows[gone_key]["Archive id"] == restored["archive_id"]
        assert rows[rotten_key]["Result"] == "摘要不符"
        assert rows[rotten_key]["Closed"] == "是 Y"
        assert "archive admin restoring" in rows[rotten_key]["Note"]
        assert batch(third)["批次是否闭合 Batch closes"] == "是 Y"

        # Every decision is in the audit trail: ledger, document events, run log, evidence.
        decisions = ledger_rows(w.logs_dir, "reviews")
        assert {(d["source_key"], d["action"], d["outcome"]) for d in decisions} >= {
            (gone_key, "recapture", "applied"),
            (rotten_key, "ignore", "applied"),
            (fine_key, "recapture", "refused"),
        }
        events = ledger_rows(w.logs_dir, "events", event_type="review decision")
        assert {e["source_key"] for e in events} == {gone_key, rotten_key, fine_key}
        assert all(Path(e["evidence_path"]).is_file() for e in events)

        the_auditors_view(w, tmp_path)
        verify_the_logs(w, tmp_path)


def the_auditors_view(w: World, tmp_path: Path) -> None:
    """`audit` lists every run the ledger has (captures, inventories, reconciliations, the
    review) and the review decisions, with working evidence links, and says the logs are
    intact."""
    today = time.strftime("%Y-%m-%d")
    page = tmp_path / "auditor" / "audit.html"
    done = runner(w, "audit", "--since", today, "--out", str(page))
    assert done.returncode == 0, done.stdout + done.stderr
    html = page.read_text(encoding="utf-8")
    runs = ledger_rows(w.logs_dir, "runs")
    assert {r["action"] for r in runs} == {"capture", "inventory", "reconcile", "review"}
    for run in runs:
        assert run["run_id"] in html and run["recipe_digest"] in html
    assert "review decision" in html and "Logs intact" in html
    links = re.findall(r'href="([^"#]+)"', html)
    assert any("reviews/" in link for link in links)
    for link in links:
        assert (page.parent / urllib.parse.unquote(link)).is_file(), link
    book = tmp_path / "auditor" / "audit.xlsx"
    done = runner(w, "audit", "--since", today, "--out", str(book))
    assert done.returncode == 0, done.stdout + done.stderr
    assert load_workbook(book).sheetnames == ["概要 Summary", "运行 Runs", "事件 Events"]


def verify_the_logs(w: World, tmp_path: Path) -> None:
    """`logs verify` passes on the logs all of that left, and fails on each kind of edit."""
    runs = w.logs_dir / "runs"
    done = runner(w, "logs", "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "logs intact" in done.stdout
    files = sorted(runs.glob("*.jsonl"))
    assert any(f.name.startswith("review-") for f in files)

    def tampered(edit: Any) -> str:
        copy = tmp_path / f"runs-{time.monotonic_ns()}"
        shutil.copytree(runs, copy)
        target = copy / files[0].name
        edit(target)
        done = runner(w, "logs", "verify", str(copy))
        assert done.returncode == 1, done.stdout + done.stderr
        first = done.stderr.splitlines()[0]
        assert first.startswith("TAMPERED: "), done.stderr
        return first

    def change_byte(path: Path) -> None:
        data = bytearray(path.read_bytes())
        at = data.index(b'"listing"')
        data[at + 2] ^= 0x01
        path.write_bytes(bytes(data))

    def edit_lines(change: Any) -> Any:
        def edit(path: Path) -> None:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            path.write_text("".join(change(lines)), encoding="utf-8")

        return edit

    name = files[0].name
    assert name in tampered(change_byte)
    assert f"{name} line 4" in tampered(edit_lines(lambda ls: ls[:3] + ls[4:]))
    assert f"{name} line 3" in tampered(edit_lines(lambda ls: ls[:2] + [ls[3], ls[2]] + ls[4:]))
    assert name in tampered(lambda path: path.unlink())


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    """On a terminal, reconcile draws a progress bar; the no-TTY case is the test above."""
    with world(tmp_path, reports=3) as w:
        assert w.run().code == 0
        assert runner(w, "inventory", "demo").returncode == 0
        output = run_in_terminal(
            w, "reconcile", "--no-inventory", "--out", str(tmp_path / "t.xlsx")
        )
        assert "reconciling" in output or "writing t.xlsx" in output, output
        assert "the batch closes" in output


def run_in_terminal(w: World, *args: str) -> str:
    """Run the command line under a pseudo-terminal, as a person would; all it printed."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "runner.py", *args],
        cwd=ROOT,
        env={**w.env, "TERM": "xterm-256color", "COLUMNS": "120"},
        stdin=child,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(main)
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_recapture_of_a_report_the_source_no_longer_lists(tmp_path: Path) -> None:
    """A reopened document is captured again even when the source's listing has moved on:
    the ledger's row and staged file are enough, and nothing else is touched."""
    with world(tmp_path, reports=3) as w:
        assert w.run().code == 0
        docs = ledger_rows(w.logs_dir, "documents")
        lost = docs[0]
        post_json(f"{w.archive_url}/_sim/tamper", {"delete": lost["archive_id"]})
        book = tmp_path / "review.xlsx"
        assert runner(w, "reconcile", "--out", str(book)).returncode == 1
        review(book, {lost["source_key"]: ("recapture", "王档案", "")})
        done = runner(w, "apply-review", str(book))
        assert done.returncode == 0, done.stdout + done.stderr
        # A window that lists nothing at all.
        empty = recipe_variant(tmp_path, "demo.yaml", [('end: "{{ today }}"', 'end: "2000-01-02"')])
        before = {i["archive_id"] for i in w.archive_state()}
        result = w.run(empty)
        assert result.code == 0, result.output
        assert result.stdout.startswith("demo: 0 listed, 0 new, 1 archived"), result.stdout
        after = {i["archive_id"]: i for i in w.archive_state()}
        [new] = set(after) - before
        assert after[new]["sha256"] == lost["sha256"] and set(after) >= before
        assert [
            {"state": d["state"], "recapture_requested_at": d["recapture_requested_at"]}
            for d in ledger_rows(w.logs_dir, "documents", archive_id=new)
        ] == [{"state": "confirmed", "recapture_requested_at": None}]
