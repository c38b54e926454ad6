"""When a schedule's due instants fall on this machine's clock, over the next year: what
cron, which knows only this machine's zone, has to fire at.

The instants come from the timetable (zones, daylight saving, gaps, intervals), so a
daily 02:30 in Europe/Berlin on a UTC machine fires at 00:30 in summer, 01:30 in winter,
and 01:00 on the day the clocks skip 02:30. Cron fires at each such machine minute every
day of the week it can occur on; `run --scheduled` then decides whether that firing is
really due (the other season's line, a holiday, already run) and exits quietly if not.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from .timetable import Timetable

YEAR_DAYS = 366  # every daylight-saving change of the coming twelve months


@dataclass(frozen=True, order=True)
class Firing:
    """A machine-local minute: day of week as cron counts it (0 = Sunday), hour, minute."""

    weekday: int
    hour: int
    minute: int


def _day_shape(timetable: Timetable, day: date, machine: tzinfo) -> tuple[object, ...]:
    """What a local day's instants depend on besides the schedule: its weekday, whether
    it fires, and both zones' offsets at its start and end. Days of one shape map to the
    same machine minutes, so one of each is enough (an interval of one minute has 1440
    instants a day: a year of them one by one would take seconds)."""
    ends = [
        datetime.combine(day, moment, timetable.zone) for moment in (time.min, time(23, 59, 59))
    ]
    return (
        day.weekday(),
        timetable.fires_on(day),
        *(end.utcoffset() for end in ends),
        *(end.astimezone(machine).utcoffset() for end in ends),
    )


def machine_firings(timetable: Timetable, machine: tzinfo, start: datetime) -> set[Firing]:
    """Every machine-local minute a due instant falls on in the year from ``start``."""
    first = timetable.local(start).date()
    seen: set[tuple[object, ...]] = set()
    found: set[Firing] = set()
    for offset in range(YEAR_DAYS):
        day = first + timedelta(days=offset)
        shape = _day_shape(timetable, day, machine)
        if shape in seen:
            continue
        seen.add(shape)
        for instant in timetable.instants_on(day):
            local = instant.astimezone(machine)
            found.add(Firing((local.weekday() + 1) % 7, local.hour, local.minute))
    return found


@dataclass(frozen=True)
class FiringGroup:
    """Minutes that fire at the same hours on the same days: one cron line, one
    `OnCalendar=`. Days of week as cron counts them (0 = Sunday)."""

    weekdays: frozenset[int]
    hours: frozenset[int]
    minutes: frozenset[int]


def firing_groups(firings: set[Firing]) -> list[FiringGroup]:
    """As few groups as say exactly ``firings``, in time order."""
    days_of: dict[tuple[int, int], set[int]] = defaultdict(set)
    for firing in firings:
        days_of[(firing.hour, firing.minute)].add(firing.weekday)
    hours_of: dict[frozenset[int], dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for (hour, minute), weekdays in days_of.items():
        hours_of[frozenset(weekdays)][minute].add(hour)
    groups = []
    for days, by_minute in hours_of.items():
        minutes_of: dict[frozenset[int], set[int]] = defaultdict(set)
        for minute, hours in by_minute.items():
            minutes_of[frozenset(hours)].add(minute)
        groups += [FiringGroup(days, hours, frozenset(same)) for hours, same in minutes_of.items()]
    return sorted(groups, key=lambda g: (min(g.hours), min(g.minutes), min(g.weekdays)))
