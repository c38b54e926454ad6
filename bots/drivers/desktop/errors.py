"""The desktop driver's own errors: each names the recipe line, the step and the window
it happened in (``StepFailed``: retried by the stage), or what to fix (``UsageError``)."""

from __future__ import annotations

from ...errors import StepFailed, SystemFailure, UsageError


class DisplayUnavailable(UsageError):
    """No X display to drive (or one too small for the client): the one-line fix is to
    run under a virtual display of the size the recipe's `screen:` asks for."""

    def __init__(self, problem: str, recipe: str = "RECIPE", screen: str = "1280x1024") -> None:
        hint = f'xvfb-run -a -s "-screen 0 {screen}x24" python runner.py run {recipe}'
        super().__init__(f"{problem}; run the bot on a display, e.g. {hint}")


class WindowNotFound(StepFailed):
    """A window the step needs did not appear (or did not close) in time."""


class ImageNotFound(StepFailed):
    """An image was not seen on the screen in time; ``score`` is the best match seen."""

    def __init__(self, where: str, step: str, problem: str, window: str, score: float) -> None:
        super().__init__(where, step, problem, window)
        self.score = score


class FocusLost(StepFailed):
    """The window keys were meant for does not have (or did not keep) the focus."""


class FailSafeTriggered(SystemFailure):
    """pyautogui's fail-safe fired: someone moved the mouse into a screen corner to stop
    the bot. The run stops (a system error); nothing is retried."""
