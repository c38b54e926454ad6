"""Where a run keeps its things, from one validated place (not scattered env lookups)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .dburls import database_of, hide_password, postgres_url
from .errors import UsageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


FLEET_DATABASE = "FLEET_DATABASE_URL"


@dataclass(frozen=True)
class Settings:
    logs_dir: Path  # run logs, staging files, the default ledger
    ledger_url: str
    env: Mapping[str, str]
    # Fleet mode: the one PostgreSQL database of the queue and the ledger
    # (FLEET_DATABASE_URL, as a postgresql+psycopg:// URL); None on one machine.
    fleet_url: str | None = None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, logs_dir: Path | None = None, ledger_url: str | None = None
    ) -> Settings:
        """``ledger_url`` is ``--ledger``'s value, which wins over ``$FLEET_LEDGER_URL``.

        With ``$FLEET_DATABASE_URL`` set (fleet mode) the ledger defaults to that
        database, and a ledger URL naming another one is refused (exit 2): the queue's
        jobs are deferred inside the ledger's transactions, so both must be one database.
        """
        logs = Path(logs_dir or env.get("FLEET_LOGS_DIR") or PROJECT_ROOT / "logs").resolve()
        given_fleet = env.get(FLEET_DATABASE, "").strip()
        fleet = postgres_url(given_fleet, name=FLEET_DATABASE) if given_fleet else None
        named = "--ledger" if ledger_url else "FLEET_LEDGER_URL"
        url = ledger_url or env.get("FLEET_LEDGER_URL") or fleet
        if fleet is not None and url is not None and url != fleet:
            _refuse_another_database(url, fleet, named)
            # through psycopg 3 too: jobs are deferred on the ledger's own connection
            url = postgres_url(url, name=named)
        url = url or f"sqlite:///{logs / 'ledger.sqlite3'}"
        return cls(logs_dir=logs, ledger_url=url, env=env, fleet_url=fleet)

    @property
    def clamav_database(self) -> Path | None:
        """The signature database ``virus_scan`` gives clamscan (``-d``): a file such as a
        ``.hdb`` or a folder, from ``$FLEET_CLAMAV_DATABASE``; None: ClamAV's own."""
        given = self.env.get("FLEET_CLAMAV_DATABASE", "").strip()
        return Path(given).expanduser().resolve() if given else None

    @property
    def runs_dir(self) -> Path:
        return self.logs_dir / "runs"

    @property
    def staging_root(self) -> Path:
        """Where downloads are staged; the ledger stores staged paths relative to it.

        ``$FLEET_STAGING_DIR`` names shared storage (an NFS or SMB mount every worker and
        the exporting machine have, at any path): then `export-bag` finds every staged
        file whichever worker captured it. Default: this machine's ``logs/staging``."""
        given = self.env.get("FLEET_STAGING_DIR", "").strip()
        return Path(given).expanduser().resolve() if given else self.logs_dir / "staging"

    def staging_dir(self, recipe: str) -> Path:
        return self.staging_root / recipe


def _refuse_another_database(ledger_url: str, fleet_url: str, named: str) -> None:
    """Unless ``ledger_url`` is the fleet's database (same server, database and options;
    another user or password is fine), a usage error saying why and what to do."""
    try:
        same = database_of(postgres_url(ledger_url, name=named)) == database_of(fleet_url)
    except UsageError:
        same = False  # SQLite, or another database system
    if not same:
        raise UsageError(
            f"{named} ({hide_password(ledger_url)}) names another database than "
            f"{FLEET_DATABASE} ({hide_password(fleet_url)}): in fleet mode the ledger and the "
            "queue are one PostgreSQL database, since the queue's jobs are deferred inside "
            f"the ledger's transactions. Leave {named} unset (the ledger then defaults to "
            f"{FLEET_DATABASE}) or make it name the same database"
        )
