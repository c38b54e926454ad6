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
from playwright.sync_api import Page


def client_for(page: Page, url: str, timeout: float) -> httpx.Client:
    """An HTTP client with the browser's cookies for ``url``; it never resends."""
    cookies = httpx.Cookies()
    for cookie in page.context.cookies(url):
        cookies.set(cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"])
    headers = {
        "User-Agent": page.evaluate("navigator.userAgent"),
        "Referer": page.url,
        # The browser's languages (the recipe's `locale`, else the machine's), as it says them.
        "Accept-Language": accept_language(page.evaluate("navigator.languages")),
    }
    return httpx.Client(
        cookies=cookies,
        headers=headers,
        timeout=timeout,
        follow_redirects=False,
        transport=httpx.HTTPTransport(retries=0),
    )


def accept_language(languages: list[str]) -> str:
    """``navigator.languages`` as Chromium sends them: ``en-US,en;q=0.9``."""
    weighted = [
        name if index == 0 else f"{name};q={max(1, 10 - index) / 10:g}"
        for index, name in enumerate(languages)
    ]
    return ",".join(weighted)


def name_from_server(page: Page, url: str, timeout: float) -> str | None:
    """The file name in the server's own Content-Disposition (HEAD, with the session)."""
    try:
        with client_for(page, url, timeout) as client:
            response = client.head(url, follow_redirects=True)
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
