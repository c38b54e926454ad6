"""Chromium is found in the documented order, or the error says how to get one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bots.drivers.web import browser
from bots.errors import BrowserNotFound


def fake_playwright(executable: str) -> SimpleNamespace:
    return SimpleNamespace(chromium=SimpleNamespace(executable_path=executable))


def test_explicit_path_wins(tmp_path: Path) -> None:
    binary = tmp_path / "chrome"
    binary.write_text("")
    assert browser.find_chromium(fake_playwright(""), {"FLEET_CHROMIUM": str(binary)}) == str(
        binary
    )


def test_explicit_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BrowserNotFound, match="does not exist"):
        browser.find_chromium(fake_playwright(""), {"FLEET_CHROMIUM": str(tmp_path / "nope")})


def test_debian_chromium_before_playwrights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    debian = tmp_path / "chromium"
    debian.write_text("")
    bundled = tmp_path / "bundled"
    bundled.write_text("")
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUMS", (str(tmp_path / "absent"), str(debian)))
    assert browser.find_chromium(fake_playwright(str(bundled)), {}) == str(debian)


def test_playwrights_own_browser_when_no_system_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundled = tmp_path / "bundled"
    bundled.write_text("")
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUMS", ())
    assert browser.find_chromium(fake_playwright(str(bundled)), {}) == str(bundled)


def test_no_browser_at_all_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUMS", ())
    with pytest.raises(BrowserNotFound) as info:
        browser.find_chromium(fake_playwright(str(tmp_path / "missing")), {})
    message = str(info.value)
    assert "apt-get install chromium" in message and "playwright install chromium" in message
    assert "FLEET_CHROMIUM" in message
