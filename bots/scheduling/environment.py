"""The environment a scheduled run needs, taken from the one the operator generates the
crontab or the systemd units in: cron and systemd start a run with almost none of it.

What is carried: the fleet's settings a run reads, and the variables the recipes' `env:`
lists declare (`ERP_URL`). What is never carried, because a crontab or a unit file is
readable configuration, not a secret store: the keyring's master key
(`FLEET_KEYRING_KEY`; the key file that `credentials init` creates is the way), anything
whose name looks like a secret's, and a password inside the ledger's URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..recipe.model import secret_looking

# The settings a run reads (README "Credentials" and "Other settings"), in print order.
RUN_SETTINGS = (
    "FLEET_LOGS_DIR",
    "FLEET_LEDGER_URL",
    "FLEET_KEYRING_BACKEND",
    "FLEET_KEYRING_KEY_FILE",
    "FLEET_KEYRING_FILE",
    "FLEET_CLAMAV_DATABASE",
    "FLEET_CHROMIUM",
    "FLEET_ORGANIZATION",
)
MASTER_KEY = "FLEET_KEYRING_KEY"


@dataclass(frozen=True)
class RunEnvironment:
    values: dict[str, str]
    # What was left out and why, for the operator (a comment in the output).
    warnings: list[str] = field(default_factory=list)


def _ledger_url(url: str, warnings: list[str]) -> str:
    """The URL without its password: libpq reads it from ~/.pgpass instead."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # not a URL SQLAlchemy reads: the run will say so, not this
    if parsed.password is None:
        return url
    warnings.append(
        "FLEET_LEDGER_URL carries a password, left out here: a password does not belong in "
        "a crontab or a unit file; put it in the ~/.pgpass of the user the runs run as"
    )
    # (URL.set() reads password=None as 'unchanged'; the named tuple's _replace does not)
    return parsed._replace(password=None).render_as_string(hide_password=False)


def run_environment(env: Mapping[str, str], recipe_env: Iterable[str] = ()) -> RunEnvironment:
    """The variables of ``env`` a scheduled run needs: the fleet's run settings, then the
    names the recipes declare (``recipe_env``), each only when set."""
    values: dict[str, str] = {}
    warnings: list[str] = []
    if env.get(MASTER_KEY):
        warnings.append(
            f"{MASTER_KEY} is set here but left out: a secret does not belong in a crontab or "
            "a unit file. Keep the master key in the owner-only key file that "
            "`python runner.py credentials init` creates (FLEET_KEYRING_KEY_FILE)"
        )
    for name in RUN_SETTINGS:
        value = env.get(name)
        if value:
            values[name] = _ledger_url(value, warnings) if name == "FLEET_LEDGER_URL" else value
    for name in dict.fromkeys(recipe_env):  # in order, once
        if name in values or name not in env:
            continue
        if secret_looking(name):  # the recipe model refuses these; a second guard, cheap
            warnings.append(f"{name} looks like a secret's name and is left out")
            continue
        values[name] = env[name]
    for name, value in list(values.items()):
        if "\n" in value or "\r" in value:  # neither a crontab nor a unit can hold it
            warnings.append(f"{name} holds a line break and is left out: set it another way")
            del values[name]
    return RunEnvironment(values, warnings)
