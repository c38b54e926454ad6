"""Bad input never touches what is already archived (issue "Nothing lost, nothing doubled").

Every test starts from a world whose first run archived everything, feeds it one bad
input (a broken recipe, a missing or locked credential, a hostile file), and checks the
exit code, that standard error names the problem and where, and that no confirmed
document was touched: the archive's items and the ledger's confirmed rows are as they
were, plus only the new good documents the test expects.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import (
    ARCHIVE_PASSWORD,
    ERP_PASSWORD,
    Result,
    World,
    files_containing,
    ledger_documents,
    ledger_rows,
    line_of,
    publish_reports,
    recipe_variant,
    run_events,
    run_log_of,
    simulator_requests,
    world,
    world_root,
)

pytestmark = pytest.mark.e2e

GIB = 1 << 30
# The demo recipe's own retry and limits lines, which variants replace (a second
# `retry:` key would be a duplicate key, itself a recipe error).
RETRY_LINE = "retry: {attempts: 4, backoff: 1.0, max_backoff: 30, breaker: 8}"
LIMITS_LINE = "limits: {max_file_mb: 1024}"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Baseline:
    items: list[dict[str, Any]]
    confirmed: dict[str, tuple[Any, ...]]  # key -> (archive_id, sha256, confirmed_at)
    requests: int  # requests the simulators have answered (their /_sim/ controls aside)
    run_logs: frozenset[Path]


def confirmed_rows(w: World) -> dict[str, tuple[Any, ...]]:
    return {
        key: (row["archive_id"], row["sha256"], row["confirmed_at"])
        for key, row in ledger_documents(w.logs_dir).items()
        if row["state"] == "confirmed"
    }


def snapshot(w: World) -> Baseline:
    return Baseline(
        items=w.archive_state(),
        confirmed=confirmed_rows(w),
        requests=len(simulator_requests(w)),
        run_logs=frozenset((w.logs_dir / "runs").glob("*.jsonl")),
    )


def new_items(w: World, before: Baseline) -> list[dict[str, Any]]:
    """The archive's items added since ``before``, after checking nothing before changed."""
    after = w.archive_state()
    assert after[: len(before.items)] == before.items, "an archived item was changed"
    now = confirmed_rows(w)
    for key, row in before.confirmed.items():
        assert now.get(key) == row, f"the confirmed ledger row of {key} was changed"
    return after[len(before.items) :]


def assert_nothing_touched(w: World, before: Baseline) -> None:
    assert new_items(w, before) == []
    assert confirmed_rows(w) == before.confirmed


def assert_nothing_contacted(w: World, before: Baseline) -> None:
    assert len(simulator_requests(w)) == before.requests, "a system was contacted"


def assert_no_secret(w: World, *results: Result) -> None:
    secrets = [ERP_PASSWORD, ARCHIVE_PASSWORD, w.env["FLEET_KEYRING_KEY"]]
    for secret in secrets:
        for result in results:
            assert secret not in result.output
        assert files_containing(w.logs_dir, secret) == []


def reports_by_id(w: World) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in w.erp_state()}


def assert_archived(w: World, items: list[dict[str, Any]], keys: list[str]) -> None:
    """``items`` are exactly the reports ``keys``, once each, with their bytes."""
    reports = reports_by_id(w)
    assert sorted(i["sha256"] for i in items) == sorted(reports[k]["sha256"] for k in keys)
    confirmed = confirmed_rows(w)
    for key in keys:
        assert confirmed[key][1] == reports[key]["sha256"]


def staged_files(w: World, key: str) -> list[Path]:
    folder = w.logs_dir / "staging" / "demo" / key
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- a world with nothing but good reports: exit 0 stays possible --------------------------


@pytest.fixture(scope="module")
def good_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("bad-input"), reports=4) as w:
        result = w.run()
        assert result.code == 0, result.output
        assert len(w.archive_state()) == 4
        yield w


@pytest.mark.parametrize(
    ("old", "new", "needle", "problem"),
    [
        pytest.param(
            '    - click: "#next-btn"',
            '    - click: "#next-btn": oops',
            '"#next-btn": oops',
            "mapping values are not allowed here",
            id="stray-colon",
        ),
        pytest.param(
            '    - click: "#next-btn"',
            '\t- click: "#next-btn"',
            '\t- click: "#next-btn"',
            "cannot start any token",
            id="tab-indent",
        ),
    ],
)
def test_malformed_yaml_exits_2_naming_file_and_line_and_contacts_nothing(
    good_world: World, tmp_path: Path, old: str, new: str, needle: str, problem: str
) -> None:
    recipe = recipe_variant(tmp_path, "broken.yaml", [(old, new)])
    before = snapshot(good_world)
    result = good_world.run(recipe)
    assert result.code == 2, result.output
    assert result.stderr.startswith(f"error: {recipe}:{line_of(recipe, needle)}: invalid YAML")
    assert problem in result.stderr
    assert result.stdout == ""
    assert_nothing_contacted(good_world, before)
    assert_nothing_touched(good_world, before)
    assert frozenset((good_world.logs_dir / "runs").glob("*.jsonl")) == before.run_logs


def test_unknown_step_exits_2_naming_file_line_and_the_step_it_meant(
    good_world: World, tmp_path: Path
) -> None:
    recipe = recipe_variant(
        tmp_path, "typo.yaml", [('    - click: "#next-btn"', '    - clik: "#next-btn"')]
    )
    before = snapshot(good_world)
    result = good_world.run(recipe)
    assert result.code == 2, result.output
    line = line_of(recipe, "clik")
    assert f"{recipe}:{line}: archive.upload[" in result.stderr
    assert "unknown step 'clik' (did you mean 'click'?)" in result.stderr
    assert_nothing_contacted(good_world, before)
    assert_nothing_touched(good_world, before)


def test_template_reading_a_missing_field_exits_2_naming_line_and_field_before_contacting_anything(
    good_world: World, tmp_path: Path
) -> None:
    recipe = recipe_variant(
        tmp_path, "titel.yaml", [('  title: "{{ row.title or', '  title: "{{ row.titel or')]
    )
    before = snapshot(good_world)
    result = good_world.run(recipe)
    assert result.code == 2, result.output
    assert f"{recipe}:{line_of(recipe, 'row.titel')}: `row.titel` is not defined" in result.stderr
    assert "row has: date, department, href, id, kind, size, title" in result.stderr
    assert_nothing_contacted(good_world, before)
    assert_nothing_touched(good_world, before)
    assert frozenset((good_world.logs_dir / "runs").glob("*.jsonl")) == before.run_logs


def test_selector_matching_nothing_is_a_recipe_problem_after_one_attempt_exit_2(
    good_world: World, tmp_path: Path
) -> None:
    recipe = recipe_variant(
        tmp_path,
        "selector.yaml",
        [('"#next-btn"', '"#next-button"')],  # the wizard's 下一步, on /ingest
        append="timeouts: {step: 2, download: 30}\n",
    )
    before = snapshot(good_world)
    [key] = publish_reports(good_world, count=1, kind="月度财务报表")
    result = good_world.run(recipe)
    # The page answered normally: the recipe does not fit it. Held after one attempt
    # (no retry), the run goes on, and the run says the recipe needs fixing.
    assert result.code == 2, result.output
    line = line_of(recipe, "#next-button")
    assert re.search(
        rf"FAILED demo {key} \(business\): recipe problem: {re.escape(str(recipe))}:{line}: "
        rf"step 'click' \(selector: #next-button\) failed on "
        rf"{re.escape(good_world.archive_url)}/ingest, a page that answered normally: "
        r".*#next-button.*The page showed: title '[^']*', text '",
        result.stderr,
    ), result.stderr
    assert "next: business failures are not retried as they stand" in result.stderr
    assert "retry" not in {e["event"] for e in run_events(run_log_of(result.stdout))}
    assert_nothing_touched(good_world, before)  # the form was never submitted
    assert ledger_documents(good_world.logs_dir)[key]["state"] == "failed"

    # The recipe fixed: the next run archives the report, once.
    fixed = good_world.run()
    assert fixed.code == 0, fixed.output
    assert_archived(good_world, new_items(good_world, before), [key])


@pytest.mark.parametrize(
    ("credential", "master_key", "expected"),
    [
        pytest.param(
            "nobody-stored-this",
            None,
            [
                "no credential named 'nobody-stored-this'",
                "`python runner.py credentials set nobody-stored-this`",
            ],
            id="missing-credential",
        ),
        pytest.param(
            "demo-archive",
            "not-the-master-key-8e2d",
            ["cannot unlock the credential store", "the master key does not match"],
            id="wrong-master-key",
        ),
    ],
)
def test_credential_problem_exits_2_saying_what_to_do_before_contacting_anything(
    good_world: World,
    tmp_path: Path,
    credential: str,
    master_key: str | None,
    expected: list[str],
) -> None:
    recipe = recipe_variant(
        tmp_path, "credential.yaml", [("credential: demo-archive", f"credential: {credential}")]
    )
    w = good_world
    before = snapshot(w)
    env = dict(w.env)
    if master_key is not None:
        env["FLEET_KEYRING_KEY"] = master_key
    locked = World(w.erp_url, w.archive_url, env, w.logs_dir)
    result = locked.run(recipe)
    assert result.code == 2, result.output
    for text in expected:
        assert text in result.stderr
    assert str(Path(w.env["FLEET_KEYRING_FILE"])) in result.stderr  # which store
    assert_nothing_contacted(w, before)
    assert_nothing_touched(w, before)
    assert_no_secret(w, result)
    if master_key is not None:
        assert master_key not in result.output
        assert files_containing(w.logs_dir, master_key) == []


def test_hostile_file_names_are_archived_under_safe_names_inside_staging(
    good_world: World,
) -> None:
    w = good_world
    root = world_root(w)
    staging = w.logs_dir / "staging"
    etc_passwd = os.stat("/etc/passwd")
    assert not Path("/etc/passwd.csv").exists()
    before = snapshot(w)
    hostile = ["../../etc/passwd.csv", "报表\x07\x1b.csv", "..\\..\\etc\\passwd.csv"]
    keys = [publish_reports(w, count=1, kind="销售明细", filename=name)[0] for name in hostile]
    # 凭证汇总表 come through the browser's own download (生成, then 下载).
    keys += publish_reports(w, count=1, kind="凭证汇总表", filename="../../etc/passwd.pdf")
    result = w.run()
    assert result.code == 0, result.output
    assert_archived(w, new_items(w, before), keys)

    for key in keys:
        [staged] = staged_files(w, key)  # one whole file, no .part
        assert staged.parent == staging / "demo" / key
        name = staged.name
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert not CONTROL.search(name), repr(name)
        assert name.endswith(".csv") or name.endswith(".pdf")
    # Nothing escaped its folder: no etc/ anywhere in the world, nothing named like the
    # hostile files outside staging, /etc untouched.
    assert [p for p in root.rglob("etc") if p.is_dir()] == []
    for path in root.rglob("*"):
        if "passwd" in path.name or "报表" in path.name:
            assert path.is_relative_to(staging / "demo"), path
    assert not Path("/etc/passwd.csv").exists()
    after = os.stat("/etc/passwd")
    assert (after.st_mtime_ns, after.st_size) == (etc_passwd.st_mtime_ns, etc_passwd.st_size)
    # The archive's own file names are the safe ones too.
    by_digest = {i["sha256"]: i for i in w.archive_state()}
    reports = reports_by_id(w)
    for key in keys:
        archived = by_digest[reports[key]["sha256"]]["filename"]
        assert "/" not in archived and not CONTROL.search(archived), repr(archived)
    # The security check says what was cleaned, so the record shows the name was hostile.
    reasons = {
        check["source_key"]: check["reason"]
        for check in ledger_rows(w.logs_dir, "checks", name="filename_safe")
    }
    for key in keys:
        assert reasons[key].startswith("cleaned: removed "), reasons[key]


GBK_KINDS = [
    pytest.param("销售明细", id="csv-inline-href"),
    pytest.param("月度财务报表", id="pdf-attachment-href"),
    pytest.param("凭证汇总表", id="pdf-browser-download"),
]


@pytest.fixture(scope="module")
def gbk_run(good_world: World) -> tuple[World, Baseline, Result, dict[str, str]]:
    """One run over reports whose Content-Disposition is raw GBK, one of each path."""
    before = snapshot(good_world)
    keys = {
        kind: publish_reports(good_world, count=1, kind=kind, raw_gbk_filename=True)[0]
        for kind in ("销售明细", "月度财务报表", "凭证汇总表")
    }
    return good_world, before, good_world.run(), keys


@pytest.mark.parametrize("kind", GBK_KINDS)
def test_non_utf8_file_name_is_archived_under_its_chinese_name(
    gbk_run: tuple[World, Baseline, Result, dict[str, str]], kind: str
) -> None:
    w, before, result, keys = gbk_run
    assert result.code == 0, result.output
    assert_archived(w, new_items(w, before), list(keys.values()))
    report = reports_by_id(w)[keys[kind]]
    assert re.search(r"[\u4e00-\u9fff]", report["filename"])  # a Chinese name was sent
    item = next(i for i in w.archive_state() if i["sha256"] == report["sha256"])
    assert item["filename"] == report["filename"]
    [staged] = staged_files(w, keys[kind])
    assert staged.name == unicodedata.normalize("NFC", report["filename"])


# -- a world where documents fail: the same size-limited recipe throughout -----------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Path]]:
    """A world archived by a recipe that refuses files over 100 MB.

    Every run here uses that recipe, so a document refused by one test is *held* (not
    retried) by the next, and no run ever fetches the gigabyte under a larger limit.
    """
    tmp = tmp_path_factory.mktemp("limited")
    recipe = recipe_variant(tmp, "limited.yaml", [(LIMITS_LINE, "limits: {max_file_mb: 100}")])
    with world(tmp, reports=3) as w:
        result = w.run(recipe)
        assert result.code == 0, result.output
        yield w, recipe


def test_zero_byte_file_fails_alone_as_an_empty_file(limited: tuple[World, Path]) -> None:
    w, recipe = limited
    before = snapshot(w)
    [empty] = publish_reports(w, count=1, size=0)
    good = publish_reports(w, count=2, kind="资金日报表")
    result = w.run(recipe)
    assert result.code == 1, result.output
    assert re.search(rf"FAILED demo {empty} \(business\): .*empty file", result.stderr)
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, result.stderr  # the empty one alone
    assert_archived(w, new_items(w, before), good)
    assert staged_files(w, empty) == []
    row = ledger_documents(w.logs_dir)[empty]
    assert (row["state"], row["failure_kind"]) == ("failed", "business")


def test_file_over_the_size_limit_fails_without_being_kept(limited: tuple[World, Path]) -> None:
    w, recipe = limited
    before = snapshot(w)
    [big] = publish_reports(w, count=1, size=GIB)
    good = publish_reports(w, count=1, kind="资金日报表")
    assert reports_by_id(w)[big]["size"] == GIB
    result = w.run(recipe)
    assert result.code == 1, result.output
    assert re.search(
        rf"FAILED demo {big} \(business\): .*larger than the recipe's limit .*> 100 MB",
        result.stderr,
    ), result.stderr
    assert_archived(w, new_items(w, before), good)
    assert staged_files(w, big) == []  # neither the file nor a .part of it
    assert list((w.logs_dir / "staging").rglob("*.part")) == []
    row = ledger_documents(w.logs_dir)[big]
    assert (row["state"], row["failure_kind"]) == ("failed", "business")
