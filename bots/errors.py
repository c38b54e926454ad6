"""The fleet's exceptions, split by who must act on them.

Borrowed from robocorp work items and click: each class carries the process exit code
that the command line uses when it ends a run, so that only the CLI calls ``sys.exit``.

- ``UsageError``: the operator or the recipe author must fix something (exit 2).
- ``BusinessError``: this one document cannot be captured as it is (bad data, a refusal
  by the archive); it is recorded on the document and the run goes on (exit 1 overall).
- ``TransientError`` (a ``SystemFailure``): a system misbehaved (timeout, 5xx, dropped
  connection); retried with backoff by the capture stage, then the document fails and the
  next run retries it. ``SystemFailure`` itself, or the circuit breaker, stops the run
  (exit 3).
- ``Locked``: another run of the recipe is going on (exit 75, EX_TEMPFAIL).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DOCUMENT_FAILURES = 1
EXIT_USAGE = 2
EXIT_SYSTEM = 3
EXIT_LOCKED = 75  # EX_TEMPFAIL (sysexits.h): try again later


class FleetError(Exception):
    """Base of every error the fleet raises on purpose."""

    exit_code = EXIT_SYSTEM


class UsageError(FleetError):
    """Bad command line, recipe or configuration; fix it and run again."""

    exit_code = EXIT_USAGE


class RecipeError(UsageError):
    """A recipe is malformed. Each problem is ``(where, what)``, ``where`` being ``file:line``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("\n".join(f"{where}: {what}" for where, what in problems))
        self.problems = problems


class CredentialError(UsageError):
    """A credential is missing, or the credential store cannot be opened."""


class BrowserNotFound(UsageError):
    """No Chromium could be found to drive."""


class BusinessError(FleetError):
    """This document cannot be captured as it stands; never retried automatically."""

    exit_code = EXIT_DOCUMENT_FAILURES


class SystemFailure(FleetError):
    """A system or the machine failed and retrying will not help now; the run stops."""

    exit_code = EXIT_SYSTEM


class TransientError(SystemFailure):
    """A system error worth retrying: a timeout, a 5xx, a dropped connection, a cut file."""


class SessionExpired(TransientError):
    """The system logged us out; answered by one re-login."""


class CircuitOpen(SystemFailure):
    """Too many system errors in a row against one system: the run stops cleanly."""


class Stopped(FleetError):
    """A stop was asked for (SIGTERM, Ctrl-C) while waiting to retry: leave it for next run."""


class Locked(FleetError):
    """Another run of the same recipe holds its lock."""

    exit_code = EXIT_LOCKED


class StepFailed(TransientError):
    """A recipe step could not be carried out on the page (nothing matched, a timeout)."""

    def __init__(self, where: str, step: str, problem: str, url: str) -> None:
        super().__init__(f"{where}: step {step!r} failed on {url}: {problem}")
        self.where = where
        self.step = step
        self.url = url
