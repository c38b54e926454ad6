"""The project's own files must install what it needs, the same way everywhere."""

from __future__ import annotations

import tomllib

from ruamel.yaml import YAML

from tests.conftest import ROOT


def test_conda_env_pins_what_pyproject_pins() -> None:
    """robot.yaml's environment (conda.yaml) must not drift from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    conda = YAML(typ="safe").load((ROOT / "conda.yaml").read_text(encoding="utf-8"))
    pip_list = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert sorted(pip_list) == sorted(project["dependencies"])
    assert all("==" in pin for pin in project["dependencies"])


def test_robot_yaml_tasks_call_the_runner() -> None:
    robot = YAML(typ="safe").load((ROOT / "robot.yaml").read_text(encoding="utf-8"))
    assert robot["tasks"]
    for task in robot["tasks"].values():
        assert task["shell"].startswith("python runner.py ")


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/test.sh" in readme and "bash scripts/test.sh" in ci
    assert "bash scripts/demo.sh" in readme
