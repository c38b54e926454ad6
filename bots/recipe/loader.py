"""Load a recipe file into a validated ``Recipe``, or say exactly where it is wrong.

ruamel.yaml keeps each node's line, pydantic says what is wrong and where in the tree;
this module joins the two, the way tavern re-raises schema failures as ``file: line``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..archival.schedule import RetentionSchedule, load_schedule
from ..drivers import registry
from ..errors import RecipeError
from ..scheduling.calendar import HolidayCalendar, load_calendar
from ..templating import (
    TemplateProblem,
    attributes_used,
    check_expression,
    check_template,
    is_template,
    names_read,
)
from ..yamlfile import read_yaml
from .model import Recipe, recipe_model
from .steps import CONDITION_TAGS, assigned, of_kind

# Lists whose mappings are steps or rules: each of those mappings gets its line, so that
# an error found while running can still point into the file.
_LOCATED_LISTS = frozenset(
    {
        "login",
        "logout",
        "list",
        "listings",
        "detail",
        "download",
        "upload",
        "confirm",
        "find",
        "fixity",
        "inventory",
        "steps",
        "next",  # a desktop table's steps to the next page
    }
)


# What the bot itself offers templates besides the listing row and the metadata.
FILE_VARS = frozenset({"path", "name", "size", "sha256", "ext", "format", "pages"})
CONTENT_VARS = frozenset({"text", "title", "cells"})
SCHEDULE_VARS = frozenset({"retention", "department", "rule", "name"})


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe, its retention schedule, and where they came from."""

    recipe: Recipe
    path: Path
    # sha256 of the recipe's bytes and its schedule's: which version a run used. A held
    # report is retried when either changes.
    digest: str
    schedule: RetentionSchedule
    # The holiday calendar its run schedule names (`schedule.holidays`), if any.
    calendar: HolidayCalendar | None = None

    @property
    def name(self) -> str:
        return self.recipe.recipe

    def where(self, line: int) -> str:
        return f"{self.path}:{line}" if line else str(self.path)


def load_recipe(path: str | Path) -> LoadedRecipe:
    """Read, parse and validate ``path``; raise ``RecipeError`` naming file and line."""
    path = Path(path)
    raw, tree = read_yaml(path, "recipe", "recipes")
    if not isinstance(tree, CommentedMap):
        raise RecipeError(
            [(f"{path}:1", "a recipe is a mapping with `recipe`, `source`, `archive`, ...")]
        )

    try:
        return _validated(tree, raw, path)
    except RecursionError as exc:  # the depth limit should prevent it; never a traceback
        raise RecipeError([(f"{path}:1", "the recipe is nested too deeply")]) from exc


def _validated(tree: CommentedMap, raw: bytes, path: Path) -> LoadedRecipe:
    try:
        recipe = recipe_model().model_validate(_plain(tree))
    except ValidationError as exc:
        problems = [
            (f"{path}:{_line_of(tree, _own_loc(err))}", _describe(err)) for err in exc.errors()
        ]
        raise RecipeError(problems) from exc

    template_problems = list(_template_problems(tree, path))
    template_problems += _unknown_fields(tree, recipe, path)
    template_problems += _undeclared_env(tree, recipe, path)
    template_problems += _credential_outside_login(tree, path)
    template_problems += _driver_checks(tree, recipe, path)
    if template_problems:
        raise RecipeError(template_problems)
    schedule = _load_schedule(tree, recipe, path)
    calendar = _load_calendar(tree, recipe, path)
    # The calendar is not in the digest: it says when a run starts, not what it captures.
    digest = hashlib.sha256(raw + b"\0" + schedule.digest.encode()).hexdigest()
    return LoadedRecipe(
        recipe=recipe, path=path, digest=digest, schedule=schedule, calendar=calendar
    )


def _load_calendar(tree: CommentedMap, recipe: Recipe, path: Path) -> HolidayCalendar | None:
    if recipe.schedule is None or recipe.schedule.holidays is None:
        return None
    section = tree["schedule"]
    where = f"{path}:{section.lc.key('holidays')[0] + 1}"
    file = path.parent / recipe.schedule.holidays
    if not file.is_file():
        raise RecipeError([(where, f"holiday calendar {str(file)!r} does not exist")])
    return load_calendar(file)


def _driver_checks(tree: CommentedMap, recipe: Recipe, path: Path) -> list[tuple[str, str]]:
    """What each system's driver checks beyond the schema (DriverSpec.check): files its
    steps name, for instance. Line 0 is the system's own line."""
    problems = []
    for name in ("source", "archive"):
        spec = getattr(recipe, name)
        check = registry.get(spec.driver).check
        if check is None:
            continue
        for line, problem in check(spec, path.parent):
            problems.append((f"{path}:{line or tree.lc.key(name)[0] + 1}", problem))
    return problems


def _load_schedule(tree: CommentedMap, recipe: Recipe, path: Path) -> RetentionSchedule:
    where = f"{path}:{tree.lc.key('retention_schedule')[0] + 1}"
    file = path.parent / recipe.retention_schedule
    if not file.is_file():
        raise RecipeError([(where, f"retention schedule {str(file)!r} does not exist")])
    schedule = load_schedule(file)
    fields = _row_fields(recipe)
    problems = [
        (
            schedule.where(rule),
            f"`row.{name}` is not defined; row has: {', '.join(sorted(fields))}",
        )
        for rule in schedule.spec.rules
        for name in sorted(attributes_used(rule.when, "row", expression=True) - fields)
    ]
    if problems:
        raise RecipeError(problems)
    return schedule


def _table_fields(steps: list[Any]) -> set[str]:
    """The fields of the one `table` among ``steps`` (the schema guarantees one)."""
    return set(of_kind(steps, "table")[0].args.fields)


def _row_fields(recipe: Recipe) -> set[str]:
    """What `row` may hold: the fields of every listing's table and what detail pages
    read. One set for the whole recipe: metadata and the archive's steps are shared by
    every listing, so a field only one listing has is caught when it runs, not here."""
    fields: set[str] = set()
    for plan in recipe.source.plans():
        fields |= _table_fields(plan.steps)
        fields |= set(assigned(plan.detail))
    return fields


def _unknown_fields(tree: CommentedMap, recipe: Recipe, path: Path) -> list[tuple[str, str]]:
    """Templates may only read the row fields the table declares and the metadata named."""
    known = {
        "row": _row_fields(recipe),
        "meta": set(recipe.metadata),
        "file": set(FILE_VARS),
        "content": set(CONTENT_VARS),
        "schedule": set(SCHEDULE_VARS),
    }
    problems = []
    archive = tree.get("archive")
    inventory = archive.get("inventory") if isinstance(archive, CommentedMap) else None
    located = [(tree, known, inventory)]
    if inventory is not None:
        # The inventory's table reads the archive's list, not the source's: its own rows.
        fields = _table_fields(recipe.archive.inventory)
        located.append((inventory, {"row": fields}, None))
    for node, names, skip in located:
        problems += _unknown_in(node, names, skip, path)
    return problems


def _unknown_in(
    node: Any, known: dict[str, set[str]], skip: Any, path: Path
) -> list[tuple[str, str]]:
    problems = []
    for line, key, text in _strings(node, skip):
        for name, fields in known.items():
            for field in sorted(attributes_used(text, name, expression=key == "when") - fields):
                problems.append(
                    (
                        f"{path}:{line}",
                        f"`{name}.{field}` is not defined; {name} has: {', '.join(sorted(fields))}",
                    )
                )
    return problems


def _undeclared_env(tree: CommentedMap, recipe: Recipe, path: Path) -> list[tuple[str, str]]:
    """Templates read the environment only by the names the recipe's `env:` declares."""
    declared = set(recipe.env)
    problems = []
    for line, key, text in _strings(tree):
        for name in sorted(attributes_used(text, "env", expression=key == "when") - declared):
            problems.append(
                (
                    f"{path}:{line}",
                    f"`env.{name}` is not declared in the recipe's `env:` list "
                    f"(declared: {', '.join(recipe.env) or 'none'}); add it there, unless "
                    "it is a secret: secrets are credentials, read only by login steps",
                )
            )
    return problems


def _credential_outside_login(tree: CommentedMap, path: Path) -> list[tuple[str, str]]:
    """`credential` is read only by the `login` steps of the system it belongs to: the
    only steps it is given to. Anywhere else (a URL, a form field, metadata) a password
    would reach pages, logs and the archive. A session lost in the middle of `find` (or
    any other section) logs in again through `login`, so no other section needs it."""
    problems = []
    for line, key, text, trail in _strings_at(tree):
        if len(trail) > 1 and trail[0] in ("source", "archive") and trail[1] == "login":
            continue
        if "credential" in names_read(text, expression=key == "when"):
            problems.append(
                (
                    f"{path}:{line}",
                    f"{_step_name(trail, tree)} reads `credential`; credentials may only be "
                    "used in the `login` steps of their system (source.login, archive.login)",
                )
            )
    return problems


def _step_name(trail: tuple[Any, ...], tree: CommentedMap) -> str:
    """Where a value sits, for a person: ``step 2 (`goto`) of `archive.upload```, or the
    key's path when it is not in a step. The innermost step when steps nest."""
    found, node = "", tree
    for index, part in enumerate(trail):
        node = node[part]
        if isinstance(part, int) and index and trail[index - 1] in _LOCATED_LISTS:
            section = ".".join(str(p) for p in trail[:index]).replace(".[", "[")
            kind = next(iter(node), "?") if isinstance(node, CommentedMap) else "?"
            found = f"step {part + 1} (`{kind}`) of `{section}`"
    return found or "`" + ".".join(str(p) for p in trail) + "`"


def _strings_at(node: Any, trail: tuple[Any, ...] = ()) -> Any:
    """(line, key, text, trail) for every string value in the tree but the `vars`
    tables, ``trail`` being the keys and indexes that lead to it."""
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            if key == "vars":
                continue
            if isinstance(value, str):
                yield node.lc.value(key)[0] + 1, key, value, (*trail, key)
            else:
                yield from _strings_at(value, (*trail, key))
    elif isinstance(node, CommentedSeq):
        for index, item in enumerate(node):
            if isinstance(item, str):
                yield node.lc.item(index)[0] + 1, None, item, (*trail, index)
            else:
                yield from _strings_at(item, (*trail, index))


def _strings(node: Any, skip: Any = None) -> Any:
    """(line, key, text) for every string value in the tree but the `vars` tables and
    the ``skip`` subtree."""
    if node is skip and skip is not None:
        return
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            if key == "vars":
                continue
            if isinstance(value, str):
                yield node.lc.value(key)[0] + 1, key, value
            else:
                yield from _strings(value, skip)
    elif isinstance(node, CommentedSeq):
        for index, item in enumerate(node):
            if isinstance(item, str):
                yield node.lc.item(index)[0] + 1, None, item
            else:
                yield from _strings(item, skip)


def _plain(node: Any, parent_key: str | None = None) -> Any:
    """ruamel's tree as plain data, with ``__line__`` on located mappings."""
    if isinstance(node, CommentedMap):
        return {str(k): _plain(v, str(k)) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            value = _plain(item)
            if parent_key in _LOCATED_LISTS and isinstance(value, dict):
                value["__line__"] = node.lc.item(index)[0] + 1
            items.append(value)
        return items
    return node


def _own_loc(err: Any) -> tuple[Any, ...]:
    """The error's place in the file: without the driver tag pydantic puts after a
    system's name, and at the `driver:` key when that is what is wrong."""
    loc = tuple(err["loc"])
    if len(loc) > 1 and loc[0] in ("source", "archive") and loc[1] in registry.names():
        loc = loc[:1] + loc[2:]
    # A step's `when` sits beside its action, not inside it: drop the step's union tag
    # before it; and `when` is an expression or a page condition: drop the form's tag.
    loc = tuple(
        part
        for index, part in enumerate(loc)
        if not (index and loc[index - 1] == "when" and part in CONDITION_TAGS)
        and not (isinstance(part, str) and loc[index + 1 : index + 2] == ("when",))
    )
    if err["type"] == "unknown_driver":
        loc = (*loc, "driver")
    return loc


def _line_of(tree: Any, loc: tuple[Any, ...]) -> int:
    """The line of the deepest node of ``loc`` that exists in the file."""
    node, line = tree, 1
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        # Other parts are pydantic's own (union tags, "function-after"): skip them.
    return line


def _describe(err: Any) -> str:
    loc = _own_loc(err)
    path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    kind, msg = err["type"], err["msg"]
    if kind == "missing":
        return f"`{path}` is required but missing"
    if kind == "extra_forbidden":
        return f"unknown key `{loc[-1]}` in `{path.rsplit('.', 1)[0]}`"
    if msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
    return f"{path}: {msg[:1].lower()}{msg[1:]}" if path else msg


def _template_problems(node: Any, path: Path) -> Any:
    """Compile every template and condition now, so a typo never waits for run time."""
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            if isinstance(value, str):
                line = node.lc.value(key)[0] + 1
                try:
                    if key == "when":
                        check_expression(value)
                    elif is_template(value):
                        check_template(value)
                except TemplateProblem as exc:
                    yield (f"{path}:{line}", f"`{key}`: {exc}")
            else:
                yield from _template_problems(value, path)
    elif isinstance(node, CommentedSeq):
        for index, item in enumerate(node):
            if isinstance(item, str) and is_template(item):
                try:
                    check_template(item)
                except TemplateProblem as exc:
                    yield (f"{path}:{node.lc.item(index)[0] + 1}", str(exc))
            else:
                yield from _template_problems(item, path)
