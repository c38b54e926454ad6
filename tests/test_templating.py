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


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            id="nested-loops",
        ),
        pytest.param(
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
            id="nested-loops-with-output",
        ),
        pytest.param("{{ 'A'*10**10 }}", id="repeat-10**10"),
        pytest.param('{{ "x" * 1000000000 }}', id="repeat-1e9"),
        pytest.param("{{ 2**1000000000 }}", id="huge-power"),
        pytest.param("{{ 'x'|center(1000000000) }}", id="center-filter"),
        pytest.param("{{ 'x'.ljust(1000000000) }}", id="ljust-method"),
        pytest.param("{{ '%1000000000s' % 'x' }}", id="percent-width"),
        pytest.param("{{ '{:>1000000000}'.format('x') }}", id="format-width"),
        pytest.param("{{ 'xx'|replace('x', 'y' * 900000) }}", id="replace-growth"),
        pytest.param(
            "{% set ns = namespace(x='ab') %}{% for i in range(60) %}"
            "{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x }}",
            id="doubling",
        ),
        pytest.param("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", id="recursion"),
        pytest.param("{{ [1]|batch(1000000000, 0)|list }}", id="batch-fill"),
    ],
)
def test_runaway_templates_are_named_template_problems(source: str) -> None:
    """Each is refused before it allocates or loops without end (issue 12)."""
    with pytest.raises(TemplateProblem, match="template too large/slow"):
        check_template(source)
        render(source, {})


def test_output_is_bounded_while_streaming() -> None:
    source = "{% for i in range(2000) %}{{ row.text }}{% endfor %}"
    with pytest.raises(TemplateProblem, match="template too large/slow: .*the output"):
        render(source, {"row": {"text": "x" * 1000}})


def test_deeply_nested_template_is_a_template_problem() -> None:
    with pytest.raises(TemplateProblem, match="template too large/slow"):
        check_template("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}")


def test_conditions_are_bounded_too() -> None:
    with pytest.raises(TemplateProblem, match="template too large/slow"):
        evaluate("'x' * 10**10 == ''", {})


def test_ordinary_templates_still_render() -> None:
    source = (
        "{{ row.a|replace('-', '') }} {{ 'ab' * 3 }} {{ 2**10 }} {{ '%05d' % 3 }} "
        "{{ 'a' + 'b' }} {% for x in [1, 2] %}{{ loop.index }}/{{ loop.length }}{% endfor %}"
    )
    assert render(source, {"row": {"a": "2025-03-31"}}) == "20250331 ababab 1024 00003 ab 1/22/2"
