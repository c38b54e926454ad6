"""`try` and `explain` on the second system (the tracker and the DMS), where an author
meets what the ERP does not have: a login page that sends a live session straight on, a
paginator named in the page's language, and recipe errors that no page explains."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import ROOT, Result, command_in, line_of
from tests.e2e_second import RECIPE, SecondWorld, second_world


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondWorld]:
    with second_world(tmp_path_factory.mktemp("second"), incidents=13, minutes=2) as w:
        yield w


def variant(directory: Path, name: str, replacements: list[tuple[str, str]]) -> Path:
    """The tracker recipe with exact text replaced (each must occur once), beside its
    retention schedule."""
    text = RECIPE.read_text(encoding="utf-8")
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    shutil.copytree(ROOT / "recipes" / "examples" / "schedules", directory / "schedules")
    return path


def run(w: SecondWorld, *args: str) -> Result:
    return command_in(w.env, *args)


def test_explain_in_a_login_loads_it_again_in_a_new_session(
    systems: SecondWorld, tmp_path: Path
) -> None:
    """The DMS sends a logged-in browser from its login page to the documents: the login
    run a second time (to check the candidates) must start in a session of its own."""
    menu = '    # "Log out" sits in the collapsed user menu.\n'
    typo = menu + '    - expect: {selector: "a.log-out", state: attached}'
    recipe = variant(
        tmp_path,
        "login.yaml",
        [
            ('    - when: {selector: "#login-form"}\n      fill:', "    - fill:"),
            (
                '    - when: {selector: "#login-form"}\n      click: {selector: "#login-form',
                '    - click: {selector: "#login-form',
            ),
            (menu + '    - expect: {selector: "a.logout", state: attached}', typo),
        ],
    )
    line = line_of(recipe, "a.log-out")
    explained = run(systems, "explain", str(recipe), str(line))
    assert explained.code == 0, explained.output
    # The login's steps ran twice, each time from the login form.
    assert explained.stdout.count(f"login.yaml:{line - 2}   reject_if") == 2, explained.stdout
    # What a closed menu holds, named like the typo, is what was meant.
    assert "\n  1. a.logout\n       by class; the same element on both loads" in explained.stdout


def test_a_pager_in_another_language_is_said_to_have_matched_nothing(
    systems: SecondWorld, tmp_path: Path
) -> None:
    source = '  locale: en-US\n  logged_out: "form#login-form"'
    sign_in = "form#login-form button:text-is('Sign in')"  # its text is English
    recipe = variant(
        tmp_path,
        "zh.yaml",
        [
            (source, source.replace("en-US", "zh-CN")),
            (sign_in, "form#login-form button[type=submit]"),
        ],
    )
    listed = run(systems, "try", str(recipe), "list", "--listing", "incidents")
    assert listed.code == 0, listed.output
    assert "listed 10 rows on 1 page(s):" in listed.stdout  # 13 incidents: 2 pages really
    assert "(one page: `next` (nav.pagination a:has-text('Next')) matched nothing" in listed.stdout
    table = line_of(recipe, 'selector: "table#incidents"') - 1
    explained = run(systems, "explain", str(recipe), str(table))
    assert explained.code == 0, explained.output
    assert """    in nav.pagination: a "下一页 ›" (a[rel='next'])""" in explained.stdout


def test_a_download_no_step_applied_to_is_not_explained_by_the_page(
    systems: SecondWorld, tmp_path: Path
) -> None:
    download = '    - download: {href: "{{ row.download_url }}"}'
    never = (
        "    - when: not row.download_url\n"  # never true: every row has its link
        '      download: {href: "{{ row.download_url }}"}'
    )
    recipe = variant(tmp_path, "when.yaml", [(download, never)])
    failed = run(systems, "try", str(recipe), "download", "--listing", "incidents")
    assert failed.code == 2, failed.output
    assert "no `download` step applied" in failed.stderr
    assert "  at:" not in failed.stderr and "next: python runner.py explain" not in failed.stderr
    assert "(removed when try ends; --keep DIR keeps it)" not in failed.stdout
    downloaded = run(systems, "try", str(RECIPE), "download", "--listing", "minutes")
    assert downloaded.code == 0, downloaded.output
    assert "(removed when try ends; --keep DIR keeps it)" in downloaded.stdout


def test_scaffold_on_a_list_of_div_rows_says_to_write_its_table_step_by_hand(
    systems: SecondWorld, tmp_path: Path
) -> None:
    url = f"{systems.tracker_url}/wiki/minutes"
    out = tmp_path / "minutes.yaml"
    result = run(
        systems,
        "scaffold",
        url,
        "--login-url",
        f"{systems.tracker_url}/login",
        "--credential",
        "demo-tracker",
        "--out",
        str(out),
    )
    assert result.code == 2, result.output
    assert f"no table of repeated rows at {url}" in result.stderr
    assert "a list built of other elements (div rows, a ul) needs its `table` step" in result.stderr
    assert not out.exists()
