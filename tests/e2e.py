"""End-to-end support: real simulators, real Chromium, the real command line.

A ``World`` is both simulators on free loopback ports, an encrypted keyring holding
their credentials, and a private logs folder. Tests run ``runner.py`` as a subprocess,
the way cron does, and judge the result by the simulators' own ``/_sim/state``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from bots.demo import simulator
from bots.ledger import LATEST, Ledger, queries
from bots.pipeline import local_now
from bots.redaction import Redactor
from bots.settings import Settings
from bots.virtualdisplay import virtual_display
from credentials import open_store
from sims.control import get_json, post_json

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 540  # seconds: a bound, not an expectation

# Not the demo's defaults: a leak of these cannot hide behind a coincidence.
ERP_PASSWORD = "erp-Pw-7c41e9"
ARCHIVE_PASSWORD = "arc-Pw-0b5d23"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class World:
    erp_url: str
    archive_url: str
    env: dict[str, str]
    logs_dir: Path
    results: list[Result] = field(default_factory=list)

    def run(self, recipe: Path | str = ROOT / "recipes" / "demo.yaml", *args: str) -> Result:
        return run_recipe(self.env, self.results, recipe, *args)

    def erp_state(self) -> list[dict[str, Any]]:
        return get_json(f"{self.erp_url}/_sim/state")["reports"]

    def archive_state(self) -> list[dict[str, Any]]:
        return get_json(f"{self.archive_url}/_sim/state")["items"]

    def publish(self, count: int) -> list[str]:
        return post_json(f"{self.erp_url}/_sim/publish", {"count": count})["published"]


def runner_command(recipe: Path | str, *args: str) -> list[str]:
    """``runner.py run RECIPE ARGS`` as cron runs it (from ``ROOT``)."""
    return [sys.executable, "runner.py", "run", str(recipe), *args]


def run_recipe(
    env: dict[str, str], results: list[Result], recipe: Path | str, *args: str
) -> Result:
    """Run the runner with a world's ``env`` to the end (bounded) and add it to ``results``."""
    proc = subprocess.run(
        runner_command(recipe, *args),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    results.append(result)
    return result


def command(w: World, *args: str) -> Result:
    """``runner.py ARGS`` (any command) with a world's environment, to the end (bounded)."""
    return command_in(w.env, *args)


def command_in(env: dict[str, str], *args: str, timeout: float = RUN_TIMEOUT) -> Result:
    """``runner.py ARGS`` with the environment ``env``, to the end (bounded)."""
    proc = subprocess.run(
        [sys.executable, "runner.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def world_env(
    tmp: Path, keyring_key: str, credentials: dict[str, tuple[str, str]]
) -> dict[str, str]:
    """The environment of a world's commands: a private HOME and logs folder (``tmp/logs``)
    and an encrypted keyring under ``tmp`` holding ``credentials`` (system: (user, password))."""
    env = {
        **os.environ,
        "HOME": str(tmp / "home"),
        "FLEET_LOGS_DIR": str(tmp / "logs"),
        "FLEET_KEYRING_KEY": keyring_key,
        "FLEET_KEYRING_FILE": str(tmp / "keyring" / "credentials.cfg"),
    }
    store = open_store(env, Redactor())
    for system, (user, password) in credentials.items():
        store.set(system, user, password)
    return env


def start_simulators(
    stack: ExitStack, tmp: Path, env: dict[str, str], **args: list[str]
) -> list[str]:
    """Start ``sims.NAME ARGS`` for each ``NAME=ARGS`` in order, each logging to
    ``tmp/sims/NAME.log`` and stopped when ``stack`` closes; point ``NAME_URL`` in ``env``
    at it. Returns the base URLs in the same order."""
    urls = []
    for name, sim_args in args.items():
        url = stack.enter_context(simulator(f"sims.{name}", sim_args, tmp / "sims" / f"{name}.log"))
        env[f"{name.upper()}_URL"] = url
        urls.append(url)
    return urls


def archive_args(tmp: Path) -> list[str]:
    """The archive simulator of a world: its password, its data under ``tmp``."""
    return [
        "--password",
        ARCHIVE_PASSWORD,
        "--data",
        str(tmp / "archive-data"),
        "--latency-ms",
        "5,20",
    ]


@contextmanager
def world(tmp: Path, *, reports: int = 25) -> Iterator[World]:
    """Both simulators and a configured keyring; everything stops on exit."""
    env = world_env(
        tmp,
        "e2e-master-key-51f0",
        {"demo-erp": ("clerk", ERP_PASSWORD), "demo-archive": ("archivist", ARCHIVE_PASSWORD)},
    )
    with ExitStack() as stack:
        erp_url, archive_url = start_simulators(
            stack,
            tmp,
            env,
            erp=[
                "--password",
                ERP_PASSWORD,
                "--reports",
                str(reports),
                "--gen-seconds",
                "1",
                "--latency-ms",
                "5,30",
            ],
            archive=archive_args(tmp),
        )
        yield World(erp_url, archive_url, env, tmp / "logs")


DESKTOP_PASSWORD = "dsk-Pw-93ae17"


@contextmanager
def desktop_world(
    tmp: Path, *, reports: int = 12, wm: bool = False, desktop_args: tuple[str, ...] = ()
) -> Iterator[World]:
    """The desktop client simulator in a virtual display of its own (bare Xvfb, or with
    openbox when ``wm``) and the archive simulator. ``World.erp_url`` is the desktop
    client's state port: its ``/_sim/state`` has the ERP's shape. The runs get the
    display through ``env`` (DISPLAY), as under xvfb-run."""
    env = world_env(
        tmp,
        "e2e-master-key-51f0",
        {
            "demo-desktop": ("clerk", DESKTOP_PASSWORD),
            "demo-archive": ("archivist", ARCHIVE_PASSWORD),
        },
    )
    with ExitStack() as stack:
        display = stack.enter_context(virtual_display(wm=wm))
        env.update(display.env(env))
        state_url = stack.enter_context(
            simulator(
                "sims.desktop",
                [
                    "--password",
                    DESKTOP_PASSWORD,
                    "--reports",
                    str(reports),
                    "--gen-seconds",
                    "1",
                    "--latency-ms",
                    "5,30",
                    *desktop_args,
                ],
                tmp / "sims" / "desktop.log",
                port_option="--state-port",
                # The world's HOME: a save that misses its path lands in ~/Documents.
                env=display.env({**os.environ, "HOME": env["HOME"]}),
            )
        )
        (archive_url,) = start_simulators(
            stack,
            tmp,
            env,
            archive=archive_args(tmp),
        )
        env["DESKTOP_PYTHON"] = sys.executable
        yield World(state_url, archive_url, env, tmp / "logs")


def summary_counts(stdout: str) -> dict[str, int]:
    """The counts of a run's summary line (its last line): listed, new, archived, failed."""
    line = stdout.strip().splitlines()[-1]
    return {name: int(n) for n, name in re.findall(r"(\d+) (listed|new|archived|failed)", line)}


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``needle`` (UTF-8 or GBK)."""
    forms = {needle.encode("utf-8"), needle.encode("gbk")}
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and any(form in path.read_bytes() for form in forms)
    ]


# -- Helpers for the bad-input, concurrency and lock tests ---------------------------------
# Appended below what others use, so their imports sit here.


def world_root(w: World) -> Path:
    """The folder a world was made in (its logs, keyring, archive data, simulator logs)."""
    return w.logs_dir.parent


def publish_reports(w: World, **options: Any) -> list[str]:
    """``POST /_sim/publish`` with any of its keys: count, kind, size, filename,
    raw_gbk_filename. Returns the new report ids."""
    return post_json(f"{w.erp_url}/_sim/publish", options)["published"]


def set_faults(url: str, config: dict[str, Any]) -> Any:
    """``POST /_sim/faults`` on one simulator (``{}`` turns every fault off)."""
    return post_json(f"{url}/_sim/faults", config)


def ledger_rows(logs_dir: Path, table: str, **equal: Any) -> list[dict[str, Any]]:
    """Rows of one ledger table as stored (``equal``: column=value filters), read through
    the ledger's API from the ledger the world's commands use; none while there is no
    ledger yet (no file, or its schema not committed: a running bot may be creating it)."""
    settings = Settings.from_env(os.environ, logs_dir=logs_dir)
    url = make_url(settings.ledger_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        return []  # looking must not create it
    with Ledger(settings.ledger_url, local_now, staging_root=settings.staging_root) as ledger:
        if ledger.version() < LATEST:
            return []
        return queries.table_rows(ledger, table, **equal)


def ledger_documents(logs_dir: Path) -> dict[str, dict[str, Any]]:
    """Every ledger document row by source key; empty when there is no ledger yet."""
    return {row["source_key"]: row for row in ledger_rows(logs_dir, "documents")}


def recipe_variant(
    directory: Path,
    name: str,
    replacements: list[tuple[str, str]],
    append: str = "",
    *,
    base: Path = ROOT / "recipes" / "demo.yaml",
) -> Path:
    """The ``base`` recipe (the demo's by default) with exact text replaced (each must
    occur) and lines appended, written to ``directory/name`` with the retention schedules
    beside it."""
    text = base.read_text(encoding="utf-8")
    if append.lstrip().startswith("schedule:") or "\nschedule:" in append:
        # The variant brings its own schedule: the base's one-line `schedule:` goes.
        text = re.sub(r"(?m)^schedule: \{.*\}\n", "", text)
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = directory / name
    path.write_text(text + append, encoding="utf-8")
    copy_schedules(directory)
    return path


def unscheduled_recipe(directory: Path) -> Path:
    """The demo recipe without its `schedule:`: a recipe that runs only by hand."""
    path = recipe_variant(directory, "unscheduled.yaml", [])
    text = re.sub(r"(?m)^schedule: \{.*\}\n", "", path.read_text(encoding="utf-8"))
    path.write_text(text, encoding="utf-8")
    return path


def copy_schedules(directory: Path) -> Path:
    """The demo's retention schedules beside a recipe written to ``directory``."""
    target = directory / "schedules"
    shutil.copytree(ROOT / "recipes" / "schedules", target, dirs_exist_ok=True)
    return target


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the only line of ``path`` that contains ``needle``."""
    lines = [
        n
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if needle in line
    ]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


def simulator_requests(w: World) -> list[str]:
    """Every request the simulators logged, but their ``/_sim/`` controls."""
    lines: list[str] = []
    for log in sorted((world_root(w) / "sims").glob("*.log")):
        text = log.read_text(encoding="utf-8", errors="replace")
        lines += [line for line in text.splitlines() if '"' in line and " /_sim/" not in line]
    return lines


def run_log_of(stdout: str) -> Path:
    """The run log a summary line names."""
    match = re.search(r"\(run \S+, log (.+\.jsonl)\)\s*$", stdout.strip())
    assert match, stdout
    return Path(match.group(1))


def run_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def start_run(w: World, recipe: Path | str = ROOT / "recipes" / "demo.yaml", *args: str) -> Any:
    """``runner.py run`` in the background (a ``subprocess.Popen``); the caller waits for it."""
    return subprocess.Popen(
        runner_command(recipe, *args),
        cwd=ROOT,
        env=w.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: Any, timeout: float = RUN_TIMEOUT) -> Result:
    """Wait (bounded) for a ``start_run`` process; kill it if it overruns."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return Result(proc.returncode, stdout, stderr)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        time.sleep(0.05)
