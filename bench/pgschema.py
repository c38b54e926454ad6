"""A PostgreSQL schema of one's own on a shared server: for a test, a measurement or a
chaos run that needs the fleet's database without touching anyone else's."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url


@contextmanager
def postgres_schema(server_url: str, prefix: str = "ledger_test") -> Iterator[str]:
    """A database URL of its own on ``server_url``: a fresh schema, first on the search
    path, dropped afterwards (with everything in it). Others on the same server each get
    their own, so they can run at the same time."""
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()
