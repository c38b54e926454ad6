"""A holiday calendar: the dates on which a schedule does not fire (UiPath's
non-working-days calendar), and the weekend dates that are working days.

    name: 中国法定节假日 2026
    holidays:                       # no scheduled run on these dates
      - 2026-01-01
      - 2026-10-01..2026-10-08      # a range, both ends included
    workdays:                       # weekend dates worked (调休): `weekday` fires on them
      - 2026-10-10

One file serves every recipe of a site; the archive department or IT owns it, not the
recipe author. Dates are the recipe's local dates (its `timezone:`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..errors import RecipeError
from ..yamlfile import read_yaml

MAX_RANGE_DAYS = 366  # a longer range is a typo, not a holiday


@dataclass(frozen=True)
class HolidayCalendar:
    name: str
    path: Path
    holidays: frozenset[date]
    workdays: frozenset[date]


def load_calendar(path: Path) -> HolidayCalendar:
    """Read ``path``; ``RecipeError`` naming file and line for anything wrong."""
    _raw, tree = read_yaml(path, "holiday calendar", "calendars")
    if not isinstance(tree, CommentedMap):
        raise RecipeError([(f"{path}:1", "a holiday calendar is a mapping with `holidays:`")])
    problems: list[tuple[str, str]] = []
    unknown = sorted(set(tree) - {"name", "holidays", "workdays"})
    for key in unknown:
        problems.append(
            (
                f"{path}:{tree.lc.key(key)[0] + 1}",
                f"unknown key {key!r}: use name, holidays, workdays",
            )
        )
    sets = {}
    for key in ("holidays", "workdays"):
        sets[key] = _dates(tree, key, path, problems)
    both = sets["holidays"] & sets["workdays"]
    if both:
        first = min(both)
        problems.append((f"{path}:1", f"{first} is both a holiday and a workday"))
    if problems:
        raise RecipeError(problems)
    return HolidayCalendar(
        name=str(tree.get("name") or path.stem),
        path=path,
        holidays=frozenset(sets["holidays"]),
        workdays=frozenset(sets["workdays"]),
    )


def _dates(tree: CommentedMap, key: str, path: Path, problems: list[tuple[str, str]]) -> set[date]:
    items = tree.get(key)
    if items is None:
        return set()
    if not isinstance(items, CommentedSeq):
        problems.append((f"{path}:{tree.lc.key(key)[0] + 1}", f"`{key}` is a list of dates"))
        return set()
    found: set[date] = set()
    for index, item in enumerate(items):
        where = f"{path}:{items.lc.item(index)[0] + 1}"
        try:
            found |= _parse(item)
        except ValueError as exc:
            problems.append((where, f"{item!r} is not a date or a range: {exc}"))
    return found


def _parse(item: Any) -> set[date]:
    """A date (YAML reads 2026-10-01 as one), '2026-10-01' or '2026-10-01..2026-10-07'."""
    if isinstance(item, date):
        return {item}
    if not isinstance(item, str):
        raise ValueError("write YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
    first, dots, last = item.partition("..")
    start = date.fromisoformat(first.strip())
    end = date.fromisoformat(last.strip()) if dots else start
    if end < start:
        raise ValueError("the range ends before it starts")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise ValueError(f"the range is longer than {MAX_RANGE_DAYS} days")
    return {start + timedelta(days=n) for n in range((end - start).days + 1)}
