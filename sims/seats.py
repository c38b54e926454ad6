"""Concurrent-session accounting and the licence cap, shared by the ERP and the archive.

Legacy systems count logged-in users and refuse a login beyond their licence ("the
tenth concurrent login"); a fleet that runs several sessions against one system must
stay under that cap, and a test must be able to prove it did. So each simulator's
session store keeps a :class:`Seats`: the peak of concurrently live sessions, the logins
refused for the cap, and the cap itself (None, the default: count, never refuse).

The cap is set at start-up (``--max-sessions N``) and at run time through
``POST /_sim/config {"max_sessions": N}`` (``null`` or ``{}``: no cap). It is not a fault:
``POST /_sim/faults`` replaces the fault configuration and leaves the cap alone, so a
test may change faults in the middle of a capped run. Setting the configuration starts a
new measurement: the peak restarts from the sessions live then, the refusals from 0.
``GET /_sim/state`` reports ``"sessions": {"active", "peak", "refused", "max"}``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask, Response, jsonify, request

CONFIG_KEYS = ("max_sessions",)


class SeatsConfigError(ValueError):
    """A configuration that cannot be applied; ``key`` names the offending key."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass
class Seats:
    """The counters and the cap. Not locked itself: every call is made under the lock of
    the session store that owns it, so that counting a login and creating its session
    are one step (two threads cannot both take the last seat)."""

    max_sessions: int | None = None
    peak: int = 0
    refused: int = 0

    def admit(self, live: int) -> bool:
        """May one more session open beside ``live`` ones? A refusal is counted."""
        if self.max_sessions is not None and live >= self.max_sessions:
            self.refused += 1
            return False
        return True

    def opened(self, live: int) -> None:
        """A session opened; ``live`` sessions are live now, itself included."""
        self.peak = max(self.peak, live)

    def restart(self, max_sessions: int | None, live: int) -> None:
        """A new cap and a new measurement, starting from the ``live`` sessions now."""
        self.max_sessions = max_sessions
        self.peak = live
        self.refused = 0

    def report(self, live: int) -> dict[str, int | None]:
        return {
            "active": live,
            "peak": self.peak,
            "refused": self.refused,
            "max": self.max_sessions,
        }


class SeatedStore:
    """``seats_report`` and ``limit`` for a simulator's session store, which keeps its
    sessions in ``_sessions`` under ``_lock``, its cap in ``_seats``, and drops idle
    ones in ``_sweep(now)`` (on ``_clock``'s time): counting and sweeping are one step."""

    _lock: Any
    _sessions: Any
    _seats: Seats
    _clock: Any

    def _sweep(self, now: float) -> None:
        raise NotImplementedError

    def seats_report(self) -> dict[str, int | None]:
        """Live sessions now, their peak, logins refused for the cap, and the cap."""
        with self._lock:
            self._sweep(self._clock())
            return self._seats.report(len(self._sessions))

    def limit(self, max_sessions: int | None) -> None:
        """A new cap (None: none); the peak restarts from the sessions live now."""
        with self._lock:
            self._sweep(self._clock())
            self._seats.restart(max_sessions, len(self._sessions))


class CountedSessions(Protocol):
    """What the ``/_sim/config`` routes need of a simulator's session store."""

    def seats_report(self) -> dict[str, int | None]: ...

    def limit(self, max_sessions: int | None) -> None: ...


def check_max_sessions(value: Any) -> int | None:
    """A cap as ``create_app`` or the endpoint takes it: None (no cap) or an integer >= 0
    (0: nobody may log in, the whole licence taken elsewhere)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SeatsConfigError(
            "max_sessions", f"max_sessions must be an integer >= 0 or null, got {value!r}"
        )
    return value


def parse_config(body: Any) -> int | None:
    """Validate a ``POST /_sim/config`` body; return its cap."""
    if not isinstance(body, dict):
        raise SeatsConfigError(None, "the configuration must be a JSON object")
    for key in body:
        if key not in CONFIG_KEYS:
            raise SeatsConfigError(
                key, f"unknown key {key!r}; this simulator accepts: {', '.join(CONFIG_KEYS)}"
            )
    return check_max_sessions(body.get("max_sessions"))


def parse_cli(text: str) -> int:
    """``--max-sessions N`` for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def register_routes(app: Flask, sessions: CountedSessions) -> None:
    """``GET`` and ``POST /_sim/config`` on ``app``; both answer the configuration and
    the session counts: ``{"config": {"max_sessions"}, "sessions": {...}}``."""

    def answer() -> Response:
        seats = sessions.seats_report()
        return jsonify({"config": {"max_sessions": seats["max"]}, "sessions": seats})

    @app.get("/_sim/config")
    def sim_config() -> Response:
        return answer()

    @app.post("/_sim/config")
    def sim_set_config() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        if body is None:
            return jsonify({"error": "expected a JSON object", "key": None}), 400
        try:
            sessions.limit(parse_config(body))
        except SeatsConfigError as error:
            return jsonify({"error": str(error), "key": error.key}), 400
        return answer()
