"""The project's own files must install what it needs, the same way everywhere."""

from __future__ import annotations

import ast
import shlex
import tomllib

from ruamel.yaml import YAML

from tests.conftest import ROOT


def test_conda_env_pins_what_pyproject_pins() -> None:
    """robot.yaml's environment (conda.yaml) must not drift from pyproject.toml: the same
    runtime pins, exactly, and a Python that pyproject accepts."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    conda = YAML(typ="safe").load((ROOT / "conda.yaml").read_text(encoding="utf-8"))
    pip_list = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert sorted(pip_list) == sorted(project["dependencies"])
    assert all("==" in pin for pin in project["dependencies"])
    python = next(d for d in conda["dependencies"] if str(d).startswith("python="))
    assert project["requires-python"] == ">=3.11" and python == "python=3.11", python


def test_robot_yaml_tasks_call_the_runner() -> None:
    """Every task is a runner.py command run by the environment's python: directly, under
    xvfb-run, or from bash when its arguments are computed (tests/test_robot_yaml.py
    runs each one)."""
    robot = YAML(typ="safe").load((ROOT / "robot.yaml").read_text(encoding="utf-8"))
    assert robot["tasks"]
    for name, task in robot["tasks"].items():
        words = task.get("command") or shlex.split(task["shell"])
        assert "python runner.py " in " ".join(words), name


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/test.sh" in readme and "bash scripts/test.sh" in ci
    assert "bash scripts/demo.sh" in readme


DEVELOPMENT_ONLY = ("flask", "werkzeug", "reportlab")


def test_simulators_are_not_runtime_dependencies() -> None:
    """Flask, Werkzeug and reportlab serve sims/ only: an install of the fleet lacks them."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = {_name(pin) for pin in pyproject["project"]["dependencies"]}
    assert not runtime & set(DEVELOPMENT_ONLY), sorted(runtime & set(DEVELOPMENT_ONLY))
    sims_extra = {_name(pin) for pin in pyproject["project"]["optional-dependencies"]["sims"]}
    assert set(DEVELOPMENT_ONLY) <= sims_extra
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not [p for p in packages if p.startswith("sims")], "the wheel would carry sims/"
    assert "sims" not in pyproject["tool"]["setuptools"].get("package-data", {})


def test_the_product_never_imports_the_simulators() -> None:
    """bots/ and credentials/ may name sims only as a subprocess to start (the demo)."""
    offending = []
    for path in sorted([*(ROOT / "bots").rglob("*.py"), *(ROOT / "credentials").rglob("*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.partition(".")[0].lower() in ("sims", *DEVELOPMENT_ONLY):
                    offending.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {name}")
    assert not offending, "\n".join(offending)


def _name(pin: str) -> str:
    return pin.split("==")[0].split("[")[0].strip().lower()
