"""Log in to a recipe's systems with its own login steps, and nothing else.

What ``credentials test`` and ``doctor --login`` run: the systems opened the way a capture
opens them (``open_systems``), the login stage the way a capture runs it (``StageRunner``,
with the recipe's retry policy), but no run: no lock, no ledger row, no run log, no
evidence, nothing sent to the archive. The events the drivers emit are kept in memory
only, for the failure message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from ..errors import EXIT_OK, EXIT_SYSTEM, CredentialError, FleetError
from ..recipe import LoadedRecipe
from ..redaction import Redactor
from ..resilience import StopFlag
from ..settings import Settings
from .context import local_now
from .run import Credentials, base_vars, open_systems
from .stages import StageRunner

if TYPE_CHECKING:
    from ..runlog import RunLog
    from .context import RunContext

SYSTEMS = ("source", "archive")


@dataclass(frozen=True)
class LoginResult:
    recipe: str
    role: str  # "source" or "archive"
    system: str  # the system's name in the recipe
    credential: str
    ok: bool
    said: str  # "logged in as 'clerk'" or the failure, scrubbed
    exit_code: int = EXIT_OK  # 2: a credential or recipe problem; 3: the login failed


@dataclass
class _Events:
    """A run log's ``event`` without the file: the check keeps no record."""

    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def event(
        self, event: str, *, key: str | None = None, outcome: str = "ok", **details: Any
    ) -> None:
        self.seen.append((event, {"key": key, "outcome": outcome, **details}))


@dataclass
class _CheckContext:
    """What ``open_systems`` and ``base_vars`` read of a run's context: its settings,
    clock and log. The rest of a RunContext (ledger, lock, evidence) is what this check
    must not touch, so it has none."""

    settings: Settings
    log: _Events
    clock: Callable[[], datetime] = local_now
    stop: StopFlag = field(default_factory=StopFlag)


def systems_using(loaded: LoadedRecipe, credential: str) -> tuple[str, ...]:
    """The recipe's systems (source, archive) that log in with ``credential``."""
    return tuple(r for r in SYSTEMS if getattr(loaded.recipe, r).credential == credential)


def check_login(
    loaded: LoadedRecipe,
    which: tuple[str, ...],
    store: Credentials,
    settings: Settings,
    redactor: Redactor,
    stop: StopFlag | None = None,
) -> list[LoginResult]:
    """Log in to each system of ``which`` (source, archive) in turn, each on a session of
    its own, and say how each went. Never raises a FleetError: a missing credential, a
    broken template or a refused login is that system's result."""
    return [_one(loaded, role, store, settings, redactor, stop or StopFlag()) for role in which]


def _one(
    loaded: LoadedRecipe,
    role: str,
    store: Credentials,
    settings: Settings,
    redactor: Redactor,
    stop: StopFlag,
) -> LoginResult:
    spec = getattr(loaded.recipe, role)
    events = _Events()
    # open_systems and StageRunner are typed for a real run; they read only the
    # settings, the clock and ``log.event`` (tests/test_doctor.py holds them to that).
    ctx = cast("RunContext", _CheckContext(settings, events, stop=stop))
    variables = base_vars(ctx, loaded)
    stages = StageRunner(loaded.recipe.retry, cast("RunLog", events), stop, variables)

    def said(ok: bool, text: str, code: int = EXIT_OK) -> LoginResult:
        return LoginResult(
            loaded.name, role, spec.system, spec.credential, ok, redactor.scrub(text), code
        )

    try:
        with open_systems(ctx, loaded, stages, store, variables, which=(role,)) as systems:
            system = systems[role]
            stages.login(system)
            return said(True, f"logged in as {system.credential.username!r}")
    except CredentialError as exc:
        return said(False, str(exc), exc.exit_code)
    except FleetError as exc:
        return said(False, str(exc), exc.exit_code or EXIT_SYSTEM)
