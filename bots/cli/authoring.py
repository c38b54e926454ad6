"""Commands for a recipe's author: try a section, explain a step."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .app import Console, _load, main, pass_console

SECTION_HELP = (
    "SECTION: login, logout, list, detail, download (the source's); upload, confirm, "
    "find, fixity, inventory (the archive's); archive.login, archive.logout."
)


F = TypeVar("F", bound=Callable[..., Any])


def trial_options(command: F) -> F:
    """The options `try` and `explain` share: which row, which item, how long to wait."""
    for option in reversed(
        [
            click.option(
                "--row", metavar="KEY", help="The listed row to work on (default: the first)."
            ),
            click.option("--listing", metavar="NAME", help="Which of the recipe's `listings`."),
            click.option(
                "--archive-id",
                metavar="ID",
                help="The archive's item for confirm and fixity (default: the first the "
                "archive's inventory lists).",
            ),
            click.option(
                "--virtual-display",
                is_flag=True,
                help="For a desktop recipe: a private Xvfb of its `screen:` size for this "
                "trial, the client started in it.",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(0.1, 3600),
                metavar="SECONDS",
                help="Each step's timeout instead of the recipe's (a wrong selector fails sooner).",
            ),
        ]
    ):
        command = option(command)
    return command


@main.command("try")
@click.argument("recipe")
@click.argument("section")
@trial_options
@click.option(
    "--commit",
    is_flag=True,
    help="Let `upload` send the request that commits (the archive then holds an item no "
    "run recorded).",
)
@click.option(
    "--shots",
    type=click.Path(file_okay=False, path_type=Path),
    help="Save a screenshot after each step in this folder (none while a password is typed).",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep downloaded files in this folder (default: a temporary one, removed).",
)
@pass_console
def try_(
    console: Console,
    recipe: str,
    section: str,
    row: str | None,
    listing: str | None,
    archive_id: str | None,
    virtual_display: bool,
    timeout: float | None,
    commit: bool,
    shots: Path | None,
    keep: Path | None,
) -> int:
    """Run one SECTION of RECIPE against the real systems, step by step, recording
    nothing: no ledger, no run log, and no upload committed (unless --commit).

    What the section needs runs first (the login; for download, the listing). Each step
    prints its line, what its selectors matched and how long it took; the first failure
    stops it, with what the page showed then and the elements that nearly match.

    \b
    """
    from ..authoring.sections import section as parse_section
    from ..authoring.trial import Trial, TrialOptions, try_section
    from .runs import _KeyringOnDemand, _own_display

    loaded = _load(recipe)
    part = parse_section(section)
    options = TrialOptions(
        row=row,
        listing=listing,
        archive_id=archive_id,
        commit=commit,
        shots=shots,
        keep=keep,
        timeout=timeout,
    )
    console.out(
        f"try {part} of {loaded.path}: nothing is recorded (no ledger, no run log"
        + (")" if commit else ", no upload committed)")
    )
    with _own_display(loaded, virtual_display):
        trial = Trial(loaded, os.environ, _KeyringOnDemand(console), console, options)
        return try_section(trial, part)


try_.help = (try_.help or "") + SECTION_HELP


@main.command()
@click.argument("recipe")
@click.argument("line", type=click.IntRange(1))
@trial_options
@pass_console
def explain(
    console: Console,
    recipe: str,
    line: int,
    row: str | None,
    listing: str | None,
    archive_id: str | None,
    virtual_display: bool,
    timeout: float | None,
) -> int:
    """Explain the step at LINE of RECIPE on the page it acts on.

    Runs the steps before it as `try` does (recording nothing), then shows what its
    selectors match there, why a match is not visible or not enabled, and up to three
    selectors for what was probably meant, each checked to name that one element, most
    stable first (the page is loaded twice to see which hold).
    """
    from ..authoring.explain import explain_line
    from ..authoring.trial import Trial, TrialOptions
    from .runs import _KeyringOnDemand, _own_display

    loaded = _load(recipe)
    options = TrialOptions(row=row, listing=listing, archive_id=archive_id, timeout=timeout)
    with _own_display(loaded, virtual_display):
        trial = Trial(loaded, os.environ, _KeyringOnDemand(console), console, options)
        return explain_line(trial, line)
