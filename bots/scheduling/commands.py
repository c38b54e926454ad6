"""The command line that runs one scheduled recipe, the same for cron, systemd and
`serve`: absolute paths, the project's virtual environment, and a virtual display of
the recipe's screen size for a desktop recipe (a scheduler has no screen)."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..settings import PROJECT_ROOT

if TYPE_CHECKING:
    from ..recipe import LoadedRecipe


def project_python(root: Path = PROJECT_ROOT) -> Path:
    """The project's virtual environment's python when there is one (scripts/setup.sh
    makes it), else this interpreter: cron's PATH knows neither."""
    venv = root / ".venv" / "bin" / "python"
    return venv if venv.exists() else Path(sys.executable)


def display_size(loaded: LoadedRecipe) -> str | None:
    """'1280x1024' when a system of the recipe drives a desktop, else None."""
    for system in (loaded.recipe.source, loaded.recipe.archive):
        screen = getattr(system, "screen", None)
        if system.driver == "desktop" and screen is not None:
            return f"{screen.width}x{screen.height}"
    return None


def xvfb_prefix(size: str) -> list[str]:
    # -a: a free display number (two desktop recipes at once get two displays);
    # -nolisten tcp: the display is for this machine's bot only.
    return ["xvfb-run", "-a", "-s", f"-screen 0 {size}x24 -nolisten tcp"]


@dataclass(frozen=True)
class RecipeCommand:
    argv: list[str]
    cwd: Path

    @property
    def shell(self) -> str:
        return " ".join(shlex.quote(part) for part in self.argv)


def run_command(
    loaded: LoadedRecipe,
    *extra: str,
    root: Path = PROJECT_ROOT,
    python: Path | None = None,
    display: bool = True,
) -> RecipeCommand:
    """``runner.py run RECIPE EXTRA...`` as a scheduler starts it; under ``xvfb-run``
    for a desktop recipe unless ``display`` is False (a display is there already)."""
    argv = [
        str(python or project_python(root)),
        str(root / "runner.py"),
        "run",
        str(loaded.path.resolve()),
        *extra,
    ]
    size = display_size(loaded)
    if size is not None and display:
        argv = xvfb_prefix(size) + argv
    return RecipeCommand(argv, root)
