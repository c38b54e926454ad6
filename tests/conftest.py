"""Shared fixtures. End-to-end fixtures live in tests/e2e.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bench.pgschema import postgres_schema
from tests.xserver import XServer, xvfb

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

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


# -- ledger databases ----------------------------------------------------------------------

# The ledger's own tests run on SQLite always, and on PostgreSQL too when this names a
# server (.ci/run sets it when one is reachable), e.g.
# postgresql+psycopg://postgres@127.0.0.1:5432/test
TEST_DATABASE_ENV = "FLEET_TEST_DATABASE_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for a ledger: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    server = os.environ.get(TEST_DATABASE_ENV)
    if not server:
        pytest.skip(f"PostgreSQL: {TEST_DATABASE_ENV} is not set")
    with postgres_schema(server) as url:
        yield url


# -- X servers for the desktop tests (tests/xserver.py) ---------------------------------


@pytest.fixture
def xserver() -> Iterator[XServer]:
    """A bare Xvfb (no window manager) of its own, 1280x1024: Xvfb starts in ~0.1 s."""
    with xvfb() as server:
        yield server


@pytest.fixture
def xserver_wm() -> Iterator[XServer]:
    """An Xvfb of its own with openbox managing its windows."""
    with xvfb(wm=True) as server:
        yield server


@pytest.fixture(params=["bare", "openbox"])
def any_xserver(request: pytest.FixtureRequest) -> Iterator[XServer]:
    """Each test twice: on a bare Xvfb and on Xvfb with openbox."""
    with xvfb(wm=request.param == "openbox") as server:
        yield server


# -- a real Chromium for tests of pages (a module's own `page` fixture takes precedence) ----


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Chromium as a run launches it (bots.drivers.web.browser), one per test module."""
    from playwright.sync_api import sync_playwright

    from bots.drivers.web import browser

    with sync_playwright() as playwright:
        launched = browser.launch(playwright, {})
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A page in a browser context of its own, closed after the test."""
    context = chromium.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
