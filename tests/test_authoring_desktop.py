"""`runner.py try` on a desktop recipe: the desktop client simulator on a virtual display,
judged by its ground truth. Window targets say what they matched; image targets their
score and region; `--shots` pictures are never taken while a typed password is shown."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import (
    DESKTOP_PASSWORD,
    ROOT,
    World,
    command,
    desktop_world,
    line_of,
    recipe_variant,
)

DESKTOP = ROOT / "recipes" / "demo-desktop.yaml"
REPORTS = 5


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with desktop_world(tmp_path_factory.mktemp("desktop-try"), reports=REPORTS) as w:
        yield w


def with_image_step(directory: Path) -> Path:
    """The desktop demo with a look for the grid's header before its listing's table."""
    shutil.copytree(ROOT / "recipes" / "images", directory / "images", dirs_exist_ok=True)
    return recipe_variant(
        directory,
        "desktop-image.yaml",
        [
            (
                "    - press: alt+a\n",
                "    - press: alt+a\n"
                "    - wait_image: {image: images/desktop/grid-header.png, timeout: 10}\n",
            )
        ],
        base=DESKTOP,
    )


def test_try_list_shows_window_and_image_matches_and_every_report(
    client: World, tmp_path: Path
) -> None:
    w = client
    recipe = with_image_step(tmp_path)
    result = command(w, "try", str(recipe), "list")
    assert result.code == 0, result.output
    focus = line_of(recipe, "    - focus: 财务管理系统")
    assert re.search(
        rf"^  desktop-image\.yaml:{focus} +focus +财务管理系统 -> 1: ", result.stdout, re.M
    ), result.stdout
    image = line_of(recipe, "wait_image:")
    seen = re.search(
        rf"^  desktop-image\.yaml:{image} +wait_image +image:images/desktop/grid-header\.png "
        r"-> 1 \(score (\d\.\d\d)\): at (\d+),(\d+) (\d+)x(\d+)",
        result.stdout,
        re.M,
    )
    assert seen is not None, result.stdout
    assert float(seen[1]) >= 0.9
    assert f"listed {REPORTS} rows" in result.stdout
    for report in w.erp_state():
        assert f"  {report['id']} (" in result.stdout
    assert DESKTOP_PASSWORD not in result.output


def test_a_wrong_window_title_fails_showing_the_open_windows(client: World, tmp_path: Path) -> None:
    w = client
    recipe = recipe_variant(
        tmp_path,
        "desktop-wrong.yaml",
        [("    - focus: 财务管理系统\n", "    - focus: {title: 财务系统, timeout: 2}\n")],
        base=DESKTOP,
    )
    result = command(w, "try", str(recipe), "list")
    assert result.code == 3, result.output  # a window that does not come: the system's
    line = line_of(recipe, "财务系统, timeout")
    assert f"desktop-wrong.yaml:{line}" in result.stderr
    assert "near:    open windows: " in result.stderr and "财务管理系统" in result.stderr
    assert "财务系统: 0 window(s)" in result.stderr


def test_shots_skip_the_screens_that_show_a_typed_password(client: World, tmp_path: Path) -> None:
    w = client
    shots = tmp_path / "shots"
    result = command(w, "try", str(DESKTOP), "login", "--shots", str(shots))
    assert result.code == 0, result.output
    taken = sorted(p.name for p in shots.glob("*.png"))
    assert taken, result.output
    typed = line_of(DESKTOP, 'type: "{{ credential.password }}"')
    enter = typed + 1
    assert not any(f"-line{typed}-" in name for name in taken), taken
    assert "(no picture: a password was typed into" in result.stdout
    # The dialog closes on Enter: from then on, pictures again.
    later = [name for name in taken if int(name.split("-line")[1].split("-")[0]) > enter]
    assert later, taken
    assert DESKTOP_PASSWORD not in result.output


def test_explain_on_a_desktop_step_says_to_use_try(client: World) -> None:
    line = line_of(DESKTOP, "    - focus: 财务管理系统")
    result = command(client, "explain", str(DESKTOP), str(line))
    assert result.code == 2, result.output
    assert "explain looks at web pages" in result.stderr
    assert "worked by the desktop driver: `runner.py try` shows" in result.stderr
