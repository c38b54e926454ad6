"""The command line. ``entry`` is the only place in the fleet that exits.

Exit codes: 0 all archived; 1 some documents failed for business reasons; 2 usage,
recipe or credential error; 3 system failure or circuit breaker; 75 the recipe is
already running; 130/143 stopped by Ctrl-C/SIGTERM after finishing the current document.
``logs verify``: 0 the run logs are intact, 1 something was edited, cut, removed or forged.
``reconcile``: 0 the batch closes, 1 it does not. ``apply-review``: 0 every action applied
or already in effect, 1 some refused. ``audit``: 0 written with the logs intact, 1 not intact.
A ledger newer than this code: exit 2 from every command; an older one is upgraded by the
commands that write and refused, with what to run, by those that only read (exit 2).
"""

from . import (  # noqa: F401  (each registers its commands on `main`)
    authoring,
    doctor,
    fleet,
    keys,
    records,
    runs,
    scaffold,
    schedules,
    serve,
)
from .app import Console, entry, main, report

__all__ = ["Console", "entry", "main", "report"]
