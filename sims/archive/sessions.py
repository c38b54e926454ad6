"""Server-side login sessions, as the imitated system keeps them: in memory, by cookie token.

Sessions deliberately do not survive a restart (the holdings do): a robot must cope with
being sent back to the login page, as it would after a real system's nightly restart.

They are counted (:mod:`sims.seats`): a session is live from its login until its logout,
the same browser's next login, an injected expiry or, when ``idle_timeout`` is set, its
idle expiry; a login beyond the cap is refused. Without an idle timeout (the default) a
session nobody ends holds its seat until the server stops, as some such systems did.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..seats import SeatedStore, Seats

COOKIE_NAME = "ARCSESSION"

Clock = Callable[[], float]


@dataclass
class UserSession:
    token: str
    username: str
    created_at: float
    notice_dismissed: bool = False  # the announcement overlay shows until this is set
    last_seen: float = 0.0


class SessionStore(SeatedStore):
    """Token -> session; the server is threaded, so every access holds the lock."""

    def __init__(
        self,
        *,
        max_sessions: int | None = None,
        idle_timeout: float | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._sessions: dict[str, UserSession] = {}
        self._lock = threading.Lock()
        self._seats = Seats(max_sessions)
        self._idle_timeout = idle_timeout
        self._clock = clock

    def create(self, username: str, replacing: str | None = None) -> UserSession | None:
        """Open a session, or None when the cap is reached. ``replacing`` is the session
        the browser holds already: it ends, so that one browser holds one seat."""
        # A fresh token on every login, never a reused one (no session fixation).
        now = self._clock()
        session = UserSession(secrets.token_urlsafe(32), username, now, last_seen=now)
        with self._lock:
            self._sweep(now)
            live = len(self._sessions) - (1 if replacing in self._sessions else 0)
            if not self._seats.admit(live):
                return None
            self._sessions.pop(replacing or "", None)
            self._sessions[session.token] = session
            self._seats.opened(len(self._sessions))
        return session

    def get(self, token: str | None) -> UserSession | None:
        """The live session of ``token``, its idle timer restarted; None if there is none."""
        if not token:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if self._idle(session, now):
                del self._sessions[token]
                return None
            session.last_seen = now
            return session

    def dismiss_notice(self, token: str) -> None:
        with self._lock:
            session = self._sessions.get(token)
            if session is not None:
                session.notice_dismissed = True

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(token, None)

    def _idle(self, session: UserSession, now: float) -> bool:
        return self._idle_timeout is not None and now - session.last_seen >= self._idle_timeout

    def _sweep(self, now: float) -> None:
        # caller holds the lock: an idle session holds no seat, whether or not its
        # browser has come back to find out
        for token in [t for t, s in self._sessions.items() if self._idle(s, now)]:
            del self._sessions[token]
