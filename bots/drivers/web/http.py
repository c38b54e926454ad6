"""The web driver's own HTTP client: the browser's cookies, no retries, streamed bodies.

Used where the browser must not be trusted with a request: `submit` (Chromium silently
resends a POST whose answer was lost, archiving a document twice) and `download: {href}`
(Playwright's request context buffers whole responses in memory).
"""

from __future__ import annotations

import email.message
import email.utils
from urllib.parse import unquote, urlsplit

import httpx
from playwright.sync_api import BrowserContext, Page


class SessionHttp:
    """The fleet's own HTTP client of one browser session, built once and kept.

    Building an ``httpx.Client`` costs tens of milliseconds (its TLS context above all),
    three times a document; one per session costs that once. What must stay per request
    does: the cookies are copied from the browser context before each request (the
    session may have moved on since: a new session id, a login again), and so is the
    Referer (the page's URL now). Connections are not kept alive: each request gets a
    connection of its own (a download's deadline watchdog is handed each new connection,
    which a reused one would skip), and nothing is ever sent again on a connection that
    went stale (no retries).
    """

    def __init__(self, context: BrowserContext) -> None:
        self._context = context
        self._client: httpx.Client | None = None
        self._browser: dict[str, str] | None = None

    def client(self, url: str) -> httpx.Client:
        """The client, holding the browser's cookies for ``url`` as they are now."""
        cookies = httpx.Cookies()
        for cookie in self._context.cookies(url):
            cookies.set(
                cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"]
            )
        if self._client is None:
            self._client = httpx.Client(
                follow_redirects=False,
                transport=httpx.HTTPTransport(
                    retries=0, limits=httpx.Limits(max_keepalive_connections=0)
                ),
            )
        self._client.cookies = cookies
        return self._client

    def browser_headers(self, page: Page) -> dict[str, str]:
        """The headers the browser itself would send: its User-Agent and languages (fixed
        for a browser context, read once), and the page's URL as the Referer."""
        if self._browser is None:
            self._browser = {
                "User-Agent": page.evaluate("navigator.userAgent"),
                # The recipe's `locale`, else the machine's, as the browser says them.
                "Accept-Language": accept_language(page.evaluate("navigator.languages")),
            }
        return {**self._browser, "Referer": page.url}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def accept_language(languages: list[str]) -> str:
    """``navigator.languages`` as Chromium sends them: ``en-US,en;q=0.9``."""
    weighted = [
        name if index == 0 else f"{name};q={max(1, 10 - index) / 10:g}"
        for index, name in enumerate(languages)
    ]
    return ",".join(weighted)


def name_from_server(http: SessionHttp, page: Page, url: str, timeout: float) -> str | None:
    """The file name in the server's own Content-Disposition (HEAD, with the session)."""
    try:
        response = http.client(url).head(
            url, headers=http.browser_headers(page), timeout=timeout, follow_redirects=True
        )
    except httpx.HTTPError:
        return None  # the browser's suggestion will do
    disposition = response.headers.get("content-disposition")
    if response.status_code >= 400 or not disposition:
        return None
    return filename_from_disposition(disposition)


def response_filename(response: httpx.Response, url: str) -> str | None:
    disposition = response.headers.get("content-disposition")
    if disposition:
        return filename_from_disposition(disposition) or url_tail(url)
    return url_tail(url)


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


def url_tail(url: str) -> str | None:
    tail = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return tail or None
