"""How the fleet answers system errors: retry with backoff, a circuit breaker, a stop flag.

One layer retries: the capture stage (log in, list, download one document, upload it,
confirm it). Steps never retry by themselves, so attempts never multiply.
"""

from __future__ import annotations

import random
import signal
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import STOP_EXIT_CODES, CircuitOpen

__all__ = ["STOP_EXIT_CODES", "Breaker", "RetryPolicy", "StopFlag", "install_stop_handlers"]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # per stage, counting the first
    backoff: float = 1.0  # seconds before the second attempt; doubles each time
    max_backoff: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^(n-1))]."""
        return rng.uniform(0.0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


@dataclass
class Breaker:
    """Opens after ``threshold`` consecutive system errors against one system.

    Any successful step against the system closes it again: a system that answers
    most requests is slow or rude, not down.
    """

    threshold: int
    failures: dict[str, int] = field(default_factory=dict)

    def success(self, system: str) -> None:
        self.failures[system] = 0

    def failure(self, system: str, error: Exception) -> None:
        count = self.failures.get(system, 0) + 1
        self.failures[system] = count
        if count >= self.threshold:
            raise CircuitOpen(
                f"{count} system errors in a row against {system}; the run stops here so as "
                f"not to hammer it. Last error: {error}. Check that {system} is up, then run "
                "again: the next run resumes where this one stopped."
            ) from error


class StopFlag:
    """Set by SIGTERM/SIGINT: finish the current document, then stop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep for a backoff, waking at once if a stop is requested."""
        return self._event.wait(seconds)


def install_stop_handlers(stop: StopFlag) -> Callable[[], None]:
    """SIGTERM or Ctrl-C: finish the current document, then stop. A second Ctrl-C
    interrupts at once. Returns a function that puts the old handlers back."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, _frame: types.FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set(name)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
