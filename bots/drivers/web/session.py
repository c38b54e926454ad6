"""The web driver: one Chromium per run, one browser context (a session) per system.

Screenshots never show a password: none is taken while any frame has a filled password
input, and password inputs are masked on the rest. Playwright traces are not kept at
all: they record typed passwords and cookies (microsoft/playwright#19992).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from ...childenv import master_key_withheld
from ...recipe.steps import StepBase
from ..base import ScreenshotRefused, SessionConfig, StepContext, StepOutcome
from .browser import launch
from .runner import StepRunner, url_of

SCREENSHOT_TIMEOUT_MS = 10_000
# A listing row is on screen already, or it never will be (display: contents, hidden):
# its picture gets a second, not a step's timeout, for each row of every page.
TARGET_SCREENSHOT_TIMEOUT_MS = 1_000
# True when any frame of the page has a password input holding a value.
_PASSWORD_FILLED = "() => [...document.querySelectorAll('input[type=password]')].some(e => e.value)"


def password_filled(page: Page) -> bool:
    for frame in page.frames:
        try:
            if frame.evaluate(_PASSWORD_FILLED):
                return True
        except PlaywrightError:
            return True  # a frame we cannot look into might hold one: do not photograph
    return False


def screenshot_page(page: Page, path: Path, target: Any = None) -> None:
    """A PNG of ``target`` (a locator) or the whole page, password inputs masked;
    ``ScreenshotRefused`` when a password is typed anywhere on the page."""
    try:
        if password_filled(page):
            raise ScreenshotRefused(f"a password field on {page.url} holds a value")
        mask = [page.locator("input[type=password]")]
        if target is not None:
            if not target.is_visible():
                raise ScreenshotRefused(f"the element is not visible on {page.url}")
            target.screenshot(path=str(path), mask=mask, timeout=TARGET_SCREENSHOT_TIMEOUT_MS)
        else:
            page.screenshot(
                path=str(path), mask=mask, full_page=True, timeout=SCREENSHOT_TIMEOUT_MS
            )
    except PlaywrightError as exc:
        raise ScreenshotRefused(f"the screenshot failed: {exc}") from exc


def context_options(spec: Any) -> dict[str, Any]:
    """The browser context's locale and time zone, as the system's recipe section says;
    what it does not say stays the machine's (Chromium's own default)."""
    options: dict[str, Any] = {}
    locale = getattr(spec, "locale", None)
    if locale:
        # navigator.language(s), number and date formats, and the Accept-Language header
        # (which the fleet's own HTTP client copies: bots.drivers.web.http).
        options["locale"] = locale
    timezone = getattr(spec, "timezone", None)
    if timezone:
        options["timezone_id"] = timezone
    return options


class WebSession:
    """A browser context and its page on one system."""

    def __init__(self, browser: Browser, config: SessionConfig) -> None:
        self.config = config
        self.context = browser.new_context(accept_downloads=True, **context_options(config.spec))
        self.page = self.context.new_page()
        self.runner = StepRunner(self.page, config)

    @property
    def location(self) -> str:
        return url_of(self.page)

    def run(self, steps: Sequence[StepBase], context: StepContext) -> StepOutcome:
        return self.runner.run(steps, context)

    def is_logged_out(self) -> bool:
        return self.runner.is_logged_out()

    def screenshot(self, path: Path, target: Any = None) -> None:
        screenshot_page(self.page, path, target)

    def close(self) -> None:
        # The browser may have gone first (a crash, a signal): nothing left to close.
        with contextlib.suppress(PlaywrightError):
            self.context.close()


class WebDriver:
    """Starts Playwright and Chromium on the first session, and stops them on close."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._sessions: list[WebSession] = []

    def open(self, config: SessionConfig) -> WebSession:
        if self._browser is None:
            # Playwright's driver (Chromium's parent) copies os.environ: not the master key.
            with master_key_withheld():
                self._playwright = sync_playwright().start()
            try:
                self._browser = launch(self._playwright, self.env)
            except BaseException:
                self._playwright.stop()
                self._playwright = None
                raise
        session = WebSession(self._browser, config)
        self._sessions.append(session)
        return session

    def close(self) -> None:
        for session in self._sessions:
            session.close()
        self._sessions.clear()
        if self._browser is not None:
            with contextlib.suppress(PlaywrightError):  # already gone
                self._browser.close()
            self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
