"""The desktop driver's recipe vocabulary: what a recipe may say to a legacy client's
windows, validated before any display is touched. Imports nothing heavy: no pyautogui
(which cannot even be imported without a display), no Xlib, OpenCV or Pillow.

A *target* (``logged_out``, ``when: {selector: ...}``, ``reject_if``, ``retry_if``) is
a window title (an fnmatch glob, case-sensitive; ``""`` is an untitled window) or
``image:PATH``, an image relative to the recipe's folder.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from ...recipe.steps import (
    Identifier,
    Pattern,
    Seconds,
    StepBase,
    Strict,
    not_reserved,
    step_union,
    vocabulary,
)

IMAGE_PREFIX = "image:"

# pyautogui.KEY_NAMES (0.9.54), kept here because pyautogui cannot be imported without
# a display: key names are checked when the recipe loads.
_NAMED_KEYS = (
    "accept add alt altleft altright apps backspace browserback browserfavorites "
    "browserforward browserhome browserrefresh browsersearch browserstop capslock clear "
    "convert ctrl ctrlleft ctrlright decimal del delete divide down end enter esc escape "
    "execute f1 f10 f11 f12 f13 f14 f15 f16 f17 f18 f19 f2 f20 f21 f22 f23 f24 f3 f4 f5 "
    "f6 f7 f8 f9 final fn hanguel hangul hanja help home insert junja kana kanji "
    "launchapp1 launchapp2 launchmail launchmediaselect left modechange multiply "
    "nexttrack nonconvert num0 num1 num2 num3 num4 num5 num6 num7 num8 num9 numlock "
    "pagedown pageup pause pgdn pgup playpause prevtrack print printscreen prntscrn prtsc "
    "prtscr return right scrolllock select separator shift shiftleft shiftright sleep "
    "space stop subtract tab up volumedown volumemute volumeup win winleft winright yen "
    "command option optionleft optionright "
)
KEY_NAMES = frozenset(
    [*"\t\n\r !\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"]
    + _NAMED_KEYS.split()
)


def chord_keys(chord: str) -> list[str]:
    """``ctrl+e`` -> ``["ctrl", "e"]``; a lone ``+`` is the plus key."""
    if chord == "+":
        return ["+"]
    return [
        part.strip().lower() if len(part.strip()) > 1 else part.strip() for part in chord.split("+")
    ]


def _chord(chord: str) -> str:
    if not chord.strip():
        raise ValueError("an empty key name")
    unknown = [k for k in chord_keys(chord) if k not in KEY_NAMES]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(KEY_NAMES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown key {unknown[0]!r} in {chord!r}{hint}")
    return chord


Chord = Annotated[str, AfterValidator(_chord)]


def _keys_list(data: Any) -> Any:
    return [data] if isinstance(data, str) else data


Keys = Annotated[list[Chord], BeforeValidator(_keys_list), Field(min_length=1)]


def _image_path(path: str) -> str:
    if not path.strip():
        raise ValueError("an image path is empty")
    if path.startswith(IMAGE_PREFIX):
        path = path[len(IMAGE_PREFIX) :]
    return path


ImagePath = Annotated[str, AfterValidator(_image_path)]
Region = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=4, max_length=4)]
Confidence = Annotated[float, Field(gt=0, le=1)]


def image_of(target: str) -> str | None:
    """The image path of an ``image:PATH`` target, None for a window title."""
    return target[len(IMAGE_PREFIX) :] if target.startswith(IMAGE_PREFIX) else None


def _shorthand(key: str) -> Any:
    """``click: save.png`` for ``click: {image: save.png}``."""

    def wrap(data: Any) -> Any:
        return {key: data} if isinstance(data, str | list) else data

    return model_validator(mode="before")(wrap)


# -- system fields --------------------------------------------------------------------


class App(Strict):
    """How to find the client, and how to start it when it is not running."""

    command: list[str] | None = Field(None, min_length=1)  # templates, rendered at start
    windows: list[str] = Field(min_length=1)  # one of these open = the client runs
    start_timeout: Seconds = 30.0


class Screen(Strict):
    """The least screen the client needs: a smaller display is refused at start, and an
    image larger than this is refused when the recipe loads."""

    width: int = Field(default=1280, ge=100, le=16384)
    height: int = Field(default=1024, ge=100, le=16384)


SYSTEM_FIELDS: dict[str, Any] = {
    "app": (App, ...),
    "screen": (Screen, Screen()),
    # Window titles (globs) closed whenever they appear, before each step: notices,
    # viewers that steal the focus.
    "dismiss": (list[Annotated[str, Field(min_length=1)]], []),
    # Window titles (globs) that mean the client failed what was asked (an error
    # dialog): a step waiting for another window gives up at once, as a retryable error,
    # rather than wait out its timeout.
    "errors": (list[Annotated[str, Field(min_length=1)]], []),
    # After keys and clicks, wait until the client has handled them (it answers a
    # _NET_WM_PING only then), as Windows' WaitForInputIdle does: the next step sees the
    # client as the keys left it. `false` for a client that never answers pings.
    "wait_idle": (bool, True),
}


# -- step arguments -------------------------------------------------------------------


class FocusArgs(Strict):
    title: str
    timeout: Seconds | None = None

    _short = _shorthand("title")


class WaitWindowArgs(Strict):
    title: str
    state: Literal["open", "closed"] = "open"
    timeout: Seconds | None = None

    _short = _shorthand("title")


class CloseArgs(Strict):
    """Windows to close if they are open (globs): what a failed attempt or a killed run
    left behind, before a section starts from the main window again."""

    titles: list[str] = Field(min_length=1)  # "" is an untitled window

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"titles": [data]}
        return {"titles": data} if isinstance(data, list) else data


class TypeArgs(Strict):
    text: str
    window: str | None = None

    _short = _shorthand("text")


class PressArgs(Strict):
    keys: Keys
    window: str | None = None
    times: int = Field(1, ge=1, le=1000)

    _short = _shorthand("keys")


class MenuArgs(Strict):
    keys: Keys = Field(min_length=2)  # the chord that posts the menu, then the picks
    window: str | None = None
    timeout: Seconds | None = None


class ClickArgs(Strict):
    image: ImagePath
    confidence: Confidence = 0.9
    region: Region | None = None
    offset: Annotated[list[int], Field(min_length=2, max_length=2)] = Field(
        default_factory=lambda: [0, 0]
    )
    button: Literal["left", "right", "middle"] = "left"
    clicks: int = Field(1, ge=1, le=3)
    timeout: Seconds | None = None
    optional: bool = False

    _short = _shorthand("image")


class WaitImageArgs(Strict):
    image: ImagePath
    state: Literal["visible", "gone"] = "visible"
    confidence: Confidence = 0.9
    region: Region | None = None
    timeout: Seconds | None = None

    _short = _shorthand("image")


class ReadArgs(Strict):
    into: Identifier
    source: Literal["clipboard", "file", "ocr", "title"] = Field(alias="from")
    file: str | None = None  # template: the file to read (from: file)
    encoding: str = "utf-8"
    region: Region | None = None  # from: ocr
    window: str | None = None  # from: title / ocr (default: the current window)
    pattern: Pattern | None = None
    optional: bool = False

    @field_validator("into")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        return not_reserved(name)

    @model_validator(mode="after")
    def _file_given(self) -> ReadArgs:
        if (self.source == "file") != (self.file is not None):
            raise ValueError("`file` is given with `from: file`, and only then")
        return self


class SaveDialogSource(Strict):
    save_dialog: str  # the Save-As dialog's title
    done: str | None = None  # the message that says it is written, dismissed
    encoding: str = "utf-8"


class OcrArea(Strict):
    window: str | None = None
    region: Region | None = None


class OcrSource(Strict):
    ocr: OcrArea


class TableArgs(Strict):
    steps: list[DesktopStep] = Field(default_factory=list)  # bring the page's rows out
    source: Literal["clipboard"] | SaveDialogSource | OcrSource = Field("clipboard", alias="from")
    columns: dict[Identifier, str] = Field(min_length=1)  # field -> the column's title
    key: str  # template over `row`: the document's source key
    next: list[DesktopStep] | None = None  # noqa: A003 - go to the next page; absent: one page
    max_pages: int = Field(default=500, ge=1, le=100_000)

    @property
    def fields(self) -> dict[str, str]:
        """The row's fields, as every driver's table names them."""
        return self.columns


class DownloadArgs(Strict):
    dialog: str = "另存为"
    done: str | None = "提示"
    timeout: Seconds | None = None  # the whole transfer (default: timeouts.download)
    settle: float = Field(0.8, ge=0, le=10)  # the dialog's autocompletion settles


class TargetArgs(Strict):
    target: str
    timeout: float = Field(default=0.0, ge=0, le=60)

    _short = _shorthand("target")


# -- steps ----------------------------------------------------------------------------


class Focus(StepBase):
    focus: FocusArgs


class WaitWindow(StepBase):
    wait_window: WaitWindowArgs


class Close(StepBase):
    close: CloseArgs


class Type(StepBase):
    type: TypeArgs  # noqa: A003 - the step's name


class Press(StepBase):
    press: PressArgs


class Menu(StepBase):
    menu: MenuArgs


class Click(StepBase):
    click: ClickArgs


class WaitImage(StepBase):
    wait_image: WaitImageArgs


class Read(StepBase):
    read: ReadArgs


class Table(StepBase):
    table: TableArgs

    def children(self) -> list[StepBase]:
        return [*self.table.steps, *(self.table.next or [])]


class Download(StepBase):
    download: DownloadArgs


class RejectIf(StepBase):
    reject_if: TargetArgs


class RetryIf(StepBase):
    retry_if: TargetArgs


DESKTOP_STEPS: dict[str, type[StepBase]] = vocabulary(
    {
        "focus": Focus,
        "wait_window": WaitWindow,
        "close": Close,
        "type": Type,
        "press": Press,
        "menu": Menu,
        "click": Click,
        "wait_image": WaitImage,
        "read": Read,
        "table": Table,
        "download": Download,
        "reject_if": RejectIf,
        "retry_if": RetryIf,
    }
)
DesktopStep: Any = step_union(DESKTOP_STEPS)
TableArgs.model_rebuild()


def target_of(spec: Any) -> str:
    """The window a session goes to: the first of ``app.windows``."""
    return str(spec.app.windows[0])
