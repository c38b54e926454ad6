"""Recipe templates and conditions, rendered by Jinja2's sandbox.

Recipes are configuration written by people who are not programmers, and sometimes
shared between organisations: the sandbox keeps a template from reaching Python
internals, and ``StrictUndefined`` turns a misspelt field into an error instead of an
empty string silently archived as metadata.
"""

from __future__ import annotations

import re
import time
from contextvars import ContextVar
from functools import lru_cache, wraps
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError, nodes
from jinja2 import sandbox as _sandbox
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Bounds on one render or condition. A template fills a form field, a file name or a
# metadata value: a megabyte of output, a million loop iterations and calls, and five
# seconds are each far beyond any real one.
MAX_OUTPUT_CHARS = 1_000_000
MAX_STEPS = 1_000_000
MAX_SECONDS = 5.0
# `range()` in a template (Jinja2's sandbox default, named here).
MAX_RANGE = 100_000
# Integers past this many bits (`10**10**10`) take unbounded time to compute or print.
MAX_INT_BITS = 100_000
_sandbox.MAX_RANGE = MAX_RANGE


class TemplateTooLarge(Exception):
    """A render went past one of the bounds above; reported as a TemplateProblem."""


class _Budget:
    """Work left in the current render: loop iterations and calls, and a deadline."""

    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.deadline = time.monotonic() + MAX_SECONDS

    def charge(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise TemplateTooLarge(f"more than {MAX_STEPS:,} loop iterations and calls")
        if not self.steps % 1024 and time.monotonic() > self.deadline:
            raise TemplateTooLarge(f"rendering took more than {MAX_SECONDS:g} s")


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _charge() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.charge()


def _size_ok(length: int, what: str) -> None:
    if length > MAX_OUTPUT_CHARS:
        raise TemplateTooLarge(f"{what} would be {length:,} long, over {MAX_OUTPUT_CHARS:,}")


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else None


def _bounded_binop(op: str, left: Any, right: Any) -> None:
    """Refuse ``op`` before computing it when its result would be past the bounds."""
    if op == "*":
        for seq, count in ((left, right), (right, left)):
            size = _length(seq)
            if size is not None and isinstance(count, int):
                _size_ok(size * max(count, 0), "a repeated value")
        ints = isinstance(left, int) and isinstance(right, int)
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateTooLarge(f"a product of more than {MAX_INT_BITS:,} bits")
    elif op == "+":
        a, b = _length(left), _length(right)
        if a is not None and b is not None:
            _size_ok(a + b, "a joined value")
    elif op == "**":
        ints = isinstance(left, int) and isinstance(right, int) and abs(left) > 1
        if ints and right * max(abs(left).bit_length() - 1, 1) > MAX_INT_BITS:
            raise TemplateTooLarge(f"a power of more than {MAX_INT_BITS:,} bits")
    elif op == "%" and isinstance(left, str):
        _format_ok(left, right if isinstance(right, tuple) else (right,))


_BIG_NUMBER = re.compile(r"\d{7,}")


def _format_ok(spec: str, args: Any) -> None:
    """A format string may not ask for a width or precision past the output bound."""
    for digits in _BIG_NUMBER.findall(spec):
        _size_ok(int(digits), "a formatted field")
    if "*" in spec:
        for arg in args:
            if isinstance(arg, int):
                _size_ok(arg, "a formatted field")


# str methods whose result can be far larger than the string: the argument that says
# how large is checked before the call.
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _call_ok(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    obj = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in _WIDTH_METHODS:
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, int):
                factor = owner.count("\t") + 1 if name == "expandtabs" else 1
                _size_ok(arg * factor, f"str.{name}()")
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            count = owner.count(old) if old else len(owner) + 1
            _size_ok(len(owner) + count * max(len(new) - len(old), 0), "str.replace()")
    elif name in ("format", "format_map"):
        _format_ok(owner, (*args, *kwargs.values()))


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with every loop iteration and call charged to the
    render's budget and the operators that can build huge values checked first."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _charge()
        _bounded_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _charge()
        _call_ok(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def _generate(self, source: Any, *args: Any, **kwargs: Any) -> Any:
        # Every `for` loop iterates through `_bounded_iter`, which charges each item.
        for loop in list(source.find_all(nodes.For)):
            loop.iter = nodes.Filter(
                loop.iter, "_bounded_iter", [], [], None, None, lineno=loop.lineno
            )
        return super()._generate(source, *args, **kwargs)


def _bounded_iter(iterable: Any) -> Any:
    for item in iterable:
        _charge()
        yield item


def _bounded_filter(name: str, check: Any) -> None:
    original = _env.filters[name]

    @wraps(original)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return original(*args, **kwargs)

    _env.filters[name] = bounded


def _ints_ok(*args: Any, **kwargs: Any) -> None:
    """Filters that take a width or a count (center, indent, batch, slice, wordwrap):
    none may be past the output bound."""
    for arg in (*args[1:], *kwargs.values()):
        if isinstance(arg, int) and not isinstance(arg, bool):
            _size_ok(arg, "a filter's width or count")


def _replace_ok(*args: Any, **kwargs: Any) -> None:
    # do_replace(eval_ctx, s, old, new, count=None): Jinja2 passes the context first.
    value, old, new = [*args[1:], "", ""][:3]
    _call_ok(str(value).replace, (str(old), str(new)), {})


def _format_filter_ok(value: Any, *args: Any, **kwargs: Any) -> None:
    _format_ok(str(value), (*args, *kwargs.values()))


_env = _BoundedSandbox(
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
_env.filters["_bounded_iter"] = _bounded_iter
for _name in ("center", "indent", "batch", "slice", "wordwrap"):
    _bounded_filter(_name, _ints_ok)
_bounded_filter("replace", _replace_ok)
_bounded_filter("format", _format_filter_ok)


class TemplateProblem(Exception):
    """A template could not be compiled or rendered; the message says why."""


# What a hostile or careless template can raise past its bounds: each is a named
# TemplateProblem ("template too large/slow: ..."), never a crash.
_TOO_MUCH = (TemplateTooLarge, MemoryError, OverflowError, RecursionError)


def _too_much(source: str, exc: BaseException) -> TemplateProblem:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        reason = f"out of memory ({reason})"
    elif isinstance(exc, RecursionError):
        reason = "nested or recursive too deeply"
    return TemplateProblem(f"template too large/slow: {source[:200]!r}: {reason}")


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
    except _TOO_MUCH as exc:
        raise _too_much(source, exc) from exc


def check_expression(source: str) -> None:
    """Raise ``TemplateProblem`` if ``source`` is not a valid expression."""
    try:
        _compile_expression(source)
    except TemplateError as exc:
        raise TemplateProblem(f"invalid expression {source!r}: {exc}") from exc
    except _TOO_MUCH as exc:
        raise _too_much(source, exc) from exc


def render(source: str, context: dict[str, Any]) -> str:
    """Render a template string; plain strings come back unchanged."""
    if not is_template(source):
        return source
    token = _budget.set(_Budget())
    try:
        return _stream(_compile(source), context).strip()
    except _TOO_MUCH as exc:
        raise _too_much(source, exc) from exc
    except UndefinedError as exc:
        raise TemplateProblem(f"template {source!r} refers to something missing: {exc}") from exc
    except TemplateError as exc:
        raise TemplateProblem(f"template {source!r} failed: {exc}") from exc
    except (TypeError, ValueError, LookupError, ArithmeticError) as exc:
        raise TemplateProblem(f"template {source!r} failed: {exc}") from exc
    finally:
        _budget.reset(token)


def _stream(template: Any, context: dict[str, Any]) -> str:
    """Render piece by piece, stopping as soon as the output passes the bound."""
    pieces, size = [], 0
    for piece in template.generate(context):
        size += len(piece)
        _size_ok(size, "the output")
        pieces.append(piece)
    return "".join(pieces)


def evaluate(source: str, context: dict[str, Any]) -> Any:
    """Evaluate a condition such as ``row.kind == '凭证汇总表'``."""
    token = _budget.set(_Budget())
    try:
        return _compile_expression(source)(**context)
    except _TOO_MUCH as exc:
        raise _too_much(source, exc) from exc
    except UndefinedError as exc:
        raise TemplateProblem(f"condition {source!r} refers to something missing: {exc}") from exc
    except (TemplateError, TypeError, ValueError, LookupError, ArithmeticError) as exc:
        raise TemplateProblem(f"condition {source!r} failed: {exc}") from exc
    finally:
        _budget.reset(token)


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


def names_read(source: str, *, expression: bool = False) -> set[str]:
    """The top-level variables a template or condition reads (``credential``, ``env``)."""
    try:
        tree = _env.parse("{{ " + source + " }}" if expression else source)
    except TemplateError:
        return set()  # reported by check_template / check_expression
    return {name.name for name in tree.find_all(nodes.Name) if name.ctx == "load"}
