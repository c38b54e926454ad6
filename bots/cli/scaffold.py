"""`runner.py scaffold`: draft a recipe for a new web system from its own pages."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import click

from ..errors import EXIT_OK
from ..settings import PROJECT_ROOT
from .app import Console, _resolve_recipe, main, pass_console


@main.command()
@click.argument("url")
@click.option(
    "--login-url", required=True, help="The page with the login form (http://erp.intra/login.do)."
)
@click.option(
    "--credential",
    "credential_name",
    required=True,
    help="The stored credential to log in with (`runner.py credentials set NAME`).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the recipe (default: recipes/NAME.yaml).",
)
@click.option("--name", help="The recipe's name (default: from the system's page titles).")
@click.option(
    "--archive-from",
    default="demo",
    show_default=True,
    help="The recipe (a path or a name in recipes/) whose archive side, metadata and "
    "retention schedule the new recipe copies.",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@click.option(
    "--locale",
    help="The language the browser asks the system for (en-US, zh-CN); default the "
    "machine's. Written into the recipe.",
)
@pass_console
def scaffold(
    console: Console,
    url: str,
    login_url: str,
    credential_name: str,
    out: Path | None,
    name: str | None,
    archive_from: str,
    force: bool,
    locale: str | None,
) -> int:
    """Draft a recipe for the web system whose reports are listed at URL.

    Logs in at --login-url with the stored credential, fills the list's query dates (if
    it has some) with the recipe's window, finds the table of reports, its columns, key,
    download links and paginator, and writes a recipe whose source section does that,
    the rest copied from --archive-from. Prints what it found and what to run next.
    Exit 2: a bad address, no login form or no table there, a missing credential; 3: a
    system that does not answer, or a login refused.
    """
    from credentials import open_store

    from ..authoring.scaffold import ScaffoldRequest
    from ..authoring.scaffold import scaffold as draft_recipe
    from ..authoring.scaffold_recipe import shown_path

    # Read the way a run reads it: the password goes to the redactor at once.
    store = open_store(os.environ, console.redactor, check_key=False)
    credential = store.get(credential_name)
    request = ScaffoldRequest(
        url=url,
        login_url=login_url,
        credential=credential,
        archive_from=_resolve_recipe(archive_from),
        out=out,
        name=name,
        force=force,
        locale=locale,
        recipes_dir=PROJECT_ROOT / "recipes",
    )
    done = draft_recipe(request, dict(os.environ), datetime.now().astimezone().date())
    shown = shown_path(done.path)
    console.out(f"scaffold: wrote {shown} (recipe {done.name!r})")
    for line in done.found:
        console.out(f"  found: {line}")
    for line in done.checks:
        console.out(f"  check: {line}")
    console.out("next:")
    console.out(f"  .venv/bin/python runner.py check {shown}")
    console.out(f"  .venv/bin/python runner.py try {shown} list")
    return EXIT_OK
