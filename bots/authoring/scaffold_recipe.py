"""Turn what `runner.py scaffold` saw into a recipe's text: the source section drafted
from the pages, the rest copied from a recipe that already feeds the archive.

The source section is written as text, not dumped from data, so that every choice
carries a comment saying what was found and what the author should check. The copied
part is cut from the other recipe's own text at its top-level keys, so its comments
come along as they were; only what is the source's, not the archive's (`files`), or
must not run by itself yet (`schedule`), or points at a file (`retention_schedule`) is
rewritten.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..recipe import LoadedRecipe, load_recipe
from ..templating import attributes_used
from ..yamlfile import read_yaml
from .scaffold_pages import DetailLink, LoginForm, Pager, QueryForm, Table

WINDOW_START = "2000-01-01"
WIDTH = 92  # comments are wrapped to this width

# -- fields: a name per column ------------------------------------------------------------

# Column words -> field names. A header equal to a word wins first; then a word inside it,
# in this order (部门名称 is a department, 报表名称 a title; 报表编号 an id).
COLUMN_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("seq", ("序号", "行号", "seq", "row")),
    (
        "author",
        (
            "编制人",
            "制表人",
            "经办人",
            "创建人",
            "作者",
            "author",
            "owner",
            "reporter",
            "creator",
            "created by",
            "recorded by",
        ),
    ),
    (
        "id",
        (
            "编号",
            "单号",
            "文号",
            "号码",
            "代码",
            "id",
            "no",
            "no.",
            "#",
            "number",
            "ref",
            "reference",
            "code",
        ),
    ),
    ("department", ("部门", "科室", "department", "dept", "division", "team")),
    ("kind", ("类别", "类型", "种类", "分类", "type", "kind", "category", "class")),
    (
        "date",
        (
            "日期",
            "时间",
            "年月",
            "期间",
            "date",
            "time",
            "created",
            "opened",
            "period",
            "day",
            "updated",
            "modified",
        ),
    ),
    ("size", ("大小", "字节", "size", "bytes")),
    ("status", ("状态", "status", "state")),
    ("format", ("格式", "format")),
    (
        "title",
        (
            "名称",
            "标题",
            "题名",
            "主题",
            "文件名",
            "报表",
            "title",
            "name",
            "subject",
            "report",
            "description",
            "summary",
        ),
    ),
)
# Columns of buttons and links (操作, Actions): the download link is read on its own.
ACTION_WORDS = ("操作", "动作", "action", "actions", "operation", "operations", "下载", "download")
# Fields a recipe cannot be given as names (the table's own `key` and `next` are fine).
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DATE_VALUE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")
# An identifier: a short code with a digit in it (R000123, INC-0007, #23, 2025-CW-001).
_IDENTIFIER = re.compile(r"^#?[A-Za-z]{0,8}[-_/.]?\d[\w\-/.]*$")
_BYTES = re.compile(r"^\d{1,3}([,\u00a0 ]?\d{3})*$")


def _normal(header: str) -> str:
    return re.sub(r"\s+", " ", header).strip().strip(":：").strip().lower()


def _words(header: str) -> set[str]:
    return {w for w in re.split(r"[^0-9a-z#.]+", header) if w} | {
        w.strip(".") for w in re.split(r"[^0-9a-z#]+", header) if w
    }


def field_name(header: str) -> str | None:
    """The field name for a column header (None for a column of actions); "" when the
    dictionary does not know it."""
    text = _normal(header)
    if not text:
        return ""
    if text in ACTION_WORDS:
        return None
    for name, words in COLUMN_WORDS:
        if text in words:
            return name
    tokens = _words(text)
    for name, words in COLUMN_WORDS:
        for word in words:
            if (word.isascii() and word in tokens) or (not word.isascii() and word in text):
                return name
    return ""


@dataclass(frozen=True)
class FieldDraft:
    """One field of the table step: its name, how a row reads it, and why."""

    name: str
    selector: str
    attr: str | None = None
    prop: str | None = None
    optional: bool = False
    note: str = ""  # the end-of-line comment: the column's header

    def spec(self) -> str:
        if self.attr is None and self.prop is None and not self.optional:
            return scalar(self.selector)
        parts: dict[str, Any] = {"selector": self.selector}
        if self.attr is not None:
            parts["attr"] = self.attr
        if self.prop is not None:
            parts["property"] = self.prop
        if self.optional:
            parts["optional"] = True
        return flow(parts)


@dataclass(frozen=True)
class KeyChoice:
    template: str
    field: str | None
    note: str  # why this one; "check: ..." when unsure
    sure: bool


def table_fields(table: Table, link_name: str | None) -> tuple[list[FieldDraft], list[str]]:
    """One field per column that says something (named from its header), the download
    link, the row's own link; and what the author should know about the columns left out."""
    fields: list[FieldDraft] = []
    notes: list[str] = []
    taken: set[str] = set()
    for column in table.columns:
        name = field_name(column.header)
        if name is None:
            continue  # 操作: its link is the download field
        if column.selector is None:
            notes.append(
                f"column {column.index} ({column.header or 'no header'}) has no selector that "
                "reads it in every row: left out"
            )
            continue
        if not any(column.values) and not column.time:
            continue
        name = _unique(name or _slug(column.header) or f"col{column.index}", taken)
        header = column.header or f"column {column.index}"
        if column.time:
            fields.append(FieldDraft(name, f"{column.selector} time", attr="datetime", note=header))
        else:
            fields.append(FieldDraft(name, column.selector, note=header))
    if table.download is not None:
        optional = table.download.rows < table.count
        fields.append(
            FieldDraft(
                _unique("href", taken),
                table.download.selector,
                prop="href",
                optional=optional,
                note=f"the {table.download.text or 'download'} link",
            )
        )
    elif table.row_link is not None and link_name:
        fields.append(
            FieldDraft(
                _unique(link_name, taken),
                table.row_link.selector,
                prop="href",
                note="the row's own page",
            )
        )
    return fields, notes


def _unique(name: str, taken: set[str]) -> str:
    found, n = name, 2
    while found in taken:
        found, n = f"{name}{n}", n + 1
    taken.add(found)
    return found


def _slug(header: str) -> str:
    words = re.findall(r"[a-z0-9]+", header.lower())
    slug = "_".join(words)[:30]
    return slug if slug and _IDENT.match(slug) else ""


def choose_key(table: Table, fields: list[FieldDraft]) -> KeyChoice:
    """The column whose values are unique and look like identifiers (the one named id
    first); failing that any unique column, then the download link; never guessed
    silently: ``sure`` is False and the note says what to check."""
    by_name = {f.name: f for f in fields}
    columns = {f.name: _values_of(table, f) for f in fields}
    unique = [
        name
        for name, values in columns.items()
        if values and all(values) and len(set(values)) == len(values)
    ]
    identifiers = [
        name
        for name in unique
        if name not in ("seq", "date", "size")
        and by_name[name].prop is None
        and by_name[name].attr is None
        and all(_IDENTIFIER.match(v) and not _DATE_VALUE.match(v) for v in columns[name])
    ]
    ordered = sorted(identifiers, key=lambda n: n != "id")
    if ordered:
        name = ordered[0]
        values = columns[name]
        template = f"{{{{ row.{name} }}}}"
        if all(v.startswith("#") for v in values):
            template = f"{{{{ row.{name} | replace('#', '') }}}}"
        sample = ", ".join(values[:3])
        return KeyChoice(
            template,
            name,
            f"{name}, unique on the first page and shaped like an identifier ({sample}, ...)",
            True,
        )
    others = [n for n in unique if n != "seq"]
    if others:
        name = others[0]
        return KeyChoice(
            f"{{{{ row.{name} }}}}",
            name,
            f"{name}, the only column unique on the first page. check: it does not look "
            "like an identifier, and a key must never change and never repeat",
            False,
        )
    first = fields[0].name
    return KeyChoice(
        f"{{{{ row.{first} }}}}",
        first,
        f"{first}, a guess. check: no column is unique on the first page, and a key must "
        "name one report for ever (combine fields if need be: "
        f'"{{{{ row.{first} }}}}-{{{{ row.date }}}}")',
        False,
    )


def _values_of(table: Table, field: FieldDraft) -> list[str]:
    for column in table.columns:
        if column.selector and field.selector in (column.selector, f"{column.selector} time"):
            return column.time_values if field.attr == "datetime" else column.values
    return []


# -- the source section ---------------------------------------------------------------------


@dataclass(frozen=True)
class DetailDraft:
    """Each row's own page holds its download link."""

    link_field: str  # the row field with the page's address
    link: DetailLink


@dataclass
class SourceDraft:
    """Everything the source section says, decided."""

    system: str
    base_url: str
    credential: str
    locale: str
    login_goto: str
    login: LoginForm
    login_frames: list[str]  # <frame> selectors from the top to the login form's frame
    list_goto: str
    frames: list[str]  # <frame> selectors from the top to the table's frame
    query: QueryForm | None
    lone_dates: list[str]
    table: Table
    fields: list[FieldDraft]
    key: KeyChoice
    pager: Pager | None
    detail: DetailDraft | None
    charset: str = ""  # the pages' character set (GBK): what CSV exports likely use too
    column_notes: list[str] = field(default_factory=list)
    # Row fields the copied archive side reads that this table does not have.
    placeholders: list[str] = field(default_factory=list)
    copied_from: str = ""

    @property
    def field_names(self) -> set[str]:
        names = {f.name for f in self.fields}
        if self.detail is not None:
            names.add("download_url")
        return names | set(self.placeholders)

    @property
    def csv_encoding(self) -> str:
        try:
            return codecs.lookup(self.charset).name if self.charset else "utf-8"
        except LookupError:
            return "utf-8"

    def download_field(self) -> FieldDraft | None:
        if self.table.download is None:
            return None
        return next((f for f in self.fields if f.prop == "href"), None)


def scalar(value: str) -> str:
    """A YAML scalar: plain when that reads back as the same string, else double-quoted
    (a JSON string is a valid YAML one)."""
    if re.match(r"^[A-Za-z_/][\w./-]*$", value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value, ensure_ascii=False)


_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


def flow(parts: dict[str, Any]) -> str:
    def one(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return scalar(str(value))

    return "{" + ", ".join(f"{k}: {one(v)}" for k, v in parts.items()) + "}"


def comment(text: str, indent: int = 0) -> list[str]:
    pad = " " * indent
    return textwrap.wrap(
        text, width=WIDTH - indent, initial_indent=pad + "# ", subsequent_indent=pad + "# "
    )


@dataclass
class Step:
    """A step as text: its comment, its first line (after ``- ``) and the lines under it."""

    head: str
    body: list[str] = field(default_factory=list)
    note: str = ""

    def lines(self) -> list[str]:
        return [*comment(self.note), f"- {self.head}", *(f"  {line}" for line in self.body)]


def steps_text(steps: list[Step], indent: int) -> list[str]:
    pad = " " * indent
    return [pad + line if line else line for step in steps for line in step.lines()]


def in_frames(
    frames: list[str], steps: list[Step], what: str, *, if_there: bool = False
) -> list[Step]:
    """``steps`` inside the frame chain (the outermost first), as `frame` steps;
    ``if_there``: only when the outermost frame is still in the page."""
    for selector in reversed(frames):
        inner = steps_text(steps, 4)
        steps = [
            Step(
                "frame:",
                [f"  selector: {scalar(selector)}", "  steps:", *inner],
                note=f"The {what} is inside the frame {selector}.",
            )
        ]
    if frames and if_there:
        outer = steps[0]
        when = f"when: {flow({'selector': frames[0]})}"
        steps = [Step(when, ["frame:", *outer.body], note=f"{outer.note} If it is still there.")]
    return steps


def login_steps(login: LoginForm, goto: str, frames: list[str]) -> list[Step]:
    """Go to the login page; when its form is there, fill it and send it; then refuse
    to go on if the form is still there."""
    marker = login.marker
    when = f"when: {flow({'selector': marker})}"
    fields = []
    if login.user:
        fields.append(f"    {scalar(login.user)}: {scalar('{{ credential.username }}')}")
    fields.append(f"    {scalar(login.password)}: {scalar('{{ credential.password }}')}")
    check: list[Step] = []  # after sending: was the login refused?
    steps = [
        Step(
            when,
            ["fill:", "  fields:", *fields],
            note="Only when the form is there: with a session still alive some systems go "
            "straight on to their start page.",
        )
    ]
    if login.submit is None:
        press = {"selector": login.password, "key": "Enter", "navigates": True}
        steps.append(
            Step(
                when,
                [f"press: {flow(press)}"],
                note="check: no submit button was found; Enter in the password field sends "
                "the form.",
            )
        )
    else:
        # A form's submit button loads the next page; a lone button may only run a script.
        click: dict[str, Any] = {"selector": login.submit}
        if login.submit_in_form:
            click["navigates"] = True
        steps.append(Step(when, [f"click: {flow(click)}"]))
    if login.form:
        check.append(
            Step(
                f"reject_if: {scalar(marker)}",
                note="Still the login form after signing in: the system refused the "
                "credential, and the run stops saying so. check: if this system also shows "
                "the form again for passing reasons (an expired token, too many users), "
                "name its wrong-password message here instead and add a retry_if for the "
                "form; its message is a clearer reason than the form's text.",
            )
        )
    else:
        hidden = {"selector": login.password, "state": "hidden", "timeout": 10}
        check.append(
            Step(
                f"expect: {flow(hidden)}",
                note="The password input goes away once signed in. check: a wrong password "
                "stops the run here; add a reject_if for the system's own message.",
            )
        )
    # In a frame, the page that follows a login may have replaced the frame's page: the
    # check looks into the frame only if it is still there.
    return [
        Step(f"goto: {scalar(goto)}"),
        *in_frames(frames, steps, "login form"),
        *in_frames(frames, check, "login form", if_there=True),
    ]


def query_steps(query: QueryForm) -> list[Step]:
    """Fill the query form's dates with the window and send it."""
    state = {"state": "attached"} if query.readonly else {}
    labels = " / ".join(x for x in (query.start_label, query.end_label) if x)
    steps = [
        Step(
            "fill: " + flow({"selector": query.start, "value": "{{ window.start }}", **state}),
            note=f"The query form's dates{f' ({labels})' if labels else ''}: the window, so "
            f"that the list shows every report in it (by itself it showed "
            f"{query.start_value or '?'} to {query.end_value or '?'})."
            + (" Read-only date pickers: set by script." if query.readonly else ""),
        ),
        Step("fill: " + flow({"selector": query.end, "value": "{{ window.end }}", **state})),
    ]
    if query.submit is not None and query.navigates:
        steps.append(Step("click: " + flow({"selector": query.submit, "navigates": True})))
    elif query.submit is not None:
        steps.append(
            Step(
                "click: " + flow({"selector": query.submit}),
                note="check: this button sends no form (a script answers it): wait for "
                "the table to change after it (`wait_for`).",
            )
        )
    else:
        steps.append(
            Step(
                "press: " + flow({"selector": query.end, "key": "Enter", "navigates": True}),
                note="check: no button sends the query form; Enter in the end date does.",
            )
        )
    return steps


def list_steps(draft: SourceDraft) -> list[Step]:
    inner = query_steps(draft.query) if draft.query is not None else []
    inner.append(table_step(draft))
    return [Step(f"goto: {scalar(draft.list_goto)}"), *in_frames(draft.frames, inner, "list")]


def table_step(draft: SourceDraft) -> Step:
    table = draft.table
    # End-of-line comments (each column's header) line up, unless a field is long.
    width = min(max(len(f"{f.name}: {f.spec()}") for f in draft.fields), 40)
    field_lines = []
    for f in draft.fields:
        text = f"{f.name}: {f.spec()}"
        note = f.note
        if f.prop == "href" and table.download is not None and f.optional:
            note += f": {table.download.rows} of {table.count} rows on the first page"
        pad = " " * max(width - len(text) + 2, 2)
        if len(f"{text}{pad}# {note}") > WIDTH - 12:  # too long for the line: above it
            field_lines += [*comment(note, 4), f"    {text}"]
        else:
            field_lines.append(f"    {text}{pad}# {note}" if note else f"    {text}")
    body = [
        f"  selector: {scalar(table.selector)}",
        f"  rows: {scalar(table.rows)}",
        "  fields:",
        *field_lines,
        *comment(f"The key: {draft.key.note}.", 2),
        f"  key: {scalar(draft.key.template)}",
    ]
    if draft.pager is not None:
        body += comment("The next page: the link by its exact text; absent on the last page.", 2)
        body.append(f"  next: {scalar(draft.pager.selector)}")
    found = (
        f"Found: {table.selector}, {table.count} rows on the first page"
        + (", under a header row of th cells" if table.th_header else "")
        + (f"; {table.odd_rows} rows of another shape left out" if table.odd_rows else "")
        + "."
    )
    notes = [found, *draft.column_notes]
    if draft.pager is None:
        notes.append(
            "check: no link to a next page was found (one page of rows?). If the list has "
            "more pages, add `next:` with the selector of the next-page link."
        )
    if draft.query is None and draft.lone_dates:
        notes.append(
            "check: date inputs were found but not a start and an end: "
            + ", ".join(draft.lone_dates)
            + "; fill them from the window if the list depends on them."
        )
    return Step("table:", body, note=" ".join(notes))


def download_steps(draft: SourceDraft) -> list[Step]:
    table = draft.table
    link = draft.download_field()
    if link is not None and table.download is not None:
        text = table.download.text or "download"
        if not link.optional:
            return [
                Step(
                    f"download: {flow({'href': f'{{{{ row.{link.name} }}}}'})}",
                    note=f"Each row's {text} link, fetched with the logged-in session.",
                )
            ]
        shows = _instead(table.download.instead)
        return [
            Step(
                f"when: row.{link.name}",
                [f"download: {flow({'href': f'{{{{ row.{link.name} }}}}'})}"],
                note=f"The row's {text} link, fetched with the logged-in session. check: "
                f"rows without a {text} link: {table.count - table.download.rows} of "
                f"{table.count} on the first page{shows}; they may need a generate step "
                "(press its button, wait for the link, then `download: {click: ...}`, as "
                "recipes/demo.yaml does). Until a step downloads them, a run stops at the "
                "first such row, saying so.",
            )
        ]
    if draft.detail is not None:
        return [
            Step(
                f"download: {flow({'href': '{{ row.download_url }}'})}",
                note="The link read on the row's own page (detail), fetched with the "
                "logged-in session.",
            )
        ]
    return [
        Step(
            "download: {click: \"a:text-is('下载')\"}",
            note="check: no download link was found, neither in the rows nor on a row's "
            "own page: say how a report is fetched. This placeholder clicks a 下载 link.",
        )
    ]


def _instead(instead: list[dict[str, Any]]) -> str:
    shown: dict[str, int] = {}
    for row in instead:
        controls = [f"a {c} button" for c in row.get("controls") or [] if c]
        what = ", ".join(controls) or (f"'{row['text']}'" if row.get("text") else "nothing")
        shown[what] = shown.get(what, 0) + 1
    if not shown:
        return ""
    return " (they show " + "; ".join(f"{w} ×{n}" for w, n in shown.items()) + ")"


def detail_steps(draft: SourceDraft) -> list[Step]:
    steps = []
    if draft.detail is not None:
        detail = draft.detail
        steps += [
            Step(
                f"goto: {scalar(f'{{{{ row.{detail.link_field} }}}}')}",
                note=f"Each row's own page ({detail.link_field}) has its download link "
                f"({detail.link.text or detail.link.selector}).",
            ),
            Step(
                "read: "
                + flow(
                    {"selector": detail.link.selector, "property": "href", "into": "download_url"}
                )
            ),
        ]
    if draft.placeholders:
        names = ", ".join(f"row.{n}" for n in draft.placeholders)
        steps.append(
            Step(
                "set: " + flow({n: "" for n in draft.placeholders}),
                note=f"check: the part copied from {draft.copied_from} reads {names}, which "
                "this system's list does not show. Give them values here (a `read` on the "
                "row's own page, or a `set` from the fields above), or change the metadata "
                "and the retention schedule. Until then they are empty: no retention rule "
                "covers a report, which is held, never archived on a guess.",
            )
        )
    return steps


def source_text(draft: SourceDraft) -> list[str]:
    login = draft.login
    lines = ["source:"]
    lines += comment("From the pages' titles: the name people know the system by.", 2)
    lines.append(f"  system: {scalar(draft.system)}")
    lines += comment(
        "The list page's origin, as given. To point the recipe at a test or production "
        'system by the environment, make it a template ("{{ env.SOURCE_URL | '
        f"default('{draft.base_url}') }}}}\") and add SOURCE_URL to `env`.",
        2,
    )
    lines.append(f"  base_url: {scalar(draft.base_url)}")
    lines.append(f"  credential: {scalar(draft.credential)}")
    if draft.locale:
        lines += comment(
            "The language the pages were read in: the text selectors below depend on it.", 2
        )
        lines.append(f"  locale: {draft.locale}")
    lines += comment(
        "Shown only when the session is gone (the login form): the bot logs in again and "
        "carries on.",
        2,
    )
    lines.append(f"  logged_out: {scalar(login.marker)}")
    lines += comment("Everything since 2000-01-01: the ledger decides what is new.", 2)
    lines += [
        "  window:",
        f"    start: {scalar(WINDOW_START)}",
        f"    end: {scalar('{{ today }}')}",
        "",
        "  login:",
        *steps_text(login_steps(login, draft.login_goto, draft.login_frames), 4),
        "",
        "  list:",
        *steps_text(list_steps(draft), 4),
        "",
    ]
    detail = detail_steps(draft)
    if detail:
        lines += ["  detail:", *steps_text(detail, 4), ""]
    lines += ["  download:", *steps_text(download_steps(draft), 4)]
    return lines


# -- the part copied from another recipe --------------------------------------------------

# Top-level keys not copied: the new recipe's own (its name, the source), what belongs to
# the source although it sits at the top (files: its formats, CSV encoding, listed sizes)
# and the run schedule (a draft must not run by itself; written commented out).
OWN_KEYS = frozenset({"recipe", "description", "env", "source", "files", "schedule"})


@dataclass(frozen=True)
class ArchiveSide:
    """A recipe whose archive side (and metadata, retention schedule...) a new recipe
    copies: its validated form, its text and its round-trip tree."""

    loaded: LoadedRecipe
    lines: list[str]
    tree: CommentedMap

    @classmethod
    def load(cls, path: Path) -> ArchiveSide:
        loaded = load_recipe(path)  # a RecipeError (file:line) if it is not a valid recipe
        raw, tree = read_yaml(path, "recipe", "recipes")
        return cls(loaded, raw.decode("utf-8").splitlines(), tree)

    @property
    def path(self) -> Path:
        return self.loaded.path

    @property
    def shown(self) -> str:
        return shown_path(self.path)

    def chunks(self) -> dict[str, list[str]]:
        """Each top-level key's text, with the comment lines right above it."""
        keys = list(self.tree.keys())
        begins = []
        for key in keys:
            line = self.tree.lc.key(key)[0]
            while line > 0 and self.lines[line - 1].startswith("#"):
                line -= 1
            begins.append(line)
        chunks = {}
        for index, key in enumerate(keys):
            end = begins[index + 1] if index + 1 < len(keys) else len(self.lines)
            chunk = self.lines[begins[index] : end]
            while chunk and not chunk[-1].strip():
                chunk.pop()
            chunks[str(key)] = chunk
        return chunks

    def copied(self) -> list[str]:
        return [str(k) for k in self.tree if k not in OWN_KEYS]

    def reads(self, name: str) -> set[str]:
        """What the copied part's templates read of ``name`` (`row`, `env`), and for `row`
        what the retention schedule's rules read too."""
        used: set[str] = set()
        for key in self.copied():
            node = self.tree[key]
            skip = (
                node.get("inventory")
                if key == "archive" and isinstance(node, CommentedMap)
                else None
            )
            for text, is_when in _strings(node, skip):
                used |= attributes_used(text, name, expression=is_when)
        if name == "row":
            for rule in self.loaded.schedule.spec.rules:
                used |= attributes_used(rule.when, "row", expression=True)
        return used


def _strings(node: Any, skip: Any, is_when: bool = False) -> Iterator[tuple[str, bool]]:
    if node is skip and skip is not None:
        return
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            if key == "vars":
                continue
            yield from _strings(value, skip, key == "when")
    elif isinstance(node, CommentedSeq):
        for item in node:
            yield from _strings(item, skip)
    elif isinstance(node, str):
        yield node, is_when


def shown_path(path: Path) -> str:
    """A path as a person in the project folder would type it (relative when below)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def relocated(target: Path, new_folder: Path) -> str:
    """``target`` as the new recipe names it: relative to its folder when both are in
    one project tree, else absolute."""
    target, new_folder = target.resolve(), new_folder.resolve()
    common = Path(os.path.commonpath([target, new_folder]))
    if common == Path(common.anchor):
        return str(target)
    relative = os.path.relpath(target, new_folder)
    return relative if relative.count("..") <= 2 else str(target)


def copied_text(side: ArchiveSide, out: Path, draft: SourceDraft) -> list[str]:
    """The archive side and the rest, as the other recipe wrote them, in its order."""
    chunks = side.chunks()
    lines: list[str] = []
    origin = side.path.parent
    for key in side.tree:
        key = str(key)
        if key in OWN_KEYS and key != "schedule":
            if key == "files":
                lines += ["", *files_text(side, draft)]
            continue
        chunk = list(chunks[key])
        if key == "retention_schedule":
            old = str(side.tree[key])
            new = relocated(origin / old, out.parent)
            chunk = [
                rewritten
                for line in chunk
                for rewritten in (
                    _rewritten(line, key, new, old, side.shown)
                    if line.startswith("retention_schedule:")
                    else [line]
                )
            ]
        if key == "schedule":
            chunk = _schedule_commented(chunk, side, out)
        lines += ["", *chunk]
    if "files" not in side.tree:
        lines += ["", *files_text(side, draft)]
    return lines


def _rewritten(line: str, key: str, new: str, old: str, source: str) -> list[str]:
    """The key's line with its new value, saying what it was and where."""
    if new == old:
        return [line]
    return [*comment(f"{old} in {source}, from here:"), f"{key}: {scalar(new)}"]


def _schedule_commented(chunk: list[str], side: ArchiveSide, out: Path) -> list[str]:
    schedule = side.loaded.recipe.schedule
    holidays = schedule.holidays if schedule is not None else None
    body = []
    for line in chunk:
        if holidays and not line.lstrip().startswith("#"):
            new = relocated(side.path.parent / holidays, out.parent)
            line = line.replace(holidays, new)
        body.append(line if line.startswith("#") else f"# {line}")
    return [
        *comment(
            f"The run schedule of {side.shown}, left commented out: a draft should not run by "
            "itself (`serve`, `crontab` and `systemd` take every recipe in recipes/ with a "
            "schedule). Uncomment it once `runner.py run` works."
        ),
        *body,
    ]


def files_text(side: ArchiveSide, draft: SourceDraft) -> list[str]:
    """`files`: the formats the archive takes (the other recipe's), the CSV encoding and
    listed sizes this source's pages suggest."""
    rules = side.loaded.recipe.files
    lines = comment(
        f"What a file must be to be archived: the formats are {side.shown}'s (the archive's "
        "rules); the CSV encoding is the source's pages' "
        f"({draft.charset or 'unknown'}): check what its CSV exports use."
    )
    lines.append("files:")
    lines.append(f"  accept: [{', '.join(rules.accept)}]")
    lines.append(f"  csv_encoding: {scalar(draft.csv_encoding)}")
    size = next((f for f in draft.fields if f.name == "size"), None)
    values = _values_of(draft.table, size) if size is not None else []
    if size is not None and values and all(_BYTES.match(v) for v in values):
        lines.append(
            f"  listed_size: {scalar('{{ row.size }}')}   # the list shows each file's bytes"
        )
    elif size is not None:
        lines += comment(
            f"The list's sizes ({values[0] if values else '?'}) are not byte counts: not "
            "compared with the downloads.",
            2,
        )
    return lines


def recipe_text(
    *,
    name: str,
    draft: SourceDraft,
    side: ArchiveSide,
    out: Path,
    header: list[str],
) -> str:
    """The whole recipe: header comments, name, env, source, then the copied part."""
    env = sorted(side.reads("env"))
    archive_system = side.loaded.recipe.archive.system
    lines = [*header, f"recipe: {name}"]
    lines.append(f"description: {scalar(f'{draft.system} → {archive_system}')}")
    if env:
        lines += comment(
            f"The environment variables templates may read: those the part copied from "
            f"{side.shown} reads."
        )
        lines.append(f"env: [{', '.join(env)}]")
    lines += ["", *source_text(draft)]
    lines += [
        "",
        *comment(
            f"From here on, copied from {side.shown}: an organisation usually feeds one archive "
            "system, so a new source's recipe shares its archive side (and metadata, retention "
            "schedule, retries) with the recipes already feeding it. check: the metadata "
            "templates read this source's row fields."
        ),
    ]
    lines += copied_text(side, out, draft)
    return "\n".join(lines).rstrip("\n") + "\n"
