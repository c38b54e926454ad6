"""A systemd service and timer per scheduled recipe, as `runner.py systemd` writes them.
Pure: the recipe, the environment and the moment come in, unit text goes out.

Unlike cron, a timer's `OnCalendar=` takes a zone, so the expressions are in the recipe's
own zone and systemd follows its daylight saving. Two things systemd does its own way,
and what the units do about them:

- a time the clocks skip (02:30 on the night they jump from 02:00 to 03:00) does not
  elapse at all that day, where the timetable fires at the jump: an extra daily
  `OnCalendar=` at the jump's wall time covers it, and `run --scheduled` exits quietly on
  the days it is not due;
- `Persistent=true` starts a run missed while the machine was off once at boot:
  `run --scheduled` sees it is late and applies the recipe's `on_missed`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from .commands import display_size, run_command
from .environment import RunEnvironment
from .firings import firing_groups, machine_firings
from .spec import WEEKDAYS, RunSchedule
from .timetable import Timetable

if TYPE_CHECKING:
    from ..recipe import LoadedRecipe

UNIT_PREFIX = "rpa-fleet-"
# A run that has not finished in 12 hours is hung (a browser waiting on a dialog nobody
# sees): systemd stops it (SIGTERM) so that the next due time can start one. Neither 0 nor
# infinity: a hung run would hold the recipe's lock forever.
START_TIMEOUT = "12h"
# On SIGTERM the runner finishes the document in hand, then stops; after this, SIGKILL.
STOP_TIMEOUT = "10min"
SYSTEMD_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def unit_name(loaded: LoadedRecipe) -> str:
    return f"{UNIT_PREFIX}{loaded.name}"


# -- OnCalendar= -------------------------------------------------------------------


def day_spec(schedule: RunSchedule, timetable: Timetable) -> str:
    """The weekday part of a calendar expression ('' for every day, 'Mon..Fri ')."""
    names = schedule.day_names
    workdays = timetable.calendar is not None and bool(timetable.calendar.workdays)
    if "day" in names or ("weekday" in names and workdays):
        return ""  # (weekend workdays: every day, and `run --scheduled` decides)
    return _days(
        {i for name in names for i in (range(5) if name == "weekday" else [WEEKDAYS.index(name)])}
    )


def calendar_field(values: set[int], size: int) -> str:
    """'*', 'A/N' (A, A+N, ... to the end), or a list: hours (24) or minutes (60)."""
    ordered = sorted(values)
    if len(ordered) == size:
        return "*"
    if len(ordered) > 1:
        step = ordered[1] - ordered[0]
        if ordered == list(range(ordered[0], size, step)):
            return f"{ordered[0]:02d}/{step}"
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]:02d}..{ordered[-1]:02d}"
    return ",".join(f"{value:02d}" for value in ordered)


def _days(days: set[int]) -> str:
    """Weekdays (0 = Monday) as systemd writes them, with a space after: 'Mon..Fri '."""
    ordered = sorted(days)
    if len(ordered) == 7:
        return ""
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{SYSTEMD_DAYS[ordered[0]]}..{SYSTEMD_DAYS[ordered[-1]]} "
    return ",".join(SYSTEMD_DAYS[i] for i in ordered) + " "


def _interval_times(minutes: int) -> list[str]:
    """'HH:MM:00' patterns for the slots of an interval counted from local midnight."""
    hours_of: dict[int, set[int]] = defaultdict(set)
    for slot in range(0, 24 * 60, minutes):
        hours_of[slot % 60].add(slot // 60)
    minutes_of: dict[frozenset[int], set[int]] = defaultdict(set)
    for minute, hours in hours_of.items():
        minutes_of[frozenset(hours)].add(minute)
    return sorted(
        f"{calendar_field(set(hours), 24)}:{calendar_field(same, 60)}:00"
        for hours, same in minutes_of.items()
    )


def _offsets(timetable: Timetable, now: datetime) -> int:
    """How many UTC offsets the recipe's zone has in the coming year."""
    return len({timetable.local(now + timedelta(days=d)).utcoffset() for d in range(0, 367, 7)})


def _utc_interval(timetable: Timetable, now: datetime) -> list[str]:
    """An interval in a zone with daylight saving, in UTC: systemd fires a wall time of
    the hour the clocks repeat only once, where an interval keeps its cadence in real
    time (every 15 minutes means every 15 minutes). The UTC minutes its instants fall
    on in the coming year, as for cron; `run --scheduled` decides at each."""
    expressions = []
    for group in firing_groups(machine_firings(timetable, UTC, now)):
        spec = _days({(weekday + 6) % 7 for weekday in group.weekdays})  # cron's Sunday: 0
        hours = calendar_field(set(group.hours), 24)
        expressions.append(f"{spec}*-*-* {hours}:{calendar_field(set(group.minutes), 60)}:00 UTC")
    return expressions


def _wall(moment: time) -> str:
    return moment.strftime("%H:%M:%S")


def on_calendar(schedule: RunSchedule, timetable: Timetable, now: datetime) -> list[str]:
    """The timer's `OnCalendar=` expressions, in the recipe's zone."""
    zone = f" {schedule.timezone}" if schedule.timezone else ""  # none: the machine's
    days = day_spec(schedule, timetable)
    minutes = schedule.interval_minutes
    if minutes is not None and _offsets(timetable, now) > 1:
        return _utc_interval(timetable, now)
    if minutes is not None:
        return [f"{days}*-*-* {pattern}{zone}" for pattern in _interval_times(minutes)]
    walls = {_wall(at) for at in schedule.at}
    # Due instants whose wall time is not an `at:` are those moved by a skipped hour.
    year = list(timetable.due_between(now, now + timedelta(days=366), limit=367 * len(schedule.at)))
    walls |= {_wall(timetable.local(instant).time()) for instant in year}
    return [f"{days}*-*-* {wall}{zone}" for wall in sorted(walls)]


# -- unit files ----------------------------------------------------------------------


def _specifiers(text: str) -> str:
    """systemd expands %x in most settings; a literal % is %%."""
    return text.replace("%", "%%")


def _exec_word(word: str) -> str:
    """One word of ExecStart=, quoted when it must be ($ is expanded there too)."""
    escaped = _specifiers(word).replace("$", "$$")
    if escaped and not any(c in escaped for c in " \t\"'\\;"):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _environment_line(name: str, value: str) -> str:
    assignment = _specifiers(f"{name}={value}").replace("\\", "\\\\").replace('"', '\\"')
    return f'Environment="{assignment}"'


@dataclass(frozen=True)
class UnitOptions:
    root: Path
    python: Path
    machine_zone: tzinfo
    now: datetime
    run_as: str | None = None  # a system unit's User=; None: a user unit (--user)


@dataclass(frozen=True)
class Units:
    name: str  # rpa-fleet-<recipe>
    service: str
    timer: str


def recipe_units(loaded: LoadedRecipe, environment: RunEnvironment, options: UnitOptions) -> Units:
    schedule = loaded.recipe.schedule
    if schedule is None:
        raise ValueError(f"{loaded.path}: no schedule")
    name = unit_name(loaded)
    said = _specifiers(f"{loaded.name}, {schedule.describe()}")
    # A desktop recipe makes its own display (--virtual-display) rather than run under
    # xvfb-run: stopping the unit must reach the run, not a shell that dies of it.
    extra = ["--virtual-display"] if display_size(loaded) else []
    command = run_command(
        loaded, "--scheduled", *extra, root=options.root, python=options.python, display=False
    )
    service = [
        "[Unit]",
        f"Description=rpa-fleet: capture {said}",
        _specifiers(f"Documentation=file://{options.root / 'README.md'}"),
    ]
    if options.run_as is not None:  # a system unit (a user manager has no such target)
        service += ["Wants=network-online.target", "After=network-online.target"]
    service += ["", "[Service]", "Type=oneshot"]
    if options.run_as is not None:
        service.append(f"User={options.run_as}")
    service += [
        _specifiers(f"WorkingDirectory={options.root}"),
        *(_environment_line(key, value) for key, value in environment.values.items()),
        "ExecStart=" + " ".join(_exec_word(word) for word in command.argv),
        "# A run still going after this is hung: stop it, so the next due time can start.",
        f"TimeoutStartSec={START_TIMEOUT}",
        "# SIGTERM to the runner only: it finishes the document in hand with its browser",
        "# or display, then stops; whatever is left after it is killed.",
        "KillMode=mixed",
        f"TimeoutStopSec={STOP_TIMEOUT}",
        f"SyslogIdentifier={name}",
    ]
    service = [f"# NOTE: {warning}" for warning in environment.warnings] + service
    timetable = Timetable.of(schedule, loaded.calendar, options.machine_zone)
    timer = [
        "[Unit]",
        f"Description=rpa-fleet: when to capture {said}",
        "",
        "[Timer]",
        *(
            f"OnCalendar={expression}"
            for expression in on_calendar(schedule, timetable, options.now)
        ),
        "# A due time missed while the machine was off runs at boot; `run --scheduled`",
        "# then applies the recipe's on_missed (run_once or skip).",
        "Persistent=true",
        "AccuracySec=1s",
        f"Unit={name}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    return Units(name, "\n".join(service) + "\n", "\n".join(timer) + "\n")
