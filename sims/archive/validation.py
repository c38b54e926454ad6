"""Metadata rules the archive enforces on every ingest, and the reference code (档号) rule.

The point of the simulator is that it refuses bad metadata the way a real archive does:
on the server, with one message per problem, naming the field in Chinese. The rules
follow DA/T 22-2015 / DA/T 46-2009 as summarised in ``shared/ARCHIVAL.md``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

# Option lists, in display order (value -> label). The ingest form renders exactly these.
CATEGORIES: dict[str, str] = {"WS": "文书", "KU": "会计", "KJ": "科技", "ZP": "照片"}
RETENTIONS: dict[str, str] = {"Y": "永久", "D30": "30年", "D10": "10年"}
# An empty classification is a valid choice: the catalogue leaves 密级 blank when none.
CLASSIFICATIONS: tuple[str, ...] = ("", "公开", "内部", "秘密")

# Field names as an archivist reads them; used in error messages and on the item page.
FIELD_LABELS: dict[str, str] = {
    "fonds": "全宗号",
    "category": "门类代码",
    "year": "年度",
    "retention": "保管期限",
    "department": "机构代码",
    "item_number": "件号",
    "title": "题名",
    "author": "责任者",
    "date": "日期",
    "doc_number": "文号",
    "classification": "密级",
    "pages": "页数",
    "remarks": "备注",
    "file": "原文文件",
}

FORM_FIELDS: tuple[str, ...] = (
    "fonds",
    "category",
    "year",
    "retention",
    "department",
    "title",
    "author",
    "date",
    "doc_number",
    "classification",
    "pages",
    "remarks",
)

FIRST_YEAR = 1949  # the archive holds nothing older than the People's Republic
TITLE_MAX = 200
# A real system keeps pages in a 32-bit INT column; anything larger is a typo, and an
# unbounded integer would overflow SQLite's 64-bit INTEGER.
PAGES_MAX = 2_147_483_647

_FONDS_RE = re.compile(r"[A-Z0-9]{1,12}")
_DEPARTMENT_RE = re.compile(r"[A-Z0-9]{2,8}")
_YEAR_RE = re.compile(r"[0-9]{4}")
_DATE_RE = re.compile(r"[0-9]{8}")
_PAGES_RE = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() would accept "²"


@dataclass(frozen=True)
class ItemMetadata:
    """Validated descriptive metadata of one item (件), before an item number is assigned."""

    fonds: str
    category: str
    year: str
    retention: str
    department: str
    title: str
    author: str
    date: str
    doc_number: str
    classification: str
    pages: int | None
    remarks: str  # "" unless the has_remarks box was ticked


def _choice_list(values: list[str]) -> str:
    """Join allowed values the way the messages read: ``Y、D30 或 D10``."""
    if len(values) == 1:
        return values[0]
    return "、".join(values[:-1]) + " 或 " + values[-1]


def validate_metadata(
    form: Mapping[str, str], *, has_remarks: bool, today: dt.date
) -> tuple[ItemMetadata | None, list[str]]:
    """Check the submitted fields; return the metadata, or None and one message per problem.

    Values are kept exactly as entered (no trimming): a code with a stray space is a wrong
    code, and the archive says so instead of silently changing what the producer sent.
    """
    value = {name: form.get(name, "") for name in FORM_FIELDS}
    errors: list[str] = []

    fonds = value["fonds"]
    if fonds == "":
        errors.append("全宗号不能为空")
    elif not _FONDS_RE.fullmatch(fonds):
        errors.append(f"全宗号格式错误：{fonds}（应为 1–12 位大写字母或数字）")

    category = value["category"]
    if category == "":
        errors.append(f"门类代码不能为空（应为 {_choice_list(list(CATEGORIES))}）")
    elif category not in CATEGORIES:
        errors.append(f"门类代码无效：{category}（应为 {_choice_list(list(CATEGORIES))}）")

    year = value["year"]
    last_year = today.year + 1
    if year == "":
        errors.append("年度不能为空")
    elif not _YEAR_RE.fullmatch(year):
        errors.append(f"年度格式错误：{year}（应为四位数字）")
    elif not FIRST_YEAR <= int(year) <= last_year:
        errors.append(f"年度超出范围：{year}（应在 {FIRST_YEAR}–{last_year} 之间）")

    retention = value["retention"]
    if retention == "":
        errors.append(f"保管期限不能为空（应为 {_choice_list(list(RETENTIONS))}）")
    elif retention not in RETENTIONS:
        errors.append(f"保管期限无效：{retention}（应为 {_choice_list(list(RETENTIONS))}）")

    department = value["department"]
    if department == "":
        errors.append("机构代码不能为空")
    elif not _DEPARTMENT_RE.fullmatch(department):
        errors.append(f"机构代码格式错误：{department}（应为 2–8 位大写字母或数字）")

    title = value["title"]
    if title.strip() == "":
        errors.append("题名不能为空")
    elif len(title) > TITLE_MAX:
        errors.append(f"题名过长：{len(title)} 个字符（最多 {TITLE_MAX} 个）")

    author = value["author"]
    if author.strip() == "":
        errors.append("责任者不能为空")

    date = value["date"]
    if date == "":
        errors.append("日期不能为空")
    elif not _DATE_RE.fullmatch(date):
        errors.append(f"日期格式错误：{date}（应为 YYYYMMDD）")
    else:
        try:
            dt.date(int(date[:4]), int(date[4:6]), int(date[6:]))
        except ValueError:
            errors.append(f"日期无效：{date}（不是有效的日历日期）")

    classification = value["classification"]
    if classification not in CLASSIFICATIONS:
        allowed = _choice_list(["空"] + [c for c in CLASSIFICATIONS if c])
        errors.append(f"密级无效：{classification}（应为 {allowed}）")

    pages_text = value["pages"]
    pages: int | None = None
    if pages_text != "":
        if not _PAGES_RE.fullmatch(pages_text):
            errors.append(f"页数格式错误：{pages_text}（应为非负整数）")
        elif int(pages_text) > PAGES_MAX:
            errors.append(f"页数过大：{pages_text}（最多 {PAGES_MAX}）")
        else:
            pages = int(pages_text)

    if errors:
        return None, errors
    return (
        ItemMetadata(
            fonds=fonds,
            category=category,
            year=year,
            retention=retention,
            department=department,
            title=title,
            author=author,
            date=date,
            doc_number=value["doc_number"],
            classification=classification,
            pages=pages,
            # Stored only when ticked: the textarea is disabled otherwise, and a value that
            # arrives anyway (a script removed "disabled") is not what the user confirmed.
            remarks=value["remarks"] if has_remarks else "",
        ),
        [],
    )


def validate_file(filename: str | None, size: int | None) -> list[str]:
    """The original must be present and non-empty; a real archive has nothing to keep otherwise."""
    if not filename or size is None:
        return ["原文文件不能为空：请选择要上传的文件"]
    if size == 0:
        return [f"原文文件为空：{filename}（0 字节）"]
    return []


def reference_code(meta: ItemMetadata, item_number: int) -> str:
    """档号: 全宗号-门类代码·年度-保管期限-机构代码-件号 ("·" joins codes on one level)."""
    return (
        f"{meta.fonds}-{meta.category}\u00b7{meta.year}-{meta.retention}"
        f"-{meta.department}-{item_number:04d}"
    )
