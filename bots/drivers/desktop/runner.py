"""Carry out recipe steps on a legacy client's windows: the runner, and the table of
step handlers (``@handles("press")``; a test proves every step kind has one).

Before each step the `dismiss` sweep closes the notices the system's section lists. A
keyboard step first gives its window the focus and verifies it (``FocusLost`` when it
cannot). Every wait is bounded, and every failure names the recipe line, the step and
the window: ``WindowNotFound``, ``ImageNotFound`` (with the best score it saw),
``FocusLost``, all ``StepFailed`` (retried by the stage). Steps never retry.

No step event carries what was typed: a `type` step's text may be a password.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import BusinessError, RecipeRuntimeError, StepFailed, TransientError
from ...recipe.steps import PageCondition, StepBase, extract
from ...templating import TemplateProblem, evaluate, render
from ..base import Match, SessionConfig, StepContext, StepOutcome, StepReport, handler_table
from . import images, keys
from .display import Display, Window, wait_until
from .errors import FocusLost, WindowNotFound
from .schema import image_of

DISMISS_WAIT = 2.0  # seconds a dismissed window gets to go
MENU_WAIT = 2.0  # seconds for a posted menu to appear, when the step gives no timeout


@dataclass
class Call:
    """One step about to run: what a handler needs."""

    runner: StepRunner
    step: StepBase
    context: StepContext
    outcome: StepOutcome

    @property
    def args(self) -> Any:
        return self.step.args

    @property
    def variables(self) -> dict[str, Any]:
        return self.context.variables

    @property
    def where(self) -> str:
        return self.runner.recipe.where(self.step.line)

    def render(self, template: str) -> str:
        return render(template, self.context.variables)

    def seconds(self, timeout: float | None = None) -> float:
        return timeout or self.runner.recipe.recipe.timeouts.step

    def failed(self, problem: str, error: type[StepFailed] = StepFailed) -> StepFailed:
        return error(self.where, self.step.kind, problem, self.runner.location)

    def run_nested(self, steps: Sequence[StepBase]) -> None:
        self.runner.depth += 1
        try:
            self.runner.run_in(steps, self.context, self.outcome)
        finally:
            self.runner.depth -= 1


HANDLERS, handles = handler_table("desktop")


class StepRunner:
    """Runs steps on one display for one system, as its session's configuration says."""

    def __init__(self, display: Display, config: SessionConfig, env: Mapping[str, str]) -> None:
        self.display = display
        self.config = config
        self.env = env
        self.recipe = config.recipe
        self.system = config.system
        self.spec = config.spec
        self.folder = self.recipe.path.parent
        self.current: Window | None = None  # where keys go when a step names no window
        self.secret_windows: set[Window] = set()  # a password was typed into them
        self.best = -1.0  # the best image score the last image wait saw
        # The step running now (innermost): what a failure is explained from (``try``).
        self.step: tuple[StepBase, StepContext] | None = None
        self.depth = 0  # steps nested in a `table`'s steps are one deeper

    @property
    def location(self) -> str:
        if self.current is None:
            return "the desktop (no window yet)"
        if not self.display.is_open(self.current):
            return f"{self.current} (closed since)"
        title = self.display.title_of(self.current)
        return str(Window(self.current.id, title if title is not None else self.current.title))

    def run(self, steps: Sequence[StepBase], context: StepContext) -> StepOutcome:
        outcome = StepOutcome()
        self.run_in(steps, context, outcome)
        return outcome

    def run_in(self, steps: Sequence[StepBase], context: StepContext, outcome: StepOutcome) -> None:
        trace = self.config.trace
        for step in steps:
            where = self.recipe.where(step.line)
            self.step = (step, context)
            if trace is not None:
                trace.before(step, self.depth)
            started = time.perf_counter()
            try:
                self.sweep(context)
                if not self.applies(step.when, context):
                    if trace is not None:
                        trace.after(self._report(step, context, started, ran=False))
                    continue
                HANDLERS[step.kind](Call(self, step, context, outcome))
            except TemplateProblem as exc:
                raise BusinessError(f"{where}: {exc}") from exc
            self.config.on_success()
            if trace is not None:
                trace.after(self._report(step, context, started, ran=True))
            # What a step did, never what it typed: the text may be a password.
            self.config.emit(
                "step",
                key=context.key,
                system=self.system,
                phase=context.phase,
                step=step.kind,
                line=step.line,
                window=self.location,
            )

    def _report(
        self, step: StepBase, context: StepContext, started: float, ran: bool
    ) -> StepReport:
        """The step as it ran, for a tracer: its targets looked at after it (a window
        it waited for is open, an image it clicked may be gone)."""
        seconds = time.perf_counter() - started
        found: tuple[Match, ...] = ()
        if ran:
            from .inspect import matches

            found = matches(self, step, context.variables)
        return StepReport(
            system=self.system,
            phase=context.phase,
            line=step.line,
            kind=step.kind,
            depth=self.depth,
            location=self.location,
            seconds=seconds,
            ran=ran,
            matched=found,
        )

    # -- targets ------------------------------------------------------------------------

    def image_path(self, image: str) -> Path:
        return self.folder / image

    def present(
        self, target: str, region: list[int] | None = None, confidence: float = 0.9
    ) -> bool:
        """Is a target (a window title, or ``image:PATH``) on the screen now?"""
        image = image_of(target)
        if image is None:
            return bool(self.display.windows(target))
        return (
            images.best_match(self.display.name, self.image_path(image), region).score >= confidence
        )

    def applies(self, when: str | PageCondition | None, context: StepContext) -> bool:
        if when is None:
            return True
        if isinstance(when, str):
            return bool(evaluate(when, context.variables))
        target = render(when.selector, context.variables)
        found = self.present(target)
        if not found and when.timeout:
            found = bool(wait_until(lambda: True if self.present(target) else None, when.timeout))
        return found == when.present

    def is_logged_out(self) -> bool:
        marker = self.spec.logged_out
        return bool(marker) and self.present(marker)

    # -- windows ------------------------------------------------------------------------

    def sweep(self, context: StepContext) -> None:
        """Close every window the system's `dismiss` list names, and wait for it to go."""
        for pattern in self.spec.dismiss:
            for window in self.display.windows(pattern):
                self.display.close_window(window)
                gone = self.wait_closed(window, DISMISS_WAIT)
                self.config.emit(
                    "dismissed",
                    key=context.key,
                    system=self.system,
                    window=window.title,
                    outcome="ok" if gone else "warning",
                )

    def wait_closed(self, window: Window, timeout: float) -> bool:
        """Wait up to ``timeout`` s for ``window`` to go; whether it went."""
        return bool(wait_until(lambda: True if not self.display.is_open(window) else None, timeout))

    def wait_window(self, call: Call, title: str, seconds: float) -> Window | None:
        """The window ``title`` once open (within ``seconds``), else None. Notices of the
        `dismiss` list are closed meanwhile; an `errors` window ends the wait at once."""

        def look() -> Window | None:
            self.sweep(call.context)
            found = next(iter(self.display.windows(title)), None)
            if found is None:
                self.raise_error_window(call, title)
            return found

        return wait_until(look, seconds)

    def find_window(self, call: Call, title: str, timeout: float | None = None) -> Window:
        seconds = call.seconds(timeout)
        found = self.wait_window(call, title, seconds)
        if found is None:
            raise call.failed(
                f"no window {title!r} appeared within {seconds:g}s; open now: {self.open_titles()}",
                WindowNotFound,
            )
        return found

    def raise_error_window(self, call: Call, waiting_for: str) -> None:
        """While waiting for ``waiting_for``: one of the system's `errors` windows is open
        instead (the client failed what was asked), a retryable error at once."""
        for pattern in self.spec.errors:
            if pattern == waiting_for:
                continue
            shown = next(iter(self.display.windows(pattern)), None)
            if shown is not None:
                raise retry_later(call, f"{shown} is open instead of {waiting_for!r}")

    def open_titles(self) -> str:
        titles = [repr(w.title) for w in self.display.windows()]
        return ", ".join(titles) or "none"

    def focus(self, call: Call, window: Window) -> None:
        """Give ``window`` the focus, verified; it becomes the current window."""
        x, y, w, h = self.display.geometry(window)
        sw, sh = self.display.screen_size()
        if w > sw or h > sh:
            raise RecipeRuntimeError(
                call.where,
                f"{window} is {w}x{h}, larger than the screen ({sw}x{sh}): parts of it "
                "cannot be seen or clicked; give the display a larger screen (Xvfb -screen)",
            )
        if not self.display.focus(window):
            raise call.failed(
                f"{window} did not take the keyboard focus (it stayed with {self.focus_holder()})",
                FocusLost,
            )
        self.current = window

    def close(self, call: Call, window: Window) -> None:
        """Close ``window`` as its title bar's X does (WM_DELETE_WINDOW), else with
        Escape on it; it must go."""
        self.display.close_window(window)
        self.settle(call, window)
        if self.wait_closed(window, DISMISS_WAIT):
            return
        self.focus(call, window)
        keys.press("escape")
        self.settle(call, window)
        if not self.wait_closed(window, DISMISS_WAIT):
            raise call.failed(
                f"{window} did not close (asked to, then Escape); open now: {self.open_titles()}",
                WindowNotFound,
            )

    def kept_focus(self, call: Call, window: Window, doing: str) -> None:
        """FocusLost naming who took the keyboard focus from the still open ``window``
        while the step was ``doing`` something with its keys (they went there instead)."""
        if self.display.is_open(window) and not self.display.has_focus(window):
            raise call.failed(
                f"{self.focus_holder()} took the keyboard focus from {window} while {doing}: "
                "the keys may have gone there (a notice to add to `dismiss:`?)",
                FocusLost,
            )

    def focus_holder(self) -> str:
        for window in self.display.windows():
            if self.display.has_focus(window):
                return str(window)
        return "no window of the client"

    def keys_to(self, call: Call, title: str | None) -> Window:
        """The window a keyboard step types into, focused and verified."""
        if title is not None:
            window = self.find_window(call, call.render(title))
            self.focus(call, window)
            return window
        if self.current is None:
            raise call.failed(
                "no window has been focused yet: give the step a `window:` or put a "
                "`focus` step before it",
                FocusLost,
            )
        window = self.current
        if not self.display.is_open(window):
            raise call.failed(
                f"{window}, which had the focus, is gone (now open: {self.open_titles()}); "
                "name the step's `window:`",
                FocusLost,
            )
        if not self.display.has_focus(window):
            self.focus(call, window)
        return window

    def settle(self, call: Call, window: Window) -> None:
        """After keys or clicks sent to ``window``: wait (bounded by the step's timeout)
        until its client has handled them, unless the system says `wait_idle: false`."""
        if not self.spec.wait_idle:
            return
        seconds = call.seconds()
        if self.display.settled(window, seconds) is False:
            raise call.failed(
                f"the client did not finish handling the input within {seconds:g}s (busy "
                "or hung; a client that never answers _NET_WM_PING needs `wait_idle: false`)"
            )

    # -- images -------------------------------------------------------------------------

    def park_mouse(self, avoid: list[int] | None = None) -> None:
        """Move the mouse out of the way: a hovered button changes its pixels."""
        width, height = self.display.screen_size()
        x, y = width - 2, height // 2  # not a corner: those trip the fail-safe
        if avoid is not None and avoid[0] <= x < avoid[0] + avoid[2]:
            x = 1
        keys.park(x, y)

    def wait_image(
        self,
        call: Call,
        image: str,
        visible: bool,
        confidence: float,
        region: list[int] | None,
        timeout: float,
    ) -> images.Match | None:
        """Wait for ``image`` to be seen (or gone); the last match, or None on timeout.
        The best score seen is kept on ``self.best`` for the error."""
        path = self.image_path(image)
        self.park_mouse(region)
        self.best = -1.0
        last: list[images.Match] = []

        def look() -> images.Match | None:
            match = images.best_match(self.display.name, path, region)
            self.best = max(self.best, match.score)
            last[:] = [match]
            return match if (match.score >= confidence) == visible else None

        return wait_until(look, timeout)


def pattern_kept(call: Call, pattern: str | None, text: str, optional: bool) -> str:
    """``text``, or what ``pattern`` keeps of it."""
    if pattern is None:
        return text
    kept = extract(pattern, text)
    if kept is None:
        if not optional:
            raise call.failed(f"pattern {pattern!r} does not match the value read: {text!r}")
        kept = ""
    return kept


def retry_later(call: Call, reason: str) -> TransientError:
    return TransientError(
        f"{call.where}: {call.runner.system} reports a temporary problem in "
        f"{call.runner.location}: {reason}"
    )


# The handlers register themselves when their modules load.
from . import actions, savedialog, table  # noqa: E402, F401
