"""``runner.py explain RECIPE LINE``: what the step at a line of a recipe finds on the
page it acts on, and selectors for what its author probably meant.

The steps before it run as ``try`` runs them (recording nothing), and stop just before
it. There, each of its selectors is looked at: what it matches, and why a match is not
visible, not enabled or covered. Candidate selectors for the element the step was meant
for (its one match, or the element closest to what the selector asks) are each checked
to name that element and nothing else; then the page is loaded a second time the same
way, and each is tried again, so that the ones shown first are those that held.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..drivers import Explanation
from ..errors import EXIT_OK, EXIT_USAGE, FleetError, UsageError
from .printer import Stop
from .sections import Located, locate
from .trial import CommitWithheld, Trial, _run, failed, opened

if TYPE_CHECKING:
    from ..cli.app import Console

CANDIDATES_SHOWN = 3


class NotExplainable(UsageError):
    """The step's system is worked by a driver that cannot explain its steps."""


def explain_line(trial: Trial, line: int) -> int:
    """Explain the step at ``line`` of the trial's recipe; the exit code."""
    console = trial.console
    located = locate(trial.loaded, line)
    step = located.step
    if located.plan is not None and located.plan.name:
        trial.options = dataclasses.replace(trial.options, listing=located.plan.name)
    inside = f" (the step at line {step.line})" if step.line != line else ""
    console.out(f"explain {trial.loaded.path}:{line}{inside}: `{step.kind}` in {located.section}")
    if step.when is not None:
        console.out(f"  it has a `when`: it runs only when {_condition(step.when)}")
    trial.stop_before = step
    with opened(trial):
        try:
            first = _reach(trial, located, None)
            if first is None:
                return _not_reached(console, located)
            _show(console, first)
            if not first.candidates:
                return EXIT_OK
            console.out("loading the page again, to see which candidates hold:")
            if located.section.name == "login":
                trial.fresh(located.section.system)
            second = _reach(trial, located, first)
        except NotExplainable as exc:
            console.err(f"error: {exc}")
            return exc.exit_code
        except CommitWithheld:
            console.err(
                f"the step at line {step.line} comes after the request that commits the "
                "upload, which explain does not send: `runner.py try RECIPE upload --commit` "
                "runs the section to its end (the archive then holds an item no run recorded)"
            )
            return EXIT_USAGE
        except FleetError as exc:
            return failed(trial, exc)
        _candidates(console, second or first, checked=second is not None)
    return EXIT_OK


def _reach(trial: Trial, located: Located, first: Explanation | None) -> Explanation | None:
    """Run the section up to the step; what the session makes of it there (``first``
    given: its candidates tried again)."""
    try:
        _run(trial, located.section)
    except Stop:
        session = trial.systems[located.section.system].session
        explain, recheck = getattr(session, "explain", None), getattr(session, "recheck", None)
        if explain is None or recheck is None:
            driver = getattr(trial.loaded.recipe, located.section.system).driver
            raise NotExplainable(
                f"explain looks at web pages; {located.section} of {trial.loaded.path} is "
                f"worked by the {driver} driver: `runner.py try` shows what each of its "
                "steps matched (windows, images with their scores)"
            ) from None
        return recheck(first) if first is not None else explain()
    return None


def _not_reached(console: Console, located: Located) -> int:
    console.err(
        f"the step at line {located.step.line} was not reached: a `when` before it (its own, "
        "or a frame's) did not hold, or the section ended before it. `runner.py try` the "
        f"section ({located.section}) to see which steps ran"
    )
    return EXIT_USAGE


def _show(console: Console, explanation: Explanation) -> None:
    console.out(f"where it runs: {explanation.location}")
    for line in explanation.lines:
        console.out(f"  {line}")


def _candidates(console: Console, explanation: Explanation, checked: bool) -> None:
    shown = explanation.candidates[:CANDIDATES_SHOWN]
    console.out(f"selectors for {explanation.meant}, most stable first:")
    for n, candidate in enumerate(shown, start=1):
        held = {
            True: "the same element on both loads",
            False: "NOT the same on the second load",
            None: "not tried on a second load" if checked else "",
        }[candidate.stable]
        console.out(f"  {n}. {candidate.selector}")
        console.out(f"       by {candidate.how}" + (f"; {held}" if held else ""))


def _condition(when: object) -> str:
    selector = getattr(when, "selector", None)
    if selector is None:
        return str(when)
    present = "is there" if getattr(when, "present", True) else "is not there"
    return f"{selector} {present}"
