"""Recipe templates and conditions, rendered by Jinja2's sandbox.

Recipes are configuration written by people who are not programmers, and sometimes
shared between organisations: the sandbox keeps a template from reaching Python
internals, and ``StrictUndefined`` turns a misspelt field into an error instead of an
empty string silently archived as metadata.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

_env = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,  # values go into form fields and file names, never into HTML
    keep_trailing_newline=False,
)


def _search(text: Any, pattern: str) -> str:
    """``{{ content.text | search('报表日期：(\\d{4})') }}``: the first group of the first
    match (the whole match when the pattern has no group), or "" when nothing matches."""
    try:
        match = re.search(pattern, str(text or ""))
    except re.error as exc:
        raise ValueError(f"search: invalid pattern {pattern!r}: {exc}") from exc
    if match is None:
        return ""
    return match.group(1) if match.re.groups else match.group(0)


_env.filters["search"] = _search


class TemplateProblem(Exception):
    """A template could not be compiled or rendered; the message says why."""


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


@lru_cache(maxsize=1024)
def _compile(source: str) -> Any:
    return _env.from_string(source)


@lru_cache(maxsize=256)
def _compile_expression(source: str) -> Any:
    return _env.compile_expression(source, undefined_to_none=False)


def check_template(source: str) -> None:
    """Raise ``TemplateProblem`` if ``source`` is not a valid template."""
    try:
        _compile(source)
    except TemplateError as exc:
        raise TemplateProblem(f"invalid template {source!r}: {exc}") from exc


def check_expression(source: str) -> None:
    """Raise ``TemplateProblem`` if ``source`` is not a valid expression."""
    try:
        _compile_expression(source)
    except TemplateError as exc:
        raise TemplateProblem(f"invalid expression {source!r}: {exc}") from exc


def render(source: str, context: dict[str, Any]) -> str:
    """Render a template string; plain strings come back unchanged."""
    if not is_template(source):
        return source
    try:
        return str(_compile(source).render(context)).strip()
    except UndefinedError as exc:
        raise TemplateProblem(f"template {source!r} refers to something missing: {exc}") from exc
    except TemplateError as exc:
        raise TemplateProblem(f"template {source!r} failed: {exc}") from exc
    except (TypeError, ValueError, LookupError, ArithmeticError) as exc:
        raise TemplateProblem(f"template {source!r} failed: {exc}") from exc


def evaluate(source: str, context: dict[str, Any]) -> Any:
    """Evaluate a condition such as ``row.kind == '凭证汇总表'``."""
    try:
        return _compile_expression(source)(**context)
    except UndefinedError as exc:
        raise TemplateProblem(f"condition {source!r} refers to something missing: {exc}") from exc
    except (TemplateError, TypeError, ValueError, LookupError, ArithmeticError) as exc:
        raise TemplateProblem(f"condition {source!r} failed: {exc}") from exc


def attributes_used(source: str, name: str, *, expression: bool = False) -> set[str]:
    """The attributes of ``name`` a template or condition reads: ``row.title``, ``row['id']``.

    Lets a recipe be checked before it runs: a template that reads a field the listing
    table does not declare is a recipe error, found without contacting anything.
    """
    try:
        tree = _env.parse("{{ " + source + " }}" if expression else source)
    except TemplateError:
        return set()  # reported by check_template / check_expression
    used: set[str] = set()
    for attr in tree.find_all(nodes.Getattr):
        if isinstance(attr.node, nodes.Name) and attr.node.name == name:
            used.add(attr.attr)
    for item in tree.find_all(nodes.Getitem):
        if (
            isinstance(item.node, nodes.Name)
            and item.node.name == name
            and isinstance(item.arg, nodes.Const)
            and isinstance(item.arg.value, str)
        ):
            used.add(item.arg.value)
    return used
