"""Item metadata (DA/T 22-2015, DA/T 46-2009) and the reference code (档号) rule.

A recipe maps each report to these fields with templates; this module says what a valid
value is, so that a bad one is caught here, named, before anything is uploaded, rather
than refused by the archive (or worse, accepted by a lax one). See ../shared/ARCHIVAL.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Validation:
    missing: list[str]  # mandatory fields absent or blank: a completeness failure
    invalid: list[str]  # "年度 (year): '20x5' must be four digits": an authenticity failure

    @property
    def ok(self) -> bool:
        return not self.missing and not self.invalid


def validate(values: Mapping[str, str], today: dt.date) -> Validation:
    """Check every field a recipe rendered; unknown names were refused when it loaded."""
    missing = [label(n) for n in MANDATORY if not values.get(n, "").strip()]
    invalid = []
    for name, value in values.items():
        if name in FIELDS and value.strip():
            problem = _problem(name, value, today)
            if problem:
                invalid.append(f"{label(name)}: {problem}")
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
