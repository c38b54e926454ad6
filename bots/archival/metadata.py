"""Item metadata (DA/T 22-2015, DA/T 46-2009), the archive's own fields, and the
reference code (档号) rule.

A recipe maps each report to these fields with templates; this module says what a valid
value is, so that a bad one is caught here, named, before anything is uploaded, rather
than refused by the archive (or worse, accepted by a lax one). See ../shared/ARCHIVAL.md.
The archive's own fields (a recipe's ``metadata_profile.fields``) carry their rules as
data: type, required, pattern, allowed values.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Allowed values, as the archive's own option lists have them.
CATEGORIES: dict[str, str] = {"WS": "文书", "KU": "会计", "KJ": "科技", "ZP": "照片"}
# Ordered shortest first: a schedule gives minimum periods, and longer is allowed.
RETENTIONS: dict[str, str] = {"D10": "10年", "D30": "30年", "Y": "永久"}
CLASSIFICATIONS: tuple[str, ...] = ("", "公开", "内部", "秘密")
FIRST_YEAR = 1949
TITLE_MAX = 200


@dataclass(frozen=True)
class FieldSpec:
    label: str  # 中文 name, as the catalogue and the archivist say it
    element: str  # DA/T 46 element name
    mandatory: bool


# Fields a recipe maps, in catalogue order. The bot itself adds the rest of the record
# (electronic record code, file name, size, format, digest) from what it captured.
FIELDS: dict[str, FieldSpec] = {
    "fonds": FieldSpec("全宗号", "fondsIdentifier", True),
    "category": FieldSpec("门类代码", "category", True),
    "year": FieldSpec("年度", "year", True),
    "retention": FieldSpec("保管期限", "retentionPeriod", True),
    "department": FieldSpec("机构或问题", "organizationalStructureOrFunction", True),
    "title": FieldSpec("题名", "title", True),
    "doc_number": FieldSpec("文号", "documentNumber", False),
    "author": FieldSpec("责任者", "author", True),
    "date": FieldSpec("日期", "date", True),
    "classification": FieldSpec("密级", "securityClassification", False),
    "pages": FieldSpec("页数", "totalNumberOfPages", False),
    "remarks": FieldSpec("备注", "remarks", False),
}
MANDATORY = tuple(name for name, spec in FIELDS.items() if spec.mandatory)

_FONDS = re.compile(r"[A-Z0-9]{1,12}")
_DEPARTMENT = re.compile(r"[A-Z0-9]{2,8}")
_YEAR = re.compile(r"[0-9]{4}")
_DATE = re.compile(r"[0-9]{8}")
_PAGES = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def label(name: str) -> str:
    spec = FIELDS.get(name)
    return f"{spec.label} ({name})" if spec else name


def _one_of(value: str, allowed: Mapping[str, str] | tuple[str, ...]) -> str | None:
    if value in allowed:
        return None
    shown = ", ".join(repr(v) for v in allowed)
    return f"{value!r} is not one of {shown}"


def _problem(name: str, value: str, today: dt.date) -> str | None:
    """What is wrong with one present value, or None."""
    if _CONTROL.search(value):
        return "contains control characters"
    if name == "fonds" and not _FONDS.fullmatch(value):
        return f"{value!r} must be 1-12 capital letters or digits"
    if name == "category":
        return _one_of(value, CATEGORIES)
    if name == "retention":
        return _one_of(value, RETENTIONS)
    if name == "classification":
        return _one_of(value, CLASSIFICATIONS)
    if name == "department" and not _DEPARTMENT.fullmatch(value):
        return f"{value!r} must be 2-8 capital letters or digits"
    if name == "year":
        if not _YEAR.fullmatch(value):
            return f"{value!r} must be four digits"
        if not FIRST_YEAR <= int(value) <= today.year + 1:
            return f"{value} is outside {FIRST_YEAR}-{today.year + 1}"
    if name == "date":
        return _date_problem(value, today)
    if name == "title" and len(value) > TITLE_MAX:
        return f"is {len(value)} characters long, at most {TITLE_MAX}"
    if name == "pages" and not _PAGES.fullmatch(value):
        return f"{value!r} must be a whole number"
    return None


def _date_problem(value: str, today: dt.date) -> str | None:
    if not _DATE.fullmatch(value):
        return f"{value!r} must be 8 digits, YYYYMMDD"
    try:
        day = dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return f"{value} is not a calendar date"
    if day.year < FIRST_YEAR or day > today + dt.timedelta(days=1):
        return f"{value} is not a plausible date (after {FIRST_YEAR}, not in the future)"
    return None


class FieldRules(Protocol):
    """One of the archive's own fields (bots.recipe.model.ProfileField), as checked here."""

    @property
    def label(self) -> str: ...
    @property
    def type(self) -> str: ...  # text | integer | date | list
    @property
    def required(self) -> bool: ...
    @property
    def pattern(self) -> str | None: ...
    @property
    def values(self) -> Sequence[str | int] | None: ...


LIST_SEPARATOR = ";"
_INTEGER = re.compile(r"[+-]?[0-9]+")
_ISO_DATE = re.compile(r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})")


def split_list(value: str) -> list[str]:
    """A rendered list field's items: separated by ";", trimmed, empty ones dropped."""
    return [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]


def value_problem(rules: FieldRules, value: str) -> str | None:
    """What is wrong with one value (one item of a list) of a custom field, or None."""
    if _CONTROL.search(value):
        return "contains control characters"
    if rules.type == "integer" and not _INTEGER.fullmatch(value):
        return f"{value!r} must be a whole number"
    if rules.type == "date":
        match = _ISO_DATE.fullmatch(value)
        if not match or (value[4:5] == "-") != (value[7:8] == "-"):
            return f"{value!r} must be a date, YYYY-MM-DD or YYYYMMDD"
        try:
            dt.date(*(int(part) for part in match.groups()))
        except ValueError:
            return f"{value} is not a calendar date"
    if rules.pattern is not None and not re.fullmatch(rules.pattern, value):
        return f"{value!r} does not match the pattern {rules.pattern}"
    if rules.values is not None:
        if rules.type == "integer":
            allowed = {int(v) for v in rules.values if _INTEGER.fullmatch(str(v))}
            ok = int(value) in allowed
        else:
            ok = value in {str(v) for v in rules.values}
        if not ok:
            return f"{value!r} is not one of " + ", ".join(repr(str(v)) for v in rules.values)
    return None


def _custom_problem(rules: FieldRules, value: str) -> str | None:
    if rules.type != "list":
        return value_problem(rules, value)
    problems = [p for item in split_list(value) if (p := value_problem(rules, item))]
    return "; ".join(problems) or None


def _blank(value: str, rules: FieldRules | None) -> bool:
    if rules is not None and rules.type == "list":
        return not split_list(value)
    return not value.strip()


def shaped(values: Mapping[str, str], fields: Mapping[str, FieldRules]) -> dict[str, Any]:
    """The metadata as sent: a list field's value as its items, the rest as rendered."""
    return {
        name: split_list(value) if name in fields and fields[name].type == "list" else value
        for name, value in values.items()
    }


def readable(value: Any) -> str:
    """A metadata value for people (a workbook cell, a CSV column): lists as "a; b"."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "; ".join(str(item) for item in value)
    return str(value)


@dataclass(frozen=True)
class Validation:
    missing: list[str]  # mandatory fields absent or blank: a completeness failure
    invalid: list[str]  # "年度 (year): '20x5' must be four digits": an authenticity failure

    @property
    def ok(self) -> bool:
        return not self.missing and not self.invalid


def validate(
    values: Mapping[str, str],
    today: dt.date,
    *,
    fields: Mapping[str, FieldRules] | None = None,
    dat46: bool = True,
) -> Validation:
    """Check every field a recipe rendered; unknown names were refused when it loaded.

    ``fields`` are the archive's own (the recipe's profile), checked by their rules;
    ``dat46`` says whether the DA/T 46 fields and their rules apply.
    """
    custom = fields or {}

    def named(name: str) -> str:
        return f"{custom[name].label} ({name})" if name in custom else label(name)

    mandatory = [*(MANDATORY if dat46 else ()), *(n for n, f in custom.items() if f.required)]
    missing = [named(n) for n in mandatory if _blank(values.get(n, ""), custom.get(n))]
    invalid = []
    for name, value in values.items():
        if _blank(value, custom.get(name)):
            continue
        if name in custom:
            problem = _custom_problem(custom[name], value)
        elif dat46 and name in FIELDS:
            problem = _problem(name, value, today)
        else:
            problem = None
        if problem:
            invalid.append(f"{named(name)}: {problem}")
    return Validation(missing, invalid)


def retention_at_least(period: str, minimum: str) -> bool:
    """A schedule gives minimum periods: D30 satisfies D10, D10 does not satisfy Y."""
    order = list(RETENTIONS)
    return order.index(period) >= order.index(minimum)


# -- reference codes ----------------------------------------------------------------------

_REFERENCE = re.compile(
    r"(?P<fonds>[A-Z0-9]{1,12})-(?P<category>[A-Z]{2})\u00b7(?P<year>[0-9]{4})"
    r"-(?P<retention>Y|D30|D10)-(?P<department>[A-Z0-9]{2,8})-(?P<item>[0-9]{4})"
)


def reference_prefix(values: Mapping[str, str]) -> str:
    """全宗号-门类代码·年度-保管期限-机构代码: the group an item is numbered within."""
    return (
        f"{values['fonds']}-{values['category']}\u00b7{values['year']}"
        f"-{values['retention']}-{values['department']}"
    )


def reference_code(values: Mapping[str, str], item: int) -> str:
    return f"{reference_prefix(values)}-{item:04d}"


def check_reference(code: str, values: Mapping[str, str]) -> str | None:
    """What is wrong with a code the archive assigned for an item with ``values``, or None."""
    match = _REFERENCE.fullmatch(code)
    if not match:
        return (
            f"{code!r} does not follow fonds-category\u00b7year-retention-department-item "
            "(e.g. Z109-KU\u00b72024-D10-CWB-0001)"
        )
    expected = reference_prefix(values)
    got = code.rsplit("-", 1)[0]
    if got != expected:
        return f"{code!r} is not in this item's group {expected!r}"
    if match["item"] == "0000":
        return f"{code!r} has item number 0000; numbering starts at 0001"
    return None


def item_number(code: str) -> int:
    return int(code.rsplit("-", 1)[1])


def gaps_and_repeats(codes: list[str]) -> list[str]:
    """Breaks in continuity among codes of one group: missing and repeated item numbers."""
    numbers = sorted(item_number(c) for c in codes)
    problems = []
    seen: set[int] = set()
    for n in numbers:
        if n in seen:
            problems.append(f"item {n:04d} appears more than once")
        seen.add(n)
    missing = sorted(set(range(1, max(numbers, default=0) + 1)) - seen)
    if missing:
        problems.append("item numbers missing: " + ", ".join(f"{n:04d}" for n in missing))
    return problems
