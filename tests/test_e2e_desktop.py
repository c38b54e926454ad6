"""The desktop capture end to end: the desktop client simulator in a private Xvfb, the
archive simulator, ``runner.py run recipes/demo-desktop.yaml`` as cron runs it, judged by
both simulators' own ``/_sim/state``."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bots.redaction import Redactor
from credentials import open_store
from sims.control import get_json
from tests.e2e import (
    DESKTOP_PASSWORD,
    ROOT,
    World,
    desktop_world,
    files_containing,
    line_of,
    recipe_variant,
    run_events,
    run_log_of,
    run_recipe,
    set_faults,
    simulator_requests,
    summary_counts,
)

pytestmark = pytest.mark.e2e

DESKTOP_RECIPE = ROOT / "recipes" / "demo-desktop.yaml"
# Failures are the point of some variants: retry them quickly, and few times.
FAST_RETRIES = (
    "retry: {attempts: 4, backoff: 1.0, max_backoff: 30, breaker: 8}",
    "retry: {attempts: 2, backoff: 0.1, max_backoff: 0.2, breaker: 8}",
)
EXPORT_OPTIONS = "    - focus: {title: 导出选项, timeout: 60}\n"
LOGIN_FOCUS = "    - focus: {title: 用户登录, timeout: 20}\n"


def variant(tmp: Path, replacements: list[tuple[str, str]]) -> Path:
    """The desktop demo recipe with exact text replaced, beside its schedules in ``tmp``."""
    return recipe_variant(tmp, "variant.yaml", replacements, base=DESKTOP_RECIPE)


def source_key(item: dict[str, Any]) -> str:
    """The source report an archive item holds: its remarks end with the report's id."""
    remarks = item["metadata"].get("remarks") or ""
    return remarks.rsplit(" ", 1)[-1] if remarks else f"?{item['archive_id']}"


def by_source(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    held: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        held.setdefault(source_key(item), []).append(item)
    return held


def assert_each_held_once(reports: list[dict[str, Any]], items: list[dict[str, Any]]) -> None:
    """The archive holds every report exactly once, with the client's digest, and nothing
    else."""
    held = by_source(items)
    assert sorted(held) == sorted(r["id"] for r in reports)
    for report in reports:
        (item,) = held[report["id"]]
        assert item["sha256"] == report["sha256"], report["id"]
        assert item["size"] == report["size"], report["id"]


def uploads(w: World) -> int:
    return "\n".join(simulator_requests(w)).count("POST /ingest")


# -- 1. capture on a bare X server -----------------------------------------------------


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A desktop world (bare Xvfb, 8 reports) after its first run."""
    with desktop_world(tmp_path_factory.mktemp("desktop"), reports=8) as w:
        w.run(DESKTOP_RECIPE)
        yield w


def test_capture_archives_every_report_of_the_client_once(captured: World) -> None:
    first = captured.results[0]
    assert first.code == 0, first.output
    reports = captured.erp_state()
    assert len(reports) == 8
    assert any(r["needs_generate"] for r in reports), "the 正在生成 path must be exercised"
    assert_each_held_once(reports, captured.archive_state())
    assert summary_counts(first.stdout) == {"listed": 8, "new": 8, "archived": 8, "failed": 0}


def test_a_rerun_uploads_nothing(captured: World) -> None:
    before = captured.archive_state()
    posted = uploads(captured)
    assert posted == len(before) == 8  # what the first run sent, each once
    again = captured.run(DESKTOP_RECIPE)
    assert again.code == 0, again.output
    counts = summary_counts(again.stdout)
    assert counts["new"] == 0 and counts["archived"] == 0 and counts["listed"] == 8
    assert captured.archive_state() == before
    assert uploads(captured) == posted  # not one upload reached the archive


def test_the_desktop_password_is_nowhere(captured: World) -> None:
    evidence = list((captured.logs_dir / "evidence").rglob("*.png"))
    listing = [p for p in evidence if p.parent.name == "_listing"]
    assert listing, "the desktop listing's evidence pictures were taken"
    assert files_containing(captured.logs_dir, DESKTOP_PASSWORD) == []
    for result in captured.results:
        assert DESKTOP_PASSWORD not in result.output
        assert DESKTOP_PASSWORD not in run_log_of(result.stdout).read_text(encoding="utf-8")


# -- 2. with a window manager ----------------------------------------------------------


def test_capture_under_a_window_manager(tmp_path: Path) -> None:
    with desktop_world(tmp_path, reports=4, wm=True) as w:
        result = w.run(DESKTOP_RECIPE)
        assert result.code == 0, result.output
        assert_each_held_once(w.erp_state(), w.archive_state())


# -- 3. a refused login ----------------------------------------------------------------


def test_a_wrong_password_stops_the_run_with_the_refusal(tmp_path: Path) -> None:
    with desktop_world(tmp_path, reports=2) as w:
        open_store(w.env, Redactor()).set("demo-desktop", "clerk", "not-the-Pw-0000")
        result = w.run(DESKTOP_RECIPE)
        assert result.code == 3, result.output  # README: a login failed
        lines = result.stderr.strip().splitlines()
        refusals = [line for line in lines if "登录失败" in line]
        assert len(refusals) == 1, result.stderr
        assert "cannot log in to" in refusals[0] and "demo-desktop" in refusals[0]
        assert "not-the-Pw-0000" not in result.output
        assert get_json(f"{w.erp_url}/_sim/state")["session"]["logged_in"] is False
        assert w.archive_state() == []
        assert uploads(w) == 0


# -- 4. a dialog that never appears ----------------------------------------------------


def test_a_dialog_that_never_appears_is_named_with_what_was_open(tmp_path: Path) -> None:
    recipe = variant(
        tmp_path,
        [FAST_RETRIES, (EXPORT_OPTIONS, "    - focus: {title: 导出选顶, timeout: 2}\n")],
    )
    where = f"{recipe}:{line_of(recipe, '导出选顶')}"
    with desktop_world(tmp_path, reports=2) as w:
        result = w.run(recipe)
        assert result.code == 3, result.output  # README: retries ran out
        failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
        assert len(failed) == 2, result.stderr
        for line in failed:
            # Every attempt met the same missing window, not a dialog a failed one left.
            assert where in line, line
            assert "step 'focus'" in line and "'导出选顶'" in line, line
            assert re.search(r"open now: .*'导出选项'", line), line
        assert summary_counts(result.stdout)["archived"] == 0
        assert w.archive_state() == []
        assert uploads(w) == 0


# -- 5. notices that steal the focus ---------------------------------------------------


def test_every_report_is_archived_while_notices_steal_the_focus(tmp_path: Path) -> None:
    with desktop_world(tmp_path, reports=4) as w:
        set_faults(w.erp_url, {"focus_steal_rate": 1.0, "seed": 1})
        result = w.run(DESKTOP_RECIPE)
        assert result.code == 0, result.output
        stolen = get_json(f"{w.erp_url}/_sim/faults")["injected"]["focus_steal"]
        assert stolen >= 4, stolen  # after every action: at least once per document
        assert_each_held_once(w.erp_state(), w.archive_state())


def test_without_dismissing_notices_the_driver_takes_the_focus_back(tmp_path: Path) -> None:
    """系统消息 not in `dismiss:`: the notices stay open, each keyboard step gives its own
    window the focus back first, and a theft in the middle of a step (keys gone to the
    notice) is a FocusLost naming 系统消息, retried from a clean main window."""
    recipe = variant(tmp_path, [('dismiss: [系统消息, "查看 - *"]', 'dismiss: ["查看 - *"]')])
    with desktop_world(tmp_path, reports=3) as w:
        set_faults(w.erp_url, {"focus_steal_rate": 1.0, "seed": 1})
        result = w.run(recipe)
        assert result.code == 0, result.output
        assert_each_held_once(w.erp_state(), w.archive_state())
        assert get_json(f"{w.erp_url}/_sim/faults")["injected"]["focus_steal"] >= 3
        events = run_events(run_log_of(result.stdout))
        dismissed = [e for e in events if e["event"] == "dismissed"]
        assert all(e["details"]["window"] != "系统消息" for e in dismissed)
        for retry in (e for e in events if e["event"] == "retry"):
            error = retry["details"]["error"]
            assert retry["details"]["error_type"] == "FocusLost", error
            assert "window '系统消息' took the keyboard focus" in error, error


# -- 6. images -------------------------------------------------------------------------


def test_check_names_a_missing_image(tmp_path: Path) -> None:
    recipe = variant(
        tmp_path, [(LOGIN_FOCUS, LOGIN_FOCUS + "    - click: {image: images/nowhere.png}\n")]
    )
    proc = subprocess.run(
        [sys.executable, "runner.py", "check", str(recipe)],
        cwd=ROOT,
        env={
            **os.environ,
            "HOME": str(tmp_path / "home"),
            "FLEET_LOGS_DIR": str(tmp_path / "logs"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{recipe}:{line_of(recipe, 'nowhere.png')}" in proc.stderr
    assert str(tmp_path / "images" / "nowhere.png") in proc.stderr


def noise_png(path: Path) -> Path:
    rng = random.Random(13)
    image = Image.new("RGB", (40, 20))
    image.putdata(
        [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(800)]
    )
    image.save(path)
    return path


def test_an_image_not_on_screen_fails_with_its_best_score(tmp_path: Path) -> None:
    noise_png(tmp_path / "noise.png")
    recipe = variant(
        tmp_path,
        [
            FAST_RETRIES,
            (LOGIN_FOCUS, LOGIN_FOCUS + "    - click: {image: noise.png, timeout: 1}\n"),
        ],
    )
    with desktop_world(tmp_path, reports=2) as w:
        result = w.run(recipe)
        assert result.code == 3, result.output
        assert f"{recipe}:{line_of(recipe, 'noise.png')}" in result.stderr
        assert "'noise.png' not seen" in result.stderr
        score = re.search(r"best match score (-?\d\.\d{3})", result.stderr)
        assert score, result.stderr
        assert float(score.group(1)) < 0.9  # below the step's confidence: really not seen
        assert w.archive_state() == []
        assert uploads(w) == 0


# -- 7. no display ---------------------------------------------------------------------


def test_without_a_display_the_fix_is_one_line(tmp_path: Path) -> None:
    with desktop_world(tmp_path, reports=2) as w:
        env = {k: v for k, v in w.env.items() if k != "DISPLAY"}
        result = run_recipe(env, w.results, DESKTOP_RECIPE)
        assert result.code == 2, result.output
        last = result.stderr.strip().splitlines()[-1]
        assert "DISPLAY is not set" in last, result.stderr
        assert "xvfb-run" in last and str(DESKTOP_RECIPE) in last, last
        assert w.archive_state() == []
        assert simulator_requests(w) == []  # the archive was not even logged in to
