"""The web steps that move files: `download` (href or click), `upload`, and `submit`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from playwright.sync_api import Download, Route
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ...errors import Incomplete, NotFound, TransientError, UnexpectedPage
from ...files import (
    StagedFile,
    StagingWriter,
    TooLarge,
    check_received,
    safe_filename,
    stage_via,
)
from .http import name_from_server, response_filename
from .runner import NOT_THERE, READ_BACK_PHASES, Call, handles, url_of


@handles("download")
def download(call: Call) -> None:
    staging = call.context.staging()
    runner, args = call.runner, call.args
    timeout = args.timeout or runner.recipe.recipe.timeouts.download
    # A deadline on the whole transfer, not on each read: a server that drips a byte
    # every few seconds must not hold the run for hours.
    deadline = Deadline(timeout, "timeouts.download" if args.timeout is None else "timeout")
    fallback = safe_filename(call.context.key or "download", "download")
    if args.href is not None:
        url = urljoin(url_of(call.scope), call.render(args.href))
        staged = _fetch(call, url, staging, fallback, deadline)
    else:
        # Waiting for the download to *start* gets the step's time: a click answered by
        # an error page instead of a file should not cost the whole download's time.
        arrivals = runner.arrivals
        try:
            with runner.page.expect_download(timeout=call.ms()) as info:
                call.scope.locator(call.render(args.click)).click(timeout=call.ms())
        except PlaywrightTimeout as exc:
            if runner.arrivals > arrivals:  # the click brought a page, not a file
                raise UnexpectedPage(
                    f"{call.where}: an HTML page arrived at {url_of(call.scope)} where a file "
                    "was expected (often the login page of an expired session, or a busy "
                    "server)"
                ) from exc
            raise
        saved = info.value
        _finish_within(call, saved, deadline)
        failure = saved.failure()
        if failure:
            raise call.failed(f"the download of {saved.url} failed: {failure}")
        # Chromium cannot read raw GBK in Content-Disposition (it says "download.pdf"),
        # and it hands the header on already garbled: ask for the header ourselves.
        suggested = (
            name_from_server(runner.http, runner.page, saved.url, call.ms() / 1000)
            or saved.suggested_filename
        )
        name = safe_filename(suggested, fallback)
        # The browser has the whole file by now: the size limit can only be checked
        # after the fact on this path (use `href:` for streamed limits).
        staged = stage_via(saved.save_as, staging / name, suggested)
        saved.delete()
    try:
        check_received(staged, runner.max_bytes)
    except UnexpectedPage as exc:
        raise UnexpectedPage(f"{call.where}: {exc}") from exc
    call.outcome.downloaded = staged
    runner.config.emit(
        "downloaded",
        key=call.context.key,
        system=runner.system,
        url=url_of(call.scope),
        filename=staged.filename,
        size=staged.size,
        sha256=staged.sha256,
    )


class Deadline:
    """The time a whole transfer may take, from now."""

    def __init__(self, seconds: float, setting: str) -> None:
        self.seconds = seconds
        self.setting = setting
        self.ends = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.ends - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.ends

    def missed(self, call: Call, url: str, received: int | None) -> TransientError:
        """Retryable, like any system that did not answer in time; nothing is kept."""
        got = (
            f"{received:,} bytes received"
            if received is not None
            else "the browser does not say how many bytes had arrived"
        )
        return TransientError(
            f"{call.where}: the download of {url} did not finish within {self.setting} "
            f"({self.seconds:g} s; {got}); nothing of it was kept"
        )


class _Watchdog:
    """Shuts the transfer's sockets at the deadline, waking a read that waits for bytes.

    httpx's timeouts are per read (a server sending a byte every few seconds never
    trips them); httpcore's ``trace`` hands over each connection as it is made, and
    shutting its socket down from this timer makes the blocked read fail at once.
    """

    def __init__(self, deadline: Deadline) -> None:
        self.fired = False
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(deadline.left(), self._fire)
        self._timer.daemon = True

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            with self._lock:
                self._streams.append(info.get("return_value"))
                if self.fired:
                    self._shut()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shut()

    def _shut(self) -> None:
        for stream in self._streams:
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _fetch(call: Call, url: str, staging: Path, fallback: str, deadline: Deadline) -> StagedFile:
    """GET ``url`` with the browser's cookies, streaming to staging (constant memory)."""
    runner = call.runner
    response: httpx.Response | None = None
    try:
        with (
            _Watchdog(deadline) as watchdog,
            runner.http.client(url).stream(
                "GET",
                url,
                headers=runner.http.browser_headers(runner.page),
                timeout=max(deadline.left(), 0.001),
                follow_redirects=True,
                extensions={"trace": watchdog.trace},
            ) as response,
        ):
            if response.status_code >= 500:
                raise TransientError(
                    f"{call.where}: {runner.system} answered HTTP {response.status_code} for {url}"
                )
            if response.status_code in NOT_THERE and call.context.phase in READ_BACK_PHASES:
                # Reading an item back: the archive says it does not hold it.
                raise NotFound(
                    f"{call.where}: {runner.system} answered HTTP {response.status_code} for {url}"
                )
            if response.status_code >= 400:
                raise call.failed(f"HTTP {response.status_code} for {url}")
            original = response_filename(response, url) or fallback
            name = safe_filename(original, fallback)
            declared = response.headers.get("content-length", "")
            expected = int(declared) if declared.isdigit() else None
            if expected is not None and expected > runner.max_bytes:
                raise TooLarge(_too_large(call, name, expected))
            return _stream(call, response, staging / name, expected, url, original, deadline)
    except (httpx.HTTPError, Incomplete) as exc:
        if deadline.passed():
            got = response.num_bytes_downloaded if response is not None else 0
            raise deadline.missed(call, url, got) from exc
        if isinstance(exc, Incomplete):
            raise
        raise call.failed(f"{type(exc).__name__}: {exc} ({url})") from exc


def _stream(
    call: Call,
    response: httpx.Response,
    final: Path,
    expected: int | None,
    url: str,
    original: str,
    deadline: Deadline,
) -> StagedFile:
    # Content-Length counts the bytes on the wire: with a Content-Encoding (gzip) the
    # file staged is the decoded one, longer, and only the wire count can be compared.
    writer = StagingWriter(final, original=original)
    try:
        try:
            # As the bytes arrive (a read's worth at a time), so that the deadline is
            # checked after every read, however few bytes it brought.
            for chunk in response.iter_bytes():
                writer.write(chunk)
                if writer.size > call.runner.max_bytes:  # no Content-Length, or a false one
                    raise TooLarge(_too_large(call, final.name, writer.size))
                if deadline.passed():
                    raise deadline.missed(call, url, response.num_bytes_downloaded)
            # A socket shut at the deadline reads as the end of a body without a length.
            if deadline.passed():
                raise deadline.missed(call, url, response.num_bytes_downloaded)
        except httpx.RemoteProtocolError as exc:
            if expected is None:
                raise
            # The connection closed before the declared length arrived.
            got = response.num_bytes_downloaded
            raise Incomplete(_incomplete(call, final.name, got, expected, url)) from exc
        if expected is not None and expected != response.num_bytes_downloaded:
            got = response.num_bytes_downloaded
            raise Incomplete(_incomplete(call, final.name, got, expected, url))
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


def _finish_within(call: Call, saved: Download, deadline: Deadline) -> None:
    """Wait for the browser to finish ``saved`` until the deadline; cancel it after.

    The sync API's ``path()``, ``save_as()`` and ``failure()`` wait for the end of the
    download with no timeout. Its async side does, cancellably: waiting for it under
    ``asyncio.wait_for`` on the sync API's own loop aborts the wait at the deadline
    (cancelling the call aborts it, as an AbortSignal does upstream), and
    ``cancel()`` then stops the browser's transfer; ``delete()`` removes what arrived.
    """
    impl = saved._impl_obj  # the async Download behind the sync one
    try:
        saved._sync(asyncio.wait_for(impl.path(), max(deadline.left(), 0.001)))
    except TimeoutError:
        saved.cancel()
        # The browser's partial file lives in Playwright's own temporary folder (never in
        # staging); delete() of a cancelled download may answer "canceled" when it has
        # already gone, and the folder goes with the browser context in any case.
        with contextlib.suppress(PlaywrightError):
            saved.delete()
        raise deadline.missed(call, saved.url, None) from None
    except PlaywrightError:
        return  # it ended, failed: failure() says how


def _incomplete(call: Call, name: str, got: int, expected: int, url: str) -> str:
    return (
        f"{call.where}: received {got} of the {expected} bytes {call.runner.system} "
        f"declared for {name!r}: the connection closed early ({url})"
    )


def _too_large(call: Call, name: str, size: int) -> str:
    limit_mb = call.runner.max_bytes / 1024 / 1024
    return (
        f"{name!r} is larger than the recipe's limit ({size / 1024 / 1024:.1f} MB > "
        f"{limit_mb:g} MB, limits.max_file_mb); nothing of it was kept"
    )


@handles("upload")
def upload(call: Call) -> None:
    path = call.render(call.args.file)
    if not Path(path).is_file():
        raise call.failed(f"no file to upload at {path}")
    selector = call.render(call.args.selector)
    target = call.scope.locator(selector)
    target.set_input_files(path, timeout=call.ms())
    # For a `submit` step (by the input's name), and for the page's own upload requests
    # (commit.py, by the file's name): the browser will not tell us the file's contents.
    name = target.get_attribute("name", timeout=call.ms())
    call.runner.files[name or f"({selector})"] = path


@handles("submit")
def submit(call: Call) -> None:
    runner = call.runner
    form = call.scope.locator(call.render(call.args.form))
    pressed = None
    if call.args.button is not None:
        pressed = call.scope.locator(call.render(call.args.button)).element_handle(
            timeout=call.ms()
        )
    found = form.evaluate(_FORM_DATA_JS, pressed)
    if isinstance(found, str):
        raise call.failed(found)
    fields, action, method = found
    url = urljoin(url_of(call.scope), action or url_of(call.scope))
    timeout = call.args.timeout or runner.recipe.recipe.timeouts.download
    data: dict[str, list[str]] = {}  # lists: a name may repeat (multiple selects)
    for name, value, is_file in fields:
        if not is_file:
            data.setdefault(name, []).append(value)
    file_names = [name for name, _, is_file in fields if is_file]
    missing = [name for name in file_names if name not in runner.files]
    if missing:
        raise call.failed(f"no file was set on {missing} by an `upload` step")
    with ExitStack() as stack:
        files = [
            (
                name,
                (
                    Path(runner.files[name]).name,
                    stack.enter_context(open(runner.files[name], "rb")),
                    "application/octet-stream",
                ),
            )
            for name in file_names
        ]
        try:
            client = runner.http.client(url)
            headers = runner.http.browser_headers(runner.page)
            if call.context.on_commit is not None:
                call.context.on_commit()  # the durable intent, before anything leaves
            response = client.request(
                method, url, data=data, files=files or None, headers=headers, timeout=timeout
            )
        except httpx.HTTPError as exc:
            # A lost response: the outcome is unknown, which is what `find` is for.
            raise TransientError(
                f"{call.where}: no answer to the form sent to {url} "
                f"({type(exc).__name__}: {exc}); whether it was taken is unknown"
            ) from exc
    _show(call, response, url)


def _show(call: Call, response: httpx.Response, url: str) -> None:
    """Put the server's answer to a `submit` in the page, as if the browser had sent it."""
    if response.status_code >= 500:
        raise TransientError(
            f"{call.where}: {call.runner.system} answered HTTP {response.status_code} to the "
            f"form sent to {url}"
        )
    if response.is_redirect:
        target = urljoin(url, response.headers["location"])
        call.arrived(call.scope.goto(target, timeout=call.ms()), target)
        return
    if response.status_code >= 400:
        raise call.failed(f"HTTP {response.status_code} to the form sent to {url}")
    body = response.content
    headers = {"content-type": response.headers.get("content-type", "text/html")}

    def answer(route: Route) -> None:
        route.fulfill(status=response.status_code, headers=headers, body=body)

    page = call.runner.page
    page.route(url, answer, times=1)
    try:
        call.scope.goto(url, timeout=call.ms())
    finally:
        page.unroute(url, answer)
    call.arrived(None, url)


# The successful controls of a form (HTML 4.3.5 / the HTML standard's "constructing the
# entry list"), as [name, value, is_file], plus its action and method; or a string saying
# why the form cannot be sent. The submitter (the button given, else the form's first
# submit button) counts as pressed: its name and value are sent, an image button's as
# name.x and name.y, and its formaction and formmethod win over the form's.
_FORM_DATA_JS = """(form, pressed) => {
  const isSubmit = el => (el.tagName === "BUTTON" && el.type === "submit")
    || (el.tagName === "INPUT" && ["submit", "image"].includes(el.type));
  // form.elements leaves image buttons out (for old pages' sake): put them back in order.
  const controls = [...new Set([...form.elements, ...form.querySelectorAll("input[type=image]"),
    ...(pressed && pressed.form === form ? [pressed] : [])])];
  controls.sort((a, b) => a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1);
  let submitter = pressed;
  if (submitter) {
    if (!isSubmit(submitter)) return "the button given is not a submit button";
    if (submitter.form !== form) return "the button given does not belong to the form";
    if (submitter.disabled) return "the button given is disabled";
  } else {
    submitter = controls.find(el => isSubmit(el) && !el.disabled) || null;
  }
  const fields = [];
  for (const el of controls) {
    const type = (el.type || "").toLowerCase();
    if (el === submitter && type === "image") {  // "x" and "y" when it has no name
      const prefix = el.name ? el.name + "." : "";
      fields.push([prefix + "x", "0", false], [prefix + "y", "0", false]);
      continue;
    }
    if (!el.name || el.disabled || el.matches("fieldset:disabled *")) continue;
    if (el === submitter) { fields.push([el.name, el.value, false]); continue; }
    if (["submit", "button", "reset", "image"].includes(type)) continue;
    if ((type === "checkbox" || type === "radio") && !el.checked) continue;
    if (type === "file") { fields.push([el.name, "", true]); continue; }
    if (el.tagName === "SELECT") {
      for (const option of el.selectedOptions) fields.push([el.name, option.value, false]);
      continue;
    }
    fields.push([el.name, el.value, false]);
  }
  const action = (submitter && submitter.getAttribute("formaction"))
    || form.getAttribute("action") || "";
  const method = (submitter && submitter.hasAttribute("formmethod") && submitter.formMethod)
    || form.method || "get";
  return [fields, action, method.toUpperCase()];
}"""
