"""Fault injection shared by both simulators: slow, failing and rude answers on demand.

A test (or the demo) configures faults with ``POST /_sim/faults`` (or ``--faults JSON`` at
start-up) and reads what was injected back from ``GET /_sim/faults``. Every random
decision comes from one ``random.Random`` seeded by the configuration's ``seed`` and is
drawn when a request *starts*, in arrival order, the same fixed set of draws for every
request whatever its path or the faults enabled. So the same seed and the same sequence
of requests give the same fault schedule, and request number *n* gets the same draws
whether or not, say, latency is also configured.

A request meets its faults in this order: its latency (the configured ``latency_ms``
range, or the simulator's base latency, plus ``spike_ms`` on a spike); then
``error_rate`` (HTTP 500 before the view runs, so nothing happens, and the request does
not count towards ``session_expiry_every``); then session expiry, for requests that
need a session and carry a valid one; then the view's own faults (ERP downloads:
``html_instead`` before ``truncate``; archive ingest: ``reject`` before the commit,
``lost_response`` after it). A counter counts a fault when it is applied: a draw that
hits a request the fault cannot apply to (``truncate`` on a list page) counts nothing.

Setting faults replaces the whole configuration, reseeds (seed 0 when none is given)
and zeroes the counters; ``{}`` turns everything off. ``/_sim/*`` requests are never
delayed, failed or counted.

Which faults exist depends on the simulator (``ERP_KINDS``, ``ARCHIVE_KINDS``,
``DESKTOP_KINDS``); a key that belongs to another simulator is an unknown key here. The
desktop client draws once per *action* (login, query, page, locate, export) instead of
once per request.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request

# Counter names, as ``GET /_sim/faults`` reports them under ``injected``.
LATENCY_SPIKE = "latency_spike"
ERROR = "error"
SESSION_EXPIRY = "session_expiry"
TRUNCATE = "truncate"
HTML_INSTEAD = "html_instead"
LOST_RESPONSE = "lost_response"
REJECT = "reject"
FOCUS_STEAL = "focus_steal"  # desktop: a notice window takes the keyboard focus

ERP_KINDS = (ERROR, SESSION_EXPIRY, LATENCY_SPIKE, TRUNCATE, HTML_INSTEAD)
ARCHIVE_KINDS = (ERROR, SESSION_EXPIRY, LATENCY_SPIKE, LOST_RESPONSE, REJECT)
DESKTOP_KINDS = (ERROR, SESSION_EXPIRY, LATENCY_SPIKE, TRUNCATE, FOCUS_STEAL)

# Configuration keys each fault kind brings (the common three are always there).
_KEYS_BY_KIND: dict[str, tuple[str, ...]] = {
    LATENCY_SPIKE: ("spike_rate", "spike_ms"),
    ERROR: ("error_rate",),
    SESSION_EXPIRY: ("session_expiry_every", "session_expiry_rate"),
    TRUNCATE: ("truncate_rate", "truncate"),
    HTML_INSTEAD: ("html_instead_rate", "html_instead"),
    LOST_RESPONSE: ("lost_response_rate",),
    REJECT: ("reject_rate",),
    FOCUS_STEAL: ("focus_steal_rate",),
}
_RATE_OF_KIND = {
    LATENCY_SPIKE: "spike_rate",
    ERROR: "error_rate",
    SESSION_EXPIRY: "session_expiry_rate",
    TRUNCATE: "truncate_rate",
    HTML_INSTEAD: "html_instead_rate",
    LOST_RESPONSE: "lost_response_rate",
    REJECT: "reject_rate",
    FOCUS_STEAL: "focus_steal_rate",
}
# Draw order per request: the latency fraction first, then one number per kind. Fixed,
# so that a request's draws do not depend on which faults are switched on.
_DRAW_ORDER = (
    "latency",
    LATENCY_SPIKE,
    ERROR,
    SESSION_EXPIRY,
    TRUNCATE,
    HTML_INSTEAD,
    LOST_RESPONSE,
    REJECT,
)
# Kinds added later draw after those above, and only in the simulators that have them:
# the web simulators' schedule for a given seed stays what it always was.
_LATE_DRAWS = (FOCUS_STEAL,)

DEFAULT_SEED = 0  # when a configuration names no seed
MAX_DELAY_MS = 600_000.0  # ten minutes: more is a typo, and would tie a server thread up


class FaultConfigError(ValueError):
    """A configuration that cannot be applied; ``key`` names the offending key."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class FaultConfig:
    """One validated configuration. ``given`` is what was set, normalised, for echoing."""

    seed: int = DEFAULT_SEED
    latency_ms: tuple[float, float] | None = None  # None: the simulator's base latency
    rates: Mapping[str, float] = field(default_factory=dict)  # kind -> probability
    spike_ms: float = 0.0
    session_expiry_every: int | None = None
    forced: Mapping[str, frozenset[str]] = field(default_factory=dict)  # kind -> report ids
    given: Mapping[str, Any] = field(default_factory=dict)

    def rate(self, kind: str) -> float:
        return self.rates.get(kind, 0.0)


def allowed_keys(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """Every configuration key a simulator with these fault kinds accepts."""
    keys = ["seed", "latency_ms"]
    for kind in kinds:
        keys += _KEYS_BY_KIND[kind]
    return tuple(keys)


def parse_config(body: Any, kinds: tuple[str, ...]) -> FaultConfig:
    """Validate a configuration body; raise :class:`FaultConfigError` naming the bad key."""
    if not isinstance(body, dict):
        raise FaultConfigError(None, "the fault configuration must be a JSON object")
    allowed = allowed_keys(kinds)
    for key in body:
        if key not in allowed:
            raise FaultConfigError(
                key, f"unknown key {key!r}; this simulator accepts: {', '.join(allowed)}"
            )
    given: dict[str, Any] = {}
    seed = DEFAULT_SEED
    if "seed" in body:
        seed = _integer(body, "seed")
        given["seed"] = seed
    latency: tuple[float, float] | None = None
    if "latency_ms" in body:
        raw = body["latency_ms"]
        if not (isinstance(raw, list) and len(raw) == 2 and all(_is_number(v) for v in raw)):
            raise FaultConfigError("latency_ms", "latency_ms must be [min, max] in milliseconds")
        low, high = float(raw[0]), float(raw[1])
        if not 0 <= low <= high <= MAX_DELAY_MS:
            raise FaultConfigError(
                "latency_ms", f"latency_ms needs 0 <= min <= max <= {MAX_DELAY_MS:g}"
            )
        latency = (low, high)
        given["latency_ms"] = [raw[0], raw[1]]
    rates: dict[str, float] = {}
    for kind in kinds:
        key = _RATE_OF_KIND[kind]
        if key in body:
            value = body[key]
            if not _is_number(value) or not 0 <= value <= 1:
                raise FaultConfigError(key, f"{key} must be a probability between 0 and 1")
            rates[kind] = float(value)
            given[key] = value
    spike_ms = 0.0
    if "spike_ms" in body:
        value = body["spike_ms"]
        if not _is_number(value) or not 0 <= value <= MAX_DELAY_MS:
            raise FaultConfigError("spike_ms", f"spike_ms must be 0..{MAX_DELAY_MS:g}")
        spike_ms = float(value)
        given["spike_ms"] = value
    every: int | None = None
    if "session_expiry_every" in body:
        every = _integer(body, "session_expiry_every")
        if every < 1:
            raise FaultConfigError("session_expiry_every", "session_expiry_every must be >= 1")
        given["session_expiry_every"] = every
    forced: dict[str, frozenset[str]] = {}
    for kind in (TRUNCATE, HTML_INSTEAD):
        if kind in kinds and kind in body:
            ids = body[kind]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise FaultConfigError(kind, f"{kind} must be a list of report ids")
            forced[kind] = frozenset(ids)
            given[kind] = list(ids)
    return FaultConfig(
        seed=seed,
        latency_ms=latency,
        rates=rates,
        spike_ms=spike_ms,
        session_expiry_every=every,
        forced=forced,
        given=given,
    )


def parse_cli(text: str) -> dict[str, Any]:
    """``--faults JSON`` for argparse: a JSON object (its keys are checked by the app)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"error_rate\": 0.1}'")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(body: Mapping[str, Any], key: str) -> int:
    value = body[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise FaultConfigError(key, f"{key} must be an integer")
    return value


@dataclass(frozen=True)
class Roll:
    """The fault draws of one request, taken when it started."""

    generation: int  # which configuration it was drawn under
    index: int  # 1 for the first faultable request after the configuration
    config: FaultConfig
    draws: Mapping[str, float]
    error: bool  # this request is answered 500 before anything else happens


class Faults:
    """The live fault configuration, its random generator and its counters (thread safe)."""

    def __init__(
        self,
        kinds: tuple[str, ...],
        base_latency_ms: Callable[[], float],
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.kinds = kinds
        self._base_latency_ms = base_latency_ms
        self._lock = threading.Lock()
        self._generation = 0
        self._config = FaultConfig()
        self._rng = random.Random(DEFAULT_SEED)
        self._requests = 0
        self._sessioned = 0
        self._injected = dict.fromkeys(kinds, 0)
        self._draw_order = _DRAW_ORDER + tuple(k for k in _LATE_DRAWS if k in kinds)
        self.configure(config or {})

    def configure(self, body: Any) -> FaultConfig:
        """Replace the configuration (``{}``: no faults), reseed and zero the counters."""
        config = parse_config(body, self.kinds)
        with self._lock:
            self._generation += 1
            self._config = config
            self._rng = random.Random(config.seed)
            self._requests = 0
            self._sessioned = 0
            self._injected = dict.fromkeys(self.kinds, 0)
        return config

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {"config": dict(self._config.given), "injected": dict(self._injected)}

    def begin(self) -> Roll:
        """Draw this request's faults, then sleep its latency (base or configured + spike).

        Call once per request that is not ``/_sim/*``, before anything else.
        """
        with self._lock:
            config = self._config
            self._requests += 1
            draws = {name: self._rng.random() for name in self._draw_order}
            spike = draws[LATENCY_SPIKE] < config.rate(LATENCY_SPIKE)
            error = draws[ERROR] < config.rate(ERROR)
            if spike:
                self._injected[LATENCY_SPIKE] += 1
            if error:
                self._injected[ERROR] += 1
            roll = Roll(self._generation, self._requests, config, draws, error)
        if config.latency_ms is None:
            delay_ms = self._base_latency_ms()
        else:
            low, high = config.latency_ms
            delay_ms = low + (high - low) * draws["latency"]
        if spike:
            delay_ms += config.spike_ms
        if delay_ms > 0:  # one sleep per request, and none at all when there is no delay
            time.sleep(delay_ms / 1000)
        return roll

    def expire_session(self, roll: Roll | None) -> bool:
        """Call for a request that carries a valid session and needs one; True: expire it."""
        if roll is None:
            return False
        with self._lock:
            if roll.generation != self._generation:
                return False
            self._sessioned += 1
            every = roll.config.session_expiry_every
            by_count = every is not None and self._sessioned % every == 0
            by_chance = roll.draws[SESSION_EXPIRY] < roll.config.rate(SESSION_EXPIRY)
            hit = by_count or by_chance
            if hit:
                self._injected[SESSION_EXPIRY] += 1
            return hit

    def hit(self, roll: Roll | None, kind: str, report_id: str | None = None) -> bool:
        """Does ``kind`` strike this request (by its draw, or forced for ``report_id``)?

        Counted when it does: call only at the point where the fault is then applied.
        """
        if roll is None:
            return False
        forced = report_id is not None and report_id in roll.config.forced.get(kind, ())
        if not forced and roll.draws[kind] >= roll.config.rate(kind):
            return False
        with self._lock:
            if roll.generation == self._generation:
                self._injected[kind] += 1
        return True


def register_routes(app: Flask, faults: Faults) -> None:
    """``GET`` and ``POST /_sim/faults`` on ``app``."""

    @app.get("/_sim/faults")
    def sim_faults() -> Response:
        return app.json.response(faults.report())

    @app.post("/_sim/faults")
    def sim_set_faults() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        if body is None:
            return app.json.response({"error": "expected a JSON object", "key": None}), 400
        try:
            faults.configure(body)
        except FaultConfigError as error:
            return app.json.response({"error": str(error), "key": error.key}), 400
        return app.json.response(faults.report())


def is_sim_path(path: str) -> bool:
    return path.startswith("/_sim/")


class ConnectionDropped(ConnectionError):
    """Raised from a response body to abandon the response; the server drops the socket.

    Werkzeug's server treats a ``ConnectionError`` from the body as a dropped connection
    and writes nothing; an in-process test client sees this exception instead.
    """


def drop_connection(environ: Mapping[str, Any]) -> None:
    """Shut the client's socket (Werkzeug's dev server exposes it) in both directions."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # the client went away first
            sock.shutdown(socket.SHUT_RDWR)


def no_response(environ: Mapping[str, Any]) -> Response:
    """A response that never reaches the client: the connection closes, nothing sent."""

    def body() -> Iterator[bytes]:
        drop_connection(environ)
        raise ConnectionDropped("simulated lost response")
        yield b""  # never reached; makes this a generator, so it runs only when iterated

    return Response(body())


def truncated(chunks: Iterator[bytes], limit: int, environ: Mapping[str, Any]) -> Iterator[bytes]:
    """The first ``limit`` bytes of ``chunks``, then the connection is shut."""
    sent = 0
    for chunk in chunks:
        if sent >= limit:
            break
        part = chunk[: limit - sent]
        sent += len(part)
        yield part
    drop_connection(environ)


def seeded_latency(name: str, seed: int, latency_ms: tuple[float, float]) -> Callable[[], float]:
    """A simulator's base latency: a seeded draw in ``latency_ms`` per request (0 when the
    range is 0), repeatable for a seed, safe across the server's threads."""
    rng = random.Random(f"{name}/latency/{seed}")
    lock = threading.Lock()

    def draw_ms() -> float:
        low, high = latency_ms
        if high <= 0:
            return 0.0
        with lock:
            return rng.uniform(low, high)

    return draw_ms
