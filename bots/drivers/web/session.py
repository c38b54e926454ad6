"""The web driver: one Chromium per run, one browser context (a session) per system.

Screenshots never show a password: none is taken while any frame has a filled password
input, and password inputs are masked on the rest. Playwright traces are not kept at
all: they record typed passwords and cookies (microsoft/playwright#19992).
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from ...childenv import master_key_withheld
from ...recipe.steps import StepBase
from ..base import (
    Diagnosis,
    Explanation,
    ScreenshotRefused,
    SessionConfig,
    StepContext,
    StepOutcome,
)
from .browser import launch
from .runner import StepRunner, url_of

SCREENSHOT_TIMEOUT_MS = 10_000
# A listing row is on screen already, or it never will be (display: contents, hidden):
# its picture gets a second, not a step's timeout, for each row of every page.
TARGET_SCREENSHOT_TIMEOUT_MS = 1_000
# True when a frame (one Playwright reaches by itself) has a password input holding a value.
_PASSWORD_FILLED = "() => [...document.querySelectorAll('input[type=password]')].some(e => e.value)"
# One look at the page before a picture, through every frame the page's own script can
# reach (same origin): how many password inputs there are, whether one holds a value,
# how many frames it could not look into (another origin: each is then asked by itself),
# and whether the page is larger than the window (only then is a full-page picture
# another picture than the window's).
_LOOK = """() => {
  const look = {inputs: 0, filled: false, sealed: 0, beyond: false};
  const visit = win => {
    let inputs;
    try { inputs = win.document.querySelectorAll('input[type=password]'); }
    catch (e) { look.sealed += 1; return; }
    look.inputs += inputs.length;
    if ([...inputs].some(e => e.value)) look.filled = true;
    for (let i = 0; i < win.frames.length; i++) visit(win.frames[i]);
  };
  visit(window);
  const root = document.scrollingElement || document.documentElement;
  look.beyond = !!root && (root.scrollHeight > window.innerHeight
                           || root.scrollWidth > window.innerWidth);
  return look;
}"""


@dataclass(frozen=True)
class Look:
    """What a page shows that decides its picture (``_LOOK``)."""

    inputs: int  # password inputs in the page's frames
    filled: bool  # one of them holds a value
    beyond: bool  # the page is larger than the window


def look(page: Page) -> Look:
    """One evaluation for the page and its same-origin frames; a frame of another origin
    is asked by itself, and one that cannot be asked counts as holding a password."""
    try:
        seen = page.evaluate(_LOOK)
    except PlaywrightError:
        return Look(inputs=1, filled=True, beyond=True)  # unknown: refuse, as if filled
    filled = bool(seen["filled"])
    if seen["sealed"] and not filled:
        filled = _any_frame_filled(page)
    # A frame of another origin may hold an empty password input: mask to be safe.
    inputs = int(seen["inputs"]) + (1 if seen["sealed"] else 0)
    return Look(inputs=inputs, filled=filled, beyond=bool(seen["beyond"]))


def _any_frame_filled(page: Page) -> bool:
    for frame in page.frames:
        try:
            if frame.evaluate(_PASSWORD_FILLED):
                return True
        except PlaywrightError:
            return True  # a frame we cannot look into might hold one: do not photograph
    return False


def password_filled(page: Page) -> bool:
    """Does any frame of the page have a password input holding a value?"""
    return look(page).filled


def screenshot_page(page: Page, path: Path, target: Any = None) -> None:
    """A PNG of ``target`` (a locator) or the whole page, password inputs masked;
    ``ScreenshotRefused`` when a password is typed anywhere on the page.

    Cheap where it costs nothing to the picture: one look for passwords across frames,
    masks only when a password input is there to mask, and a full-page capture only for
    a page larger than the window (for one that fits, the window's picture is the
    same picture)."""
    try:
        seen = look(page)
        if seen.filled:
            raise ScreenshotRefused(f"a password field on {page.url} holds a value")
        mask = [page.locator("input[type=password]")] if seen.inputs else []
        if target is not None:
            if not target.is_visible():
                raise ScreenshotRefused(f"the element is not visible on {page.url}")
            _element_shot(page, target, path, mask)
        else:
            page.screenshot(
                path=str(path), mask=mask, full_page=seen.beyond, timeout=SCREENSHOT_TIMEOUT_MS
            )
    except PlaywrightError as exc:
        raise ScreenshotRefused(f"the screenshot failed: {exc}") from exc


def _element_shot(page: Page, target: Any, path: Path, mask: list[Any]) -> None:
    """The element's box, scrolled into view, cut from the window's picture.

    Playwright's element screenshot first waits for the element to hold still over two
    animation frames, which a listing row (static markup, one picture per row) always
    does: it doubled the cost of a row's picture. An element that does not fit in the
    window is left to Playwright's own element screenshot, which captures beyond it."""
    timeout = TARGET_SCREENSHOT_TIMEOUT_MS
    target.evaluate(_INTO_VIEW, timeout=timeout)
    box = target.bounding_box(timeout=timeout)
    clip = _whole_pixels(box) if box is not None else None
    window = page.viewport_size
    if clip is None or window is None or not _within(clip, window):
        target.screenshot(path=str(path), mask=mask, timeout=timeout)
        return
    page.screenshot(path=str(path), mask=mask, clip=clip, timeout=timeout)


_INTO_VIEW = "e => e.scrollIntoView({block: 'nearest', inline: 'nearest'})"
# For a batch of rows: the next row to the top of the window, the rows after it below.
_TO_TOP = "e => e.scrollIntoView({block: 'start', inline: 'nearest'})"


def screenshot_rows(
    page: Page, shots: Sequence[tuple[Path, Any]]
) -> list[ScreenshotRefused | None]:
    """Each listing row's picture, the pixels ``screenshot_page(page, path, row)`` saves,
    for all the rows of a listing page at once; per row, None or why it was refused.

    One look for passwords, then one picture of the window per screenful of rows: each
    row is cut from it by its box (one question per row, not a capture). A row beyond the
    window is scrolled to the window's top and the window photographed again, so the
    rows after it come from that picture; a row larger than the window gets Playwright's
    own element picture. A row is a document: photographed by itself it cost about 51 ms of
    CPU (Chromium, Playwright's driver and ours), cut from the window's picture about 27 ms,
    most of it Playwright's box of an element in a frame."""
    seen = look(page)
    if seen.filled:
        refused = ScreenshotRefused(f"a password field on {page.url} holds a value")
        return [refused for _ in shots]
    mask = [page.locator("input[type=password]")] if seen.inputs else []
    results: list[ScreenshotRefused | None] = []
    window = _Window(page, mask)
    for path, target in shots:
        try:
            window.cut(target, path)
            results.append(None)
        except ScreenshotRefused as exc:
            results.append(exc)
        except (PlaywrightError, OSError) as exc:
            results.append(ScreenshotRefused(f"the screenshot failed: {exc}"))
    return results


class _Window:
    """The window's latest picture, taken again only when a row is not in it."""

    def __init__(self, page: Page, mask: list[Any]) -> None:
        self.page = page
        self.mask = mask
        self.picture: Image.Image | None = None

    def cut(self, target: Any, path: Path) -> None:
        timeout = TARGET_SCREENSHOT_TIMEOUT_MS
        clip = self._box(target)
        if clip is None:
            target.evaluate(_TO_TOP, timeout=timeout)
            self.picture = None  # the window has scrolled
            clip = self._box(target)
            if clip is None:  # larger than the window, or its frame
                target.screenshot(path=str(path), mask=self.mask, timeout=timeout)
                return
        if self.picture is None:
            taken = self.page.screenshot(mask=self.mask, timeout=timeout)
            self.picture = Image.open(io.BytesIO(taken))
            self.picture.load()
        left, top = clip["x"], clip["y"]
        row = self.picture.crop((left, top, left + clip["width"], top + clip["height"]))
        row.save(path, format="PNG")

    def _box(self, target: Any) -> Any:
        """The row's box in the window's picture, or None when it is not wholly in view
        (of its own frame, and of the window); ``ScreenshotRefused`` when not shown."""
        timeout = TARGET_SCREENSHOT_TIMEOUT_MS
        placed = target.evaluate(_PLACED, timeout=timeout)
        if not placed["shown"]:
            raise ScreenshotRefused(f"the element is not visible on {self.page.url}")
        if not placed["inside"]:
            return None
        box = target.bounding_box(timeout=timeout)
        window = self.page.viewport_size
        if box is None or window is None:
            return None
        clip = _whole_pixels(box)
        return clip if _within(clip, window) else None


# Is the row shown (Playwright's own test: a box, not visibility: hidden), and wholly
# inside its frame's viewport? A row below a frame's fold has a box within the window
# that the frame's edge hides.
_PLACED = """e => {
  const r = e.getBoundingClientRect();
  const shown = r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden';
  const inside = Math.floor(r.left) >= 0 && Math.floor(r.top) >= 0
    && Math.ceil(r.right) <= window.innerWidth && Math.ceil(r.bottom) <= window.innerHeight;
  return {shown, inside};
}"""


def _whole_pixels(box: Any) -> Any:
    """The box grown to whole pixels, as Playwright's element screenshot rounds it."""
    left, top = math.floor(box["x"]), math.floor(box["y"])
    right, bottom = math.ceil(box["x"] + box["width"]), math.ceil(box["y"] + box["height"])
    return {"x": left, "y": top, "width": right - left, "height": bottom - top}


def _within(box: Any, window: Any) -> bool:
    return (
        box["width"] > 0
        and box["height"] > 0
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= window["width"]
        and box["y"] + box["height"] <= window["height"]
    )


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

    def screenshot_rows(self, shots: Sequence[tuple[Path, Any]]) -> list[ScreenshotRefused | None]:
        return screenshot_rows(self.page, shots)

    def diagnose(self) -> Diagnosis | None:
        """What the page showed where the last step ran (after it failed), for the
        author (``runner.py try``); None before any step."""
        from .inspect import diagnose

        if self.runner.current is None:
            return None
        step, scope, context = self.runner.current
        return diagnose(self.page, scope, step, context.variables)

    def explain(self) -> Explanation | None:
        """What the step about to run (``runner.py explain`` stopped before it) would
        find on the page; None before any step."""
        from .inspect import explain

        if self.runner.current is None:
            return None
        step, scope, context = self.runner.current
        return explain(scope, step, context.variables)

    def recheck(self, explanation: Explanation) -> Explanation:
        """``explanation``'s candidates tried where the same step is about to run again
        (the page loaded a second time)."""
        from .inspect import recheck

        if self.runner.current is None:
            return explanation
        return recheck(self.runner.current[1], explanation)

    def close(self) -> None:
        self.runner.http.close()
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
