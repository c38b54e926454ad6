"""The fleet's timing numbers: one set for every worker of the fleet.

They must be the same on every machine: a worker prunes other workers whose heartbeat is
older than its ``stalled_after``, so a machine configured shorter than the rest would
declare live workers dead and have their running jobs retried behind their backs
(measured with Procrastinate 3.10: the live worker is not told). Hence one number,
``stalled_after``, used both as Procrastinate's ``stalled_worker_timeout`` (pruning)
and as the sweeper's ``seconds_since_heartbeat`` (finding stalled jobs), at least three
heartbeats long.

Each may be tuned with an environment variable (``FLEET_*_SECONDS``, ``FLEET_MAX_STALLS``):
set it alike on every machine. A stalled job is retried within about
``stalled_after + sweep_every`` seconds of its worker's death (``stall_bound``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:  # Procrastinate loads in fleet commands only
    from procrastinate.app import WorkerOptions

# variable -> field; the defaults are the dataclass's.
ENVIRONMENT = {
    "FLEET_HEARTBEAT_SECONDS": "heartbeat",
    "FLEET_STALLED_AFTER_SECONDS": "stalled_after",
    "FLEET_SWEEP_SECONDS": "sweep_every",
    "FLEET_MAX_STALLS": "max_stalls",
    "FLEET_LEASE_TTL_SECONDS": "lease_ttl",
    "FLEET_SLOT_TTL_SECONDS": "slot_ttl",
}
_VARIABLE = {field: variable for variable, field in ENVIRONMENT.items()}

# How many heartbeats a holder may miss before it counts as gone: one missed beat (a slow
# database, a pause) must not cost a live worker its jobs, lease or sessions.
BEATS_PER_TIMEOUT = 3


@dataclass(frozen=True)
class FleetSettings:
    """Seconds unless named otherwise. Validated when made: a wrong combination is a
    usage error naming the variable to fix."""

    # A worker's heartbeat in procrastinate_workers (Procrastinate's
    # update_heartbeat_interval): how early a dead worker can be seen.
    heartbeat: float = 5.0
    # No heartbeat for this long: the worker is dead and its running jobs have stalled
    # (Procrastinate's stalled_worker_timeout and the sweeper's seconds_since_heartbeat).
    stalled_after: float = 20.0
    # How often each worker's sweeper looks for stalled jobs.
    sweep_every: float = 5.0
    # A job whose worker died this many times while running it is given up (failed, its
    # documents held) instead of retried: a document that kills its browser cannot loop.
    max_stalls: int = 3
    # The recipe lease (one listing per recipe across the fleet) and the session slots
    # (the fleet-wide cap per system) expire this long after their holder's last
    # heartbeat; holders beat every ttl / 3 (lease_heartbeat, slot_heartbeat).
    lease_ttl: float = 30.0
    slot_ttl: float = 30.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not math.isfinite(value) or value <= 0:
                raise self._error(item.name, f"must be a positive number, not {value}")
        if self.max_stalls < 1 or int(self.max_stalls) != self.max_stalls:
            raise self._error("max_stalls", f"must be a whole number >= 1, not {self.max_stalls}")
        if self.stalled_after < BEATS_PER_TIMEOUT * self.heartbeat:
            raise self._error(
                "stalled_after",
                f"({self.stalled_after:g} s) must be at least {BEATS_PER_TIMEOUT} heartbeats "
                f"({_VARIABLE['heartbeat']} = {self.heartbeat:g} s): a worker that misses "
                "one heartbeat would be declared dead and its jobs run twice",
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FleetSettings:
        """The defaults, with each ``FLEET_*`` variable of ``ENVIRONMENT`` that is set."""
        given: dict[str, float | int] = {}
        for variable, name in ENVIRONMENT.items():
            text = env.get(variable, "").strip()
            if not text:
                continue
            try:
                given[name] = int(text) if name == "max_stalls" else float(text)
            except ValueError as exc:
                raise UsageError(f"{variable} must be a number, not {text!r}") from exc
        return cls(**given)  # type: ignore[arg-type]

    @property
    def lease_heartbeat(self) -> float:
        return self.lease_ttl / BEATS_PER_TIMEOUT

    @property
    def slot_heartbeat(self) -> float:
        return self.slot_ttl / BEATS_PER_TIMEOUT

    @property
    def stall_bound(self) -> float:
        """Seconds from a worker's death until its job is back in the queue, at most:
        its heartbeat goes stale, then the next sweep sees it (a worker then picks the
        job up within a moment: LISTEN/NOTIFY)."""
        return self.stalled_after + self.sweep_every

    def worker_options(self) -> WorkerOptions:
        """Procrastinate's worker options these numbers set (``App(worker_defaults=)``)."""
        return {
            "update_heartbeat_interval": self.heartbeat,
            "stalled_worker_timeout": self.stalled_after,
        }

    @staticmethod
    def _error(name: str, problem: str) -> UsageError:
        return UsageError(f"{_VARIABLE[name]} {problem}")
