"""TEMPORARY (the fleetplumb branch brings the real one): the Procrastinate apps."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from procrastinate import App, Blueprint, PsycopgConnector, SyncPsycopgConnector
from sqlalchemy import make_url


def conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@functools.cache
def _registry() -> App:
    # add_tasks_from renames the blueprint's tasks: it can be added to one app only, and
    # every other app is this one with another connector.
    from .jobs import blueprint

    app = App(connector=SyncPsycopgConnector(conninfo=""))  # never opened: the tasks only
    app.add_tasks_from(blueprint, namespace="fleet")
    return app


def make_app(url: str, fleet_settings: Any = None, blueprints: Sequence[Blueprint] = ()) -> App:
    return _registry().with_connector(PsycopgConnector(conninfo=conninfo(url)))


def sync_app(url: str, blueprints: Sequence[Blueprint] = ()) -> App:
    return _registry().with_connector(SyncPsycopgConnector(conninfo=conninfo(url)))
