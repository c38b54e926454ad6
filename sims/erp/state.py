"""Server-side state of the ERP: one-time login tokens, idle-expiring sessions, report jobs.

All times come from the injected ``clock`` (seconds), so tests move time forward instead
of sleeping. Every structure is guarded by a lock because the server is threaded.

Sessions are counted (:mod:`sims.seats`): a session is live from its login until its
logout, its idle expiry or an injected expiry, and a login beyond the cap is refused.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sims.seats import SeatedStore, Seats

Clock = Callable[[], float]

# Unused tokens pile up as people reload the login page; forget the oldest beyond this.
MAX_PENDING_TOKENS = 10_000


class SessionStatus(Enum):
    VALID = "valid"
    EXPIRED = "expired"  # a cookie was sent but names no live session (idle, logged out)
    MISSING = "missing"  # no cookie at all


@dataclass
class _Session:
    user: str
    last_seen: float


class SessionStore(SeatedStore):
    """Login tokens and sessions, as a 2005 servlet container kept them: in memory."""

    def __init__(self, idle_timeout: float, clock: Clock, max_sessions: int | None = None) -> None:
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: OrderedDict[str, None] = OrderedDict()
        self._sessions: dict[str, _Session] = {}
        self._seats = Seats(max_sessions)

    def issue_token(self) -> str:
        """A fresh token for one rendering of the login form."""
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = None
            while len(self._tokens) > MAX_PENDING_TOKENS:
                self._tokens.popitem(last=False)
        return token

    def consume_token(self, token: str | None) -> bool:
        """True once for a token this server issued; every later use is refused."""
        if not token:
            return False
        with self._lock:
            if token not in self._tokens:
                return False
            del self._tokens[token]
            return True

    def create(self, user: str, replacing: str | None = None) -> str | None:
        """Open a session and return its id (the ``JSESSIONID`` cookie value), or None
        when the cap is reached. ``replacing`` is the session the browser holds already:
        it ends, so that one browser logging in again holds one seat, not two."""
        sid = secrets.token_hex(16).upper()
        now = self._clock()
        with self._lock:
            self._sweep(now)
            live = len(self._sessions) - (1 if replacing in self._sessions else 0)
            if not self._seats.admit(live):
                return None  # the browser keeps the session it had
            self._sessions.pop(replacing or "", None)
            self._sessions[sid] = _Session(user, now)
            self._seats.opened(len(self._sessions))
        return sid

    def touch(self, sid: str | None) -> SessionStatus:
        """Check a session and, if it is alive, restart its idle timer."""
        if not sid:
            return SessionStatus.MISSING
        now = self._clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return SessionStatus.EXPIRED
            if now - session.last_seen >= self._idle_timeout:
                del self._sessions[sid]
                return SessionStatus.EXPIRED
            session.last_seen = now
            return SessionStatus.VALID

    def is_valid(self, sid: str | None) -> bool:
        """Would ``touch`` accept this session now? Unlike ``touch``, changes nothing."""
        if not sid:
            return False
        now = self._clock()
        with self._lock:
            session = self._sessions.get(sid)
            return session is not None and now - session.last_seen < self._idle_timeout

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def _sweep(self, now: float) -> None:
        # caller holds the lock; keeps abandoned sessions from accumulating forever, and
        # idle ones from holding a seat: they are dead whether or not anyone asked yet
        dead = [s for s, v in self._sessions.items() if now - v.last_seen >= self._idle_timeout]
        for sid in dead:
            del self._sessions[sid]


class JobStatus(Enum):
    NOT_STARTED = "not_started"
    RUNNING = "running"
    DONE = "done"


class JobBoard:
    """Background generation jobs. A job is done once ``gen_seconds`` have passed on the
    clock since it started; there is no worker thread, only the passage of time."""

    def __init__(self, gen_seconds: float, clock: Clock) -> None:
        self._gen_seconds = gen_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}

    def start(self, rid: str) -> None:
        """Start generating ``rid`` unless a job for it already exists."""
        with self._lock:
            self._started.setdefault(rid, self._clock())

    def status(self, rid: str) -> JobStatus:
        with self._lock:
            started = self._started.get(rid)
        if started is None:
            return JobStatus.NOT_STARTED
        if self._clock() >= started + self._gen_seconds:
            return JobStatus.DONE
        return JobStatus.RUNNING

    def remaining(self, rid: str) -> float:
        """Seconds until ``rid``'s job is done: 0 once done, or when none was started."""
        with self._lock:
            started = self._started.get(rid)
        if started is None:
            return 0.0
        return max(0.0, started + self._gen_seconds - self._clock())
