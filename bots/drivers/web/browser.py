"""Find and launch Chromium for Playwright.

Order: an explicit ``FLEET_CHROMIUM`` path; for a headless run Debian's headless shell
(package chromium-headless-shell), then Debian's Chromium; the browser Playwright installed
(``playwright install chromium``); otherwise a clear error saying how to get one.

Why the headless shell first: it is the same Chromium without the browser's user
interface layer, and costs about half the CPU per page (bench/cpumeter.py measured 66 ms
against 122 ms of Chromium's CPU for one navigation of the archive's ingest page, and half
as much per filled field). On a 2-core machine running four sessions, Chromium's CPU, not
the legacy system's latency, is what bounds throughput. It is also what Playwright itself
runs headless when it installs its own browsers. A headed run (``FLEET_HEADED=1``) needs
the full browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ...childenv import child_env
from ...errors import BrowserNotFound

if TYPE_CHECKING:  # only annotations here: the caller has imported Playwright already
    from playwright.sync_api import Browser, Playwright

# /usr/lib/chromium/chromium is the binary behind Debian's /usr/bin/chromium wrapper;
# launching it directly skips the wrapper's harmless but noisy warning.
SYSTEM_CHROMIUMS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
HEADLESS_SHELLS = ("/usr/lib/chromium/chromium-headless-shell", "/usr/bin/chromium-headless-shell")

# Headless as root on a closed network: no sandbox (root), and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def headless(env: Mapping[str, str]) -> bool:
    return env.get("FLEET_HEADED", "") not in ("1", "true", "yes")


def system_chromium(headless: bool = True) -> str | None:
    """Debian's binary for a headless (or headed) run, or None when there is none."""
    candidates = (*HEADLESS_SHELLS, *SYSTEM_CHROMIUMS) if headless else SYSTEM_CHROMIUMS
    return next((path for path in candidates if Path(path).is_file()), None)


def find_chromium(playwright: Playwright, env: Mapping[str, str]) -> str:
    explicit = env.get("FLEET_CHROMIUM")
    if explicit:
        if not Path(explicit).is_file():
            raise BrowserNotFound(f"FLEET_CHROMIUM={explicit} does not exist")
        return explicit
    system = system_chromium(headless(env))
    if system is not None:
        return system
    bundled = playwright.chromium.executable_path
    if bundled and Path(bundled).is_file():
        return bundled
    raise BrowserNotFound(
        "no Chromium found: install Debian's (`apt-get install chromium "
        "chromium-headless-shell`), or Playwright's "
        "(`python -m playwright install chromium`), or set FLEET_CHROMIUM to a Chromium binary"
    )


def launch(playwright: Playwright, env: Mapping[str, str]) -> Browser:
    # The fleet handles SIGINT/SIGTERM itself (finish the document, then stop): the
    # browser must outlive the signal until then.
    # Chromium's environment, named: this process's without the keyring master key.
    browser_env: dict[str, str | float | bool] = {**child_env()}
    return playwright.chromium.launch(
        executable_path=find_chromium(playwright, env),
        headless=headless(env),
        args=CHROMIUM_ARGS,
        env=browser_env,
        handle_sigint=False,
        handle_sigterm=False,
        handle_sighup=False,
    )


class BrowserWontLaunch(Exception):
    """Chromium was found but does not start (``path``; the message is its first line)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def probe(env: Mapping[str, str]) -> tuple[str, str]:
    """Find and launch Chromium exactly as a run does, open a blank page, close it: the
    binary's path and Chromium's version (doctor). ``BrowserNotFound`` when there is
    none, ``BrowserWontLaunch`` when it does not start."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from ...childenv import master_key_withheld

    with master_key_withheld():  # Playwright's driver copies os.environ
        playwright = sync_playwright().start()
    try:
        path = find_chromium(playwright, env)
        try:
            chromium = launch(playwright, env)
            try:
                version = chromium.version
                chromium.new_page().goto("about:blank")
            finally:
                chromium.close()
        except PlaywrightError as exc:
            text = str(exc).strip()
            raise BrowserWontLaunch(
                path, text.splitlines()[0] if text else type(exc).__name__
            ) from exc
        return path, version
    finally:
        playwright.stop()
