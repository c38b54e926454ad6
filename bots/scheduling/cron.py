"""A crontab for scheduled recipes, as `runner.py crontab` prints it. Pure: the recipes,
the environment, the zone and the moment come in, text goes out.

Cron has no zone per line (Debian's cron has no CRON_TZ), so the fields are in this
machine's zone: one line per set of machine minutes the schedule's due instants fall on
in the coming year (`firings`), and `run --scheduled` decides at each firing.

Output: under `run --scheduled` the runner prints nothing on success and the summary and
the errors on failure. Both streams go through `tee -a logs/cron/<recipe>.log`: the file
keeps every failure, and what tee passes on is what cron mails, so a good night sends no
mail and a bad one sends the errors.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from .commands import run_command
from .environment import RunEnvironment
from .firings import Firing, machine_firings
from .timetable import Timetable

if TYPE_CHECKING:
    from ..recipe import LoadedRecipe

# cron's own PATH is /usr/bin:/bin; xvfb-run and its xauth live in /usr/bin, a site's
# tools often in /usr/local/bin.
STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def cron_field(values: set[int], low: int, high: int) -> str:
    """The shortest usual spelling of ``values`` in ``low..high``: `*`, `*/N`, `A-B/N`
    (B the field's end), else a list with runs as ranges."""
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    # A step only where it reads better than the list: from the field's start, or 3+.
    if len(ordered) > 2 or (len(ordered) == 2 and ordered[0] == low):
        step = ordered[1] - ordered[0]
        if step > 1 and ordered == list(range(ordered[0], high + 1, step)):
            return f"*/{step}" if ordered[0] == low else f"{ordered[0]}-{high}/{step}"
    parts: list[str] = []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        run = [str(start)] if start == previous else [str(start), str(previous)]
        parts.append("-".join(run) if previous - start > 1 else ",".join(run))
        if value is not None:
            start = previous = value
    return ",".join(parts)


def cron_times(firings: set[Firing]) -> list[str]:
    """The five time fields, as few lines as say exactly ``firings``: minutes that fire
    at the same hours on the same days share a line."""
    days_of: dict[tuple[int, int], set[int]] = defaultdict(set)
    for firing in firings:
        days_of[(firing.hour, firing.minute)].add(firing.weekday)
    # days of week -> minute -> hours
    grouped: dict[frozenset[int], dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for (hour, minute), weekdays in days_of.items():
        grouped[frozenset(weekdays)][minute].add(hour)
    lines: list[tuple[int, int, int, str]] = []  # first hour, minute, day: in time order
    for days, hours_of in grouped.items():
        minutes_of: dict[frozenset[int], set[int]] = defaultdict(set)
        for minute, hours in hours_of.items():
            minutes_of[frozenset(hours)].add(minute)
        for at_hours, minutes in minutes_of.items():
            text = (
                f"{cron_field(minutes, 0, 59)} {cron_field(set(at_hours), 0, 23)} * * "
                f"{cron_field(set(days), 0, 6)}"
            )
            lines.append((min(at_hours), min(minutes), min(days), text))
    return [text for *_, text in sorted(lines)]


def _command_field(text: str) -> str:
    """cron turns an unescaped % in a command into a newline."""
    return text.replace("%", r"\%")


def _env_line(name: str, value: str) -> str:
    # cron takes a value as written up to the line's end; quotes keep blanks at its ends.
    quoted = value != value.strip() or value[:1] in "'\"" or not value
    return f'{name}="{value}"' if quoted else f"{name}={value}"


@dataclass(frozen=True)
class CronOptions:
    root: Path
    python: Path
    logs_dir: Path
    machine_zone: tzinfo
    now: datetime
    mailto: str | None = None


def recipe_lines(loaded: LoadedRecipe, options: CronOptions) -> list[str]:
    """The comment and the cron lines of one scheduled recipe."""
    schedule = loaded.recipe.schedule
    if schedule is None:
        raise ValueError(f"{loaded.path}: no schedule")
    timetable = Timetable.of(schedule, loaded.calendar, options.machine_zone)
    command = run_command(loaded, "--scheduled", root=options.root, python=options.python)
    log = options.logs_dir / "cron" / f"{loaded.name}.log"
    shell = (
        f"cd {shlex.quote(str(options.root))} && mkdir -p {shlex.quote(str(log.parent))} && "
        f"{command.shell} 2>&1 | tee -a {shlex.quote(str(log))}"
    )
    lines = [f"# {loaded.name}: {schedule.describe()} -- {loaded.path.resolve()}"]
    times = cron_times(machine_firings(timetable, options.machine_zone, options.now))
    if not times:
        return [*lines, "# (no due time in the coming year: nothing to fire)"]
    return lines + [f"{fields}  {_command_field(shell)}" for fields in times]


def crontab_text(
    recipes: Sequence[LoadedRecipe], environment: RunEnvironment, options: CronOptions
) -> str:
    zone = getattr(options.machine_zone, "key", None) or str(options.machine_zone)
    head = [
        f"# rpa-fleet: scheduled recipes of {options.root}, generated by `runner.py crontab`.",
        f"# Times are this machine's ({zone}): cron has no zone per line. A line may fire",
        "# when the recipe is not due (another season's offset, a holiday, already run):",
        "# `run --scheduled` decides, and exits quietly when it is not.",
        "# Install: python runner.py crontab > fleet.cron && crontab fleet.cron",
        "#   (replaces this user's crontab: merge with `crontab -l` first if it has one).",
    ]
    head += [f"# NOTE: {warning}" for warning in environment.warnings]
    head += ["SHELL=/bin/sh", _env_line("PATH", f"{options.python.parent}:{STANDARD_PATH}")]
    if options.mailto is not None:
        head.append(_env_line("MAILTO", options.mailto))
    head += [_env_line(name, value) for name, value in environment.values.items()]
    body: list[str] = []
    for loaded in recipes:
        body += ["", *recipe_lines(loaded, options)]
    return "\n".join(head + body) + "\n"
