"""What a driver gives the pipeline: a session on one system, behind a small protocol.

A driver (web: Playwright; desktop: pyautogui; a fake in the tests) opens sessions. A
session runs a list of recipe steps in a context, says whether it has been logged out,
takes screenshots that never show a password, and closes. The pipeline above it knows
nothing of pages or windows: it passes steps, variables and hooks in, and gets rows,
files and variables back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..errors import RecipeRuntimeError
from ..files import StagedFile

if TYPE_CHECKING:
    from ..recipe import LoadedRecipe
    from ..recipe.model import StepBase

Row = dict[str, str | None]
# Called with each listing page's rows and an opaque handle per row (for screenshots).
RowsHook = Callable[[list[Row], list[Any]], None]
EventSink = Callable[..., None]


@dataclass
class TableCursor:
    """How far a listing got: kept across attempts, so a retry resumes at the next page."""

    rows: list[Row] = field(default_factory=list)
    pages: int = 0
    next_url: str | None = None  # the page to read next, when the pager is a real link
    done: bool = False


@dataclass
class StepContext:
    """Everything one run of steps needs besides the steps themselves.

    ``variables`` is read by templates and written by `read` steps. ``phase`` names the
    recipe section (login, list, download, upload, ...): during ``login`` the logged-out
    marker is expected and not an error.
    """

    variables: dict[str, Any]
    phase: str
    key: str | None = None  # the document being worked on, for the run log
    staging_dir: Path | None = None  # where a `download` step puts its file
    cursor: TableCursor | None = None  # the listing's progress, across attempts
    on_rows: RowsHook | None = None
    # Called by the driver immediately before it sends a request that may commit (a
    # `submit`, or a non-idempotent request the page makes during upload steps): the
    # pipeline records its intent to upload durably there, so a failure before that
    # moment is known not to have reached the archive.
    on_commit: Callable[[], None] | None = None

    def staging(self) -> Path:
        """Where a `download` step puts its file (the pipeline gives one to download steps)."""
        if self.staging_dir is None:
            raise RuntimeError("a download step ran with no staging folder given")
        return self.staging_dir


@dataclass
class StepOutcome:
    """What a list of steps produced besides its effects on the system."""

    rows: list[Row] = field(default_factory=list)  # a `table` step's rows
    downloaded: StagedFile | None = None


@dataclass(frozen=True)
class Match:
    """What one selector of a step found when it ran (``runner.py try``): how many
    elements (or image matches), and the first of them in a few words."""

    selector: str
    count: int
    first: str = ""  # the first match: tag, id, name and text (web); the region (desktop)
    score: float | None = None  # an image match's confidence (desktop)


@dataclass(frozen=True)
class StepReport:
    """One step as it ran, for whoever watches a session step by step (``Tracer``)."""

    system: str
    phase: str
    line: int
    kind: str
    depth: int  # steps nested in a `frame` (web) are one deeper
    location: str  # where the session was after the step: a URL, a window title
    seconds: float
    ran: bool  # False: its `when` did not hold, and the step was skipped
    matched: tuple[Match, ...] = ()
    target: str = ""  # what a step with no selector went for (a download's URL)


@dataclass(frozen=True)
class Diagnosis:
    """What a session showed when a step failed, for the author at ``runner.py try``."""

    location: str  # the URL (or window) the step ran in
    title: str
    near: str  # the visible text around where the step looked
    closest: tuple[str, ...] = ()  # what nearly matched, best first, each in a line
    frames: tuple[str, ...] = ()  # the page's frames: name and URL (web)
    line: int = 0  # the recipe line of the step that ran there


@dataclass(frozen=True)
class Candidate:
    """A selector that names the element a step was probably meant for."""

    selector: str
    how: str  # by what it names it: id, name, role and accessible name, text, ...
    stable: bool | None = None  # named the same one element on another load (None: not tried)


@dataclass(frozen=True)
class Explanation:
    """What a step's selectors match where it would run (``runner.py explain``)."""

    location: str
    lines: tuple[str, ...]  # each selector: its matches, and why one is not usable
    candidates: tuple[Candidate, ...] = ()  # best first
    meant: str = ""  # the element the candidates name, in a few words


class Tracer(Protocol):
    """Watches a session's steps one by one (``runner.py try`` and ``explain``); a run
    has none, and pays nothing for it. ``before`` may raise to stop before a step."""

    def before(self, step: StepBase, depth: int) -> None: ...

    def after(self, report: StepReport) -> None: ...


def as_shown(template: str, variables: dict[str, Any]) -> str:
    """A template rendered to be shown to an author (a selector, a URL); as written when
    it does not render (yet: a variable a later step reads)."""
    from ..templating import TemplateProblem, render

    try:
        return render(template, variables)
    except TemplateProblem:
        return template


def render_plain(template: str, where: str) -> str:
    """A setting rendered without any variables (a session a test opens by hand)."""
    from ..templating import TemplateProblem, render

    try:
        return render(template, {})
    except TemplateProblem as exc:
        raise RecipeRuntimeError(where, str(exc)) from exc


@dataclass(frozen=True)
class SessionConfig:
    """What a driver needs to open a session on one system of a recipe."""

    system: str  # the system's name, as people know it
    spec: Any  # the recipe's section for this system (its driver's own model)
    target: str  # the rendered `base_url` (web) or whatever the driver's spec names
    recipe: LoadedRecipe
    emit: EventSink  # the run log's event method
    on_success: Callable[[], None] = lambda: None  # the system answered a step
    # Renders one of the system's own settings (a desktop client's command line) with
    # the run's variables: ``render(template, where)``, ``where`` naming the setting
    # (``app.command[0]``). A template problem is a RecipeRuntimeError.
    render: Callable[[str, str], str] = render_plain
    # Someone watching step by step (``runner.py try``): the driver then also says what
    # each step's selectors matched, which costs a look at the page per step.
    trace: Tracer | None = None


class ScreenshotRefused(Exception):
    """A screenshot was not taken because it could have shown a secret."""


def screenshot_each(
    screenshot: Callable[[Path, Any], None], shots: Sequence[tuple[Path, Any]]
) -> list[ScreenshotRefused | None]:
    """``Session.screenshot_rows`` for a driver with no cheaper way: one at a time."""
    refusals: list[ScreenshotRefused | None] = []
    for path, target in shots:
        try:
            screenshot(path, target)
            refusals.append(None)
        except ScreenshotRefused as exc:
            refusals.append(exc)
    return refusals


class Session(Protocol):
    """One logged-in (or about to be) session on one system."""

    @property
    def location(self) -> str:
        """Where the session is now (a URL, a window title), for logs and evidence."""
        ...

    def run(self, steps: Sequence[StepBase], context: StepContext) -> StepOutcome:
        """Carry out ``steps``; raise the fleet's errors (bots.errors) on failure."""
        ...

    def is_logged_out(self) -> bool:
        """Does the system show its logged-out marker now?"""
        ...

    def screenshot(self, path: Path, target: Any = None) -> None:
        """Save a PNG of ``target`` (a row handle from a table) or of the whole view.

        Raises ``ScreenshotRefused`` rather than save a picture that could show a secret.
        """
        ...

    def screenshot_rows(self, shots: Sequence[tuple[Path, Any]]) -> list[ScreenshotRefused | None]:
        """``screenshot(path, handle)`` for each row of one listing page, at once (a
        driver may photograph the view once and cut the rows from it): per row, None or
        the refusal (the other rows are still taken)."""
        ...

    def close(self) -> None: ...


class Driver(Protocol):
    """Opens sessions for one run; ``close`` ends them all and what they run on."""

    def open(self, config: SessionConfig) -> Session: ...

    def close(self) -> None: ...


class StepCall(Protocol):
    """What every driver's handlers get for one step: its arguments and the variables."""

    @property
    def args(self) -> Any: ...

    @property
    def variables(self) -> dict[str, Any]: ...


H = TypeVar("H", bound=Callable[..., None])


def handler_table(driver: str) -> tuple[dict[str, Callable[..., None]], Callable[[str], Any]]:
    """A driver's table of step handlers and its ``@handles("kind")`` decorator (a kind
    registered twice is a bug, raised at import). The shared steps are in it already,
    carried out the same way for every driver: `set` (bots.recipe.steps.assign)."""
    from ..recipe.steps import assign

    table: dict[str, Callable[..., None]] = {}

    def handles(kind: str) -> Callable[[H], H]:
        def register(handler: H) -> H:
            if kind in table:
                raise RuntimeError(f"two handlers for the {driver} step {kind!r}")
            table[kind] = handler
            return handler

        return register

    @handles("set")
    def set_variables(call: StepCall) -> None:
        assign(call.args, call.variables)

    return table, handles
