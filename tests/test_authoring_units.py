"""The parts of `try` and `explain` that need no browser: section names, the step at a
line, and how a selector is cut into the parts an element is scored on."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from bots.authoring.sections import Section, locate, section
from bots.drivers.web.inspect import Part, compounds, parts_of, split_top
from bots.errors import UsageError
from bots.recipe import load_recipe
from tests.e2e import ROOT, line_of

DEMO = ROOT / "recipes" / "demo.yaml"
TRACKER = ROOT / "recipes" / "examples" / "tracker-to-dms.yaml"


@pytest.mark.parametrize(
    ("given", "system", "name"),
    [
        ("list", "source", "list"),
        ("login", "source", "login"),
        ("archive.login", "archive", "login"),
        ("source.logout", "source", "logout"),
        ("upload", "archive", "upload"),
        ("archive.inventory", "archive", "inventory"),
    ],
)
def test_a_section_is_named_as_an_author_says_it(given: str, system: str, name: str) -> None:
    assert section(given) == Section(system, name)


@pytest.mark.parametrize(
    ("given", "hint"),
    [("lst", "'list'"), ("source.upload", "'upload'"), ("archive.lists", None)],
)
def test_an_unknown_section_is_refused_naming_the_closest(given: str, hint: str | None) -> None:
    with pytest.raises(UsageError) as caught:
        section(given)
    message = str(caught.value)
    assert f"no section {given!r}" in message and "sections are: login" in message
    if hint:
        assert f"did you mean {hint}" in message or hint in message


def test_the_step_at_a_line_and_the_step_a_line_is_inside() -> None:
    loaded = load_recipe(DEMO)
    click = line_of(DEMO, "input[type=submit][value=查询]")
    found = locate(loaded, click)
    assert (found.step.kind, found.section, found.step.line) == (
        "click",
        Section("source", "list"),
        click,
    )
    rows = line_of(DEMO, 'rows: "tr.row"')  # inside the table step, below its first line
    inside = locate(loaded, rows)
    assert inside.step.kind == "table" and inside.step.line < rows
    upload = locate(loaded, line_of(DEMO, 'upload: {selector: "#file-input"}'))
    assert upload.section == Section("archive", "upload") and upload.plan is None
    logout = locate(loaded, line_of(DEMO, "goto: /logout.do"))
    assert logout.section == Section("source", "logout")


def test_a_listing_step_knows_its_listing() -> None:
    loaded = load_recipe(TRACKER)
    found = locate(loaded, line_of(TRACKER, 'rows: "div.row.page"'))
    assert found.plan is not None and found.plan.name == "minutes"


def test_a_line_before_any_step_is_refused() -> None:
    with pytest.raises(UsageError, match="no step starts at or before this line"):
        locate(load_recipe(DEMO), 3)


def test_selectors_are_cut_outside_quotes_brackets_and_parentheses() -> None:
    assert split_top("a >> 'b >> c' >> nth=0", (">>",)) == ["a", "'b >> c'", "nth=0"]
    assert compounds("#dataGrid tr.row input[value='生 成']") == [
        "#dataGrid",
        "tr.row",
        "input[value='生 成']",
    ]
    assert compounds("form#login > button:text-is('Sign in')") == [
        "form#login",
        "button:text-is('Sign in')",
    ]
    assert compounds("frame >> table#items >> nth=0") == ["table#items"]


def test_the_parts_an_element_is_scored_on() -> None:
    assert parts_of("input[type=submit][value=登录]") == [
        Part("css", "input", shown="input"),
        Part("css", "[type=submit]", shown="[type=submit]"),
        Part("css", "[value=登录]", shown="[value=登录]"),
    ]
    assert parts_of(".pager a:text-is('下一页')") == [
        Part("css", "a", shown="a"),
        Part("text", "下一页", exact=True, shown=":text-is('下一页')"),
    ]
    assert parts_of("td:nth-child(2):visible") == [
        Part("css", "td", shown="td"),
        Part("css", "*:nth-child(2)", shown=":nth-child(2)"),
    ]
    assert parts_of("role=button[name='查询']") == [
        Part("role", "button", shown="role button"),
        Part("text", "查询", shown="name '查询'"),
    ]
    assert parts_of('text="Sign in"') == [
        Part("text", "Sign in", exact=True, shown='text="Sign in"')
    ]
    assert parts_of("xpath=//table") == []


def test_a_drafts_header_names_its_file_as_typed_in_the_project_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Written to recipes/ by default (an absolute path), the draft's own first lines
    still say `runner.py check recipes/x.yaml`, as the command's output does."""
    from bots.authoring.scaffold import _header

    monkeypatch.chdir(tmp_path)
    request = SimpleNamespace(url="http://h/list", login_url="http://h/login")
    side = SimpleNamespace(shown="recipes/demo.yaml")
    header = _header(request, tmp_path / "recipes" / "x.yaml", side, date(2026, 12, 7))  # type: ignore[arg-type]
    assert "#   .venv/bin/python runner.py check recipes/x.yaml" in header
    assert "#   .venv/bin/python runner.py try recipes/x.yaml list" in header
