"""Looking at the screen for a recipe's author (``runner.py try``): what a desktop step's
targets match (windows by title; images with their best score and where), and what
the screen showed when a step failed.

Only a traced session (``SessionConfig.trace``) calls this: an image looked at costs a
screen grab and a template match. Nothing here says what was typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...recipe.steps import PageCondition, StepBase
from ..base import Diagnosis, Match, as_shown
from . import images
from .schema import IMAGE_PREFIX, image_of

if TYPE_CHECKING:
    from .runner import StepRunner

# The confidence an image target is held to when the step names none (a `when`, a
# `reject_if`: bots.drivers.desktop.runner.StepRunner.present).
DEFAULT_CONFIDENCE = 0.9


def targets(step: StepBase, variables: dict[str, Any]) -> list[tuple[str, float, Any]]:
    """What the step looks for: window titles and ``image:PATH`` targets, each with the
    confidence it needs and the region it looks in."""
    args, kind = step.args, step.kind
    found: list[tuple[str, float, Any]] = []
    if isinstance(step.when, PageCondition):
        found.append((step.when.selector, DEFAULT_CONFIDENCE, None))
    if kind in ("focus", "wait_window"):
        found.append((args.title, 0.0, None))
    elif kind == "close":
        found += [(title, 0.0, None) for title in args.titles]
    elif kind in ("click", "wait_image"):
        found.append((IMAGE_PREFIX + args.image, args.confidence, args.region))
    elif kind in ("reject_if", "retry_if"):
        found.append((args.target, DEFAULT_CONFIDENCE, None))
    else:
        window = getattr(args, "window", None)
        if isinstance(window, str):
            found.append((window, 0.0, None))
    return [(as_shown(t, variables), confidence, region) for t, confidence, region in found]


def matches(runner: StepRunner, step: StepBase, variables: dict[str, Any]) -> tuple[Match, ...]:
    """What each target matches on the screen now: open windows by title; an image's
    best match, counted when it scores the step's confidence."""
    found: list[Match] = []
    for target, confidence, region in targets(step, variables):
        image = image_of(target)
        if image is None:
            windows = runner.display.windows(target)
            first = str(windows[0]) if windows else ""
            found.append(Match(target, len(windows), first))
            continue
        try:
            best = images.best_match(runner.display.name, runner.image_path(image), region)
        except (OSError, ValueError) as exc:
            found.append(Match(target, -1, f"(could not look: {exc})"))
            continue
        where = f"at {best.x},{best.y} {best.width}x{best.height}"
        found.append(Match(target, int(best.score >= confidence), where, score=best.score))
    return tuple(found)


def diagnose(runner: StepRunner, step: StepBase, variables: dict[str, Any]) -> Diagnosis:
    """What the screen showed where a step failed: the window in front, the windows
    open, and how well each of the step's targets matched (an image: its best score,
    where, and the confidence it needed)."""
    lines = []
    for match, (_, confidence, region) in zip(
        matches(runner, step, variables), targets(step, variables), strict=True
    ):
        if match.score is None:
            lines.append(f"{match.selector}: {match.count} window(s) {match.first}".rstrip())
        else:
            within = f" within {region}" if region else ""
            lines.append(
                f"{match.selector}: best score {match.score:.2f} {match.first}{within} "
                f"(needs {confidence:.2f})"
            )
    titles = [str(w) for w in runner.display.windows()]
    return Diagnosis(
        location=runner.location,
        title=runner.location,
        near="open windows: " + (", ".join(titles) or "none"),
        closest=tuple(lines),
        line=step.line,
    )
