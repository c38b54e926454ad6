"""Templates render in Jinja2's sandbox and refuse missing fields loudly."""

from __future__ import annotations

import pytest

from bots.templating import TemplateProblem, check_template, evaluate, render


def test_renders_row_fields_and_filters() -> None:
    row = {"date": "2025-03-31", "title": "2025年3月月度财务报表"}
    assert render("{{ row.date | replace('-', '') }}", {"row": row}) == "20250331"
    assert render("{{ row.date[:4] }}", {"row": row}) == "2025"
    assert render("plain text", {}) == "plain text"


def test_missing_field_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateProblem, match="refers to something missing"):
        render("{{ row.titel }}", {"row": {"title": "x"}})


def test_missing_lookup_key_is_an_error() -> None:
    with pytest.raises(TemplateProblem, match="人事部"):
        render(
            "{{ vars.departments[row.department] }}",
            {"vars": {"departments": {"财务部": "CWB"}}, "row": {"department": "人事部"}},
        )


def test_sandbox_blocks_python_internals() -> None:
    with pytest.raises(TemplateProblem):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})


def test_sandbox_is_immutable() -> None:
    with pytest.raises(TemplateProblem):
        render("{{ row.update({'x': 1}) }}", {"row": {}})


def test_syntax_errors_are_found_without_rendering() -> None:
    with pytest.raises(TemplateProblem, match="invalid template"):
        check_template("{{ row.title }")


def test_conditions_are_expressions() -> None:
    assert evaluate("row.kind == '凭证汇总表'", {"row": {"kind": "凭证汇总表"}}) is True
    assert not evaluate("row.href", {"row": {"href": None}})
    with pytest.raises(TemplateProblem, match="missing"):
        evaluate("row.nope == 1", {"row": {}})
