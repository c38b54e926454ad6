"""What the stages of one capture share: the run, the recipe, the systems and what this
run has seen so far. Plain state; the stages (listing, download, checks, upload,
confirm) are functions over it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from credentials import Credential

from ..archival.evidence import Shot
from ..drivers import Driver, ScreenshotRefused, SessionConfig, registry
from ..errors import FleetError, RecipeRuntimeError, UsageError
from ..recipe import LoadedRecipe
from ..redaction import Redactor
from ..settings import Settings
from ..templating import TemplateProblem, render
from .context import RunContext, run_context
from .stages import StageRunner, System
from .summary import RunSummary

# The evidence folder of failure pictures that belong to no document (login, listing).
FAILURES = "_failures"


class Credentials(Protocol):
    """Where a run gets its credentials (credentials.CredentialStore, or a test's)."""

    def get(self, name: str) -> Credential: ...


# A URL with a password in its user part: `scheme://user:password@host`.
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s@]*:[^/?#\s@]*@")


def declared_env(env: Any, loaded: LoadedRecipe) -> dict[str, str]:
    """The environment as templates see it: only the names the recipe's `env:` declares
    (an allow-list; a secret's name is refused by the schema), and only those set. A
    value that carries a password in a URL is refused: the template would put it into
    pages, logs and the archive. The message names the variable, never the password."""
    declared = {name: env[name] for name in loaded.recipe.env if name in env}
    for name, value in declared.items():
        if _URL_WITH_PASSWORD.search(value):
            raise UsageError(
                f"{loaded.path}: the environment variable {name} (declared in `env:`) holds "
                "a URL with a password in it (scheme://user:***@host); templates may not "
                "read secrets. Set it without the user part and store the login as a "
                "credential (`runner.py credentials set`)"
            )
    return declared


def base_vars(ctx: RunContext, loaded: LoadedRecipe) -> dict[str, Any]:
    """What every template of the run may read besides what a stage adds."""
    started = ctx.clock()
    return {
        "env": declared_env(ctx.settings.env, loaded),
        "today": started.date().isoformat(),
        "now": started.isoformat(timespec="seconds"),
        "vars": loaded.recipe.vars,
    }


def recipe_details(loaded: LoadedRecipe) -> dict[str, Any]:
    """What a run of a recipe says about it when it starts."""
    return {
        "recipe_file": str(loaded.path),
        "recipe_digest": loaded.digest,
        "retention_schedule": str(loaded.schedule.path),
        "retention_schedule_digest": loaded.schedule.digest,
    }


def recipe_run(
    loaded: LoadedRecipe, action: str, settings: Settings, redactor: Redactor, **options: Any
) -> AbstractContextManager[RunContext]:
    """A run of one recipe (capture, inventory): holding its lock, saying what recipe and
    retention schedule (by digest) it works from."""
    return run_context(
        name=loaded.name,
        action=action,
        settings=settings,
        redactor=redactor,
        digest=loaded.digest,
        start_details=recipe_details(loaded),
        **options,
    )


def render_setting(
    loaded: LoadedRecipe, template: str, variables: dict[str, Any], where: str
) -> str:
    """A system setting (a base URL, the window): a template problem is the recipe's,
    found before anything is contacted."""
    try:
        return render(template, variables)
    except TemplateProblem as exc:
        raise RecipeRuntimeError(f"{loaded.path}", f"{where}: {exc}") from exc


def setting_renderer(
    loaded: LoadedRecipe, variables: dict[str, Any], system: str
) -> Callable[[str, str], str]:
    """``render(template, where)`` for a driver's own settings of ``system`` (source,
    archive): the run's variables, and errors that name ``system.where``."""

    def render_one(template: str, where: str) -> str:
        return render_setting(loaded, template, variables, f"{system}.{where}")

    return render_one


@dataclass
class CaptureRun:
    ctx: RunContext
    loaded: LoadedRecipe
    vars: dict[str, Any]
    stages: StageRunner
    summary: RunSummary
    source: System | None = None
    archive: System | None = None
    # Each document's row as listed in *this* run: what the page offers now (a link
    # that has appeared since) may differ from the first sighting the ledger keeps.
    rows: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # Screenshots of listing rows taken this run, by source key (evidence of capture).
    row_shots: dict[str, Shot] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.loaded.name

    def failure_shot(self, system: System, stage: str, key: str | None, attempt: int) -> None:
        """The system's screen as a failed attempt left it (never with a password on it:
        the session refuses), kept as evidence and named in the run log."""
        lane = f"-lane{system.lane}" if system.lane else ""  # lanes fail side by side
        shot = self.screenshot(system, key or FAILURES, f"failure-{stage}-{attempt}{lane}")
        if shot is not None:
            self.ctx.log.event(
                "failure_screenshot",
                key=key,
                outcome="warning",
                system=system.name,
                stage=stage,
                attempt=attempt,
                path=str(shot.path),
                sha256=shot.sha256,
            )

    def screenshot(self, system: System, key: str, what: str, target: Any = None) -> Shot | None:
        """Evidence is worth having, not worth failing a capture for: a miss is logged."""
        try:
            return self.ctx.evidence.screenshot(system.session, key, what, target)
        except ScreenshotRefused as exc:
            self.ctx.log.event(
                "screenshot_skipped", key=key, outcome="warning", what=what, error=str(exc)
            )
            return None

    def screenshot_rows(
        self, system: System, what: str, rows: Sequence[tuple[str, Any]]
    ) -> dict[str, Shot]:
        """``screenshot`` for each (key, row handle) of one listing page, at once: the
        rows photographed, by key; each miss logged."""
        shots: dict[str, Shot] = {}
        taken = self.ctx.evidence.screenshot_rows(system.session, what, rows)
        for (key, _), shot in zip(rows, taken, strict=True):
            if isinstance(shot, ScreenshotRefused):
                self.ctx.log.event(
                    "screenshot_skipped", key=key, outcome="warning", what=what, error=str(shot)
                )
            else:
                shots[key] = shot
        return shots


@dataclass(frozen=True)
class Target:
    """What a session on one system of the recipe needs, known before any is opened."""

    name: str  # source, archive
    spec: Any  # the recipe's section
    target: str  # rendered (a base URL; what a desktop driver opens)
    credential: Credential


def resolve_systems(
    loaded: LoadedRecipe,
    store: Credentials,
    variables: dict[str, Any],
    which: tuple[str, ...] = ("source", "archive"),
) -> dict[str, Target]:
    """Credentials and rendered targets of the recipe's systems: a missing credential or
    a broken template stops the run here, before any system is contacted. Read once
    per run (a keyring read costs a key derivation), whatever the number of lanes."""
    specs = {name: getattr(loaded.recipe, name) for name in which}
    credentials = {name: store.get(spec.credential) for name, spec in specs.items()}
    return {
        name: Target(
            name,
            spec,
            render_setting(
                loaded,
                registry.get(spec.driver).target(spec),
                variables,
                f"{name}.{registry.get(spec.driver).target_field}",
            ),
            credentials[name],
        )
        for name, spec in specs.items()
    }


class Sessions:
    """One session on each of ``targets``, one driver per kind, opened in the calling
    thread (Playwright's sync API and a desktop display stay with the thread that opened
    them). ``close`` logs out each session logged in (its `logout` steps), then closes
    them all; once, however often it is called. As a context manager, leaving on an
    error other than the fleet's (a second Ctrl-C, a crash) closes without logging out."""

    def __init__(
        self,
        ctx: RunContext,
        loaded: LoadedRecipe,
        stages: StageRunner,
        targets: dict[str, Target],
        variables: dict[str, Any],
        lane: int = 0,
    ) -> None:
        self.stages = stages
        self.drivers: dict[str, Driver] = {}
        self.systems: dict[str, System] = {}
        try:
            for name, target in targets.items():
                spec = target.spec
                if spec.driver not in self.drivers:
                    self.drivers[spec.driver] = registry.get(spec.driver).start(ctx.settings.env)
                session = self.drivers[spec.driver].open(
                    SessionConfig(
                        system=spec.system,
                        spec=spec,
                        target=target.target,
                        recipe=loaded,
                        emit=ctx.log.event,
                        on_success=stages.success_hook(spec.system),
                        render=setting_renderer(loaded, variables, name),
                    )
                )
                self.systems[name] = System(
                    spec.system, spec, target.target, session, target.credential, lane=lane
                )
        except BaseException:
            self.close(log_out=False)
            raise

    def close(self, log_out: bool = True) -> None:
        try:
            if log_out:
                for system in self.systems.values():
                    self.stages.logout(system)
        finally:
            drivers, self.drivers = self.drivers, {}
            for driver in drivers.values():
                driver.close()

    def __enter__(self) -> dict[str, System]:
        return self.systems

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        self.close(log_out=exc is None or isinstance(exc, FleetError))


@contextmanager
def open_systems(
    ctx: RunContext,
    loaded: LoadedRecipe,
    stages: StageRunner,
    store: Credentials,
    variables: dict[str, Any],
    which: tuple[str, ...] = ("source", "archive"),
) -> Iterator[dict[str, System]]:
    """Sessions on the recipe's systems (``which``), one driver per kind; all logged out
    and closed on the way out. Credentials and settings come first (``resolve_systems``)."""
    targets = resolve_systems(loaded, store, variables, which)
    with Sessions(ctx, loaded, stages, targets, variables) as systems:
        yield systems
