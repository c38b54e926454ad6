"""Carry out recipe steps on a web page with Playwright.

Steps run against a *scope*: the page, or a frame entered with a `frame` step. Every wait
is bounded by the step's timeout (or the recipe's default) and every failure names the
recipe line, the step and the URL it happened on.
"""

from __future__ import annotations

import email.message
import email.utils
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Frame as PwFrame
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ..errors import BusinessError, StepFailed
from ..files import CHUNK, StagedFile, StagingWriter, safe_filename, stage_via
from ..recipe import LoadedRecipe, StepBase
from ..recipe.model import FieldSpec, TableArgs
from ..templating import TemplateProblem, evaluate, render

Scope = Page | PwFrame
EventSink = Callable[..., None]


@dataclass
class StepOutcome:
    """What a list of steps produced besides its effects on the page."""

    rows: list[dict[str, str | None]] = field(default_factory=list)
    table: TableArgs | None = None
    downloaded: StagedFile | None = None


@dataclass
class _Call:
    """One step about to run: what a handler needs."""

    step: StepBase
    scope: Scope
    variables: dict[str, Any]
    phase: str
    outcome: StepOutcome

    @property
    def args(self) -> Any:
        return self.step.args

    def render(self, template: str) -> str:
        return render(template, self.variables)


class StepRunner:
    """Runs steps for one system (one page) of one recipe."""

    def __init__(
        self,
        page: Page,
        *,
        base_url: str,
        loaded: LoadedRecipe,
        system: str,
        emit: EventSink,
    ) -> None:
        self.page = page
        self.base_url = base_url
        self.loaded = loaded
        self.system = system
        self._emit = emit
        self._timeouts = loaded.recipe.timeouts
        self.staging_dir: Path | None = None  # where a `download` step puts its file
        self.key: str | None = None  # the document being worked on, for the run log

    # -- running -------------------------------------------------------------------

    def run(self, steps: list[Any], variables: dict[str, Any], phase: str) -> StepOutcome:
        outcome = StepOutcome()
        self._run(steps, self.page, variables, phase, outcome)
        return outcome

    def _run(
        self,
        steps: list[Any],
        scope: Scope,
        variables: dict[str, Any],
        phase: str,
        outcome: StepOutcome,
    ) -> None:
        for step in steps:
            where = self.loaded.where(step.line)
            try:
                if step.when is not None and not evaluate(step.when, variables):
                    continue
                handler = getattr(self, f"_{step.kind}")
                handler(_Call(step, scope, variables, phase, outcome))
            except TemplateProblem as exc:
                raise BusinessError(f"{where}: {exc}") from exc
            except PlaywrightTimeout as exc:
                raise StepFailed(where, step.kind, _first_line(exc), _url(scope)) from exc
            except PlaywrightError as exc:
                raise StepFailed(where, step.kind, _first_line(exc), _url(scope)) from exc
            self._emit(
                "step",
                key=self.key,
                system=self.system,
                phase=phase,
                step=step.kind,
                line=step.line,
                url=_url(scope),
            )

    def absolute(self, url: str) -> str:
        """Recipe URLs are relative to the system's base URL (which may have a path)."""
        if urlsplit(url).scheme:
            return url
        return urljoin(self.base_url.rstrip("/") + "/", url.lstrip("/"))

    def _ms(self, seconds: float | None) -> float:
        return (seconds or self._timeouts.step) * 1000

    # -- one handler per step kind ---------------------------------------------------

    def _goto(self, call: _Call) -> None:
        target = self.absolute(call.render(call.args))
        call.scope.goto(target, timeout=self._ms(None), wait_until="load")

    def _fill(self, call: _Call) -> None:
        args = call.args
        pairs = args.fields.items() if args.fields is not None else [(args.selector, args.value)]
        for selector, value in pairs:
            call.scope.locator(selector).fill(call.render(value), timeout=self._ms(None))

    def _click(self, call: _Call) -> None:
        args = call.args
        target = call.scope.locator(call.render(args.selector))
        timeout = self._ms(args.timeout)
        if args.optional:
            try:
                target.first.wait_for(state="visible", timeout=timeout)
            except PlaywrightTimeout:
                return  # not there this time: that is what optional means
            target = target.first
        if args.navigates:
            with call.scope.expect_navigation(timeout=timeout):
                target.click(timeout=timeout)
        else:
            target.click(timeout=timeout)

    def _check(self, call: _Call) -> None:
        call.scope.locator(call.render(call.args.selector)).check(timeout=self._ms(None))

    def _uncheck(self, call: _Call) -> None:
        call.scope.locator(call.render(call.args.selector)).uncheck(timeout=self._ms(None))

    def _select(self, call: _Call) -> None:
        args = call.args
        target = call.scope.locator(call.render(args.selector))
        if args.value is not None:
            target.select_option(value=call.render(args.value), timeout=self._ms(None))
        else:
            target.select_option(label=call.render(args.label), timeout=self._ms(None))

    def _press(self, call: _Call) -> None:
        args = call.args
        target = call.scope.locator(call.render(args.selector))
        if args.navigates:
            with call.scope.expect_navigation(timeout=self._ms(None)):
                target.press(args.key, timeout=self._ms(None))
        else:
            target.press(args.key, timeout=self._ms(None))

    def _wait_for(self, call: _Call) -> None:
        args = call.args
        selector = call.render(args.selector)
        try:
            call.scope.locator(selector).first.wait_for(
                state=args.state, timeout=self._ms(args.timeout)
            )
        except PlaywrightTimeout as exc:
            raise self._failed(
                call,
                f"{selector!r} did not become {args.state} within "
                f"{self._ms(args.timeout) / 1000:g}s",
            ) from exc

    def _expect(self, call: _Call) -> None:
        args = call.args
        text = call.render(args.text) if args.text is not None else None
        selector = call.render(args.selector) if args.selector is not None else None
        scope = call.scope
        if selector and text:
            target, wanted = (
                scope.locator(selector).filter(has_text=text),
                f"{selector!r} with {text!r}",
            )
        elif selector:
            target, wanted = scope.locator(selector), repr(selector)
        else:
            target, wanted = scope.get_by_text(text or ""), f"text {text!r}"
        try:
            target.first.wait_for(state="visible", timeout=self._ms(args.timeout))
        except PlaywrightTimeout as exc:
            raise self._failed(
                call,
                f"expected {wanted} on the page, not there after "
                f"{self._ms(args.timeout) / 1000:g}s",
            ) from exc

    def _frame(self, call: _Call) -> None:
        args = call.args
        handle = call.scope.locator(call.render(args.selector)).first.element_handle(
            timeout=self._ms(None)
        )
        frame = handle.content_frame()
        if frame is None:
            raise self._failed(call, f"{args.selector!r} is not an <iframe> or <frame>")
        frame.wait_for_load_state("load", timeout=self._ms(None))
        self._run(args.steps, frame, call.variables, call.phase, call.outcome)

    def _table(self, call: _Call) -> None:
        args: TableArgs = call.args
        scope = call.scope
        call.outcome.table = args
        for page_number in range(1, args.max_pages + 1):
            table = scope.locator(args.selector).first
            table.wait_for(state="attached", timeout=self._ms(None))
            rows = table.locator(args.rows).all()
            for index, row in enumerate(rows, start=1):
                call.outcome.rows.append(
                    {
                        name: self._field(
                            call, row, name, spec, f"row {index} of page {page_number}"
                        )
                        for name, spec in args.fields.items()
                    }
                )
            self._emit(
                "table_page",
                system=self.system,
                phase=call.phase,
                page=page_number,
                rows=len(rows),
                url=_url(scope),
            )
            if args.next is None:
                return
            next_control = scope.locator(args.next)
            if next_control.count() == 0:
                return
            href = next_control.first.get_attribute("href", timeout=self._ms(None))
            if href and not href.startswith(("javascript:", "#")):
                # A real link: following it is immune to click/navigation races.
                scope.goto(urljoin(scope.url, href), timeout=self._ms(None), wait_until="load")
            else:
                with scope.expect_navigation(timeout=self._ms(None)):
                    next_control.first.click(timeout=self._ms(None))
        raise self._failed(call, f"still a next page after max_pages={args.max_pages}")

    def _field(
        self, call: _Call, row: Locator, name: str, spec: FieldSpec, where: str
    ) -> str | None:
        target = row.locator(spec.selector)
        if target.count() == 0:
            if spec.optional:
                return None
            raise self._failed(call, f"{where} has no field {name!r} ({spec.selector!r})")
        value = self._value(target.first, spec.attr, spec.property)
        return None if value is None else " ".join(value.split())

    def _download(self, call: _Call) -> None:
        if self.staging_dir is None:
            raise RuntimeError("a download step ran with no staging folder set")
        args = call.args
        timeout = args.timeout or self._timeouts.download
        fallback = safe_filename(self.key or "download", "download")
        if args.href is not None:
            url = urljoin(_url(call.scope), call.render(args.href))
            staged = self._fetch(call, url, fallback, timeout)
        else:
            with self.page.expect_download(timeout=timeout * 1000) as info:
                call.scope.locator(call.render(args.click)).click(timeout=self._ms(None))
            download = info.value
            failure = download.failure()
            if failure:
                raise self._failed(call, f"the download of {download.url} failed: {failure}")
            name = safe_filename(download.suggested_filename, fallback)
            staged = stage_via(download.save_as, self.staging_dir / name)
            download.delete()
        call.outcome.downloaded = staged
        self._emit(
            "downloaded",
            key=self.key,
            system=self.system,
            url=_url(call.scope),
            filename=staged.filename,
            size=staged.size,
            sha256=staged.sha256,
        )

    def _fetch(self, call: _Call, url: str, fallback: str, timeout: float) -> StagedFile:
        """GET ``url`` with the browser's cookies, streaming to staging (constant memory)."""
        assert self.staging_dir is not None
        cookies = httpx.Cookies()
        for cookie in self.page.context.cookies(url):
            cookies.set(
                cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"]
            )
        headers = {
            "User-Agent": self.page.evaluate("navigator.userAgent"),
            "Referer": self.page.url,
        }
        try:
            with (
                httpx.Client(
                    cookies=cookies, headers=headers, timeout=timeout, follow_redirects=True
                ) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code >= 400:
                    raise self._failed(call, f"HTTP {response.status_code} for {url}")
                name = safe_filename(_filename(response, url) or fallback, fallback)
                writer = StagingWriter(self.staging_dir / name)
                try:
                    for chunk in response.iter_bytes(CHUNK):
                        writer.write(chunk)
                except BaseException:
                    writer.abort()
                    raise
                declared = response.headers.get("content-length")
                if declared is not None and int(declared) != writer.size:
                    writer.abort()
                    raise self._failed(call, f"got {writer.size} of {declared} bytes from {url}")
                return writer.commit()
        except httpx.HTTPError as exc:
            raise self._failed(call, f"{type(exc).__name__}: {exc} ({url})") from exc

    def _upload(self, call: _Call) -> None:
        path = call.render(call.args.file)
        if not Path(path).is_file():
            raise self._failed(call, f"no file to upload at {path}")
        call.scope.locator(call.render(call.args.selector)).set_input_files(
            path, timeout=self._ms(None)
        )

    def _read(self, call: _Call) -> None:
        args = call.args
        target = call.scope.locator(call.render(args.selector))
        target.wait_for(state="attached", timeout=self._ms(args.timeout))
        value = self._value(target, args.attr, args.property)
        call.variables[args.into] = "" if value is None else " ".join(value.split())

    def _value(self, target: Locator, attr: str | None, prop: str | None) -> str | None:
        """An element's text, or one of its attributes (as written) or DOM properties."""
        if prop is not None:
            value = target.evaluate("(element, name) => element[name]", prop)
            return None if value is None else str(value)
        if attr is not None:
            return target.get_attribute(attr, timeout=self._ms(None))
        return target.inner_text(timeout=self._ms(None))

    def _reject_if(self, call: _Call) -> None:
        args = call.args
        target = call.scope.locator(call.render(args.selector))
        if args.timeout:
            try:
                target.first.wait_for(state="attached", timeout=args.timeout * 1000)
            except PlaywrightTimeout:
                return
        if target.count() == 0:
            return
        reason = " ".join(target.first.inner_text(timeout=self._ms(None)).split())
        raise BusinessError(f"{self.system} refused: {reason or args.selector}")

    def _failed(self, call: _Call, problem: str) -> StepFailed:
        return StepFailed(
            self.loaded.where(call.step.line), call.step.kind, problem, _url(call.scope)
        )


def _url(scope: Scope) -> str:
    try:
        return scope.url
    except PlaywrightError:
        return "(page closed)"


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[0] if lines else type(exc).__name__
    # Playwright puts the selector it waited for in the call log: keep that line.
    waiting = next((line for line in lines[1:] if line.startswith("- waiting for")), None)
    return f"{message} ({waiting.removeprefix('- ')})" if waiting else message


def _filename(response: httpx.Response, url: str) -> str | None:
    disposition = response.headers.get("content-disposition")
    if disposition:
        return filename_from_disposition(disposition) or _url_tail(url)
    return _url_tail(url)


def filename_from_disposition(header: str) -> str | None:
    """The file name of a Content-Disposition header; ``filename*`` wins (RFC 6266 4.3)."""
    message = email.message.Message()
    message["content-disposition"] = header
    plain: str | None = None
    for name, value in message.get_params(header="content-disposition") or []:
        if name != "filename":
            continue
        if isinstance(value, tuple):  # the RFC 5987 form, filename*=UTF-8''...
            return email.utils.collapse_rfc2231_value(value)
        plain = plain or value
    return plain


def _url_tail(url: str) -> str | None:
    tail = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return tail or None
