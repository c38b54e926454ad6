"""Every error the fleet raises on purpose, each carrying who must act and the exit code.

Borrowed from robocorp work items and click: an error says its *category* (who is at
fault) and the process exit code the command line ends with, so that only the CLI's
entry point calls ``sys.exit``. Whether an error is worth another attempt is a
*property* (``retryable``), not a place in the hierarchy: a retryable error is not a
kind of "stop the run".

| category | examples | exit | answer |
|---|---|---|---|
| usage | bad command line, recipe, credential; a recipe that cannot work as written | 2 | fix it |
| business | a refusal by the archive, bad data, failed checks | 1 | the document is held |
| system | a system failed and retrying now will not help; the breaker | 3 | the run stops |
| system, machine | a full disk, a read-only ledger, the logs folder gone | 3 | stops at once |
| system, retryable | a timeout, a 5xx, a dropped connection, a lost session | 3 | retried |
| locked | the recipe is already running | 75 | nothing to do |
| stopped | SIGTERM / Ctrl-C | 143 / 130 | the next run carries on |
"""

from __future__ import annotations

import errno
import os
from enum import StrEnum
from typing import ClassVar

EXIT_OK = 0
EXIT_DOCUMENT_FAILURES = 1
EXIT_USAGE = 2
EXIT_SYSTEM = 3
EXIT_LOCKED = 75  # EX_TEMPFAIL (sysexits.h): try again later
STOP_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}  # 128 + signal number, as shells report


class Category(StrEnum):
    USAGE = "usage"  # the operator or the recipe author must fix something
    BUSINESS = "business"  # this document cannot be captured as it stands
    SYSTEM = "system"  # a system or the machine failed
    LOCKED = "locked"  # another run holds the recipe
    STOPPED = "stopped"  # a person or the service manager asked us to stop


class FleetError(Exception):
    """Base of every error the fleet raises on purpose."""

    category: ClassVar[Category] = Category.SYSTEM
    exit_code: int = EXIT_SYSTEM
    # Worth another attempt by the stage that met it (with backoff)?
    retryable: ClassVar[bool] = False
    # The session is gone: log in again before the next attempt.
    session_lost: ClassVar[bool] = False
    # A failure *of the system* (a refused login, a 5xx, a page that did not answer, a
    # dropped connection), counted by the circuit breaker. False for a document that
    # arrives broken while the system answers: it is retried, then held by name.
    system_fault: ClassVar[bool] = True


# -- usage: fix something, then run again -------------------------------------------


class UsageError(FleetError):
    """Bad command line, recipe or configuration; fix it and run again."""

    category = Category.USAGE
    exit_code = EXIT_USAGE


class RecipeError(UsageError):
    """A recipe is malformed. Each problem is ``(where, what)``, ``where`` being ``file:line``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("\n".join(f"{where}: {what}" for where, what in problems))
        self.problems = problems


class RecipeRuntimeError(UsageError):
    """A recipe that validated but cannot work as written, found while running it (a
    setting whose template fails, download steps that never produce a file). Every
    document would meet it: the run stops, keeping what it captured."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"recipe error: {where}: {problem}")
        self.where = where


class RecipeStepError(UsageError):
    """A step failed on a page that answered normally (the last navigation 2xx/3xx, the
    page loaded, no logged-out marker): the recipe does not fit the page, and trying
    again will not change that. Reported after one attempt; in a document's stages the
    document is held, elsewhere the run stops."""

    def __init__(
        self, where: str, step: str, selector: str | None, url: str, problem: str, shown: str
    ) -> None:
        target = f" ({selector})" if selector else ""
        super().__init__(
            f"recipe problem: {where}: step {step!r}{target} failed on {url}, a page that "
            f"answered normally: {problem}. The page showed: {shown}"
        )
        self.where = where
        self.step = step
        self.selector = selector
        self.url = url


class CredentialError(UsageError):
    """A credential is missing, or the credential store cannot be opened."""


class BrowserNotFound(UsageError):
    """No Chromium could be found to drive."""


class DriverError(UsageError):
    """A recipe names a driver this installation does not have, or it cannot start."""


# -- business: the document is held ---------------------------------------------------


class BusinessError(FleetError):
    """This document cannot be captured as it stands; never retried automatically."""

    category = Category.BUSINESS
    exit_code = EXIT_DOCUMENT_FAILURES


class NotFound(BusinessError):
    """The system answered that what was asked for is not there (HTTP 404 or 410) while an
    item it acknowledged was being read back: asking again every night will not make it
    appear. The confirm stage turns it into a hold that names the archive id."""


# -- system: the run stops, or the stage retries -------------------------------------


class SystemFailure(FleetError):
    """A system or the machine failed and retrying will not help now; the run stops."""


class MachineFailure(SystemFailure):
    """This machine cannot keep what the run writes: a full disk, a read-only file
    system or ledger, an I/O error, the logs folder removed or replaced under the run.
    The run stops at once (what it did next could not be recorded), naming the cause;
    every document stays in a state the next run resumes from."""

    @classmethod
    def from_os_error(cls, exc: OSError, what: str) -> MachineFailure:
        """``what`` (``"cannot write the run log X"``) with the cause ``exc`` names."""
        cause = MACHINE_ERRNOS.get(exc.errno or 0, "the machine refused the write")
        code = errno.errorcode.get(exc.errno or 0, "?")
        return cls(f"{what}: {cause} ({code}: {exc.strerror or exc})")


# OSErrors that say the machine, not the document or the system, failed a write.
MACHINE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EIO: "a disk I/O error",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "the file is too large for the file system",
    errno.ESTALE: "the file is gone (stale file handle)",
}


def machine_failure(exc: BaseException, what: str = "a write failed") -> MachineFailure | None:
    """``exc`` as a ``MachineFailure`` when it is an OSError the machine caused, else None."""
    if isinstance(exc, MachineFailure):
        return exc
    if isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS:
        where = f" ({os.fsdecode(exc.filename)})" if exc.filename else ""
        return MachineFailure.from_os_error(exc, f"{what}{where}")
    return None


class CircuitOpen(SystemFailure):
    """Too many system errors in a row against one system: the run stops cleanly."""


class TransientError(FleetError):
    """A system error worth retrying: a timeout, a 5xx, a dropped connection, a cut file.

    When its stage runs out of attempts the document fails (system) and the next run
    tries again; the run itself goes on."""

    retryable = True


class SessionExpired(TransientError):
    """The system logged us out; answered by logging in again."""

    session_lost = True


class UnexpectedPage(TransientError):
    """A page arrived where a file was expected (often a login page: the session is gone).

    The system answered: a new login is worth it, but the breaker does not count it, and
    every attempt counts, so a document that is always a page is held by name."""

    session_lost = True
    system_fault = False


class Incomplete(TransientError):
    """A transfer stopped short of the length the server declared (the system answered;
    the document is retried, then held by name; the breaker does not count it)."""

    system_fault = False


class StepFailed(TransientError):
    """A recipe step could not be carried out (nothing matched, a timeout)."""

    def __init__(self, where: str, step: str, problem: str, url: str) -> None:
        super().__init__(f"{where}: step {step!r} failed on {url}: {problem}")
        self.where = where
        self.step = step
        self.url = url
        self.problem = problem


# -- the run's own ends ---------------------------------------------------------------


class Stopped(FleetError):
    """A stop was asked for (SIGTERM, Ctrl-C): whatever is in hand stays resumable."""

    category = Category.STOPPED

    def __init__(self, message: str, signal: str | None = None) -> None:
        super().__init__(message)
        self.signal = signal
        self.exit_code = STOP_EXIT_CODES.get(signal or "", EXIT_SYSTEM)


class Locked(FleetError):
    """Another run of the same recipe holds its lock."""

    category = Category.LOCKED
    exit_code = EXIT_LOCKED
