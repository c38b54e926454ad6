"""Backoff with full jitter, the circuit breaker, the stop flag and its signal handlers."""

from __future__ import annotations

import itertools
import os
import random
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from bots.errors import EXIT_SYSTEM, CircuitOpen, StepFailed, TransientError
from bots.resilience import (
    STOP_EXIT_CODES,
    Breaker,
    RetryPolicy,
    StopFlag,
    install_stop_handlers,
)

DRAWS = 2000


def draws(policy: RetryPolicy, attempt: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [policy.delay(attempt, rng) for _ in range(DRAWS)]


@pytest.mark.parametrize(
    ("backoff", "max_backoff"), [(1.0, 30.0), (0.25, 4.0), (2.0, 1.0), (0.0, 30.0)]
)
def test_retry_delay_stays_within_full_jitter_bounds(backoff: float, max_backoff: float) -> None:
    policy = RetryPolicy(attempts=10, backoff=backoff, max_backoff=max_backoff)
    for attempt in range(1, 11):
        cap = min(max_backoff, backoff * 2 ** (attempt - 1))
        delays = draws(policy, attempt, seed=attempt)
        assert all(0.0 <= d <= cap for d in delays), (attempt, cap, max(delays))
        if cap > 0:  # jitter: spread over the range, not a fixed delay
            assert min(delays) < 0.05 * cap and max(delays) > 0.95 * cap


def test_retry_delay_grows_with_the_attempt_until_the_cap() -> None:
    policy = RetryPolicy(attempts=10, backoff=1.0, max_backoff=30.0)
    maxima = [max(draws(policy, attempt)) for attempt in range(1, 9)]
    # uncapped: 1, 2, 4, 8, 16 seconds at most, each clearly above the one before
    for before, after in itertools.pairwise(maxima[:5]):
        assert after > 1.5 * before, maxima
    # from the sixth attempt on (32s, 64s, ...) the cap holds them at 30s
    assert all(28.0 < m <= 30.0 for m in maxima[5:]), maxima
    assert maxima[5] > maxima[4]


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    breaker = Breaker(threshold=3)
    breaker.failure("ERP", TransientError("HTTP 500"))
    breaker.failure("ERP", TransientError("HTTP 500"))
    with pytest.raises(CircuitOpen):
        breaker.failure("ERP", TransientError("HTTP 500"))


def test_breaker_with_threshold_one_opens_on_the_first_failure() -> None:
    with pytest.raises(CircuitOpen):
        Breaker(threshold=1).failure("ERP", TransientError("down"))


def test_a_success_in_between_resets_the_breaker() -> None:
    breaker = Breaker(threshold=3)
    for _ in range(5):  # 2 failures, a success, 2 failures ...: never 3 in a row
        breaker.failure("ERP", TransientError("HTTP 500"))
        breaker.failure("ERP", TransientError("HTTP 500"))
        breaker.success("ERP")
    breaker.failure("ERP", TransientError("HTTP 500"))
    breaker.failure("ERP", TransientError("HTTP 500"))
    with pytest.raises(CircuitOpen):
        breaker.failure("ERP", TransientError("HTTP 500"))


def test_breaker_counts_each_system_separately() -> None:
    breaker = Breaker(threshold=3)
    for _ in range(2):
        breaker.failure("ERP", TransientError("erp"))
        breaker.failure("archive", TransientError("archive"))
    breaker.success("archive")  # the archive answering does not excuse the ERP
    breaker.failure("archive", TransientError("archive"))
    with pytest.raises(CircuitOpen) as opened:
        breaker.failure("ERP", TransientError("erp"))
    assert "against ERP" in str(opened.value)


def test_circuit_open_names_the_system_and_the_last_error() -> None:
    breaker = Breaker(threshold=2)
    breaker.failure("档案系统", TransientError("HTTP 502 for /ingest"))
    last = StepFailed("recipes/demo.yaml:112", "click", "Timeout 2000ms", "http://x/ingest")
    with pytest.raises(CircuitOpen) as opened:
        breaker.failure("档案系统", last)
    message = str(opened.value)
    assert "2 system errors in a row against 档案系统" in message
    assert "Last error: recipes/demo.yaml:112: step 'click' failed on http://x/ingest" in message
    assert "HTTP 502" not in message  # the last error, not the first
    assert opened.value.__cause__ is last
    assert opened.value.exit_code == EXIT_SYSTEM == 3


def test_stop_flag_wait_returns_early_when_set() -> None:
    stop = StopFlag()
    setter = threading.Timer(0.1, stop.set, args=("SIGTERM",))
    started = time.monotonic()
    setter.start()
    try:
        assert stop.wait(30) is True
    finally:
        setter.cancel()
    assert time.monotonic() - started < 5
    assert stop.is_set() and stop.reason == "SIGTERM"


def test_stop_flag_wait_sleeps_the_whole_backoff_when_not_set() -> None:
    stop = StopFlag()
    started = time.monotonic()
    assert stop.wait(0.2) is False
    assert time.monotonic() - started >= 0.19
    assert not stop.is_set() and stop.reason is None


@pytest.fixture
def handlers() -> Iterator[StopFlag]:
    """The stop handlers installed for one test; the test's own are put back after."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stop = StopFlag()
    restore = install_stop_handlers(stop)
    try:
        yield stop
    finally:
        restore()
        for sig, handler in before.items():
            signal.signal(sig, handler)


def wait_for_flag(stop: StopFlag) -> None:
    deadline = time.monotonic() + 5
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)  # the Python-level handler runs between bytecodes


def test_sigterm_sets_the_stop_flag_and_does_not_end_the_process(handlers: StopFlag) -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    wait_for_flag(handlers)
    assert handlers.is_set() and handlers.reason == "SIGTERM"
    assert STOP_EXIT_CODES[handlers.reason] == 143  # we are still here to say so


def test_first_ctrl_c_asks_to_stop_and_a_second_interrupts_at_once(handlers: StopFlag) -> None:
    os.kill(os.getpid(), signal.SIGINT)  # raises nothing: finish the current document
    wait_for_flag(handlers)
    assert handlers.reason == "SIGINT" and STOP_EXIT_CODES["SIGINT"] == 130
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)


def test_restore_puts_the_previous_handlers_back() -> None:
    def previous_term(signum: int, frame: object) -> None:
        raise AssertionError("not called by this test")

    before_int = signal.getsignal(signal.SIGINT)
    before_term = signal.signal(signal.SIGTERM, previous_term)
    try:
        restore = install_stop_handlers(StopFlag())
        assert signal.getsignal(signal.SIGTERM) is not previous_term
        assert signal.getsignal(signal.SIGINT) is not before_int
        restore()
        assert signal.getsignal(signal.SIGTERM) is previous_term
        assert signal.getsignal(signal.SIGINT) is before_int
    finally:
        signal.signal(signal.SIGTERM, before_term)
        signal.signal(signal.SIGINT, before_int)
