"""Commands that store and check credentials in the encrypted keyring (never printed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import EXIT_OK, EXIT_SYSTEM, EXIT_USAGE, UsageError
from ..settings import PROJECT_ROOT, Settings
from .app import (
    Console,
    _load,
    logs_option,
    main,
    pass_console,
)

if TYPE_CHECKING:
    from ..recipe import LoadedRecipe


@main.group()
def credentials() -> None:
    """Store and check credentials in the encrypted keyring (never printed)."""


@credentials.command("init")
@pass_console
def credentials_init(console: Console) -> int:
    """Create the keyring master key file (owner-only), if there is none."""
    from credentials import MASTER_KEY_ENV, KeyringSettings, check_master_key, create_key_file

    settings = KeyringSettings.from_env(os.environ)
    if settings.key:
        check_master_key(settings.key, MASTER_KEY_ENV)  # a weak one is refused, saying how
        console.out("FLEET_KEYRING_KEY is set: no key file is needed")
        return EXIT_OK
    created = create_key_file(settings.key_file)
    console.out(
        f"{'created' if created else 'kept the existing'} master key file {settings.key_file}"
    )
    return EXIT_OK


@credentials.command("set")
@click.argument("name")
@click.option("--username", help="The username (prompted for when absent).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (for scripts)."
)
@pass_console
def credentials_set(console: Console, name: str, username: str | None, password_stdin: bool) -> int:
    """Store the username and password of credential NAME."""
    from credentials import open_store

    from ..errors import CredentialError

    store = open_store(os.environ, console.redactor, check_key=False)
    if username is None:
        username = click.prompt("username")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise CredentialError("the password is empty")
    store.set(name, username, password)
    console.out(f"stored credential {name!r} for {username!r} in {store.description}")
    return EXIT_OK


@credentials.command("check")
@click.argument("name")
@pass_console
def credentials_check(console: Console, name: str) -> int:
    """Say whether credential NAME is stored (exit 2 when it is not)."""
    from credentials import open_store

    store = open_store(os.environ, console.redactor, check_key=False)
    credential = store.get(name)
    console.out(
        f"credential {name!r} is stored (username {credential.username!r}) in {store.description}"
    )
    return EXIT_OK


@credentials.command("list")
@pass_console
def credentials_list(console: Console) -> int:
    """Show the stored credentials' names and usernames (never a password)."""
    from credentials import open_store

    store = open_store(os.environ, console.redactor, check_key=False)
    entries = store.entries()
    console.out(f"{len(entries)} credential(s) in {store.description}")
    for name, username in entries:
        console.out(f"{name}\t{username}")
    return EXIT_OK


@credentials.command("delete")
@click.argument("name")
@pass_console
def credentials_delete(console: Console, name: str) -> int:
    """Remove credential NAME (exit 2 when there is none by that name)."""
    from credentials import open_store

    store = open_store(os.environ, console.redactor, check_key=False)
    store.delete(name)
    console.out(f"deleted credential {name!r} from {store.description}")
    return EXIT_OK


@credentials.command("test")
@click.argument("name")
@click.option(
    "--recipe",
    "recipe",
    help="Only this recipe's systems (default: every recipe in recipes/ naming NAME).",
)
@logs_option
@pass_console
def credentials_test(console: Console, name: str, recipe: str | None, logs_dir: Path | None) -> int:
    """Log in with credential NAME, using the login steps of every recipe system that
    names it, against the real system. Writes nothing (no ledger, run log or archive).

    Exit 0: every login worked; 2: the credential (or a recipe) is missing or wrong; 3: a
    login failed.
    """
    from credentials import open_store

    from ..pipeline.login_check import check_login, systems_using

    store = open_store(os.environ, console.redactor, check_key=False)
    console.out(f"credentials: {store.description}")
    if not store.has(name):
        store.get(name)  # raises, saying how to store it
    uses = [(loaded, systems_using(loaded, name)) for loaded in _recipes_for(recipe)]
    uses = [(loaded, which) for loaded, which in uses if which]
    if not uses:
        where = recipe or f"the recipes in {PROJECT_ROOT / 'recipes'}"
        raise UsageError(f"no system in {where} logs in with credential {name!r}")
    settings = Settings.from_env(os.environ, logs_dir=logs_dir)
    code = EXIT_OK
    for loaded, which in uses:
        for result in check_login(loaded, which, store, settings, console.redactor):
            where = f"{result.recipe} {result.role} ({result.system})"
            if result.ok:
                console.out(f"ok   {where}: {result.said}")
            else:
                console.err(f"FAIL {where}: {result.said}")
                code = max(code, EXIT_SYSTEM if result.exit_code == EXIT_SYSTEM else EXIT_USAGE)
    return code


def _recipes_for(recipe: str | None) -> list[LoadedRecipe]:
    """The recipe named, or every recipe in recipes/ (one that does not load is an
    error: its systems cannot be known)."""
    if recipe is not None:
        return [_load(recipe)]
    from ..recipe import load_recipe

    return [load_recipe(path) for path in sorted((PROJECT_ROOT / "recipes").glob("*.yaml"))]
