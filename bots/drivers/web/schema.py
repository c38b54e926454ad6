"""The web driver's step vocabulary: what a recipe may say to a browser, validated
before anything is contacted. Several actions take a plain selector string as a
shorthand for ``{selector: ...}``; selectors are Playwright's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from ...recipe.steps import (
    RESERVED_NAMES,
    Identifier,
    Pattern,
    Seconds,
    StepBase,
    Strict,
    step_union,
    vocabulary,
)


def _selector_shorthand(data: Any) -> Any:
    return {"selector": data} if isinstance(data, str) else data


class SelectorArgs(Strict):
    selector: str

    _shorthand = model_validator(mode="before")(_selector_shorthand)


# `visible` (default): the field must be actionable, as a person would use it. `attached`:
# present but hidden on purpose (another tab, a widget over it): set by script, with the
# input and change events the page's own scripts listen to.
FieldState = Literal["visible", "attached"]


class FillArgs(Strict):
    selector: str | None = None
    value: str | None = None
    fields: dict[str, str] | None = None  # selector -> value, for forms with many fields
    state: FieldState = "visible"

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


class CheckArgs(Strict):
    selector: str
    state: FieldState = "visible"

    _shorthand = model_validator(mode="before")(_selector_shorthand)


def _choice(data: Any) -> Any:
    """YAML numbers are option values too (``value: 10``); anything else is named."""

    def one(item: Any) -> Any:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ValueError(f"an option is a string, not {type(item).__name__}")
        return str(item)

    if isinstance(data, list):
        if not data:
            raise ValueError("an empty list chooses nothing: give at least one option")
        return [one(item) for item in data]
    return data if data is None else one(data)


# One option, or several (a multiple select): each item rendered, empty items dropped.
Choice = Annotated[str | list[str], BeforeValidator(_choice)]


class SelectArgs(Strict):
    selector: str
    value: Choice | None = None
    label: Choice | None = None

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
    state: Literal["visible", "attached", "hidden"] = "visible"

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
    # A Python regex: the first group of its first match is kept (the whole match when it
    # has none); no match fails the step (an empty value when optional).
    pattern: Pattern | None = None

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

    The pressed button's name and value are sent as a browser sends them (some servers
    read which one was pressed): ``button`` selects it; by default it is the form's first
    submit button, as when Enter is pressed in a field.
    """

    form: str
    button: str | None = None
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
    steps: list[WebStep] = Field(min_length=1)


class Goto(StepBase):
    goto: str


class Fill(StepBase):
    fill: FillArgs


class Click(StepBase):
    click: ClickArgs


class Check(StepBase):
    check: CheckArgs


class Uncheck(StepBase):
    uncheck: CheckArgs


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

    def children(self) -> list[StepBase]:
        return list(self.frame.steps)


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


WEB_STEPS: dict[str, type[StepBase]] = vocabulary(
    {
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
)
WebStep: Any = step_union(WEB_STEPS)
FrameArgs.model_rebuild()
