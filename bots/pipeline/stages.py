"""The one layer that retries: stages run with backoff, re-login and a circuit breaker.

A stage is one unit of work against one system (log in, list, download one document,
upload it, confirm it, read it back). Steps never retry, so attempts never multiply.
A retryable error (bots.errors) is tried again with exponential backoff and full
jitter; a lost session is answered by logging in again, then the same stage; after
``retry.breaker`` system errors in a row against one system the breaker opens and the
run stops. Only failures of the system count (``system_fault``): a document that
arrives broken while the system answers uses up its own attempts, nothing more. An
error that is not retryable (a refusal, a recipe problem) ends the stage at once. A
stop (SIGTERM, Ctrl-C) cuts a backoff short.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from credentials import Credential

from ..drivers import Session, StepContext
from ..errors import BusinessError, FleetError, Stopped, SystemFailure
from ..recipe.model import RetrySettings
from ..resilience import Breaker, RetryPolicy, StopFlag

T = TypeVar("T")
# A failed login ends the whole run, and a login is several requests that must all
# succeed: it gets this many times a stage's attempts. The breaker still stops a run
# against a system that is really down.
LOGIN_ATTEMPTS_FACTOR = 3


class EventLog(Protocol):
    """Where the stage runner says what it did: a run's log (bots.runlog.RunLog), or the
    author's terminal (``runner.py try``)."""

    def event(
        self, event: str, *, key: str | None = None, outcome: str = "ok", **details: Any
    ) -> None: ...


@dataclass
class System:
    """One system of a recipe, as a run works it: its session and how to log in."""

    name: str
    spec: Any  # the recipe's section (its driver's model)
    target: str  # its rendered base URL (or what its driver opens)
    session: Session
    credential: Credential
    logged_in: bool = False
    lane: int = 0  # which of the run's lanes holds the session (bots.pipeline.lanes)


class StageRunner:
    """Runs stages for one run: its retry policy, its breaker, its stop flag."""

    def __init__(
        self,
        retry: RetrySettings,
        log: EventLog,
        stop: StopFlag,
        base_vars: dict[str, Any],
        rng: random.Random | None = None,
    ) -> None:
        self.policy = RetryPolicy(
            attempts=retry.attempts, backoff=retry.backoff, max_backoff=retry.max_backoff
        )
        self.breaker = Breaker(retry.breaker)
        self.log = log
        self.stop = stop
        self.base_vars = base_vars
        self.rng = rng or random.Random()
        # Called with (system, stage, key, attempt) each time an attempt fails, while the
        # system still shows what went wrong: the capture photographs it for the evidence.
        self.on_failure: Callable[[System, str, str | None, int], None] | None = None

    def success_hook(self, system: str) -> Callable[[], None]:
        """For a session: every step that succeeds closes the system's breaker again."""
        return lambda: self.breaker.success(system)

    def run(
        self,
        system: System,
        stage: str,
        work: Callable[[], T],
        key: str | None = None,
        progress: Callable[[], int] = lambda: 0,
        attempts: int | None = None,
    ) -> T:
        """Run ``work``; retry what is retryable, with backoff; log in again when the
        session was lost. Attempts are counted without progress: a listing that got
        further before failing starts its count again."""
        attempts = attempts or self.policy.attempts
        failures, relogins, seen = 0, 0, progress()
        while True:
            try:
                return work()
            except FleetError as exc:
                if self.on_failure is not None and not isinstance(exc, Stopped):
                    self.on_failure(system, stage, key, failures + relogins + 1)
                if not exc.retryable:
                    raise
                if exc.system_fault:  # a document that arrives broken is not the system's
                    self.breaker.failure(system.name, exc)  # raises CircuitOpen when tripped
                lost = exc.session_lost or (stage != "login" and system.session.is_logged_out())
                relogin = lost and stage != "login" and relogins < self.policy.attempts
                if relogin and exc.system_fault:  # a lost session costs no attempt
                    relogins += 1
                    self._relogin(system, stage, key, exc)
                    continue
                if progress() > seen:
                    failures, seen = 0, progress()
                failures += 1
                if failures >= attempts:
                    raise
                if relogin:  # a page where a file belongs may be the login page; a
                    relogins += 1  # document that keeps arriving broken uses its attempts
                    self._relogin(system, stage, key, exc)
                delay = self.policy.delay(failures, self.rng)
                self.log.event(
                    "retry",
                    key=key,
                    outcome="warning",
                    system=system.name,
                    stage=stage,
                    attempt=failures + 1,
                    after_s=round(delay, 2),
                    error=str(exc),
                    error_type=type(exc).__name__,
                )
                if self.stop.wait(delay):  # a stop cuts the backoff short
                    raise Stopped(
                        f"stopped by {self.stop.reason} while waiting to retry {stage}",
                        self.stop.reason,
                    ) from exc

    def _relogin(self, system: System, stage: str, key: str | None, exc: FleetError) -> None:
        self.log.event(
            "session_lost",
            key=key,
            outcome="warning",
            system=system.name,
            stage=stage,
            error=str(exc),
        )
        self.login(system)

    def login(self, system: System) -> None:
        """Log in to ``system``; a refusal or running out of attempts stops the run."""
        credential = system.credential
        variables = {**self.base_vars, "credential": credential}

        def work() -> None:
            try:
                system.session.run(system.spec.login, StepContext(variables, phase="login"))
            except BusinessError as exc:  # the system refused us: retrying will not help
                raise SystemFailure(
                    f"cannot log in to {system.name} as {credential.username!r} "
                    f"(credential {credential.name!r}): {exc}. Check the credential "
                    f"(`python runner.py credentials set {credential.name}`)."
                ) from exc

        try:
            self.run(system, "login", work, attempts=LOGIN_ATTEMPTS_FACTOR * self.policy.attempts)
        except FleetError as exc:
            if not exc.retryable:
                raise
            raise SystemFailure(
                f"cannot log in to {system.name} as {credential.username!r}: {exc}. "
                "Check that the system is up; the next run resumes."
            ) from exc
        system.logged_in = True
        lane: dict[str, Any] = {"lane": system.lane} if system.lane else {}
        self.log.event("login", system=system.name, user=credential.username, **lane)

    def logout(self, system: System) -> None:
        """End ``system``'s session with its `logout` steps, once, without retrying: a
        system that counts sessions should see it end, but a run is not failed for a
        logout that did not go through (the session idles out)."""
        if not system.logged_in or not system.spec.logout:
            return
        system.logged_in = False
        try:
            system.session.run(
                system.spec.logout, StepContext(dict(self.base_vars), phase="logout")
            )
        except FleetError as exc:
            self.log.event(
                "logout_failed",
                outcome="warning",
                system=system.name,
                lane=system.lane,
                error=str(exc),
            )
            return
        self.log.event("logout", system=system.name, lane=system.lane)
