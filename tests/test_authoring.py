"""`runner.py try` and `explain` against the real simulators, judged by their ground truth.

A trial records nothing: after `try` of every section of the demo recipe, the ledger,
the run logs and their index, and the archive's catalogue are as they were. A wrong
selector fails fast, showing the page; `explain` proposes a selector that works.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sims.control import get_json
from tests.e2e import (
    ARCHIVE_PASSWORD,
    ERP_PASSWORD,
    ROOT,
    Result,
    World,
    command,
    command_in,
    line_of,
    recipe_variant,
    world,
)
from tests.e2e_second import RECIPE as TRACKER_RECIPE
from tests.e2e_second import TRACKER_PASSWORD, second_world

DEMO = ROOT / "recipes" / "demo.yaml"
REPORTS = 25
STEP_TIMEOUT = 3.0  # seconds: the broken recipes' step timeout


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Both simulators, after one real run: the archive holds every report."""
    with world(tmp_path_factory.mktemp("authoring"), reports=REPORTS) as w:
        assert w.run().code == 0
        yield w


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` and its SHA-256: what a trial must leave as it was."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def archive_truth(w: World) -> dict[str, Any]:
    """The archive's catalogue and its open sessions. Its `peak` of sessions is left
    out: a trial logs in, as a person would, and that high-water mark counts it."""
    state = get_json(f"{w.archive_url}/_sim/state")
    return {"items": state["items"], "active": state["sessions"]["active"]}


def trial(w: World, *args: str) -> Result:
    return command(w, "try", *args)


def step_lines(result: Result, recipe: str = "demo.yaml") -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(f"  {recipe}:")]


def test_try_of_every_section_prints_its_steps_and_records_nothing(captured: World) -> None:
    w = captured
    logs_before, archive_before = tree(w.logs_dir), archive_truth(w)
    erp = {report["id"]: report for report in w.erp_state()}
    items = archive_before["items"]
    by_key = {item["metadata"]["remarks"].split()[-1]: item for item in items}
    assert len(items) == REPORTS

    for section in ("login", "logout", "archive.login", "archive.logout"):
        result = trial(w, str(DEMO), section)
        assert result.code == 0, result.output
        assert step_lines(result), result.output

    listed = trial(w, str(DEMO), "list")
    assert listed.code == 0, listed.output
    assert f"listed {REPORTS} rows on 2 page(s)" in listed.stdout
    for report_id, report in erp.items():
        assert re.search(
            rf"^  {report_id} \(id='{report_id}', title='{report['title']}'", listed.stdout, re.M
        )
    table = next(line for line in step_lines(listed) if " table " in line)
    assert "table#dataGrid -> 1" in table and "tr.row -> 20" in table

    downloaded = trial(w, str(DEMO), "download", "--row", "R000002")
    assert downloaded.code == 0, downloaded.output
    assert f"SHA-256 {erp['R000002']['sha256']}" in downloaded.stdout
    assert "href http" in downloaded.stdout  # the download step says what it fetched

    uploaded = trial(w, str(DEMO), "upload", "--row", "R000003")
    assert uploaded.code == 0, uploaded.output
    assert "stopped before the request that would commit the upload" in uploaded.stdout
    assert "#file-input -> 1" in uploaded.stdout

    found = trial(w, str(DEMO), "find", "--row", "R000004")
    assert found.code == 0, found.output
    assert f"archive_id = '{by_key['R000004']['archive_id']}'" in found.stdout

    first = get_json(f"{w.archive_url}/_sim/state")["items"]
    confirmed = trial(w, str(DEMO), "confirm", "--archive-id", first[5]["archive_id"])
    assert confirmed.code == 0, confirmed.output
    assert f"sha256 = '{first[5]['sha256']}'" in confirmed.stdout

    fixity = trial(w, str(DEMO), "fixity")  # the inventory's first item, by default
    assert fixity.code == 0, fixity.output
    shown = re.search(r"the item: (\S+)", fixity.stdout)
    assert shown is not None, fixity.output
    item = next(i for i in items if i["archive_id"] == shown.group(1))
    assert f"SHA-256 {item['sha256']}" in fixity.stdout

    inventory = trial(w, str(DEMO), "inventory")
    assert inventory.code == 0, inventory.output
    assert f"listed {REPORTS} rows" in inventory.stdout
    for item in items:
        assert f"  {item['archive_id']} (archive_id='{item['archive_id']}'" in inventory.stdout

    no_detail = trial(w, str(DEMO), "detail")
    assert no_detail.code == 2 and "has no detail steps" in no_detail.stderr

    assert tree(w.logs_dir) == logs_before  # no ledger write, no run log, no index line
    assert archive_truth(w) == archive_before  # nothing archived; every session logged out
    for result in (listed, downloaded, uploaded, found, confirmed, fixity, inventory):
        assert ERP_PASSWORD not in result.output and ARCHIVE_PASSWORD not in result.output


def step_line(recipe: Path, line: int) -> int:
    """The line where the step holding ``line`` begins (its ``- kind:``)."""
    lines = recipe.read_text(encoding="utf-8").splitlines()
    while not lines[line - 1].lstrip().startswith("- "):
        line -= 1
    return line


def quoted(selector: str) -> str:
    return f'"{selector}"'


@pytest.mark.parametrize(
    ("right", "wrong"),
    [
        ("input[type=submit][value=查询]", "input[type=submit][value=搜索]"),
        ("table#dataGrid", "table#reportGrid"),  # the ERP's ids ignore case: not #datagrid
    ],
    ids=["click", "table"],
)
def test_a_wrong_selector_fails_fast_and_explain_proposes_one_that_works(
    captured: World, tmp_path: Path, right: str, wrong: str
) -> None:
    w = captured
    recipe = recipe_variant(
        tmp_path,
        "broken.yaml",
        [(quoted(right), quoted(wrong))],
        append=f"timeouts: {{step: {STEP_TIMEOUT:g}}}\n",
    )
    started = time.monotonic()
    assert trial(w, str(recipe), "login").code == 0
    login_took = time.monotonic() - started

    started = time.monotonic()
    failed = trial(w, str(recipe), "list")
    took = time.monotonic() - started
    assert failed.code == 2, failed.output  # a recipe problem
    # What both need (a browser, the login), then the wrong step's own wait: under
    # twice the step timeout more than the login alone.
    assert took - login_took < 2 * STEP_TIMEOUT, (took, login_took)
    line = line_of(recipe, quoted(wrong))
    step = step_line(recipe, line)  # the table's selector is a line below its `- table:`
    assert f"broken.yaml:{step}" in failed.stderr
    assert f"  at:      {w.erp_url}/report/list.do" in failed.stderr
    assert "title:   '华北机电 ERP 系统 V3.2'" in failed.stderr
    closest = failed.stderr.split("closest matches")[1].splitlines()[1]
    assert closest.startswith(('    input[type=submit] "查询"', "    table#dataGrid")), closest
    assert f"next: python runner.py explain {recipe} {step}" in failed.stderr

    explained = command(w, "explain", str(recipe), str(line))  # the line the author sees
    assert explained.code == 0, explained.output
    proposals = re.findall(r"^  1\. (.+)$", explained.stdout, re.M)
    assert proposals and "the same element on both loads" in explained.stdout, explained.stdout
    assert proposals[0] != wrong
    fixed = recipe_variant(
        tmp_path, "fixed.yaml", [(quoted(wrong), json.dumps(proposals[0]))], base=recipe
    )
    listed = trial(w, str(fixed), "list")
    assert listed.code == 0, listed.output
    for report in w.erp_state():
        assert f"  {report['id']} (id='{report['id']}'" in listed.stdout


def test_shots_are_never_taken_with_a_password_typed(captured: World, tmp_path: Path) -> None:
    w = captured
    shots = tmp_path / "shots"
    result = trial(w, str(DEMO), "login", "--shots", str(shots))
    assert result.code == 0, result.output
    taken = sorted(p.name for p in shots.glob("*.png"))
    password_line = line_of(DEMO, '{selector: "input[name=password]"')
    submit_line = line_of(DEMO, "input[type=submit][value=登录]")
    assert f"001-login-line{password_line - 2}-goto.png" in taken
    # Typed, the password is on screen until the form is sent: no picture between.
    assert not any(f"-line{password_line}-" in name for name in taken), taken
    assert "(no picture: a password field" in result.stdout
    assert any(f"-line{submit_line}-click" in name for name in taken), taken
    explained = command(w, "explain", str(DEMO), str(password_line))
    assert explained.code == 0, explained.output
    assert "input[name=password]: 1 match" in explained.stdout
    for output in (result.output, explained.output):
        assert ERP_PASSWORD not in output


def test_try_upload_with_commit_archives_one_item_and_says_no_run_recorded_it(
    captured: World,
) -> None:
    w = captured
    before = archive_truth(w)["items"]
    result = trial(w, str(DEMO), "upload", "--row", "R000007", "--commit")
    assert result.code == 0, result.output
    after = archive_truth(w)["items"]
    assert len(after) == len(before) + 1
    new = next(i for i in after if i not in before)
    assert new["metadata"]["remarks"] == "源系统报表编号 R000007"
    assert f"the archive now holds '{new['archive_id']}', which no run recorded" in result.stdout


def test_try_detail_on_the_second_system_reads_what_its_detail_page_shows(
    tmp_path: Path,
) -> None:
    with second_world(tmp_path, incidents=3, minutes=1) as w:
        truth = w.tracker_state()
        result = command_in(w.env, "try", str(TRACKER_RECIPE), "detail", "--listing", "incidents")
    assert result.code == 0, result.output
    row = re.search(r"^  the row: INC/(\d+) ", result.stdout, re.M)
    assert row is not None, result.output
    report = next(r for r in truth if r["kind"] == "incident" and r["number"] == int(row[1]))
    assert f"report_id = '{report['id']}'" in result.stdout
    assert f"reporter = '{report['reporter']}'" in result.stdout
    assert f"source_sha256 = '{report['sha256']}'" in result.stdout
    assert TRACKER_PASSWORD not in result.output
