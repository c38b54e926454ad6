"""Keep secrets out of everything the fleet writes.

Following robocorp's vault: a secret is registered the moment it is fetched, and every
writer (run log, ledger, console) passes its text through the same ``Redactor``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"


class Redactor:
    """Replaces every registered secret, and its JSON-escaped form, by ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._needles: set[str] = set()
        for secret in secrets:
            self.register(secret)

    def register(self, secret: str) -> None:
        # Very short values would mask ordinary words and make logs useless; such
        # passwords are refused when stored (see credentials), so this is a safety net.
        if not secret or len(secret) < 4:
            return
        self._needles.add(secret)
        self._needles.add(json.dumps(secret, ensure_ascii=False)[1:-1])
        self._needles.add(json.dumps(secret)[1:-1])

    def scrub(self, text: str) -> str:
        # Longest first, so that a secret containing another is masked whole.
        for needle in sorted(self._needles, key=len, reverse=True):
            if needle in text:
                text = text.replace(needle, MASK)
        return text

    def scrub_data(self, value: Any) -> Any:
        """Scrub every string inside a JSON-like structure."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(str(k)): self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub_data(v) for v in value]
        return value
