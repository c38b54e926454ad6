"""Drivers: each step kind a driver's schema accepts has a handler, and a recipe that
names a driver this installation lacks is refused at its `driver:` line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from bots.drivers import DriverSpec, SessionConfig, StepContext, names, register
from bots.drivers.web.runner import HANDLERS as WEB_HANDLERS
from bots.drivers.web.schema import WEB_STEPS
from bots.errors import DriverError, RecipeError, StepFailed
from bots.recipe import load_recipe
from bots.recipe.steps import SHARED_STEPS, step_union
from tests.conftest import ROOT
from tests.fakes import (
    FAKE_STEPS,
    RECIPE,
    FakeArchive,
    FakeSession,
    FakeSource,
    FakeStep,
    FakeWorld,
    registered,
)
from tests.fakes import HANDLERS as FAKE_HANDLERS
from tests.test_recipe import line_of, problems, write_variant


def test_every_web_step_kind_has_a_handler() -> None:
    assert set(WEB_HANDLERS) == set(WEB_STEPS)


def test_every_fake_step_kind_has_a_handler() -> None:
    assert set(FAKE_HANDLERS) == set(FAKE_STEPS)


def test_a_recipe_naming_an_unknown_driver_fails_at_its_driver_line(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path, "  credential: demo-erp\n", "  credential: demo-erp\n  driver: desk\n"
    )
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'driver: desk')}"
    assert "unknown driver 'desk'" in what
    assert what.endswith("drivers are: web, desktop")


def test_the_fake_recipe_validates_only_while_the_fake_driver_is_registered() -> None:
    world = FakeWorld(FakeSource([], {}), FakeArchive({}))
    with registered(world):
        assert "fake" in names()
        loaded = load_recipe(RECIPE)
        assert (loaded.recipe.source.driver, loaded.recipe.archive.driver) == ("fake", "fake")
    assert "fake" not in names()
    with pytest.raises(RecipeError) as info:
        load_recipe(RECIPE)
    where, what = info.value.problems[0]
    assert where == f"{RECIPE}:{line_of(RECIPE, 'driver: fake')}"
    assert "unknown driver 'fake'" in what


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_only_the_web_driver_imports_playwright() -> None:
    """The pipeline, the archival code and the CLI speak to a driver session, never to a
    browser: Playwright is the web driver's business alone."""
    root = ROOT / "bots"
    web = root / "drivers" / "web"
    offending = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sorted([*root.rglob("*.py"), *(ROOT / "credentials").rglob("*.py")])
        if web not in path.parents
        for line, name in _imports(path)
        if name.partition(".")[0] == "playwright"
    ]
    assert not offending, "\n".join(offending)
    assert any(name.startswith("playwright") for _, name in _imports(web / "session.py"))


def test_every_driver_has_the_shared_steps() -> None:
    """`set` means the same whatever the driver: a vocabulary without it is refused."""
    assert set(SHARED_STEPS) <= set(WEB_STEPS) and set(SHARED_STEPS) <= set(FAKE_STEPS)
    bare = {k: v for k, v in FAKE_STEPS.items() if k not in SHARED_STEPS}
    with pytest.raises(DriverError, match="lacks the shared steps set"):
        register(DriverSpec("bare", bare, step_union(bare), lambda env: None))  # type: ignore[arg-type,return-value]
    assert "bare" not in names()


def test_the_fake_driver_runs_set_page_conditions_and_patterns() -> None:
    world = FakeWorld(FakeSource([], {}), FakeArchive({}))
    with registered(world):
        loaded = load_recipe(RECIPE)
        config = SessionConfig(
            "fake archive", loaded.recipe.archive, "fake://archive", loaded, lambda *a, **k: None
        )
        session = FakeSession(world.archive, config)
        session.view = {"archive_id": "A00042", "reference_code": ""}
        steps = TypeAdapter(list[FakeStep]).validate_python(
            [
                {
                    "when": {"selector": "archive_id"},
                    "set": {"shown": "yes", "again": "{{ shown }}!"},
                },
                {"when": {"selector": "archive_id", "present": False}, "set": {"hidden": "yes"}},
                {
                    "when": {"selector": "reference_code", "present": False},
                    "set": {"no_code": "yes"},
                },
                {"when": "shown == 'yes'", "set": {"expression": "yes"}},
                {"read": {"what": "archive_id", "into": "number", "pattern": "A0*([0-9]+)"}},
                {"read": {"what": "archive_id", "into": "none", "pattern": "^B", "optional": True}},
            ]
        )
        context = StepContext(variables={}, phase="upload")
        world.archive.users["bot"] = "pw"
        world.archive.authenticate(session.id, "bot", "pw")
        session.run(steps, context)
        assert context.variables == {
            "shown": "yes",
            "again": "yes!",
            "no_code": "yes",
            "expression": "yes",
            "number": "42",
            "none": "",
        }
        bad = TypeAdapter(list[FakeStep]).validate_python(
            [{"read": {"what": "archive_id", "into": "x", "pattern": "^B"}}]
        )
        with pytest.raises(
            StepFailed, match="pattern '\\^B' does not match the value read: 'A00042'"
        ):
            session.run(bad, context)
