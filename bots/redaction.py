"""Keep secrets out of everything the fleet writes.

Following robocorp's vault: a secret is registered the moment it is fetched, and every
writer (run log, ledger, console) passes its text through the same ``Redactor``.

A secret reaches a log line in more forms than its own: JSON-escaped (the line is JSON),
URL-encoded (a recipe put it in a ``goto`` URL, and step events log the page URL; ``quote``
and ``quote_plus``, upper- or lower-case hex, or only partly encoded as a browser does),
HTML-escaped (a page's text in an error) or as Python's ``repr``. Each registered secret
becomes one pattern in which every character may appear in any of those forms, so a
mixture (a URL-encoded password inside a JSON string) is masked too.

URLs are a second leak: a query string can carry a secret the redactor was never told
about (a token a page put in a link). ``strip_url_queries`` keeps a query's keys and drops
its values; the run log applies it to every event (``bots.runlog``).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "[REDACTED]"
ELIDED = "…"  # what a URL's query value is logged as

# Shorter values would mask ordinary words and make logs useless; such passwords are
# refused when stored (see credentials), so this is a safety net.
MIN_SECRET_LENGTH = 4


def _hex_pattern(digits: str) -> str:
    """Hex digits in either case: ``2f`` -> ``2[fF]``."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in digits)


def _char_forms(char: str) -> list[str]:
    """Regex alternatives for one character of a secret, in every encoding a log carries."""
    code = ord(char)
    literal: set[str] = {
        char,
        json.dumps(char, ensure_ascii=False)[1:-1],  # \" \\ \n \u0001
        repr(char)[1:-1],  # \\ \n \x01 \u200b  (repr("'") is "'")
        html.escape(char),  # &amp; &lt; &gt; &quot; &#x27;
        html.escape(char, quote=False),
    }
    if char == " ":
        literal.add("+")  # quote_plus
    if char == "'":
        literal.add("\\'")  # repr of a string holding both quotes
    forms = []
    # URL-encoded: each UTF-8 byte as %XX, either case (quote, quote_plus, a browser).
    forms.append("".join("%" + _hex_pattern(f"{b:02x}") for b in char.encode("utf-8")))
    # JSON with ensure_ascii: \uXXXX (a surrogate pair beyond the BMP), either case.
    escaped = json.dumps(char)[1:-1]
    if escaped.startswith("\\u"):
        units = escaped.split("\\u")[1:]
        forms.append("".join(re.escape("\\u") + _hex_pattern(u) for u in units))
    # HTML numeric character references: &#39; &#x27; &#X27;
    forms.append(f"&#{code};")
    forms.append(f"&#[xX]0*{_hex_pattern(f'{code:x}')};")
    # Longest literal forms first and the character itself last: "%" must not match
    # alone where "%25" follows.
    forms.extend(re.escape(form) for form in sorted(literal, key=len, reverse=True))
    return forms


def secret_pattern(secret: str) -> str:
    """A regex matching ``secret`` written raw or in any of the forms above, character
    by character (so partly encoded forms match too)."""
    return "".join("(?:" + "|".join(_char_forms(char)) + ")" for char in secret)


class Redactor:
    """Replaces every registered secret, in every form a line can carry it, by ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.register(secret)

    def register(self, secret: str) -> None:
        if not secret or len(secret) < MIN_SECRET_LENGTH or secret in self._secrets:
            return
        self._secrets.add(secret)
        # Longest first, so that a secret containing another is masked whole.
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(secret_pattern(s) for s in ordered))

    def scrub(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def scrub_data(self, value: Any) -> Any:
        """Scrub every string inside a JSON-like structure."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(str(k)): self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub_data(v) for v in value]
        return value


# A URL as it appears in running text: a scheme, then everything up to whitespace, a quote
# or an angle bracket (which end a URL quoted in a message), less a sentence's last stop.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`]*[^\s\"'<>`.,;:!?)\]]")


def _elide_values(query: str) -> str:
    parts = []
    for part in query.split("&"):
        if not part:
            continue
        key, eq, value = part.partition("=")
        parts.append(f"{key}={ELIDED}" if eq and value else (part if eq else ELIDED))
    return "&".join(parts)


def strip_url_query(url: str) -> str:
    """``url`` with its query's values (and a ``key=value`` fragment's) replaced by ``…``:
    ``https://h/p?user=ann&token=x`` -> ``https://h/p?user=…&token=…``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unparseable "URL" (a bad port, a broken IPv6 host)
        head, sep, query = url.partition("?")
        return head + sep + _elide_values(query) if sep else url
    if not parts.query and "=" not in parts.fragment:
        return url
    fragment = _elide_values(parts.fragment) if "=" in parts.fragment else parts.fragment
    return urlunsplit(parts._replace(query=_elide_values(parts.query), fragment=fragment))


def strip_url_queries(value: Any) -> Any:
    """Every URL inside a string or a JSON-like structure with its query values elided."""
    if isinstance(value, str):
        return _URL.sub(lambda m: strip_url_query(m.group(0)), value) if "://" in value else value
    if isinstance(value, dict):
        return {k: strip_url_queries(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strip_url_queries(v) for v in value]
    return value
