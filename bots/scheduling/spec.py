"""A recipe's `schedule:` section: when a capture runs, validated with the recipe.

    schedule:
      every: day              # day | weekday | monday..sunday (a list) | "15 minutes"
      at: "02:30"             # one time or a list; for day, weekday and named days
      timezone: Asia/Shanghai # IANA name; default: this machine's zone
      on_missed: run_once     # run_once | skip: what a run missed (machine off) becomes
      holidays: calendars/cn-2026.yaml   # dates it does not fire (relative to the recipe)
      pause_after: 3          # failed runs in a row before the recipe is paused

Interval schedules (`every: 15 minutes`) fire at the multiples of the interval counted
from local midnight, on the days `on:` names (default every day). The interval must
divide a day, so every day has the same slots.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INTERVAL = re.compile(r"^\s*(\d+)\s*(minute|minutes|hour|hours)\s*$")
MINUTES_PER_DAY = 24 * 60


def _times(value: Any) -> Any:
    """`at: "02:30"` or a list of them; YAML 1.1 reads an unquoted 02:30 as a number of
    seconds (sexagesimal), so a number is refused with the fix."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            raise ValueError(f"write the time in quotes ({item!r} was read as a number): '02:30'")
    return [time.fromisoformat(item) if isinstance(item, str) else item for item in items]


def _days(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class RunSchedule(BaseModel):
    # As strict as the rest of the recipe (its own base: the recipe package imports this).
    model_config = ConfigDict(extra="forbid", frozen=True)

    every: Annotated[list[str], BeforeValidator(_days)]
    at: Annotated[list[time], BeforeValidator(_times)] = Field(default_factory=list)
    on: Annotated[list[str], BeforeValidator(_days)] = Field(default_factory=lambda: ["day"])
    timezone: str | None = None
    on_missed: Literal["run_once", "skip"] = "run_once"
    holidays: str | None = Field(default=None, min_length=1)
    pause_after: int = Field(default=3, ge=1, le=1000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            zoneinfo.ZoneInfo(value)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai"
            ) from exc
        return value

    @field_validator("every", "on")
    @classmethod
    def _known_days(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one day, or an interval")
        if len(value) == 1 and INTERVAL.match(value[0]):
            return value
        for day in value:
            if day not in ("day", "weekday", *WEEKDAYS):
                raise ValueError(
                    f"{day!r} is not a schedule: use day, weekday, a day's name "
                    "(monday..sunday), or an interval such as '15 minutes' or '2 hours'"
                )
        return value

    @field_validator("at")
    @classmethod
    def _whole_minutes(cls, value: list[time]) -> list[time]:
        for item in value:
            if item.tzinfo is not None:
                raise ValueError("give the time without an offset; `timezone:` names the zone")
        return sorted(set(value))

    @model_validator(mode="after")
    def _consistent(self) -> RunSchedule:
        minutes = self.interval_minutes
        if minutes is None:
            if not self.at:
                raise ValueError("`at:` is required with `every: " + ", ".join(self.every) + "`")
            if self.on != ["day"]:
                raise ValueError("`on:` goes with an interval; name the days in `every:`")
            return self
        if self.at:
            raise ValueError("`at:` goes with day, weekday or a day's name, not an interval")
        if minutes <= 0 or MINUTES_PER_DAY % minutes:
            raise ValueError(
                f"an interval must divide a day evenly ({self.every[0]!r} does not): "
                "1, 2, 5, 10, 15, 20, 30 minutes or 1, 2, 3, 4, 6, 8, 12 hours"
            )
        if INTERVAL.match(self.on[0]):
            raise ValueError("`on:` names days (day, weekday, monday..sunday)")
        return self

    @property
    def interval_minutes(self) -> int | None:
        match = INTERVAL.match(self.every[0]) if len(self.every) == 1 else None
        if match is None:
            return None
        return int(match[1]) * (60 if match[2].startswith("hour") else 1)

    @property
    def day_names(self) -> list[str]:
        """The days it fires on: `every` for a daily schedule, `on` for an interval."""
        return self.on if self.interval_minutes is not None else self.every

    def describe(self) -> str:
        """'day at 02:30 (Asia/Shanghai)', 'every 15 minutes on weekday (UTC)'."""
        zone = self.timezone or "this machine's zone"
        if self.interval_minutes is not None:
            return f"every {self.every[0]} on {', '.join(self.on)} ({zone})"
        times = ", ".join(t.strftime("%H:%M") for t in self.at)
        return f"{', '.join(self.every)} at {times} ({zone})"
