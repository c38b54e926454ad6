"""A recipe's sections by the names an author uses (``list``, ``archive.login``), and
the step at a line of the recipe file."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..recipe import LoadedRecipe
from ..recipe.model import ListingPlan
from ..recipe.steps import StepBase, walk_steps

# A section's name alone means the system that has it; `login` and `logout` are both
# systems' (alone: the source's).
SYSTEM_OF = {
    "login": "source",
    "logout": "source",
    "list": "source",
    "detail": "source",
    "download": "source",
    "upload": "archive",
    "confirm": "archive",
    "find": "archive",
    "fixity": "archive",
    "inventory": "archive",
}
SHARED = ("login", "logout")


@dataclass(frozen=True)
class Section:
    system: str  # source, archive
    name: str  # login, list, upload, ...

    def __str__(self) -> str:
        return f"{self.system}.{self.name}"


def names() -> list[str]:
    return [*SYSTEM_OF, "archive.login", "archive.logout"]


def section(given: str) -> Section:
    """``list`` → source.list; ``archive.login``; a name no recipe has is a usage error
    naming the closest one."""
    system, _, name = given.rpartition(".")
    mine = not system or system == SYSTEM_OF.get(name) or name in SHARED
    if name in SYSTEM_OF and mine and system in ("", "source", "archive"):
        return Section(system or SYSTEM_OF[name], name)
    close = difflib.get_close_matches(given, names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(f"no section {given!r}{hint}; sections are: {', '.join(names())}")


def steps_of(loaded: LoadedRecipe, part: Section, plan: ListingPlan | None = None) -> list[Any]:
    """The steps of a section (of a listing's, for list, detail and download)."""
    if part.name in ("list", "detail", "download"):
        assert plan is not None
        return {"list": plan.steps, "detail": plan.detail, "download": plan.download}[part.name]
    return list(getattr(getattr(loaded.recipe, part.system), part.name) or [])


@dataclass(frozen=True)
class Located:
    """The step at a line: its section, its listing (for the source's listing steps)."""

    step: StepBase
    section: Section
    plan: ListingPlan | None


def locate(loaded: LoadedRecipe, line: int) -> Located:
    """The step that starts at ``line``, or the one whose text holds it (the nearest
    step that starts before it, in the same section); a usage error when none does."""
    found: list[Located] = []
    source = loaded.recipe.source
    for plan in source.plans():
        for name in ("list", "detail", "download"):
            part = Section("source", name)
            found += [Located(s, part, plan) for s in walk_steps(steps_of(loaded, part, plan))]
    for system, names_ in (("source", SHARED), ("archive", ("login", "logout", *_ARCHIVE))):
        for name in names_:
            part = Section(system, name)
            found += [Located(s, part, None) for s in walk_steps(steps_of(loaded, part))]
    before = [f for f in found if 0 < f.step.line <= line]
    if not before:
        raise UsageError(f"{loaded.path}:{line}: no step starts at or before this line")
    best = max(before, key=lambda f: f.step.line)
    return next(f for f in before if f.step.line == best.step.line)


_ARCHIVE = ("upload", "confirm", "find", "fixity", "inventory")
