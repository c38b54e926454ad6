"""Carry out recipe steps on a web page: the runner, and the table of step handlers.

Steps run against a *scope*: the page, or a frame entered with a `frame` step. Every
wait is bounded by the step's timeout (or the recipe's default) and every failure names
the recipe line, the step and the URL it happened on. Steps never retry: the pipeline's
stage runner does, so attempts never multiply. What a step can tell at once it raises
at once: a 5xx answer or a login page after a navigation.

A step that fails on a page that answered normally (its frame's last navigation 2xx or
3xx and loaded, no 5xx or dropped request since, no logged-out marker) is a recipe
problem (``RecipeStepError``: the selector, the URL and what the page showed), not
worth another attempt. On a page that did not answer it stays a retryable ``StepFailed``,
and so does a `wait_for` that timed out: it waits for the system (a job to finish).

Handlers are registered by step kind (``@handles("click")``) in ``HANDLERS``; a test
proves that every kind of the web driver's schema has one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Frame as PwFrame
from playwright.sync_api import Page, Request, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ...errors import (
    BusinessError,
    FleetError,
    NotFound,
    RecipeStepError,
    SessionExpired,
    StepFailed,
    TransientError,
)
from ...recipe.steps import PageCondition, StepBase
from ...templating import TemplateProblem, evaluate, render
from ..base import (
    Match,
    SessionConfig,
    StepContext,
    StepOutcome,
    StepReport,
    as_shown,
    handler_table,
)
from .commit import CommitRoute
from .http import SessionHttp

# Reading back an item the archive acknowledged (confirm, fixity): these answers mean it
# does not hold it, which no retry changes (elsewhere they are a step that failed).
NOT_THERE = frozenset({404, 410})
READ_BACK_PHASES = frozenset({"confirm", "fixity"})

Scope = Page | PwFrame

# Phases in which the login page is expected, not a sign of a lost session: logging
# in, and logging out (a logout link lands on the login form).
LOGIN_PAGE_PHASES = ("login", "logout")


@dataclass
class Call:
    """One step about to run: what a handler needs."""

    runner: StepRunner
    step: StepBase
    scope: Scope
    context: StepContext
    outcome: StepOutcome

    @property
    def args(self) -> Any:
        return self.step.args

    @property
    def variables(self) -> dict[str, Any]:
        return self.context.variables

    @property
    def where(self) -> str:
        return self.runner.recipe.where(self.step.line)

    def render(self, template: str) -> str:
        return render(template, self.context.variables)

    def ms(self, seconds: float | None = None) -> float:
        """A step's timeout in milliseconds (the recipe's default step timeout if none)."""
        return (seconds or self.runner.recipe.recipe.timeouts.step) * 1000

    def failed(self, problem: str) -> StepFailed:
        return StepFailed(self.where, self.step.kind, problem, url_of(self.scope))

    def arrived(self, response: Response | None, url: str) -> None:
        """After a navigation: a 5xx is worth a retry; a login form means log in again; a
        404/410 while reading an item back means the archive does not hold it."""
        runner = self.runner
        if response is not None and response.status >= 500:
            raise TransientError(
                f"{self.where}: {runner.system} answered HTTP {response.status} for {url}"
            )
        if (
            response is not None
            and response.status in NOT_THERE
            and self.context.phase in READ_BACK_PHASES
        ):
            raise NotFound(
                f"{self.where}: {runner.system} answered HTTP {response.status} for {url}"
            )
        marker = runner.logged_out
        if (
            self.context.phase not in LOGIN_PAGE_PHASES
            and marker
            and self.scope.locator(marker).count() > 0
        ):
            raise SessionExpired(
                f"{runner.system} shows its login page at {url_of(self.scope)}: "
                "the session has expired"
            )

    def run_nested(self, steps: Sequence[StepBase], scope: Scope) -> None:
        self.runner.depth += 1
        try:
            self.runner.run_in(steps, scope, self.context, self.outcome)
        finally:
            self.runner.depth -= 1


HANDLERS, handles = handler_table("web")


class StepRunner:
    """Runs steps on one page of one system, as its session's configuration says."""

    def __init__(self, page: Page, config: SessionConfig) -> None:
        self.page = page
        self.config = config
        self.recipe = config.recipe
        self.system = config.system
        self.base_url = config.target
        self.logged_out: str | None = config.spec.logged_out
        self.max_bytes = int(self.recipe.recipe.limits.max_file_mb * 1024 * 1024)
        # The fleet's own HTTP client (submit, download: {href}, the routed commits).
        self.http = SessionHttp(page.context)
        # file input name -> the path an `upload` step set, for a `submit` in the same run
        self.files: dict[str, str] = {}
        # While upload steps run: the page's committing requests, sent by us (commit.py).
        self.commit: CommitRoute | None = None
        # How each frame's last navigation ended: an HTTP status, PENDING or DROPPED; and
        # the frames that met a 5xx or a dropped request since (a page's own requests).
        self.navigations: dict[PwFrame, int] = {}
        self.troubled: set[PwFrame] = set()
        self.arrivals = 0  # navigation answers so far, in any frame
        # Each frame's latest navigation request and how the frame stood before it: a
        # navigation the browser turns into a download leaves the page as it was.
        self._latest: dict[PwFrame, tuple[Request, int]] = {}
        # The step running now and where (innermost, in a `frame`): what a failure is
        # explained from (``runner.py try``), and how deep in frames it is.
        self.current: tuple[StepBase, Scope, StepContext] | None = None
        self.depth = 0
        page.on("request", self._request)
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def run(self, steps: Sequence[StepBase], context: StepContext) -> StepOutcome:
        outcome = StepOutcome()
        self.files = {}
        if context.phase != "upload":
            self.run_in(steps, self.page, context, outcome)
            return outcome
        guard = CommitRoute(
            self.page.context,
            self.http,
            system=self.system,
            timeout=self.recipe.recipe.timeouts.download,
            files=lambda: self.files,
            on_commit=context.on_commit,
        )
        self.commit = guard
        try:
            with guard:
                try:
                    self.run_in(steps, self.page, context, outcome)
                except Exception as exc:
                    # A lost answer explains whatever failed after it (the page waited
                    # for an answer that never came): that is the error the stage needs.
                    guard.raise_failure(exc)
                    raise
                guard.raise_failure()
        finally:
            self.commit = None
        return outcome

    def run_in(
        self,
        steps: Sequence[StepBase],
        scope: Scope,
        context: StepContext,
        outcome: StepOutcome,
    ) -> None:
        trace = self.config.trace
        for step in steps:
            where = self.recipe.where(step.line)
            if self.commit is not None:
                self.commit.where = where
            self.current = (step, scope, context)
            if trace is not None:
                trace.before(step, self.depth)
            found = self._matched(step, scope, context) if trace else ()
            started = time.perf_counter()
            try:
                if not self.applies(step.when, scope, context):
                    if trace is not None:
                        trace.after(self._report(step, scope, context, started, (), ran=False))
                    continue
                HANDLERS[step.kind](Call(self, step, scope, context, outcome))
                if self.commit is not None:
                    self.commit.raise_failure()  # the page's upload failed in this step
            except TemplateProblem as exc:
                raise BusinessError(f"{where}: {exc}") from exc
            except PlaywrightError as exc:  # TimeoutError included
                raise self._judge(step, scope, context, first_line(exc)) from exc
            except StepFailed as exc:  # a handler's own wait that timed out on the page
                nested = exc.where != where  # judged already, by the step that raised it
                waits = step.kind in WAITS_FOR_THE_SYSTEM
                if nested or waits or not isinstance(exc.__cause__, PlaywrightError):
                    raise
                raise self._judge(step, scope, context, exc.problem) from exc
            self.config.on_success()
            if trace is not None:
                report = self._report(step, scope, context, started, found, ran=True)
                trace.after(report)
            self.config.emit(
                "step",
                key=context.key,
                system=self.system,
                phase=context.phase,
                step=step.kind,
                line=step.line,
                url=url_of(scope),
            )

    def _matched(self, step: StepBase, scope: Scope, context: StepContext) -> tuple[Match, ...]:
        """What the step's selectors match, looked at without waiting (only when traced):
        before the step, for what it acts on (a click may leave the page); a selector
        found nowhere then is looked at again after the step, which may have waited
        for it (``_report``)."""
        from .inspect import matches

        return matches(scope, step, context.variables)

    def _report(
        self,
        step: StepBase,
        scope: Scope,
        context: StepContext,
        started: float,
        found: tuple[Match, ...],
        ran: bool,
    ) -> StepReport:
        seconds = time.perf_counter() - started
        if ran and any(m.count == 0 for m in found):
            found = self._matched(step, scope, context)  # it waited for what it needed
        return StepReport(
            system=self.system,
            phase=context.phase,
            line=step.line,
            kind=step.kind,
            depth=self.depth,
            location=url_of(scope),
            seconds=seconds,
            ran=ran,
            matched=found,
            target=self._target(step, context) if ran else "",
        )

    def _target(self, step: StepBase, context: StepContext) -> str:
        """A `download` by URL: the URL it fetched (a `goto` says where it arrived)."""
        href = step.args.href if step.kind == "download" else None
        return "href " + self.absolute(as_shown(href, context.variables)) if href else ""

    def applies(self, when: str | PageCondition | None, scope: Scope, context: StepContext) -> bool:
        """Does a step's condition hold? An expression over the variables, or a look at
        ``scope`` (the page or the frame the step runs in)."""
        if when is None:
            return True
        if isinstance(when, str):
            return bool(evaluate(when, context.variables))
        target = scope.locator(render(when.selector, context.variables))
        found = target.count() > 0
        if not found and when.timeout:
            try:
                target.first.wait_for(state="attached", timeout=when.timeout * 1000)
                found = True
            except PlaywrightTimeout:
                found = False
        return found == when.present

    # -- did the page answer? ---------------------------------------------------------

    def _request(self, request: Request) -> None:
        if request.is_navigation_request():
            with _page_gone():
                frame = request.frame
                self._latest[frame] = (request, self.navigations.get(frame, PENDING))
                self.navigations[frame] = PENDING
                self.troubled.discard(frame)

    def _response(self, response: Response) -> None:
        with _page_gone():
            frame = response.frame
            if response.request.is_navigation_request():
                self.navigations[frame] = response.status
                self.arrivals += 1
            elif response.status >= 500:
                self.troubled.add(frame)

    def _failed(self, request: Request) -> None:
        with _page_gone():
            if "ERR_ABORTED" in (request.failure or ""):
                # Left for another page, or a download the browser took over: the frame
                # shows what it showed before.
                latest = self._latest.get(request.frame)
                if latest is not None and latest[0] is request:
                    self.navigations[request.frame] = latest[1]
                return
            if request.is_navigation_request():
                self.navigations[request.frame] = DROPPED
            else:
                self.troubled.add(request.frame)

    def answered(self, scope: Scope, phase: str) -> bool:
        """Did the page (and the frame the step ran in) answer normally: the last
        navigation 2xx/3xx and loaded, no 5xx or dropped request since, and (outside a
        login) no logged-out marker?"""
        frames = {self.page.main_frame, scope.main_frame if isinstance(scope, Page) else scope}
        for frame in frames:
            status = self.navigations.get(frame, PENDING)
            if not 200 <= status < 400 or frame in self.troubled:
                return False
            try:
                if frame.evaluate("document.readyState") != "complete":
                    return False
            except PlaywrightError:
                return False
        return phase in LOGIN_PAGE_PHASES or not self.is_logged_out()

    def _judge(
        self, step: StepBase, scope: Scope, context: StepContext, problem: str
    ) -> FleetError:
        """The error a failed step is: a recipe problem on a page that answered, else
        a system error worth another attempt."""
        where, url = self.recipe.where(step.line), url_of(scope)
        if not self.answered(scope, context.phase):
            return StepFailed(where, step.kind, problem, url)
        return RecipeStepError(where, step.kind, selector_of(step), url, problem, shown(scope))

    def absolute(self, url: str) -> str:
        return join_url(self.base_url, url)

    def is_logged_out(self) -> bool:
        """Does the page, or any of its frames, show the logged-out marker?"""
        if not self.logged_out:
            return False
        try:
            return any(frame.locator(self.logged_out).count() > 0 for frame in self.page.frames)
        except PlaywrightError:
            return False


def join_url(base_url: str, url: str) -> str:
    """A recipe URL against the system's base URL (which may have a path).

    A full URL is taken as it is; ``/x`` and ``x`` both mean the base URL's path + ``x``;
    a path that already begins with the base URL's path is not prefixed again
    (base ``http://h/support/``: ``/support/`` and ``support/`` stay, ``/login`` is
    ``http://h/support/login``)."""
    if urlsplit(url).scheme:
        return url
    if url.startswith("//"):  # another host, same scheme
        return urljoin(base_url, url)
    base = urlsplit(base_url)
    prefix = base.path.rstrip("/")
    path = "/" + url.lstrip("/")
    if (
        prefix
        and path.startswith(prefix)
        and path[len(prefix) : len(prefix) + 1] in ("", "/", "?", "#")
    ):
        return f"{base.scheme}://{base.netloc}{path}"
    return f"{base.scheme}://{base.netloc}{prefix}{path}"


# Steps that wait for the system to produce something (a job's download link): their
# timeout means the system was not done in time, even on a page that answered normally.
WAITS_FOR_THE_SYSTEM = frozenset({"wait_for"})

# How a navigation ended, besides its HTTP status.
PENDING = 0  # sent, no answer (yet)
DROPPED = -1  # the connection failed


def _page_gone() -> contextlib.suppress:
    """An event handler reading a request whose page or frame has gone: nothing to note."""
    return contextlib.suppress(PlaywrightError)


def selector_of(step: StepBase) -> str | None:
    """The selector a step worked on, when it names one."""
    args = step.args
    for name in ("selector", "click", "form", "text"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            return f"{name}: {value}"
    if isinstance(args, str):
        return args
    fields = getattr(args, "fields", None)
    if isinstance(fields, dict):
        return "fields: " + ", ".join(fields)
    return None


EXCERPT_CHARS = 200


def shown(scope: Scope) -> str:
    """What a page shows, in short: its title and the start of its text."""
    try:
        title = scope.title()
        text = scope.evaluate("() => document.body ? document.body.innerText : ''")
    except PlaywrightError as exc:
        return f"(could not be read: {first_line(exc)})"
    excerpt = " ".join(str(text).split())
    if len(excerpt) > EXCERPT_CHARS:
        excerpt = excerpt[:EXCERPT_CHARS] + "..."
    return f"title {title!r}, text {excerpt!r}"


def url_of(scope: Scope) -> str:
    try:
        return scope.url
    except PlaywrightError:
        return "(page closed)"


def first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[0] if lines else type(exc).__name__
    # Playwright puts the selector it waited for in the call log: keep that line.
    waiting = next((line for line in lines[1:] if line.startswith("- waiting for")), None)
    return f"{message} ({waiting.removeprefix('- ')})" if waiting else message


# The handlers register themselves when their modules load.
from . import actions, table, transfer  # noqa: E402, F401
