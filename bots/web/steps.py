"""Carry out recipe steps on a web page with Playwright.

Steps run against a *scope*: the page, or a frame entered with a `frame` step. Every wait
is bounded by the step's timeout (or the recipe's default) and every failure names the
recipe line, the step and the URL it happened on. Steps never retry: the capture stage
that runs them does (bots.resilience), so attempts never multiply. What a step can tell
at once it raises at once: a 5xx answer or a login page after a navigation.
"""

from __future__ import annotations

import email.message
import email.utils
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import httpx
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Frame as PwFrame
from playwright.sync_api import Locator, Page, Response, Route
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ..errors import BusinessError, SessionExpired, StepFailed, TransientError
from ..files import (
    CHUNK,
    Incomplete,
    StagedFile,
    StagingWriter,
    TooLarge,
    UnexpectedPage,
    check_received,
    safe_filename,
    stage_via,
)
from ..recipe import LoadedRecipe, StepBase
from ..recipe.model import FieldSpec, TableArgs
from ..templating import TemplateProblem, evaluate, render

Scope = Page | PwFrame
EventSink = Callable[..., None]


@dataclass
class TableCursor:
    """How far a listing got: kept across attempts, so a retry resumes at the next page."""

    rows: list[dict[str, str | None]] = field(default_factory=list)
    pages: int = 0
    next_url: str | None = None  # the page to read next, when the pager is a real link
    done: bool = False


@dataclass
class StepOutcome:
    """What a list of steps produced besides its effects on the page."""

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
        logged_out: str | None = None,
    ) -> None:
        self.page = page
        self.base_url = base_url
        self.loaded = loaded
        self.system = system
        self.logged_out = logged_out  # a selector present only when the session is gone
        self._emit = emit
        self._timeouts = loaded.recipe.timeouts
        self.max_bytes = int(loaded.recipe.limits.max_file_mb * 1024 * 1024)
        self.check_session = False  # off while logging in: the login form is expected then
        self.on_success: Callable[[], None] = lambda: None  # the system answered a step
        self.staging_dir: Path | None = None  # where a `download` step puts its file
        self.key: str | None = None  # the document being worked on, for the run log
        self.cursor: TableCursor | None = None  # the listing's progress, set by the caller
        # Called with each listing page's rows and their elements (for evidence screenshots).
        self.on_rows: Callable[[list[dict[str, str | None]], list[Locator]], None] | None = None
        self._files: dict[str, str] = {}  # file input name -> the path an upload step set

    # -- running -------------------------------------------------------------------

    def run(self, steps: list[Any], variables: dict[str, Any], phase: str) -> StepOutcome:
        outcome = StepOutcome()
        self._files = {}
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
            except PlaywrightError as exc:  # TimeoutError included
                raise StepFailed(where, step.kind, _first_line(exc), _url(scope)) from exc
            self.on_success()
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

    def is_logged_out(self) -> bool:
        """Does the page, or any of its frames, show the logged-out marker?"""
        if not self.logged_out:
            return False
        try:
            return any(frame.locator(self.logged_out).count() > 0 for frame in self.page.frames)
        except PlaywrightError:
            return False

    def _ms(self, seconds: float | None) -> float:
        return (seconds or self._timeouts.step) * 1000

    def _arrived(self, call: _Call, response: Response | None, url: str) -> None:
        """After a navigation: a 5xx is worth a retry; a login form means log in again."""
        if response is not None and response.status >= 500:
            raise TransientError(
                f"{self.loaded.where(call.step.line)}: {self.system} answered HTTP "
                f"{response.status} for {url}"
            )
        if (
            self.check_session
            and self.logged_out
            and call.scope.locator(self.logged_out).count() > 0
        ):
            raise SessionExpired(
                f"{self.system} shows its login page at {_url(call.scope)}: the session has expired"
            )

    def _failed(self, call: _Call, problem: str) -> StepFailed:
        return StepFailed(
            self.loaded.where(call.step.line), call.step.kind, problem, _url(call.scope)
        )

    # -- one handler per step kind ---------------------------------------------------

    def _goto(self, call: _Call) -> None:
        target = self.absolute(call.render(call.args))
        if "#" in target and urldefrag(_url(call.scope)).url == urldefrag(target).url:
            # A hash-only change would not reload: a retry would look at the same error
            # page again. `goto` always loads.
            call.scope.goto("about:blank", timeout=self._ms(None))
        response = call.scope.goto(target, timeout=self._ms(None), wait_until="load")
        self._arrived(call, response, target)

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
            with call.scope.expect_navigation(timeout=timeout) as navigation:
                target.click(timeout=timeout)
            self._arrived(call, navigation.value, _url(call.scope))
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
            with call.scope.expect_navigation(timeout=self._ms(None)) as navigation:
                target.press(args.key, timeout=self._ms(None))
            self._arrived(call, navigation.value, _url(call.scope))
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
            target = scope.locator(selector).filter(has_text=text)
            wanted = f"{selector!r} with {text!r}"
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
        if self.cursor is None:
            self.cursor = TableCursor()
        cursor = self.cursor
        if cursor.next_url:  # an earlier attempt got this far: carry on from there
            self._next_page(call, cursor.next_url)
        while not cursor.done:
            if cursor.pages >= args.max_pages:
                raise self._failed(call, f"still a next page after max_pages={args.max_pages}")
            table = scope.locator(args.selector).first
            table.wait_for(state="attached", timeout=self._ms(None))
            page_number = cursor.pages + 1
            elements = table.locator(args.rows).all()
            rows = [
                {
                    name: self._field(call, row, name, spec, f"row {i} of page {page_number}")
                    for name, spec in args.fields.items()
                }
                for i, row in enumerate(elements, start=1)
            ]
            control = scope.locator(args.next) if args.next else None
            has_next = control is not None and control.count() > 0
            href = (
                control.first.get_attribute("href", timeout=self._ms(None))
                if control is not None and has_next
                else None
            )
            # The page is read whole before the cursor moves: a failure cannot lose rows.
            cursor.rows.extend(rows)
            cursor.pages = page_number
            if self.on_rows is not None:
                self.on_rows(rows, elements)
            self._emit(
                "table_page",
                system=self.system,
                phase=call.phase,
                page=page_number,
                rows=len(rows),
                url=_url(scope),
            )
            if control is None or not has_next:
                cursor.done, cursor.next_url = True, None
            elif href and not href.startswith(("javascript:", "#")):
                # A real link: following it is immune to click/navigation races, and a
                # retry can resume right here.
                cursor.next_url = urljoin(scope.url, href)
                self._next_page(call, cursor.next_url)
            else:
                cursor.next_url = None
                with scope.expect_navigation(timeout=self._ms(None)) as navigation:
                    control.first.click(timeout=self._ms(None))
                self._arrived(call, navigation.value, _url(scope))

    def _next_page(self, call: _Call, url: str) -> None:
        response = call.scope.goto(url, timeout=self._ms(None), wait_until="load")
        self._arrived(call, response, url)
        self.on_success()

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
            # Waiting for the download to *start* gets the step's time: a click answered by
            # an error page instead of a file should not cost the whole download's time.
            with self.page.expect_download(timeout=self._ms(None)) as info:
                call.scope.locator(call.render(args.click)).click(timeout=self._ms(None))
            download = info.value
            failure = download.failure()
            if failure:
                raise self._failed(call, f"the download of {download.url} failed: {failure}")
            # Chromium cannot read raw GBK in Content-Disposition (it says "download.pdf"),
            # and it hands the header on already garbled: ask for the header ourselves.
            suggested = self._name_from_server(download.url) or download.suggested_filename
            name = safe_filename(suggested, fallback)
            # The browser has the whole file by now: the size limit can only be checked
            # after the fact on this path (use `href:` for streamed limits).
            staged = stage_via(download.save_as, self.staging_dir / name, suggested)
            download.delete()
        try:
            check_received(staged, self.max_bytes)
        except UnexpectedPage as exc:
            raise UnexpectedPage(f"{self.loaded.where(call.step.line)}: {exc}") from exc
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

    def _name_from_server(self, url: str) -> str | None:
        """The file name in the server's own Content-Disposition (HEAD, with the session)."""
        try:
            with self._client(url, self._timeouts.step) as client:
                response = client.head(url, follow_redirects=True)
        except httpx.HTTPError:
            return None  # the browser's suggestion will do
        disposition = response.headers.get("content-disposition")
        if response.status_code >= 400 or not disposition:
            return None
        return filename_from_disposition(disposition)

    def _fetch(self, call: _Call, url: str, fallback: str, timeout: float) -> StagedFile:
        """GET ``url`` with the browser's cookies, streaming to staging (constant memory)."""
        assert self.staging_dir is not None
        try:
            with (
                self._client(url, timeout) as client,
                client.stream("GET", url, follow_redirects=True) as response,
            ):
                if response.status_code >= 500:
                    raise TransientError(
                        f"{self.loaded.where(call.step.line)}: {self.system} answered HTTP "
                        f"{response.status_code} for {url}"
                    )
                if response.status_code >= 400:
                    raise self._failed(call, f"HTTP {response.status_code} for {url}")
                original = _filename(response, url) or fallback
                name = safe_filename(original, fallback)
                declared = response.headers.get("content-length", "")
                expected = int(declared) if declared.isdigit() else None
                if expected is not None and expected > self.max_bytes:
                    raise TooLarge(self._too_large(name, expected))
                return self._stream(call, response, name, expected, url, original)
        except httpx.HTTPError as exc:
            raise self._failed(call, f"{type(exc).__name__}: {exc} ({url})") from exc

    def _stream(
        self,
        call: _Call,
        response: httpx.Response,
        name: str,
        expected: int | None,
        url: str,
        original: str,
    ) -> StagedFile:
        assert self.staging_dir is not None
        writer = StagingWriter(self.staging_dir / name, original=original)
        try:
            try:
                for chunk in response.iter_bytes(CHUNK):
                    writer.write(chunk)
                    if writer.size > self.max_bytes:  # no Content-Length, or a false one
                        raise TooLarge(self._too_large(name, writer.size))
            except httpx.RemoteProtocolError as exc:
                if expected is None:
                    raise
                # The connection closed before the declared length arrived.
                raise Incomplete(self._incomplete(call, name, writer.size, expected, url)) from exc
            if expected is not None and expected != writer.size:
                raise Incomplete(self._incomplete(call, name, writer.size, expected, url))
        except BaseException:
            writer.abort()
            raise
        return writer.commit()

    def _incomplete(self, call: _Call, name: str, got: int, expected: int, url: str) -> str:
        return (
            f"{self.loaded.where(call.step.line)}: received {got} of the {expected} bytes "
            f"{self.system} declared for {name!r}: the connection closed early ({url})"
        )

    def _too_large(self, name: str, size: int) -> str:
        limit_mb = self.max_bytes / 1024 / 1024
        return (
            f"{name!r} is larger than the recipe's limit ({size / 1024 / 1024:.1f} MB > "
            f"{limit_mb:g} MB, limits.max_file_mb); nothing of it was kept"
        )

    def _upload(self, call: _Call) -> None:
        path = call.render(call.args.file)
        if not Path(path).is_file():
            raise self._failed(call, f"no file to upload at {path}")
        target = call.scope.locator(call.render(call.args.selector))
        target.set_input_files(path, timeout=self._ms(None))
        name = target.get_attribute("name", timeout=self._ms(None))
        if name:
            self._files[name] = path  # for a `submit` step: the browser will not tell us

    def _submit(self, call: _Call) -> None:
        form = call.scope.locator(call.render(call.args.form))
        fields, action, method = form.evaluate(_FORM_DATA_JS)
        url = urljoin(_url(call.scope), action or _url(call.scope))
        timeout = call.args.timeout or self._timeouts.download
        data: dict[str, list[str]] = {}  # lists: a name may repeat (multiple selects)
        for name, value, is_file in fields:
            if not is_file:
                data.setdefault(name, []).append(value)
        file_names = [name for name, _, is_file in fields if is_file]
        missing = [name for name in file_names if name not in self._files]
        if missing:
            raise self._failed(call, f"no file was set on {missing} by an `upload` step")
        with ExitStack() as stack:
            files = [
                (
                    name,
                    (
                        Path(self._files[name]).name,
                        stack.enter_context(open(self._files[name], "rb")),
                        "application/octet-stream",
                    ),
                )
                for name in file_names
            ]
            try:
                with self._client(url, timeout) as client:
                    response = client.request(method, url, data=data, files=files or None)
            except httpx.HTTPError as exc:
                # A lost response: the outcome is unknown, which is what `find` is for.
                raise TransientError(
                    f"{self.loaded.where(call.step.line)}: no answer to the form sent to {url} "
                    f"({type(exc).__name__}: {exc}); whether it was taken is unknown"
                ) from exc
        self._show(call, response, url)

    def _show(self, call: _Call, response: httpx.Response, url: str) -> None:
        """Put the server's answer to a `submit` in the page, as if the browser had sent it."""
        if response.status_code >= 500:
            raise TransientError(
                f"{self.loaded.where(call.step.line)}: {self.system} answered HTTP "
                f"{response.status_code} to the form sent to {url}"
            )
        if response.is_redirect:
            target = urljoin(url, response.headers["location"])
            self._arrived(call, call.scope.goto(target, timeout=self._ms(None)), target)
            return
        if response.status_code >= 400:
            raise self._failed(call, f"HTTP {response.status_code} to the form sent to {url}")
        body, headers = (
            response.content,
            {"content-type": response.headers.get("content-type", "text/html")},
        )

        def answer(route: Route) -> None:
            route.fulfill(status=response.status_code, headers=headers, body=body)

        self.page.route(url, answer, times=1)
        try:
            call.scope.goto(url, timeout=self._ms(None))
        finally:
            self.page.unroute(url, answer)
        self._arrived(call, None, url)

    def _client(self, url: str, timeout: float) -> httpx.Client:
        """An HTTP client with the browser's cookies for ``url``; it never resends."""
        cookies = httpx.Cookies()
        for cookie in self.page.context.cookies(url):
            cookies.set(
                cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"]
            )
        headers = {
            "User-Agent": self.page.evaluate("navigator.userAgent"),
            "Referer": self.page.url,
        }
        return httpx.Client(
            cookies=cookies,
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            transport=httpx.HTTPTransport(retries=0),
        )

    def _read(self, call: _Call) -> None:
        args = call.args
        target = call.scope.locator(call.render(args.selector))
        if args.optional and target.count() == 0:
            call.variables[args.into] = ""
            return
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

    def _retry_if(self, call: _Call) -> None:
        target = call.scope.locator(call.render(call.args.selector))
        if target.count() == 0:
            return
        reason = " ".join(target.first.inner_text(timeout=self._ms(None)).split())
        raise TransientError(
            f"{self.loaded.where(call.step.line)}: {self.system} reports a temporary problem "
            f"at {_url(call.scope)}: {reason or call.args.selector}"
        )


# The successful controls of a form (HTML 4.3.5 / the HTML standard's "constructing the
# entry list"), as [name, value, is_file], plus its action and method.
_FORM_DATA_JS = """form => {
  const fields = [];
  for (const el of form.elements) {
    if (!el.name || el.disabled || el.matches("fieldset:disabled *")) continue;
    const type = (el.type || "").toLowerCase();
    if (["submit", "button", "reset", "image"].includes(type)) continue;
    if ((type === "checkbox" || type === "radio") && !el.checked) continue;
    if (type === "file") { fields.push([el.name, "", true]); continue; }
    if (el.tagName === "SELECT") {
      for (const option of el.selectedOptions) fields.push([el.name, option.value, false]);
      continue;
    }
    fields.push([el.name, el.value, false]);
  }
  return [fields, form.getAttribute("action") || "", (form.method || "get").toUpperCase()];
}"""


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
        plain = plain or _raw_header_text(value)
    return plain


def _raw_header_text(value: str) -> str:
    """Old systems put raw GBK or UTF-8 bytes in headers; HTTP clients read them as latin-1."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    if raw.isascii():
        return value
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return value


def _url_tail(url: str) -> str | None:
    tail = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return tail or None
