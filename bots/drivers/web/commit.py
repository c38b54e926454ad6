"""While upload steps run, every request of the page that may commit is sent by us, once.

Why: an archive commits an upload, the connection drops before its answer, and Chromium
silently sends the same POST again on a fresh connection; the report is archived twice
and nothing in our log shows it (found by the chaos run). `submit` avoids that for
plain forms, but an archive whose upload is a click on a form with its own script, an
XHR or a `fetch` from a drag-and-drop widget, never goes through `submit`.

So during the `upload` phase every non-idempotent request the page makes (POST, PUT,
PATCH, DELETE, from any frame or script) is routed (Playwright's ``context.route``) and
sent by the fleet's own HTTP client: the browser's cookies, the request's own headers
and body, no retries, redirects not followed. ``StepContext.on_commit`` is called just
before it leaves. The answer is handed back to the page (``route.fulfill``; a redirect
as it is, the browser follows it with a GET), and its cookies are put in the browser
context. A lost answer aborts the request in the page and is remembered: the session
raises it (``TransientError``, outcome unknown, so the stage looks the document up with
`find`) in place of whatever step failure follows, or after the step it happened in.
Idempotent requests go on to the network untouched.

Chromium leaves the contents of files out of the body it shows for a multipart request
(the parts are there, empty). A file part is filled in from the file an `upload` step
set, found by its file name; a part naming a file no step set is refused, unsent.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Request, Route
from playwright.sync_api import Error as PlaywrightError

from ...errors import StepFailed, TransientError
from .http import SessionHttp

NON_IDEMPOTENT = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Headers the client sets itself (length, host, cookies from the browser's jar).
_NOT_FORWARDED = frozenset(
    {"host", "content-length", "cookie", "connection", "transfer-encoding", "accept-encoding"}
)
# Headers of the answer that no longer describe the body handed to the page (httpx has
# decoded it, and the page gets it whole).
_NOT_RETURNED = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection"})
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_FILENAME = re.compile(rb'filename="([^"]*)"')
FILE_BLOCK = 1024 * 1024


class CommitRoute:
    """Routes the page's committing requests through our client while the block runs."""

    def __init__(
        self,
        context: BrowserContext,
        http: SessionHttp,
        *,
        system: str,
        timeout: float,
        files: Callable[[], dict[str, str]],
        on_commit: Callable[[], None] | None,
    ) -> None:
        self.context = context
        self.http = http  # the session's own client (cookies copied per request)
        self.system = system
        self.timeout = timeout
        self.files = files  # input name -> path set by `upload` steps (read when sending)
        self.on_commit = on_commit
        self.where = system  # the step running now (its recipe line), for messages
        self.failure: Exception | None = None  # what the session raises after the step

    def __enter__(self) -> CommitRoute:
        self.context.route("**/*", self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(PlaywrightError):  # the context may be gone (a crash)
            self.context.unroute("**/*", self._handle)

    def raise_failure(self, cause: BaseException | None = None) -> None:
        """Raise the remembered failure, if any (``cause``: the step failure it explains)."""
        failure = self.failure
        if failure is None:
            return
        if cause is None or cause is failure:
            raise failure
        raise failure from cause

    def _handle(self, route: Route, request: Request) -> None:
        method = request.method.upper()
        if method not in NON_IDEMPOTENT:
            route.fallback()
            return
        try:
            self._send(route, request, method)
        except Exception as exc:  # never leave the page's request hanging, nor raise here
            if self.failure is None:
                self.failure = exc
            with contextlib.suppress(PlaywrightError):
                route.abort("failed")

    def _send(self, route: Route, request: Request, method: str) -> None:
        url = request.url
        if self.failure is not None:
            # After an unknown outcome nothing more is sent: the stage must look first.
            route.abort("failed")
            return
        headers = {
            name: value
            for name, value in request.all_headers().items()
            if name.lower() not in _NOT_FORWARDED and not name.startswith(":")
        }
        body, length = self._body(request, url, headers.get("content-type", ""))
        if length is not None:
            headers["content-length"] = str(length)
        if self.on_commit is not None:
            self.on_commit()  # the durable intent, before anything leaves
        try:
            response = self.http.client(url).request(
                method, url, headers=headers, content=body, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            # Sent, perhaps taken, never answered: what `find` is for.
            self.failure = TransientError(
                f"{self.where}: no answer to the {method} the page sent to {url} "
                f"({type(exc).__name__}: {exc}); whether it was taken is unknown"
            )
            route.abort("connectionfailed")
            return
        self._keep_cookies(response)
        route.fulfill(
            status=response.status_code,
            headers=_answer_headers(response),
            body=response.content,
        )

    def _keep_cookies(self, response: httpx.Response) -> None:
        """The answer's cookies into the browser context (a new session id, say)."""
        cookies: list[Any] = []
        for cookie in response.cookies.jar:
            entry: dict[str, Any] = {
                "name": cookie.name,
                "value": cookie.value or "",
                "domain": cookie.domain,
                "path": cookie.path or "/",
                "secure": cookie.secure,
                "httpOnly": cookie.has_nonstandard_attr("HttpOnly"),
            }
            if cookie.expires is not None:
                entry["expires"] = float(cookie.expires)
            cookies.append(entry)
        if cookies:
            self.context.add_cookies(cookies)

    def _body(self, request: Request, url: str, content_type: str) -> tuple[Any, int | None]:
        """The body to send and its length: the browser's, with file parts filled in."""
        raw = request.post_data_buffer
        if not raw:
            return None, 0 if raw is not None else None
        boundary = _BOUNDARY.search(content_type)
        if not content_type.lower().startswith("multipart/") or boundary is None:
            return raw, len(raw)
        return self._multipart(raw, boundary.group(1).encode("latin-1"), url)

    def _multipart(self, raw: bytes, boundary: bytes, url: str) -> tuple[Iterator[bytes], int]:
        delimiter = b"--" + boundary
        chunks = raw.split(delimiter)
        pieces: list[bytes | Path] = []
        for chunk in chunks[1:-1]:
            head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
            content = content.removesuffix(b"\r\n")
            named = _FILENAME.search(head)
            pieces.append(delimiter + b"\r\n" + head + b"\r\n\r\n")
            if named is not None and not content:
                pieces.append(self._file_named(_unescape(named.group(1)), url))
            else:
                pieces.append(content)
            pieces.append(b"\r\n")
        pieces.append(delimiter + b"--\r\n")
        length = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in pieces)
        return _stream(pieces), length

    def _file_named(self, name: str, url: str) -> bytes | Path:
        if not name:
            return b""  # no file chosen: the browser sends an empty part, so do we
        for path in self.files().values():
            if Path(path).name == name:
                return Path(path)
        raise StepFailed(
            self.where,
            "upload",
            f"the page sends a file {name!r} that no `upload` step set; nothing was sent",
            url,
        )


def _stream(pieces: list[bytes | Path]) -> Iterator[bytes]:
    for piece in pieces:
        if isinstance(piece, bytes):
            yield piece
            continue
        with open(piece, "rb") as handle:
            while block := handle.read(FILE_BLOCK):
                yield block


def _unescape(raw: bytes) -> str:
    """A file name as Chromium writes it in a multipart header (UTF-8, a few %-escapes)."""
    text = raw.decode("utf-8", errors="replace")
    return text.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


def _answer_headers(response: httpx.Response) -> dict[str, str]:
    """The answer's headers for the page; several Set-Cookie lines joined by newlines,
    which is how Playwright takes them."""
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        if key in _NOT_RETURNED:
            continue
        if key in headers:
            headers[key] += ("\n" if key == "set-cookie" else ", ") + value
        else:
            headers[key] = value
    return headers
