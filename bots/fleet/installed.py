"""Whether fleet mode's packages are installed, asked without importing them."""

from __future__ import annotations

from importlib.util import find_spec

from ..errors import UsageError

PACKAGES = ("procrastinate", "psycopg")


def require_fleet_packages() -> None:
    """A usage error saying what to install when FLEET_DATABASE_URL is set on a machine
    without the ``fleet`` extra (the demo and single-machine installs lack it)."""
    missing = [name for name in PACKAGES if find_spec(name) is None]
    if missing:
        raise UsageError(
            f"FLEET_DATABASE_URL is set (fleet mode), but {', '.join(missing)} is not "
            "installed: `.venv/bin/pip install -e '.[fleet]'` (or unset FLEET_DATABASE_URL "
            "to work on this machine alone)"
        )
