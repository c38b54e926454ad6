"""What every recipe step is, whichever driver carries it out, and how a driver's
vocabulary becomes a validated union of step models.

A step is a one-key mapping, the key naming the action (``click: "#submit"``), plus the
keys every step may carry: ``when`` (a condition: a Jinja2 expression, or a page
condition ``{selector, present, timeout}`` the driver looks at) and ``name`` (a label for
the run log). Each driver brings its own actions (bots.drivers); a few names mean the
same to the pipeline whatever the driver: ``table`` (rows with a ``key`` and ``fields``),
``download`` (a file arrives), ``upload`` (a file is sent), ``read`` (a value ``into`` a
variable) and ``submit`` (the request that commits). One step is the same for every
driver and in every vocabulary (``SHARED_STEPS``): ``set``, computed variables.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)
from pydantic_core import PydanticCustomError

from ..templating import render

COMMON_STEP_KEYS = frozenset({"when", "name", "__line__"})
Seconds = Annotated[float, Field(gt=0, le=3600)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
# Names the bot itself puts in the template context; a `read` may not overwrite them.
RESERVED_NAMES = frozenset(
    {
        "row",
        "meta",
        "file",
        "content",
        "schedule",
        "vars",
        "env",
        "today",
        "now",
        "window",
        "credential",
        "listing",
    }
)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid pattern {pattern!r}: {exc}") from exc
    return pattern


# A Python regular expression, compiled when the recipe loads.
Pattern = Annotated[str, Field(min_length=1), AfterValidator(_compiles)]


def extract(pattern: str, value: str) -> str | None:
    """The first group of ``pattern``'s first match in ``value`` (the whole match when it
    has no group; "" when the group took no part), or None when it does not match."""
    match = re.search(pattern, value)
    if match is None:
        return None
    return (match.group(1) or "") if match.re.groups else match.group(0)


def not_reserved(name: str) -> str:
    if name in RESERVED_NAMES:
        raise ValueError(f"`{name}` would overwrite a name the bot provides")
    return name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PageCondition(Strict):
    """``when: {selector: ..., present: false, timeout: 2}``: a look at the page (the
    current scope: a frame's steps look in the frame), not at the variables."""

    selector: str = Field(min_length=1)  # the driver's own kind of selector (web: Playwright)
    present: bool = True  # run when it is there (true) or when it is not (false)
    # 0: look once, no wait; else wait up to this many seconds for it to appear
    timeout: float = Field(default=0.0, ge=0, le=3600)


def _condition_kind(data: Any) -> str:
    return "expression" if isinstance(data, str) else "page"


# Tags the loader leaves out of the paths it shows (bots.recipe.loader).
CONDITION_TAGS = frozenset({"expression", "page"})


def _condition_shape(data: Any) -> Any:
    if data is None or isinstance(data, (str, dict, PageCondition)):
        return data
    raise PydanticCustomError(
        "condition_shape",
        "`when` is an expression (`row.href`) or a page condition "
        "(selector, present, timeout), not {got}",
        {"got": type(data).__name__},
    )


Condition = Annotated[
    Annotated[
        Union[Annotated[str, Tag("expression")], Annotated[PageCondition, Tag("page")]],  # noqa: UP007
        Discriminator(_condition_kind),
    ],
    BeforeValidator(_condition_shape),
]


class StepBase(Strict):
    # The step runs when the condition holds: a Jinja2 expression over the variables, or
    # a page condition the driver checks where the step would run.
    when: Condition | None = None
    name: str | None = None
    line: int = Field(0, alias="__line__")

    @property
    def kind(self) -> str:
        return next(iter(set(type(self).model_fields) - {"when", "name", "line"}))

    @property
    def args(self) -> Any:
        return getattr(self, self.kind)

    def children(self) -> list[StepBase]:
        """Steps nested inside this one (a web `frame`'s), run in its scope."""
        return []


class Set(StepBase):
    """``set: {report_id: "{{ row.href | search('id=(\\d+)') }}"}``: computed variables,
    each a template rendered in order (a later one sees the earlier ones)."""

    set: dict[Identifier, str] = Field(min_length=1)  # noqa: A003 - the step's name

    @field_validator("set")
    @classmethod
    def _names(cls, values: dict[str, str]) -> dict[str, str]:
        for name in values:
            not_reserved(name)
        return values


def assign(values: Mapping[str, str], variables: dict[str, Any]) -> None:
    """Carry out a `set` step: render each template in order into ``variables``.
    Raises ``TemplateProblem`` (bots.templating) as any template does."""
    for name, template in values.items():
        variables[name] = render(template, variables)


# Steps every driver's vocabulary has, carried out the same way by each.
SHARED_STEPS: dict[str, type[StepBase]] = {"set": Set}


def vocabulary(own: Mapping[str, type[StepBase]]) -> dict[str, type[StepBase]]:
    """A driver's own step kinds plus the shared ones (a driver may not redefine those)."""
    clash = sorted(set(own) & set(SHARED_STEPS))
    if clash:
        raise RuntimeError(f"a driver may not redefine the shared steps {', '.join(clash)}")
    return {**own, **SHARED_STEPS}


def walk_steps(steps: list[Any]) -> list[StepBase]:
    """Every step, depth first, nested steps included."""
    found: list[StepBase] = []
    for step in steps:
        found.append(step)
        found.extend(walk_steps(step.children()))
    return found


def count(steps: list[Any], kind: str) -> int:
    return sum(s.kind == kind for s in walk_steps(steps))


def of_kind(steps: list[Any], kind: str) -> list[Any]:
    return [s for s in walk_steps(steps) if s.kind == kind]


def assigned(steps: list[Any]) -> list[str]:
    """The variables the steps fill, in order: what they `read` into, and what they `set`."""
    names: dict[str, None] = {}
    for step in walk_steps(steps):
        if step.kind == "read":
            names[step.args.into] = None
        elif step.kind == "set":
            names.update(dict.fromkeys(step.args))
    return list(names)


def step_union(kinds: Mapping[str, type[StepBase]]) -> Any:
    """The annotated type that validates one step of this vocabulary.

    A before-validator names an unknown step and suggests the closest one, so an author
    sees ``unknown step 'clik' (did you mean 'click'?)`` at the right line rather than a
    union's wall of errors; a discriminator then picks the one model to validate with.
    """
    known = ", ".join(kinds)

    def shape(data: Any) -> Any:
        if isinstance(data, StepBase):
            return data
        if not isinstance(data, dict):
            raise PydanticCustomError(
                "step_shape",
                'a step is a mapping such as `click: "#submit"`, not {got}',
                {"got": type(data).__name__},
            )
        actions = [k for k in data if k in kinds]
        unknown = [k for k in data if k not in kinds and k not in COMMON_STEP_KEYS]
        if unknown:
            name = str(unknown[0])
            close = difflib.get_close_matches(name, [*kinds, "when", "name"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PydanticCustomError(
                "unknown_step",
                "unknown step '{name}'{hint}; steps are: {known}",
                {"name": name, "hint": hint, "known": known},
            )
        if len(actions) != 1:
            raise PydanticCustomError(
                "step_actions",
                "a step names exactly one action, found {found}",
                {"found": ", ".join(actions) or "none"},
            )
        return data

    def tag(data: Any) -> str | None:
        if isinstance(data, StepBase):
            return data.kind
        return next((k for k in data if k in kinds), None)

    members = tuple(Annotated[model, Tag(kind)] for kind, model in kinds.items())
    return Annotated[
        Annotated[Union[members], Discriminator(tag)],  # noqa: UP007 - built at run time
        BeforeValidator(shape),
    ]
