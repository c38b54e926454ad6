"""Fleet mode's command: ``worker`` (``run RECIPE --fleet`` is an option of ``run``)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import EXIT_OK, UsageError
from ..settings import Settings
from .app import Console, ledger_option, logs_option, main, pass_console


def fleet_settings(logs_dir: Path | None, ledger_url: str | None) -> Settings:
    """The settings, refusing to go on without ``FLEET_DATABASE_URL``."""
    settings = Settings.from_env(os.environ, logs_dir=logs_dir, ledger_url=ledger_url)
    if settings.fleet_url is None:
        raise UsageError(
            "fleet mode needs FLEET_DATABASE_URL: the PostgreSQL database the fleet's ledger "
            'and queue share (see the README\'s "More than one machine")'
        )
    return settings


@main.command()
@logs_option
@ledger_option
@click.option(
    "--lanes",
    type=click.IntRange(1, 32),
    default=2,
    show_default=True,
    help="Documents worked at once by this worker (each lane a browser and a session on "
    "each system; the recipes' `sessions:` still cap the whole fleet).",
)
@pass_console
def worker(console: Console, logs_dir: Path | None, ledger_url: str | None, lanes: int) -> int:
    """Work the fleet's jobs (listings and documents) until SIGTERM or Ctrl-C.

    Needs FLEET_DATABASE_URL; run one per machine (or several). A stop finishes the
    document in hand in every lane, puts the rest back in the queue and logs out."""
    from ..fleet.process import run_worker
    from .runs import _KeyringOnDemand

    settings = fleet_settings(logs_dir, ledger_url)
    from sqlalchemy import make_url

    shown = make_url(settings.fleet_url or "").render_as_string(hide_password=True)
    console.err(f"worker: {lanes} lane(s), queue and ledger at {shown}")
    outcome = run_worker(settings, console.redactor, _KeyringOnDemand(console), lanes=lanes)
    console.err(f"worker: {outcome}")
    return EXIT_OK
