"""The command line's frame: the group, its shared options, the console (output through
the process's redactor), the run report, and ``entry``. Nothing below the command group
exits: commands return codes or raise, the group turns both into the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .. import __version__
from ..errors import EXIT_OK, FleetError, machine_failure
from ..redaction import Redactor  # cheap: json only
from ..settings import PROJECT_ROOT, Settings

# Heavy modules (the pipeline, Playwright, SQLAlchemy, pandas, rich) load inside the
# commands that need them: `--help`, `check` and cron's no-op paths stay cheap.
if TYPE_CHECKING:
    from ..ledger import Ledger
    from ..pipeline import RunSummary
    from ..recipe import LoadedRecipe

LOCAL_TIME = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])  # naive: local time


@dataclass
class Console:
    """This process's output, through its redactor: every secret fetched is registered
    there, so nothing printed can show one."""

    redactor: Redactor = field(default_factory=Redactor)

    def out(self, message: str) -> None:
        click.echo(self.redactor.scrub(message))

    def err(self, message: str) -> None:
        click.echo(self.redactor.scrub(message), err=True)


pass_console = click.make_pass_decorator(Console, ensure=True)


class FleetGroup(click.Group):
    """The one layer that turns outcomes into exit codes: a command returns its code or
    raises; a fleet error becomes one clear line (through the redactor) and its class's
    code. Click's own ``main`` then exits with it."""

    def invoke(self, ctx: click.Context) -> Any:
        console = ctx.ensure_object(Console)
        try:
            code = super().invoke(ctx)
        except FleetError as exc:
            console.err(f"error: {exc}")
            code = exc.exit_code
        except OSError as exc:  # a full disk, a read-only file system: exit 3, named
            machine = machine_failure(exc)
            if machine is None:
                raise
            console.err(f"error: {machine}")
            code = machine.exit_code
        ctx.exit(code if isinstance(code, int) else EXIT_OK)


def entry(args: Sequence[str] | None = None) -> NoReturn:
    """The command line's entry point (runner.py): this process's console, then click."""
    main.main(args=args, prog_name="runner.py", obj=Console())
    raise AssertionError("click's main exits")  # pragma: no cover


def _resolve_recipe(recipe: str) -> Path:
    """A path, or the name of a recipe in recipes/ (``demo`` → recipes/demo.yaml)."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return PROJECT_ROOT / "recipes" / f"{recipe}.yaml"


def _load(recipe: str) -> LoadedRecipe:
    from ..recipe import load_recipe

    return load_recipe(_resolve_recipe(recipe))


def _ledger(settings: Settings, *, migrate: bool = True) -> Ledger:
    """The ledger, upgraded first by commands that write (``migrate``); a command that
    only reads refuses a ledger that is behind, saying what to run."""
    from ..ledger import Ledger
    from ..pipeline.context import local_now

    return Ledger.open(
        settings.ledger_url, local_now, staging_root=settings.staging_root, migrate=migrate
    )


def report(console: Console, summary: RunSummary) -> int:
    """Failures to standard error, each with what to do next; the summary line; the code."""
    from ..ledger import FailureKind

    for key, reason, kind in summary.failures:
        console.err(f"FAILED {summary.recipe} {key} ({kind}): {reason}")
    for doc in summary.held:
        console.err(f"HELD {summary.recipe} {doc.source_key}: {doc.last_error}")
    if any(kind is FailureKind.SYSTEM for *_, kind in summary.failures):
        console.err(
            "next: system errors are retried by the next run; if they persist, check the system"
        )
    if any(kind is FailureKind.BUSINESS for *_, kind in summary.failures) or summary.held:
        console.err(
            "next: business failures are not retried as they stand. Fix the recipe (a changed "
            "recipe retries them) or the data at the source, then "
            f"`python runner.py retry {summary.recipe} KEY...`"
        )
    if summary.system_failure and not any(
        reason == summary.system_failure for _, reason, _ in summary.failures
    ):  # not already said on a document's line (no lane could log in, say)
        console.err(f"SYSTEM FAILURE {summary.recipe}: {summary.system_failure}")
    if summary.stopped_by:
        console.err(f"stopped by {summary.stopped_by}; the next run carries on from here")
    console.out(summary.line())
    return summary.exit_code


logs_option = click.option(
    "--logs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where run logs, staging files and the default ledger go "
    "(default: logs/, or $FLEET_LOGS_DIR).",
)


@click.group(cls=FleetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rpa-fleet")
def main() -> None:
    """RPA bot fleet: capture reports from legacy systems into the archive system.

    Exit codes: 0 all archived, 1 some documents failed, 2 usage/recipe/credential
    error, 3 system failure.
    """


ledger_option = click.option(
    "--ledger",
    "ledger_url",
    help="SQLAlchemy URL of the ledger (default: SQLite in the logs folder, or $FLEET_LEDGER_URL).",
)
