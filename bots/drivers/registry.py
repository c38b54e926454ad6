"""Drivers by name. A recipe's system says `driver:` (default `web`); the registry gives
that driver's step vocabulary (for validating the recipe) and, only when a run needs
it, the driver itself (so that `check` never imports a browser).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DriverError

if TYPE_CHECKING:
    from ..recipe.steps import StepBase
    from .base import Driver

DEFAULT_DRIVER = "web"


@dataclass(frozen=True)
class DriverSpec:
    """A driver as the registry knows it: its name, its steps, how to start it."""

    name: str
    steps: Mapping[str, type[StepBase]]  # the vocabulary: step kind -> its model
    step_type: Any  # the validated union of those models (bots.recipe.steps.step_union)
    # Starts the driver for one run, given the process environment. Imports the heavy
    # parts (Playwright, pyautogui) only when called.
    start: Callable[[Mapping[str, str]], Driver]
    # The keys this driver adds to a system section, as pydantic field definitions
    # (``{"base_url": (str, ...)}``): what a system needs besides what every system has.
    system_fields: Mapping[str, Any] = field(default_factory=dict)
    # The template a session goes to, from the system's section (web: its base URL), and
    # that setting's name in the section, for errors.
    target: Callable[[Any], str] = lambda spec: ""
    target_field: str = "target"
    # Checks the schema cannot make, run when the recipe loads (files a step names are
    # there and usable): ``check(system_spec, recipe_folder)`` gives (line, problem)
    # pairs; line 0 means the system's section as a whole.
    check: Callable[[Any, Path], list[tuple[int, str]]] | None = None
    # The most sessions of one system a run may open with this driver at a time (None:
    # as many as the recipe's `sessions:`): a desktop client is one window on a display.
    max_sessions: int | None = None


_drivers: dict[str, DriverSpec] = {}
_generation = 0  # bumped on every change, so schemas built from the registry can be rebuilt


def register(spec: DriverSpec) -> None:
    """Add (or replace) a driver. Built-in drivers register when this module loads.

    Its vocabulary must include the shared steps (``bots.recipe.steps.vocabulary``):
    a recipe's `set` means the same whatever the driver."""
    from ..recipe.steps import SHARED_STEPS

    missing = sorted(
        kind for kind in SHARED_STEPS if spec.steps.get(kind) is not SHARED_STEPS[kind]
    )
    if missing:
        raise DriverError(
            f"driver {spec.name!r} lacks the shared steps {', '.join(missing)}: "
            "build its vocabulary with bots.recipe.steps.vocabulary"
        )
    global _generation
    _drivers[spec.name] = spec
    _generation += 1


def unregister(name: str) -> None:
    global _generation
    _drivers.pop(name, None)
    _generation += 1


def generation() -> int:
    return _generation


def names() -> list[str]:
    return list(_drivers)


def get(name: str) -> DriverSpec:
    try:
        return _drivers[name]
    except KeyError:
        raise DriverError(unknown_driver(name)) from None


def unknown_driver(name: str) -> str:
    close = difflib.get_close_matches(name, list(_drivers), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown driver {name!r}{hint}; drivers are: {', '.join(_drivers)}"


def _builtin() -> None:
    from .desktop.checks import check_system
    from .desktop.schema import DESKTOP_STEPS, SYSTEM_FIELDS, DesktopStep, target_of
    from .web.schema import WEB_STEPS, WebStep

    def start_web(env: Mapping[str, str]) -> Driver:
        from .web.session import WebDriver

        return WebDriver(env)

    register(
        DriverSpec(
            "web",
            WEB_STEPS,
            WebStep,
            start_web,
            system_fields={"base_url": (str, ...)},
            target=lambda spec: spec.base_url,
            target_field="base_url",
        )
    )

    def start_desktop(env: Mapping[str, str]) -> Driver:
        from .desktop.session import DesktopDriver

        return DesktopDriver(env)

    register(
        DriverSpec(
            "desktop",
            DESKTOP_STEPS,
            DesktopStep,
            start_desktop,
            system_fields=SYSTEM_FIELDS,
            target=target_of,
            target_field="app.windows[0]",
            check=check_system,
            # One client on one display; a second session would be a second display.
            max_sessions=1,
        )
    )


_builtin()
