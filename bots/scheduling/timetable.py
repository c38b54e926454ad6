"""When a schedule fires, as instants in UTC: the one place that knows about zones,
daylight saving, holidays and intervals. Pure: no clock, no I/O.

The answers to daylight saving are defined here, and tested:

- a local time that does not exist that day (02:30 when clocks jump from 02:00 to
  03:00) fires once, at the first valid moment after it: the moment of the jump;
- a local time that exists twice (01:30 when clocks fall back) fires once, the first
  time, for a time of day (`at:`); an interval keeps its cadence in real time, so its
  slots in the repeated hour fire both times (every 15 minutes means every 15 minutes);
- instants are computed from the schedule, never from when the last run ended: no drift.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .calendar import HolidayCalendar
from .spec import WEEKDAYS, RunSchedule

if TYPE_CHECKING:
    from ..recipe import LoadedRecipe

SEARCH_DAYS = 800  # a schedule that fires on none of these days never fires
GRACE = timedelta(minutes=5)  # how late a run may start and still count as on time


class NeverFires(ValueError):
    """The schedule has no instant in the next SEARCH_DAYS days (every day a holiday)."""


@dataclass(frozen=True)
class Timetable:
    schedule: RunSchedule
    zone: tzinfo
    calendar: HolidayCalendar | None = None

    @classmethod
    def of(
        cls, schedule: RunSchedule, calendar: HolidayCalendar | None, default_zone: tzinfo
    ) -> Timetable:
        zone = ZoneInfo(schedule.timezone) if schedule.timezone else default_zone
        return cls(schedule, zone, calendar)

    @classmethod
    def for_recipe(cls, loaded: LoadedRecipe) -> Timetable | None:
        """A loaded recipe's timetable (None: it has no schedule), in this machine's zone
        unless it names one."""
        from ..timezones import local_zone

        spec = loaded.recipe.schedule
        return None if spec is None else cls.of(spec, loaded.calendar, local_zone())

    # -- days ------------------------------------------------------------------

    def fires_on(self, day: date) -> bool:
        """Whether ``day`` (a local date) is one the schedule fires on."""
        if self.calendar is not None and day in self.calendar.holidays:
            return False
        weekday = WEEKDAYS[day.weekday()]
        for name in self.schedule.day_names:
            if name == "day" or name == weekday:
                return True
            if name == "weekday":
                worked = self.calendar is not None and day in self.calendar.workdays
                if day.weekday() < 5 or worked:
                    return True
        return False

    def instants_on(self, day: date) -> list[datetime]:
        """The instants (UTC, sorted, distinct) at which it fires on local date ``day``."""
        if not self.fires_on(day):
            return []
        minutes = self.schedule.interval_minutes
        found: set[datetime] = set()
        if minutes is None:
            for at in self.schedule.at:
                found.add(self._first_instant(day, at))
        else:
            for slot in range(0, 24 * 60, minutes):
                at = time(slot // 60, slot % 60)
                found.update(self._every_instant(day, at))
        return sorted(found)

    # -- instants --------------------------------------------------------------

    def due_after(self, moment: datetime) -> datetime:
        """The first instant strictly after ``moment``."""
        day = self._local_date(moment) - timedelta(days=1)
        for _ in range(SEARCH_DAYS):
            for instant in self.instants_on(day):
                if instant > moment:
                    return instant
            day += timedelta(days=1)
        raise NeverFires(f"the schedule does not fire in the {SEARCH_DAYS} days after {moment}")

    def last_due(self, moment: datetime) -> datetime | None:
        """The latest instant at or before ``moment`` (None: none in SEARCH_DAYS days)."""
        day = self._local_date(moment) + timedelta(days=1)
        for _ in range(SEARCH_DAYS):
            for instant in reversed(self.instants_on(day)):
                if instant <= moment:
                    return instant
            day -= timedelta(days=1)
        return None

    def due_between(self, start: datetime, end: datetime, limit: int = 1000) -> Iterator[datetime]:
        """Instants in (start, end], at most ``limit`` of them, in order."""
        moment = start
        for _ in range(limit):
            try:
                moment = self.due_after(moment)
            except NeverFires:
                return
            if moment > end:
                return
            yield moment

    @property
    def period(self) -> timedelta:
        """The shortest time between two runs as written (an interval, or a day)."""
        minutes = self.schedule.interval_minutes
        return timedelta(minutes=minutes) if minutes else timedelta(days=1)

    @property
    def grace(self) -> timedelta:
        """How late a start still counts as on time: 5 minutes, or half an interval."""
        return min(GRACE, self.period / 2)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    # -- daylight saving -------------------------------------------------------

    def _local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def _exists(self, wall: datetime, fold: int) -> datetime | None:
        instant = wall.replace(tzinfo=self.zone, fold=fold).astimezone(UTC)
        back = instant.astimezone(self.zone).replace(tzinfo=None)
        return instant if back == wall else None

    def _first_instant(self, day: date, at: time) -> datetime:
        """The first instant whose wall time is ``at`` on ``day``; in a gap, the jump."""
        wall = datetime.combine(day, at)
        return self._exists(wall, 0) or self._gap_end(wall)

    def _every_instant(self, day: date, at: time) -> set[datetime]:
        """Every instant whose wall time is ``at`` on ``day`` (two in a repeated hour);
        in a gap, the jump."""
        wall = datetime.combine(day, at)
        found = {i for i in (self._exists(wall, 0), self._exists(wall, 1)) if i is not None}
        return found or {self._gap_end(wall)}

    def _gap_end(self, wall: datetime) -> datetime:
        """The moment the clocks jump over ``wall``: the first valid time after it.

        With fold=1 a skipped wall time reads with the offset after the jump (an
        instant before it), with fold=0 with the offset before (an instant after it);
        the jump lies between, and the offset changes once there: bisect on seconds."""
        before = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        after = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        low, high = min(before, after), max(before, after)
        offset_after = high.astimezone(self.zone).utcoffset()
        while high - low > timedelta(seconds=1):
            middle = low + timedelta(seconds=int((high - low).total_seconds()) // 2)
            if middle.astimezone(self.zone).utcoffset() == offset_after:
                high = middle
            else:
                low = middle
        return high
