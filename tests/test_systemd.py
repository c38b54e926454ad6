"""`runner.py systemd`: the units, checked by systemd's own tools where installed
(`systemd-analyze verify`, and `systemd-analyze calendar` against the timetable)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bots.recipe import LoadedRecipe
from bots.scheduling.environment import run_environment
from bots.scheduling.systemd import UnitOptions, on_calendar, recipe_units
from bots.scheduling.timetable import Timetable
from tests.e2e import ROOT, unscheduled_recipe
from tests.test_crontab import run_cli, scheduled

NOW = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def timetable(loaded: LoadedRecipe) -> Timetable:
    assert loaded.recipe.schedule is not None
    return Timetable.of(loaded.recipe.schedule, loaded.calendar, ZoneInfo("UTC"))


def expressions(loaded: LoadedRecipe, now: datetime = NOW) -> list[str]:
    assert loaded.recipe.schedule is not None
    return on_calendar(loaded.recipe.schedule, timetable(loaded), now)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("{every: day, at: '02:30', timezone: Asia/Shanghai}", ["*-*-* 02:30:00 Asia/Shanghai"]),
        (
            "{every: weekday, at: '02:30', timezone: Europe/Berlin}",
            ["Mon..Fri *-*-* 02:30:00 Europe/Berlin"],
        ),
        (
            "{every: [monday, wednesday], at: ['08:00', '17:30']}",
            ["Mon,Wed *-*-* 08:00:00", "Mon,Wed *-*-* 17:30:00"],
        ),
        ("{every: 15 minutes, timezone: Asia/Shanghai}", ["*-*-* *:00/15:00 Asia/Shanghai"]),
        (
            "{every: 2 hours, on: weekday, timezone: Asia/Kathmandu}",
            ["Mon..Fri *-*-* 00/2:00:00 Asia/Kathmandu"],
        ),
        # the night the clocks skip 02:30 it runs at the jump, 03:00
        (
            "{every: day, at: '02:30', timezone: Europe/Berlin}",
            ["*-*-* 02:30:00 Europe/Berlin", "*-*-* 03:00:00 Europe/Berlin"],
        ),
        # an interval in a zone with daylight saving keeps real time: in UTC
        ("{every: 30 minutes, timezone: Europe/Berlin}", ["*-*-* *:00/30:00 UTC"]),
    ],
)
def test_on_calendar(tmp_path: Path, schedule: str, expected: list[str]) -> None:
    assert expressions(scheduled(tmp_path, schedule)) == expected


def elapses(expression: str, base: datetime, count: int) -> list[datetime]:
    """The next ``count`` times systemd's own calendar code fires ``expression``."""
    assert ANALYZE is not None
    result = subprocess.run(
        [
            ANALYZE,
            "calendar",
            f"--base-time=@{int(base.timestamp())}",
            f"--iterations={count}",
            expression,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    found = re.findall(
        r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", result.stdout
    )
    assert len(found) == count, result.stdout
    return [datetime.fromisoformat(text).replace(tzinfo=UTC) for text in found]


@needs_analyze
@pytest.mark.parametrize(
    ("schedule", "base"),
    [
        ("{every: day, at: '02:30', timezone: Europe/Berlin}", datetime(2027, 3, 20, tzinfo=UTC)),
        (
            "{every: day, at: '01:30', timezone: America/New_York}",
            datetime(2027, 10, 30, tzinfo=UTC),
        ),
        ("{every: weekday, at: ['02:30', '14:00'], timezone: Asia/Shanghai}", NOW),
        (
            "{every: 15 minutes, on: weekday, timezone: Europe/Berlin}",
            datetime(2027, 10, 29, 20, tzinfo=UTC),
        ),
        ("{every: 2 hours, timezone: Asia/Kathmandu}", NOW),
    ],
)
def test_systemd_fires_at_every_due_instant(tmp_path: Path, schedule: str, base: datetime) -> None:
    """systemd's next elapse is the timetable's next due time, and every due time in the
    window is an elapse (extra elapses are firings `run --scheduled` finds not due)."""
    loaded = scheduled(tmp_path, schedule)
    table = timetable(loaded)
    fired: set[datetime] = set()
    ends = []
    for expression in expressions(loaded, base):
        times = elapses(expression, base, 40)
        fired.update(times)
        ends.append(times[-1])
    assert min(fired) == table.due_after(base)
    due = list(table.due_between(base, min(ends), limit=5000))
    assert due and set(due) <= fired, sorted(set(due) - fired)


def test_units(tmp_path: Path) -> None:
    loaded = scheduled(
        tmp_path, "{every: weekday, at: '02:30', timezone: Asia/Shanghai}", desktop=True
    )
    env = {
        "FLEET_KEYRING_KEY": "master-91c2",
        "FLEET_LOGS_DIR": "/srv/logs 100%",
        "ARCHIVE_URL": "http://a",
    }
    units = recipe_units(
        loaded,
        run_environment(env, loaded.recipe.env),
        UnitOptions(ROOT, ROOT / ".venv/bin/python", ZoneInfo("UTC"), NOW, run_as="fleet"),
    )
    assert units.name == "rpa-fleet-demo-desktop"
    service = units.service.splitlines()
    assert "Type=oneshot" in service and "User=fleet" in service
    assert f"WorkingDirectory={ROOT}" in service
    assert 'Environment="FLEET_LOGS_DIR=/srv/logs 100%%"' in service
    assert 'Environment="ARCHIVE_URL=http://a"' in service
    assert "TimeoutStartSec=12h" in service
    assert "master-91c2" not in units.service
    assert any("FLEET_KEYRING_KEY is set here but left out" in line for line in service)
    (start,) = [line for line in service if line.startswith("ExecStart=")]
    assert start == (  # its own display, so that SIGTERM reaches the run (KillMode=mixed)
        f"ExecStart={ROOT}/.venv/bin/python {ROOT}/runner.py run {loaded.path.resolve()} "
        "--scheduled --virtual-display"
    )
    assert "KillMode=mixed" in service
    timer = units.timer.splitlines()
    assert "OnCalendar=Mon..Fri *-*-* 02:30:00 Asia/Shanghai" in timer
    assert "Persistent=true" in timer and "Unit=rpa-fleet-demo-desktop.service" in timer


@needs_analyze
def test_written_units_verify(tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    day = scheduled(recipes, "{every: day, at: '02:30', timezone: Europe/Berlin}")
    desktop = tmp_path / "desktop"
    desktop.mkdir()
    interval = scheduled(desktop, "{every: 15 minutes, on: weekday}", desktop=True)
    units = tmp_path / "units"
    result = run_cli("systemd", str(day.path), str(interval.path), "--dir", str(units))
    assert result.returncode == 0, result.stderr
    assert "systemctl daemon-reload && systemctl enable --now rpa-fleet-demo.timer" in result.stdout
    files = sorted(units.iterdir())
    assert [f.name for f in files] == [
        "rpa-fleet-demo-desktop.service",
        "rpa-fleet-demo-desktop.timer",
        "rpa-fleet-demo.service",
        "rpa-fleet-demo.timer",
    ]
    assert ANALYZE is not None
    verify = subprocess.run(
        [ANALYZE, "verify", *map(str, files)], capture_output=True, text=True, timeout=120
    )
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr


def test_systemd_refuses_a_recipe_without_schedule(tmp_path: Path) -> None:
    result = run_cli("systemd", str(unscheduled_recipe(tmp_path)))
    assert result.returncode == 2 and "no `schedule:` section" in result.stderr


def test_a_desktop_run_makes_its_own_display_as_the_unit_runs_it(tmp_path: Path) -> None:
    """The desktop unit's command (`run --scheduled --virtual-display`, no DISPLAY, as
    systemd starts it): the run makes a private Xvfb, the recipe starts the client in it
    (DESKTOP_PYTHON, the recipe's own knob), and the reports are archived."""
    from tests.e2e import (
        ARCHIVE_PASSWORD,
        DESKTOP_PASSWORD,
        archive_args,
        get_json,
        start_simulators,
        summary_counts,
        world_env,
    )

    env = world_env(
        tmp_path,
        "systemd-master-key-2c41",
        {
            "demo-desktop": ("clerk", DESKTOP_PASSWORD),
            "demo-archive": ("archivist", ARCHIVE_PASSWORD),
        },
    )
    env.pop("DISPLAY", None)
    client = tmp_path / "desktop-python"
    client.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@" --state-port 0 '
        f"--reports 3 --gen-seconds 1 --password {DESKTOP_PASSWORD}\n"
    )
    client.chmod(0o755)
    env["DESKTOP_PYTHON"] = str(client)
    env["PYTHONPATH"] = str(ROOT)  # the client starts in the recipe's folder: sims/ is here
    with ExitStack() as stack:
        start_simulators(stack, tmp_path, env, archive=archive_args(tmp_path))
        result = subprocess.run(
            [sys.executable, "runner.py", "run", "demo-desktop", "--virtual-display"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert summary_counts(result.stdout)["archived"] == 3, result.stdout
        assert len(get_json(f"{env['ARCHIVE_URL']}/_sim/state")["items"]) == 3
