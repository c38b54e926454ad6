"""Shared fixtures. End-to-end fixtures live in tests/e2e_support.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO_RECIPE = ROOT / "recipes" / "demo.yaml"


class FrozenClock:
    """A clock tests move by hand (schedule's tests freeze time the same way)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 21, 2, 13, 5, tzinfo=timezone(timedelta(hours=8)))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def keyring_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose credential store is a fresh encrypted file in tmp_path."""
    return {
        "HOME": str(tmp_path / "home"),
        "FLEET_KEYRING_KEY": "test-master-key-3f9a",
        "FLEET_KEYRING_FILE": str(tmp_path / "keyring" / "credentials.cfg"),
    }
