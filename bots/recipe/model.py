"""The recipe schema: what a recipe may say, checked before anything is contacted.

A step is a one-key mapping, the key naming the action (``click: "#submit"``), plus the
optional keys every step may carry: ``when`` (a condition) and ``name`` (a label for the
run log). Several actions take a plain selector string as a shorthand for
``{selector: ...}``.
"""

from __future__ import annotations

import codecs
import difflib
import re
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..archival.metadata import FIELDS as METADATA_FIELDS
from ..archival.metadata import MANDATORY

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
    }
)
COMMON_STEP_KEYS = frozenset({"when", "name", "__line__"})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _selector_shorthand(data: Any) -> Any:
    return {"selector": data} if isinstance(data, str) else data


class SelectorArgs(Strict):
    selector: str

    _shorthand = model_validator(mode="before")(_selector_shorthand)


class FillArgs(Strict):
    selector: str | None = None
    value: str | None = None
    fields: dict[str, str] | None = None  # selector -> value, for forms with many fields

    @model_validator(mode="after")
    def _one_form(self) -> FillArgs:
        single = self.selector is not None and self.value is not None
        if single == (self.fields is not None):
            raise ValueError("fill takes either `selector` and `value`, or `fields`")
        return self


class ClickArgs(Strict):
    selector: str
    optional: bool = False  # e.g. a banner that is only sometimes there
    timeout: Seconds | None = None
    navigates: bool = False  # wait for the navigation the click starts (form submits)

    _shorthand = model_validator(mode="before")(_selector_shorthand)


class SelectArgs(Strict):
    selector: str
    value: str | None = None
    label: str | None = None

    @model_validator(mode="after")
    def _one_choice(self) -> SelectArgs:
        if (self.value is None) == (self.label is None):
            raise ValueError("select takes exactly one of `value` or `label`")
        return self


class PressArgs(Strict):
    selector: str
    key: str
    navigates: bool = False


class WaitForArgs(Strict):
    selector: str
    state: Literal["visible", "attached", "hidden", "detached"] = "visible"
    timeout: Seconds | None = None

    _shorthand = model_validator(mode="before")(_selector_shorthand)


class ExpectArgs(Strict):
    """The page must show ``text`` (inside ``selector`` when given), or ``selector``."""

    text: str | None = None
    selector: str | None = None
    timeout: Seconds | None = None

    @model_validator(mode="after")
    def _something(self) -> ExpectArgs:
        if self.text is None and self.selector is None:
            raise ValueError("expect needs `text`, `selector` or both")
        return self


class FieldSpec(Strict):
    """One field of a table row, found inside the row."""

    selector: str
    attr: str | None = None  # the attribute as written, e.g. data-id
    property: str | None = None  # the DOM property, e.g. href (absolute URL)
    optional: bool = False

    _shorthand = model_validator(mode="before")(_selector_shorthand)

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if self.attr is not None and self.property is not None:
            raise ValueError("a field reads `attr` or `property`, not both")
        return self


class TableArgs(Strict):
    selector: str  # the table itself: present even when it has no rows
    rows: str  # the data rows, inside the table
    fields: dict[Identifier, FieldSpec] = Field(min_length=1)
    key: str  # template over `row`: the document's source key, unique within the recipe
    next: str | None = None  # the "next page" control; absent on the last page
    max_pages: int = Field(default=500, ge=1, le=100_000)


class DownloadArgs(Strict):
    href: str | None = None  # fetch this URL with the logged-in session's cookies
    click: str | None = None  # click this and save the download the browser receives
    timeout: Seconds | None = None  # the whole transfer (default: timeouts.download)

    @model_validator(mode="after")
    def _one_way(self) -> DownloadArgs:
        if (self.href is None) == (self.click is None):
            raise ValueError("download takes exactly one of `href` or `click`")
        return self


class UploadArgs(Strict):
    selector: str  # an <input type=file>, hidden or not
    file: str = "{{ file.path }}"


class ReadArgs(Strict):
    selector: str
    into: Identifier
    attr: str | None = None
    property: str | None = None
    timeout: Seconds | None = None
    optional: bool = False  # nothing there now: the variable is empty (e.g. a search miss)

    @field_validator("into")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(f"`into: {name}` would overwrite a name the bot provides")
        return name


class RejectIfArgs(Strict):
    """If ``selector`` is on the page, the system refused this document (a business error)."""

    selector: str
    # Checked on the page as it is: place it after a step that waits (a navigating click,
    # a wait_for). A positive timeout waits that long for a refusal shown by script, and
    # costs that long on every accepted document.
    timeout: float = Field(default=0.0, ge=0, le=60)

    _shorthand = model_validator(mode="before")(_selector_shorthand)


class SubmitArgs(Strict):
    """Send a form the way the browser would, but through the fleet's own HTTP client.

    For the request that commits (an upload): a browser silently sends a POST again when
    the response is lost on a pre-opened connection, which archives a document twice
    without anyone seeing it. Here a lost response is an error the bot sees, and the
    document is looked up (`find`) before any new attempt.
    """

    form: str
    timeout: Seconds | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"form": data} if isinstance(data, str) else data


class RetryIfArgs(Strict):
    """If ``selector`` is on the page, the system has a temporary problem: retry later."""

    selector: str

    _shorthand = model_validator(mode="before")(_selector_shorthand)


class FrameArgs(Strict):
    selector: str  # the <iframe> or <frame> element
    steps: list[Step] = Field(min_length=1)


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


class Goto(StepBase):
    goto: str


class Fill(StepBase):
    fill: FillArgs


class Click(StepBase):
    click: ClickArgs


class Check(StepBase):
    check: SelectorArgs


class Uncheck(StepBase):
    uncheck: SelectorArgs


class Select(StepBase):
    select: SelectArgs


class Press(StepBase):
    press: PressArgs


class WaitFor(StepBase):
    wait_for: WaitForArgs


class Expect(StepBase):
    expect: ExpectArgs


class Frame(StepBase):
    frame: FrameArgs


class Table(StepBase):
    table: TableArgs


class Download(StepBase):
    download: DownloadArgs


class Upload(StepBase):
    upload: UploadArgs


class Read(StepBase):
    read: ReadArgs


class RejectIf(StepBase):
    reject_if: RejectIfArgs


class RetryIf(StepBase):
    retry_if: RetryIfArgs


class Submit(StepBase):
    submit: SubmitArgs


STEP_TYPES: dict[str, type[StepBase]] = {
    "goto": Goto,
    "fill": Fill,
    "click": Click,
    "check": Check,
    "uncheck": Uncheck,
    "select": Select,
    "press": Press,
    "wait_for": WaitFor,
    "expect": Expect,
    "frame": Frame,
    "table": Table,
    "download": Download,
    "upload": Upload,
    "read": Read,
    "reject_if": RejectIf,
    "retry_if": RetryIf,
    "submit": Submit,
}


def _step_shape(data: Any) -> Any:
    """Name the problem with a step's shape before the union tries every member."""
    if isinstance(data, StepBase):
        return data
    if not isinstance(data, dict):
        raise PydanticCustomError(
            "step_shape",
            'a step is a mapping such as `click: "#submit"`, not {got}',
            {"got": type(data).__name__},
        )
    actions = [k for k in data if k in STEP_TYPES]
    unknown = [k for k in data if k not in STEP_TYPES and k not in COMMON_STEP_KEYS]
    if unknown:
        name = str(unknown[0])
        close = difflib.get_close_matches(name, [*STEP_TYPES, "when", "name"], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PydanticCustomError(
            "unknown_step",
            "unknown step '{name}'{hint}; steps are: {known}",
            {"name": name, "hint": hint, "known": ", ".join(STEP_TYPES)},
        )
    if len(actions) != 1:
        raise PydanticCustomError(
            "step_actions",
            "a step names exactly one action, found {found}",
            {"found": ", ".join(actions) or "none"},
        )
    return data


def _step_tag(data: Any) -> str | None:
    if isinstance(data, StepBase):
        return data.kind
    return next((k for k in data if k in STEP_TYPES), None)


Step: TypeAlias = Annotated[
    Annotated[
        Annotated[Goto, Tag("goto")]
        | Annotated[Fill, Tag("fill")]
        | Annotated[Click, Tag("click")]
        | Annotated[Check, Tag("check")]
        | Annotated[Uncheck, Tag("uncheck")]
        | Annotated[Select, Tag("select")]
        | Annotated[Press, Tag("press")]
        | Annotated[WaitFor, Tag("wait_for")]
        | Annotated[Expect, Tag("expect")]
        | Annotated[Frame, Tag("frame")]
        | Annotated[Table, Tag("table")]
        | Annotated[Download, Tag("download")]
        | Annotated[Upload, Tag("upload")]
        | Annotated[Read, Tag("read")]
        | Annotated[RejectIf, Tag("reject_if")]
        | Annotated[RetryIf, Tag("retry_if")]
        | Annotated[Submit, Tag("submit")],
        Discriminator(_step_tag),
    ],
    BeforeValidator(_step_shape),
]
FrameArgs.model_rebuild()


def walk_steps(steps: list[Any]) -> list[StepBase]:
    """Every step, depth first, frames' inner steps included."""
    found: list[StepBase] = []
    for step in steps:
        found.append(step)
        if isinstance(step, Frame):
            found.extend(walk_steps(step.frame.steps))
    return found


def _count(steps: list[Any], kind: type[StepBase]) -> int:
    return sum(isinstance(s, kind) for s in walk_steps(steps))


def _forbid(steps: list[Any], kinds: tuple[type[StepBase], ...], where: str) -> None:
    for step in walk_steps(steps):
        if isinstance(step, kinds):
            raise ValueError(f"a `{step.kind}` step cannot appear in {where}")


class Window(Strict):
    """The listing window, rendered from templates (``{{ today }}`` etc.)."""

    start: str
    end: str


CredentialName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class _System(Strict):
    """What the source and the archive system have in common."""

    system: str  # a name people recognise, for logs and workbooks
    base_url: str
    credential: CredentialName
    # A selector present only when the session is gone (the login form): after a failure,
    # or on a page reached by navigation, it means "log in again", not "retry".
    logged_out: str | None = None
    login: list[Step] = Field(min_length=1)

    @field_validator("login")
    @classmethod
    def _login_steps(cls, steps: list[Any]) -> list[Any]:
        _forbid(steps, (Table, Download, Upload), "login")
        return steps


class SourceSystem(_System):
    window: Window
    listing: list[Step] = Field(alias="list", min_length=1)
    download: list[Step] = Field(min_length=1)

    @field_validator("listing")
    @classmethod
    def _one_table(cls, steps: list[Any]) -> list[Any]:
        if _count(steps, Table) != 1:
            raise ValueError("`list` must contain exactly one `table` step")
        _forbid(steps, (Download, Upload), "list")
        return steps

    @field_validator("download")
    @classmethod
    def _downloads(cls, steps: list[Any]) -> list[Any]:
        if _count(steps, Download) < 1:
            raise ValueError("`download` must contain a `download` step")
        _forbid(steps, (Table, Upload), "download")
        return steps


class ArchiveSystem(_System):
    upload: list[Step] = Field(min_length=1)
    # Steps that read the item back after upload; a `read` into `sha256` is compared
    # with the digest taken at download.
    confirm: list[Step] = Field(default_factory=list)
    # Steps that look the document up in the archive (by source key or digest) and read
    # its archive_id, empty when absent. Run before re-trying an upload whose outcome is
    # unknown (a lost response, a crash after submitting), so nothing is archived twice.
    find: list[Step] = Field(default_factory=list)
    # Steps that download the stored file back from the archive after ingest: its SHA-256
    # must equal the one taken at download (the fixity check). Optional, but without it
    # the archive's own word is the only evidence of what it holds.
    fixity: list[Step] = Field(default_factory=list)

    # Steps that walk the archive's own list pages: one `table` whose fields include
    # archive_id (and reference_code, title, size, sha256, ingested_at where shown). What
    # the archive says it holds, for reconciliation: our ledger cannot be the only witness.
    inventory: list[Step] = Field(default_factory=list)

    @field_validator("inventory")
    @classmethod
    def _inventory_table(cls, steps: list[Any]) -> list[Any]:
        if not steps:
            return steps
        tables = [s for s in walk_steps(steps) if isinstance(s, Table)]
        if len(tables) != 1:
            raise ValueError("`inventory` must contain exactly one `table` step")
        if "archive_id" not in tables[0].table.fields:
            raise ValueError("the `inventory` table must have an `archive_id` field")
        _forbid(steps, (Download, Upload, Submit), "inventory")
        return steps

    @field_validator("fixity")
    @classmethod
    def _fixity_downloads(cls, steps: list[Any]) -> list[Any]:
        if steps and _count(steps, Download) != 1:
            raise ValueError("`fixity` must contain exactly one `download` step")
        _forbid(steps, (Table, Upload), "fixity")
        return steps

    @field_validator("find")
    @classmethod
    def _find_reads_id(cls, steps: list[Any]) -> list[Any]:
        if steps and "archive_id" not in {
            s.read.into for s in walk_steps(steps) if isinstance(s, Read)
        }:
            raise ValueError("`find` must read into archive_id (optional: true for a miss)")
        _forbid(steps, (Table, Download, Upload), "find")
        return steps

    @field_validator("upload")
    @classmethod
    def _upload_reads_back(cls, steps: list[Any]) -> list[Any]:
        if _count(steps, Upload) < 1:
            raise ValueError("`upload` must contain an `upload` step")
        reads = {s.read.into for s in walk_steps(steps) if isinstance(s, Read)}
        if "archive_id" not in reads:
            raise ValueError(
                "`upload` must read the assigned id back: "
                "add `read: {selector: ..., into: archive_id}`"
            )
        _forbid(steps, (Table, Download), "upload")
        return steps

    @field_validator("confirm")
    @classmethod
    def _confirm_steps(cls, steps: list[Any]) -> list[Any]:
        _forbid(steps, (Table, Download, Upload), "confirm")
        return steps


class Timeouts(Strict):
    step: Seconds = 20.0
    download: Seconds = 300.0


class RetrySettings(Strict):
    """System errors only; business errors are never retried."""

    attempts: int = Field(default=4, ge=1, le=50)  # per stage, counting the first
    backoff: float = Field(default=1.0, ge=0, le=600)  # seconds; doubles, with full jitter
    max_backoff: float = Field(default=30.0, ge=0, le=3600)
    breaker: int = Field(default=8, ge=1, le=1000)  # system errors in a row that stop the run


class Limits(Strict):
    max_file_mb: float = Field(default=1024.0, gt=0)  # larger downloads are refused, mid-stream


class FileRules(Strict):
    """What a captured file must be to go into the archive (the usability checks)."""

    accept: list[Annotated[str, Field(pattern=r"^[a-z0-9]{1,10}$")]] = Field(
        default_factory=lambda: ["pdf", "xlsx", "csv"], min_length=1
    )
    csv_encoding: str = "utf-8"  # what the source system writes its CSV files in
    # The size the listing shows, when it shows one (``"{{ row.size }}"``): the file
    # downloaded must have exactly that many bytes. Thousands separators are allowed.
    listed_size: str | None = None

    @field_validator("csv_encoding")
    @classmethod
    def _known_encoding(cls, name: str) -> str:
        try:
            codecs.lookup(name)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {name!r}") from exc
        return name


def _metadata_fields(fields: dict[str, str]) -> dict[str, str]:
    unknown = [name for name in fields if name not in METADATA_FIELDS]
    for name in unknown:
        close = difflib.get_close_matches(name, list(METADATA_FIELDS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown metadata field {name!r}{hint}; the fields are: "
            + ", ".join(f"{n} {s.label}" for n, s in METADATA_FIELDS.items())
        )
    missing = [f"{n} ({METADATA_FIELDS[n].label})" for n in MANDATORY if n not in fields]
    if missing:
        raise ValueError(f"mandatory metadata missing: {', '.join(missing)}")
    return fields


SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Recipe(Strict):
    recipe: Annotated[str, Field(pattern=SLUG.pattern)]
    description: str = ""
    vars: dict[str, Any] = Field(default_factory=dict)  # noqa: A003 - lookup tables for templates
    source: SourceSystem
    archive: ArchiveSystem
    # Item metadata (DA/T 46 fields, bots.archival.metadata): templates over the row, the
    # file, its content and the schedule's classification.
    metadata: Annotated[dict[Identifier, str], AfterValidator(_metadata_fields)]
    # The retention schedule file (保管期限表), relative to the recipe's folder.
    retention_schedule: str = Field(min_length=1)
    files: FileRules = Field(default_factory=FileRules)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    limits: Limits = Field(default_factory=Limits)
