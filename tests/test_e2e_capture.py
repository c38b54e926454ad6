"""The whole loop with real Chromium, judged by the simulators' own ground truth."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bots.demo import simulator
from bots.redaction import Redactor
from credentials import open_store
from tests.e2e import (
    ARCHIVE_PASSWORD,
    ERP_PASSWORD,
    ROOT,
    World,
    files_containing,
    get_json,
    ledger_rows,
    recipe_variant,
    simulator_requests,
    summary_counts,
    world,
)

pytestmark = pytest.mark.e2e

# The demo recipe's mapping, restated independently of our code.
DEPARTMENT_CODES = {"财务部": "CWB", "销售部": "XSB", "仓储部": "CCB"}
RETENTION = {"年度财务决算报告": "Y", "凭证汇总表": "D30"}  # every other kind: D10
REFERENCE = re.compile(r"^Z109-KU·(\d{4})-(Y|D30|D10)-([A-Z]+)-(\d{4})$")


def expected_metadata(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "fonds": "Z109",
        "category": "KU",
        "year": report["date"][:4],
        "retention": RETENTION.get(report["kind"], "D10"),
        "department": DEPARTMENT_CODES[report["department"]],
        "title": report["title"],
        "author": report["department"],
        "date": report["date"].replace("-", ""),
        "doc_number": "",
        "classification": "内部",
        "remarks": f"源系统报表编号 {report['id']}",
        # Read from the PDF by the bot; the ERP's ground truth counts the page objects.
        "pages": report["pages"],
    }


def assert_archive_holds_exactly(
    reports: list[dict[str, Any]], items: list[dict[str, Any]]
) -> None:
    """Same count, same digests, each item's metadata as the recipe maps its report."""
    assert len(items) == len(reports)
    assert Counter(i["sha256"] for i in items) == Counter(r["sha256"] for r in reports)
    by_digest = {i["sha256"]: i for i in items}
    for report in reports:
        item = by_digest[report["sha256"]]
        assert item["size"] == report["size"]
        assert item["filename"] == report["filename"]  # the Chinese name survived
        metadata = {k: item["metadata"][k] for k in expected_metadata(report)}
        assert metadata == expected_metadata(report), report["id"]
        match = REFERENCE.match(item["reference_code"])
        assert match, item["reference_code"]
        assert match.groups()[:3] == (
            metadata["year"],
            metadata["retention"],
            metadata["department"],
        )
    assert len({i["reference_code"] for i in items}) == len(items)


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world after its first run."""
    with world(tmp_path_factory.mktemp("e2e")) as w:
        result = w.run()
        assert result.code == 0, result.output
        yield w


def test_first_run_archives_every_report_with_mapped_metadata(captured: World) -> None:
    reports = captured.erp_state()
    assert len(reports) == 25
    assert any(r["needs_generate"] for r in reports), "the 生成 path must be exercised"
    assert_archive_holds_exactly(reports, captured.archive_state())
    assert summary_counts(captured.results[0].stdout) == {
        "listed": 25,
        "new": 25,
        "archived": 25,
        "failed": 0,
    }


def test_item_numbers_are_continuous_per_group(captured: World) -> None:
    groups: dict[tuple[str, ...], list[int]] = {}
    for item in captured.archive_state():
        match = REFERENCE.match(item["reference_code"])
        assert match
        groups.setdefault(match.groups()[:3], []).append(int(match.group(4)))
    for numbers in groups.values():
        assert sorted(numbers) == list(range(1, len(numbers) + 1))


def test_second_run_uploads_nothing(captured: World) -> None:
    before = captured.archive_state()
    result = captured.run()
    assert result.code == 0, result.output
    assert captured.archive_state() == before
    counts = summary_counts(result.stdout)
    assert counts["new"] == 0 and counts["archived"] == 0 and counts["listed"] == len(before)


def test_after_publish_a_run_archives_exactly_the_new_reports(captured: World) -> None:
    before = captured.archive_state()
    published = captured.publish(3)
    result = captured.run()
    assert result.code == 0, result.output
    reports = captured.erp_state()
    new_reports = [r for r in reports if r["id"] in published]
    after = captured.archive_state()
    assert after[: len(before)] == before  # nothing already archived was touched
    assert_archive_holds_exactly(new_reports, after[len(before) :])
    assert_archive_holds_exactly(reports, after)
    assert summary_counts(result.stdout) == {
        "listed": len(reports),
        "new": 3,
        "archived": 3,
        "failed": 0,
    }


def test_ledger_and_run_log_agree_with_the_archive(captured: World) -> None:
    items = {i["archive_id"]: i for i in captured.archive_state()}
    rows = [
        (d["source_key"], d["state"], d["sha256"], d["archive_id"], d["reference_code"])
        for d in ledger_rows(captured.logs_dir, "documents")
    ]
    assert {state for _, state, *_ in rows} == {"confirmed"}
    assert {archive_id for *_, archive_id, _ in rows} == set(items)
    for _, _, sha256, archive_id, reference_code in rows:
        assert items[archive_id]["sha256"] == sha256
        assert items[archive_id]["reference_code"] == reference_code
    log = next((captured.logs_dir / "runs").glob("*.jsonl")).read_text(encoding="utf-8")
    assert '"event": "run_start"' in log and '"event": "run_end"' in log


def test_passwords_are_nowhere(captured: World) -> None:
    for password in (ERP_PASSWORD, ARCHIVE_PASSWORD):
        assert files_containing(captured.logs_dir, password) == []
        for result in captured.results:
            assert password not in result.output


def write_variant(tmp_path: Path, replacements: list[tuple[str, str]]) -> Path:
    return recipe_variant(tmp_path, "variant.yaml", replacements)


def test_business_failures_are_recorded_and_retried_after_the_fix(tmp_path: Path) -> None:
    """No retention rule, a value our checks refuse, one the archive refuses: each fails alone."""
    broken = write_variant(
        tmp_path,
        [
            # Our own metadata check refuses a year that is not four digits for 资金日报表.
            (
                'year: "{{ row.date[:4] }}"',
                "year: \"{{ '20x5' if row.kind == '资金日报表' else row.date[:4] }}\"",
            ),
            # The upload steps leave 责任者 empty for 销售明细: the archive refuses it.
            (
                '"input[name=author]": "{{ meta.author }}"',
                "\"input[name=author]\": \"{{ '' if row.kind == '销售明细' else meta.author }}\"",
            ),
        ],
    )
    # 库存盘点表 loses its retention rule.
    schedule = tmp_path / "schedules" / "accounting.yaml"
    text = schedule.read_text(encoding="utf-8")
    schedule.write_text(
        text.replace("row.kind == '库存盘点表'", "row.kind == '库存盘点表（停用）'"),
        encoding="utf-8",
    )
    with world(tmp_path, reports=12) as w:
        reports = w.erp_state()
        stock = {r["id"] for r in reports if r["kind"] == "库存盘点表"}
        sales = {r["id"] for r in reports if r["kind"] == "销售明细"}
        fund = {r["id"] for r in reports if r["kind"] == "资金日报表"}
        assert stock and sales and fund
        result = w.run(broken)
        assert result.code == 1, result.output
        for key in stock:
            assert re.search(
                rf"FAILED demo {key} \(business\): .*retention_schedule: no rule of the "
                r"retention schedule accounting.yaml",
                result.stderr,
            )
        for key in sales:
            assert re.search(rf"FAILED demo {key} \(business\): .*refused: .*责任者", result.stderr)
        for key in fund:
            assert re.search(
                rf"FAILED demo {key} \(business\): .*metadata_valid: 年度 \(year\): '20x5'",
                result.stderr,
            )
        failed = stock | sales | fund
        fine = [r for r in reports if r["id"] not in failed]
        assert_archive_holds_exactly(fine, w.archive_state())
        # Nothing was uploaded for what our checks refused: the archive never saw them.
        requests = "\n".join(simulator_requests(w))
        assert requests.count("POST /ingest") == len(fine) + len(sales)

        # The same recipe again: business failures are held, not retried, and said again.
        again = w.run(broken)
        assert again.code == 1, again.output
        for key in failed:
            assert f"HELD demo {key}:" in again.stderr
        assert summary_counts(again.stdout)["archived"] == 0
        assert_archive_holds_exactly(fine, w.archive_state())

        fixed = w.run()  # the demo recipe as it should be
        assert fixed.code == 0, fixed.output
        assert_archive_holds_exactly(reports, w.archive_state())
        assert summary_counts(fixed.stdout)["archived"] == len(failed)


def test_missing_credential_stops_before_contacting_anything(tmp_path: Path) -> None:
    missing = write_variant(tmp_path, [("credential: demo-erp", "credential: nobody-stored-this")])
    with world(tmp_path, reports=3) as w:
        result = w.run(missing)
        assert result.code == 2
        assert "no credential named 'nobody-stored-this'" in result.stderr
        assert "runner.py credentials set nobody-stored-this" in result.stderr
        assert w.archive_state() == []


def test_demo_command_archives_everything_and_reveals_no_password(tmp_path: Path) -> None:
    """The README's demo, in a private logs folder: exit 0, ground truth matches, no leak."""
    env = {**os.environ, "HOME": str(tmp_path / "home"), "FLEET_LOGS_DIR": str(tmp_path / "logs")}
    env.pop("FLEET_KEYRING_KEY", None)  # the demo makes its own owner-only key file
    outputs = []
    for expected in (
        "45 listed, 45 new, 45 archived, 0 failed",
        "45 listed, 0 new, 0 archived, 0 failed",
    ):
        proc = subprocess.run(
            [sys.executable, "runner.py", "demo"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, outputs[-1]
        assert expected in proc.stdout

    # The demo stopped its simulators; bring them back over the same data to read the truth.
    with (
        simulator("sims.erp", [], tmp_path / "erp.log") as erp_url,
        simulator(
            "sims.archive",
            ["--data", str(tmp_path / "logs" / "demo" / "archive-data")],
            tmp_path / "archive.log",
        ) as archive_url,
    ):
        reports = get_json(f"{erp_url}/_sim/state")["reports"]
        assert_archive_holds_exactly(reports, get_json(f"{archive_url}/_sim/state")["items"])
    for password in ("clerk-demo", "archivist-demo"):
        assert files_containing(tmp_path / "logs", password) == []
        assert all(password not in output for output in outputs)


def test_refused_login_is_a_system_failure_that_names_the_credential(tmp_path: Path) -> None:
    with world(tmp_path, reports=3) as w:
        open_store(w.env, Redactor()).set("demo-erp", "clerk", "wrong-Pw-9d8e")
        result = w.run()
        assert result.code == 3, result.output
        assert "cannot log in to 旧ERP" in result.stderr and "用户名或密码错误" in result.stderr
        assert "credential 'demo-erp'" in result.stderr
        assert "credentials set demo-erp" in result.stderr
        assert "wrong-Pw-9d8e" not in result.output
        assert files_containing(w.logs_dir, "wrong-Pw-9d8e") == []
        assert w.archive_state() == []


def test_rest_of_the_step_vocabulary(tmp_path: Path) -> None:
    """press, select by label, expect text within a selector, uncheck, attribute checks."""
    variant = write_variant(
        tmp_path,
        [
            (
                '    - click: {selector: "input[type=submit][value=登录]", navigates: true}',
                '    - press: {selector: "input[name=password]", key: Enter, navigates: true}',
            ),
            (
                "    - expect: {selector: \"a[href='/ingest']\"}",
                '    - expect: {selector: "#sidebar", text: "当前用户：{{ credential.username }}"}',
            ),
            ('value: "{{ meta.classification }}"}', 'label: "{{ meta.classification }}"}'),
            (
                '      fill: {selector: "textarea[name=remarks]", value: "{{ meta.remarks }}"}\n',
                '      fill: {selector: "textarea[name=remarks]", value: "{{ meta.remarks }}"}\n'
                "    - when: row.kind == '销售明细'\n"
                '      uncheck: "input[name=has_remarks]"\n',
            ),
            (
                '    - read: {selector: "#sha256", into: sha256}',
                '    - read: {selector: "#sha256", into: sha256}\n'
                "    - expect: {selector: \"a#file-link[href='/items/{{ archive_id }}/file']\"}\n"
                '    - read: {selector: "#file-link", attr: href, into: file_href}',
            ),
        ],
    )
    with world(tmp_path, reports=8) as w:
        result = w.run(variant)
        assert result.code == 0, result.output
        reports = w.erp_state()
        items = {i["sha256"]: i for i in w.archive_state()}
        assert len(items) == len(reports)
        for report in reports:
            remarks = items[report["sha256"]]["metadata"]["remarks"]
            unticked = report["kind"] == "销售明细"
            assert remarks == ("" if unticked else f"源系统报表编号 {report['id']}")
        assert any(r["kind"] == "销售明细" for r in reports)
