"""Where a run keeps its things, from one validated place (not scattered env lookups)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    logs_dir: Path  # run logs, staging files, the default ledger
    ledger_url: str
    env: Mapping[str, str]
    fleet_url: str | None = None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, logs_dir: Path | None = None, ledger_url: str | None = None
    ) -> Settings:
        logs = Path(logs_dir or env.get("FLEET_LOGS_DIR") or PROJECT_ROOT / "logs").resolve()
        fleet = env.get("FLEET_DATABASE_URL") or None  # TEMPORARY: fleetplumb validates
        url = (
            ledger_url
            or env.get("FLEET_LEDGER_URL")
            or fleet
            or f"sqlite:///{logs / 'ledger.sqlite3'}"
        )
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
        """Where downloads are staged; the ledger stores staged paths relative to it."""
        return self.logs_dir / "staging"

    def staging_dir(self, recipe: str) -> Path:
        return self.staging_root / recipe
