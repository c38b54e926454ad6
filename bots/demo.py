"""The demo: the simulators on free loopback ports, the demo recipe, a report, a clean stop.

``--desktop``: the desktop client simulator instead of the web ERP, in a private virtual
display (bots.virtualdisplay) so that nothing is typed into the user's own screen.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from credentials import CredentialStore, KeyringSettings, create_key_file, open_store

from .childenv import child_env
from .errors import SystemFailure
from .ledger import Ledger
from .pipeline import RunSummary, capture, inventory, local_now
from .progress import NullProgress
from .recipe import LoadedRecipe, load_recipe
from .redaction import Redactor
from .resilience import StopFlag
from .settings import PROJECT_ROOT, Settings
from .virtualdisplay import virtual_display

DEMO_RECIPE = PROJECT_ROOT / "recipes" / "demo.yaml"
DEMO_DESKTOP_RECIPE = PROJECT_ROOT / "recipes" / "demo-desktop.yaml"
# The simulators' published demo accounts (not secrets, but treated as such end to end).
DEMO_CREDENTIALS = {
    "demo-erp": ("clerk", "clerk-demo"),
    "demo-desktop": ("clerk", "clerk-demo"),
    "demo-archive": ("archivist", "archivist-demo"),
}
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


@contextmanager
def simulator(
    module: str,
    args: list[str],
    log_file: Path,
    *,
    port_option: str = "--port",
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Run ``python -m module --port 0 ...``; yield its URL once it says READY.

    ``port_option``: the desktop simulator's port is its state port (``--state-port``);
    ``env``: the simulator's environment (default ``child_env()``; a desktop one needs a
    DISPLAY)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, port_option, "0", *args],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=child_env(env),  # a simulator has no use for the keyring's master key
        )
    try:
        yield _wait_ready(proc, module, log_file)
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
        if proc.stdout:
            proc.stdout.close()


def _wait_ready(proc: subprocess.Popen[str], module: str, log_file: Path) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([proc.stdout], [], [], remaining)
        if not readable:
            break
        line = proc.stdout.readline()
        if not line:  # the process ended before it was ready
            break
        if line.startswith("READY "):
            return line.split()[1]
    raise SystemFailure(
        f"the simulator {module} did not start within {READY_TIMEOUT:g}s; see {log_file}"
    )


def run_demo(
    env: dict[str, str],
    logs_dir: Path | None,
    echo: Callable[[str], None],
    stop: StopFlag,
    desktop: bool = False,
) -> RunSummary:
    settings = Settings.from_env(env, logs_dir=logs_dir)
    demo_dir = settings.logs_dir / "demo"
    redactor = Redactor(password for _, password in DEMO_CREDENTIALS.values())

    keyring_settings = KeyringSettings.from_env(env)
    # `auto` falls back to the file wherever no desktop keyring answers (a server, CI).
    if keyring_settings.backend in ("cryptfile", "auto") and not keyring_settings.has_key:
        create_key_file(keyring_settings.key_file)
        echo(f"demo: created a keyring master key at {keyring_settings.key_file} (owner-only)")
    store = open_store(env, redactor)
    for name, (username, password) in DEMO_CREDENTIALS.items():
        store.set(name, username, password)

    loaded = load_recipe(DEMO_DESKTOP_RECIPE if desktop else DEMO_RECIPE)
    # The desktop demo keeps an archive of its own: both demos capture the same reports.
    archive_data = demo_dir / ("archive-data-desktop" if desktop else "archive-data")
    with ExitStack() as stack:
        archive_url = stack.enter_context(
            simulator("sims.archive", ["--data", str(archive_data)], demo_dir / "archive.log")
        )
        run_env = {**env, "ARCHIVE_URL": archive_url}
        if desktop:
            display = stack.enter_context(virtual_display())
            run_env = display.env(run_env)
            state_url = stack.enter_context(
                simulator(
                    "sims.desktop",
                    [],
                    demo_dir / "desktop.log",
                    port_option="--state-port",
                    env=display.env(),
                )
            )
            echo(
                f"demo: desktop client on virtual display {display.display} (its ground "
                f"truth at {state_url}), archive system at {archive_url}"
            )
        else:
            erp_url = stack.enter_context(simulator("sims.erp", [], demo_dir / "erp.log"))
            run_env["ERP_URL"] = erp_url
            echo(f"demo: legacy ERP at {erp_url}, archive system at {archive_url}")
        run_settings = Settings(
            logs_dir=settings.logs_dir, ledger_url=settings.ledger_url, env=run_env
        )
        took = "two or three minutes" if desktop else "about a minute"
        echo(f"demo: running {loaded.path.name} ({took}); run logs in {run_settings.runs_dir}")
        summary = capture(loaded, run_settings, store, redactor, stop=stop)
        if summary.exit_code == 0 and not summary.stopped_by:
            _reconcile_and_audit(run_settings, loaded, store, redactor, stop, echo)
    return summary


def _reconcile_and_audit(
    settings: Settings,
    loaded: LoadedRecipe,
    store: CredentialStore,
    redactor: Redactor,
    stop: StopFlag,
    echo: Callable[[str], None],
) -> None:
    """What the archivist and the auditor open after the run: the reconciliation workbook
    (against a fresh inventory of the archive, every file read back) and the audit page."""
    from .audit import collect, write_report
    from .reconcile.command import reconcile

    echo("demo: reconciling against the archive's own inventory (every file read back)")
    outcome = reconcile(
        settings,
        [loaded.path],
        since=None,
        out=None,
        inventory=lambda recipe: inventory(
            recipe, settings, store, redactor, stop=stop, fixity=True
        ),
        progress=NullProgress(),
        redactor=redactor,
    )
    if outcome.inventory_failed is not None:
        echo(f"demo: the inventory failed: {outcome.inventory_failed.line()}")
        return
    echo(f"demo: {outcome.line} → {outcome.path}")
    today = local_now().replace(hour=0, minute=0, second=0, microsecond=0)
    ledger = Ledger.open(
        settings.ledger_url, local_now, staging_root=settings.staging_root, migrate=False
    )
    try:
        report = collect(ledger, settings.runs_dir, today)
    finally:
        ledger.close()
    page = settings.logs_dir / "audit" / f"audit-{today:%Y%m%d}.html"
    write_report(report, page)
    state = "intact" if report.logs.ok else "NOT intact"
    echo(f"demo: auditor's view of today → {page} (run logs {state})")


def describe(summary: RunSummary) -> list[str]:
    """What an operator wants to read after the demo: what went where."""
    lines = []
    for doc in summary.archived:
        lines.append(
            f"  {doc.reference_code or '-':<28} {doc.archive_id:<9} {doc.source_key}  {doc.title}"
        )
    if summary.archived:
        lines.insert(0, f"archived {len(summary.archived)} report(s):")
        lines.append(
            "each passed its four-property checks (ledger table `checks`); evidence in "
            "logs/evidence. Hand them over as a BagIt bag:"
        )
        lines.append(
            f"  python runner.py export-bag --run {summary.run_id} --out bag-{summary.run_id} "
            "--organization 'Your organisation'"
        )
    elif not summary.failures:
        lines.append(
            f"nothing new to archive: {summary.already_confirmed} report(s) already archived"
        )
    return lines
