"""Server-side login sessions, as the imitated system keeps them: in memory, by cookie token.

Sessions deliberately do not survive a restart (the holdings do): a robot must cope with
being sent back to the login page, as it would after a real system's nightly restart.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

COOKIE_NAME = "ARCSESSION"


@dataclass
class UserSession:
    token: str
    username: str
    created_at: float
    notice_dismissed: bool = False  # the announcement overlay shows until this is set


class SessionStore:
    """Token -> session; the server is threaded, so every access holds the lock."""

    def __init__(self) -> None:
        self._sessions: dict[str, UserSession] = {}
        self._lock = threading.Lock()

    def create(self, username: str) -> UserSession:
        # A fresh token on every login, never a reused one (no session fixation).
        session = UserSession(secrets.token_urlsafe(32), username, time.time())
        with self._lock:
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> UserSession | None:
        if not token:
            return None
        with self._lock:
            return self._sessions.get(token)

    def dismiss_notice(self, token: str) -> None:
        with self._lock:
            session = self._sessions.get(token)
            if session is not None:
                session.notice_dismissed = True

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(token, None)
