"""The Procrastinate app on the fleet's database: its connector, the workers' timing
options from ``FleetSettings``, and the tasks of the blueprints it is given.

One app per process: ``add_tasks_from`` renames the blueprint's tasks into the app's
namespace, so a blueprint joins one app only. The same app serves both sides:

- a worker opens it asynchronously (``async with app.open_async():``, then
  ``app.run_worker_async()``);
- synchronous code that only defers (``run --fleet``, ``serve``) opens it with
  ``with app.open():``; the connector then works through a synchronous pool of its own.
  Inside a ledger transaction, ``task.configure(connection=driver_connection).defer()``
  inserts the job on the ledger's connection: both commit or neither does.
"""

from __future__ import annotations

from collections.abc import Sequence

import procrastinate

from ..dburls import libpq_conninfo
from .settings import FleetSettings

NAMESPACE = "fleet"  # task names are "fleet:list_recipe", ...


def make_app(
    fleet_url: str,
    fleet_settings: FleetSettings,
    blueprints: Sequence[procrastinate.Blueprint],
    *,
    pool_size: int = 4,
) -> procrastinate.App:
    """An app on ``fleet_url`` (``Settings.fleet_url``, a SQLAlchemy URL) with the tasks of
    ``blueprints`` under the ``fleet`` namespace. ``pool_size``: the most connections the
    worker's pool opens (its jobs, heartbeat, fetches and the sweeper share them)."""
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_conninfo(fleet_url),
        min_size=1,
        max_size=max(1, pool_size),
    )
    app = procrastinate.App(
        connector=connector,
        worker_defaults=fleet_settings.worker_options(),
    )
    for blueprint in blueprints:
        app.add_tasks_from(blueprint, namespace=NAMESPACE)
    return app
