"""What every recipe step is, whichever driver carries it out, and how a driver's
vocabulary becomes a validated union of step models.

A step is a one-key mapping, the key naming the action (``click: "#submit"``), plus the
keys every step may carry: ``when`` (a condition) and ``name`` (a label for the run log).
Each driver brings its own actions (bots.drivers); a few names mean the same to the
pipeline whatever the driver: ``table`` (rows with a ``key`` and ``fields``),
``download`` (a file arrives), ``upload`` (a file is sent), ``read`` (a value ``into`` a
variable) and ``submit`` (the request that commits).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StepBase(Strict):
    when: str | None = None  # a condition (Jinja2 expression); the step runs when true
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
