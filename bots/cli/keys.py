"""Commands that store and check credentials in the encrypted keyring (never printed)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from ..errors import EXIT_OK
from .app import (
    Console,
    main,
    pass_console,
)

if TYPE_CHECKING:
    pass


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

    store = open_store(os.environ, console.redactor)
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

    store = open_store(os.environ, console.redactor)
    credential = store.get(name)
    console.out(f"credential {name!r} is stored (username {credential.username!r})")
    return EXIT_OK
