"""robot.yaml's tasks, run the way Robocorp's rcc runs them, without rcc.

rcc (robot/robot.go, operations/running.go): the robot is the folder of robot.yaml,
wrapped without what its ignoreFiles name; a task's argv is its ``command`` list or its
``shell`` line split into words (no shell); argv[0] is looked up on PATH; the task runs
from the robot's root with PATH = the robot's PATH entries (made absolute) before the
environment's own, PYTHONPATH = the robot's PYTHONPATH entries, ROBOT_ROOT and
ROBOT_ARTIFACTS set, plus whatever the operator's environment file adds. rcc puts the
conda.yaml environment first on PATH; here the project's virtual environment plays it.

Each task runs against real simulators and is judged by what it leaves behind.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bots.cli import main as cli
from tests.e2e import (
    ARCHIVE_PASSWORD,
    DESKTOP_PASSWORD,
    ERP_PASSWORD,
    Result,
    archive_args,
    start_simulators,
    summary_counts,
    world_env,
)

ROOT = Path(__file__).resolve().parent.parent
# rcc activates conda.yaml's environment; the venv running these tests is the project's.
ENV_BIN = Path(sys.prefix) / "bin"
TASK_TIMEOUT = 300  # seconds: a bound, not an expectation
WEB_REPORTS = 4
DESKTOP_REPORTS = 3
CREDENTIALS = {
    "demo-erp": ("clerk", ERP_PASSWORD),
    "demo-archive": ("archivist", ARCHIVE_PASSWORD),
    "demo-desktop": ("clerk", DESKTOP_PASSWORD),
}
# Every task and dev task this file runs: a task added to robot.yaml must be added here.
TESTED = {
    "tasks": {
        "Capture demo reports",
        "Capture desktop demo reports",
        "Check demo recipe",
        "Check desktop demo recipe",
        "Reconcile with the archive",
        "Audit last month",
        "Status",
        "Doctor",
        "Serve",
    },
    "devTasks": {"Demo"},
}


def _being_built(command: str, owner: str) -> pytest.MarkDecorator:
    """An expected failure while ``command`` is not on the command line yet; none once it is."""
    return pytest.mark.xfail(
        command not in cli.commands, reason=f"{command} is being built ({owner})", strict=True
    )


def load_robot(root: Path = ROOT) -> dict[str, Any]:
    robot: dict[str, Any] = YAML(typ="safe").load((root / "robot.yaml").read_text("utf-8"))
    return robot


def task_argv(task: Mapping[str, Any]) -> list[str]:
    """A task's argv as rcc builds it: ``command`` as it stands, ``shell`` split into words."""
    if task.get("command"):
        return [str(word) for word in task["command"]]
    return shlex.split(task["shell"])


@dataclass
class Robot:
    """A robot unpacked into ``root``, run task by task as rcc would."""

    root: Path
    spec: dict[str, Any]

    @property
    def artifacts(self) -> Path:
        return self.root / self.spec["artifactsDir"]

    def environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = {**os.environ, **extra}
        robot_path = [str(self.root / entry) for entry in self.spec.get("PATH", [])]
        env["PATH"] = os.pathsep.join([*robot_path, str(ENV_BIN), os.environ.get("PATH", "")])
        pythonpath = [str(self.root / entry) for entry in self.spec.get("PYTHONPATH", [])]
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
        env["ROBOT_ROOT"] = str(self.root)
        env["ROBOT_ARTIFACTS"] = str(self.artifacts)
        return env

    def run(
        self, name: str, extra_env: Mapping[str, str], *more: str, group: str = "tasks"
    ) -> Result:
        """Task ``name`` of ``group`` (``devTasks``: ``rcc run --dev``), with ``more``
        words appended as ``rcc run -- ...`` does."""
        argv = [*task_argv(self.spec[group][name]), *more]
        env = self.environment(extra_env)
        # rcc resolves argv[0] on the task's PATH (it then follows symlinks, which would
        # step out of a venv: a conda environment's python is no symlink).
        found = shutil.which(argv[0], path=env["PATH"])
        assert found, f"{name}: {argv[0]} is not on the task's PATH"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [found, *argv[1:]],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=TASK_TIMEOUT,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


def wrap(target: Path) -> Robot:
    """The robot as ``rcc robot wrap`` packs it (minus its ignoreFiles' patterns),
    unpacked into ``target``: its runs leave the checkout's own logs/ alone."""
    spec = load_robot()
    patterns = [".git"]  # version control's own folder is never part of a robot
    for name in spec.get("ignoreFiles", []):
        lines = (ROOT / name).read_text("utf-8").splitlines()
        patterns += [p.strip() for p in lines if p.strip() and not p.startswith(("#", "!"))]

    def ignored(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(ROOT)
        return {name for name in names if _matches((rel / name).as_posix(), name, patterns)}

    shutil.copytree(ROOT, target, ignore=ignored, symlinks=True)
    return Robot(target, spec)


def _matches(rel: str, name: str, patterns: list[str]) -> bool:
    """rcc's subset of .gitignore: globs, anchored to the root when they hold a slash."""
    for pattern in patterns:
        bare = pattern.strip("/")
        anchored = pattern.startswith("/") or "/" in bare
        if fnmatch.fnmatch(rel if anchored else name, bare):
            return True
    return False


def _run_logs(robot: Robot) -> list[Path]:
    return sorted((robot.artifacts / "runs").glob("*.jsonl"))


# -- robot.yaml as rcc validates it -----------------------------------------------------------


def test_robot_yaml_is_valid_for_rcc() -> None:
    """rcc's own checks (robot.Validate, Diagnostics), and every task tested below."""
    spec = load_robot()
    assert spec["tasks"] and spec["artifactsDir"] == "logs"
    for group in ("tasks", "devTasks"):
        for name, task in spec.get(group, {}).items():
            forms = [key for key in ("robotTaskName", "shell", "command") if task.get(key)]
            assert len(forms) == 1, f"{name}: exactly one of robotTaskName/shell/command"
        assert set(spec.get(group, {})) == TESTED[group], f"{group}: untested or missing tasks"
    for entry in [*spec["PATH"], *spec["PYTHONPATH"], spec["artifactsDir"]]:
        assert not Path(entry).is_absolute(), entry
    for name in spec["ignoreFiles"]:
        assert (ROOT / name).is_file(), name
    configs = [*spec.get("environmentConfigs", []), spec["condaConfigFile"]]
    assert all((ROOT / config).is_file() for config in configs), configs


def test_wrapping_leaves_out_what_git_ignores(tmp_path: Path) -> None:
    robot = wrap(tmp_path / "robot")
    assert (robot.root / "runner.py").is_file() and (robot.root / "sims").is_dir()
    assert not (robot.root / ".venv").exists() and not (robot.root / ".git").exists()
    assert not list(robot.root.rglob("__pycache__"))
    assert sorted(p.name for p in (robot.root / "logs").iterdir()) in ([], [".gitkeep"])


# -- the web recipe's world: capture, then what an operator runs after it ----------------------


@dataclass
class World:
    robot: Robot
    env: dict[str, str]
    archive_url: str
    capture: Result


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A wrapped robot, both web simulators, a keyring with every demo credential, and
    the capture task run once: the tasks after it work on what it captured."""
    tmp = tmp_path_factory.mktemp("web")
    robot = wrap(tmp / "robot")
    env = _keyring(tmp)
    with ExitStack() as stack:
        erp_args = ["--password", ERP_PASSWORD, "--reports", str(WEB_REPORTS)]
        erp_args += ["--gen-seconds", "1"]
        _, archive_url = start_simulators(stack, tmp, env, erp=erp_args, archive=archive_args(tmp))
        capture = robot.run("Capture demo reports", env)
        yield World(robot, env, archive_url, capture)


def _keyring(tmp: Path) -> dict[str, str]:
    """The operator's environment file: only the keyring's location and key (world_env
    fills it) and the URLs the simulators are given; the rest comes from rcc."""
    full = world_env(tmp, "robot-master-key-8d2c", CREDENTIALS)
    names = ("HOME", "FLEET_KEYRING_KEY", "FLEET_KEYRING_FILE")
    return {name: full[name] for name in names}


def test_capture_task_archives_and_logs_into_the_artifacts(web: World) -> None:
    result = web.capture
    assert result.code == 0, result.output
    assert summary_counts(result.stdout)["archived"] == WEB_REPORTS, result.output
    # The run log and the ledger are the robot's artifacts, not the checkout's logs/.
    assert len(_run_logs(web.robot)) == 1
    assert (web.robot.artifacts / "ledger.sqlite3").is_file()


def test_check_tasks_validate_their_recipes(web: World) -> None:
    for name, recipe in [
        ("Check demo recipe", "demo"),
        ("Check desktop demo recipe", "demo-desktop"),
    ]:
        result = web.robot.run(name, web.env)
        assert result.code == 0 and f"ok (recipe '{recipe}'," in result.stdout, result.output


def test_reconcile_task_writes_a_workbook_that_closes(web: World) -> None:
    result = web.robot.run("Reconcile with the archive", web.env)
    assert result.code == 0, result.output
    workbooks = list((web.robot.artifacts / "reconcile").glob("*.xlsx"))
    assert len(workbooks) == 1 and str(workbooks[0]) in result.stdout, result.output


def test_audit_task_covers_last_month(web: World) -> None:
    result = web.robot.run("Audit last month", web.env)
    assert result.code == 0, result.output
    first = date.today().replace(day=1)
    last_month = (
        first.replace(year=first.year - 1, month=12)
        if first.month == 1
        else first.replace(month=first.month - 1)
    )
    page = web.robot.artifacts / "audit" / f"audit-{last_month:%Y%m%d}.html"
    assert page.is_file() and "logs intact" in result.stdout, result.output


@_being_built("status", "the lead")
def test_status_task_shows_the_recipe(web: World) -> None:
    result = web.robot.run("Status", web.env)
    assert result.code == 0 and "demo" in result.stdout, result.output


@_being_built("doctor", "helper B")
def test_doctor_task_passes_on_this_set_up(web: World) -> None:
    result = web.robot.run("Doctor", web.env)
    # A check per recipe in recipes/: the desktop one's credential and display too.
    assert result.code == 0 and "demo-desktop" in result.output, result.output


@_being_built("serve", "the lead")
def test_serve_task_runs_once(web: World) -> None:
    runs_before = _run_logs(web.robot)
    now = datetime.now().astimezone().isoformat(timespec="seconds")
    # The operator's task runs until stopped; `--once --now` makes it one round.
    result = web.robot.run("Serve", web.env, "--once", "--now", now)
    assert result.code == 0, result.output
    # No recipe in recipes/ is due at an arbitrary moment more than once: the round ran
    # at most one capture per recipe.
    assert len(_run_logs(web.robot)) - len(runs_before) <= 2


# -- the desktop recipe, in xvfb-run's display -------------------------------------------------


def test_desktop_capture_task_under_xvfb_run(tmp_path: Path) -> None:
    """xvfb-run gives the task a display of its own, so the recipe starts the client
    itself (`app.command`): DESKTOP_PYTHON, the recipe's own knob, starts a small one."""
    if not shutil.which("xvfb-run"):
        pytest.fail("xvfb-run is missing: scripts/setup.sh installs xvfb")
    robot = wrap(tmp_path / "robot")
    env = _keyring(tmp_path)
    client = tmp_path / "desktop-python"
    client.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@" --state-port 0 '
        f"--reports {DESKTOP_REPORTS} --gen-seconds 1 --password {DESKTOP_PASSWORD}\n"
    )
    client.chmod(0o755)
    env["DESKTOP_PYTHON"] = str(client)
    with ExitStack() as stack:
        start_simulators(stack, tmp_path, env, archive=archive_args(tmp_path))
        result = robot.run("Capture desktop demo reports", env)
    assert result.code == 0, result.output
    assert summary_counts(result.stdout)["archived"] == DESKTOP_REPORTS, result.output
    assert len(_run_logs(robot)) == 1


# -- the demo: a development task ------------------------------------------------------------


def test_demo_dev_task(tmp_path: Path) -> None:
    """`rcc run --dev -t Demo`: scripts/demo.sh, which sets up .venv, then runs the demo.
    Here .venv is the venv running the tests, when it was built from this pyproject.toml
    (as scripts/test.sh makes sure): otherwise setup.sh would reinstall it."""
    stamp = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    if not (Path(sys.prefix) / f".installed-{stamp}").is_file():
        pytest.skip("the venv was not built from this pyproject.toml: run scripts/setup.sh")
    robot = wrap(tmp_path / "robot")
    (robot.root / ".venv").symlink_to(sys.prefix)
    result = robot.run("Demo", _keyring(tmp_path), group="devTasks")
    assert result.code == 0, result.output
    assert summary_counts(result.stdout)["archived"] > 0, result.output
    assert len(_run_logs(robot)) >= 1
    assert list((robot.artifacts / "reconcile").glob("*.xlsx")), result.output
    assert list((robot.artifacts / "audit").glob("*.html")), result.output
