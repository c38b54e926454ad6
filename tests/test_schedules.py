"""A recipe's `schedule:`: validation (file:line), holiday calendars, the due-time
arithmetic across daylight saving (a fixed zone that has it), and the decisions.

Europe/Berlin in 2026: clocks jump 02:00 → 03:00 on 29 March (02:30 does not exist) and
fall back 03:00 → 02:00 on 25 October (02:30 happens twice)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bots.errors import RecipeError
from bots.ledger import Ledger
from bots.recipe import load_recipe
from bots.scheduling.book import ScheduleBook, Standing
from bots.scheduling.calendar import load_calendar
from bots.scheduling.decide import decide, record_finish, resume
from bots.scheduling.spec import RunSchedule
from bots.scheduling.timetable import NeverFires, Timetable

from .e2e import recipe_variant

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)  # type: ignore[misc]


def table(calendar_path: Path | None = None, **spec: object) -> Timetable:
    schedule = RunSchedule.model_validate({"timezone": "Europe/Berlin", **spec})
    calendar = load_calendar(calendar_path) if calendar_path else None
    return Timetable.of(schedule, calendar, UTC)


def local(instants: list[datetime]) -> list[str]:
    return [i.astimezone(BERLIN).strftime("%m-%d %H:%M%z") for i in instants]


# -- daylight saving -------------------------------------------------------------


def test_a_time_the_clocks_skip_runs_once_at_the_jump() -> None:
    t = table(every="day", at="02:30")
    days = [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]
    assert [local(t.instants_on(d)) for d in days] == [
        ["03-28 02:30+0100"],
        ["03-29 03:00+0200"],  # the first valid moment after 02:30: when clocks jump
        ["03-30 02:30+0200"],
    ]


def test_a_time_that_happens_twice_runs_once_the_first_time() -> None:
    t = table(every="day", at="02:30")
    assert local(t.instants_on(date(2026, 10, 25))) == ["10-25 02:30+0200"]


def test_each_daily_run_happens_exactly_once_across_both_changes() -> None:
    """Walking the schedule from one run to the next, as serve does, over the weeks
    around both changes: one run per local day, never two, none lost."""
    t = table(every="day", at="02:30")
    for start in (berlin(2026, 3, 20, 12, 0), berlin(2026, 10, 18, 12, 0)):
        runs = list(t.due_between(start, start + timedelta(days=14)))
        days = [r.astimezone(BERLIN).date() for r in runs]
        assert len(runs) == 14 and len(set(days)) == 14
        assert all(b - a == timedelta(days=1) for a, b in zip(days, days[1:], strict=False))


def test_an_interval_keeps_real_time_cadence_through_both_changes() -> None:
    t = table(every="30 minutes")
    spring, autumn = t.instants_on(date(2026, 3, 29)), t.instants_on(date(2026, 10, 25))
    assert len(spring) == 46 and len(autumn) == 50  # a 23-hour and a 25-hour day
    for instants in (spring, autumn):
        gaps = {b - a for a, b in zip(instants, instants[1:], strict=False)}
        assert gaps == {timedelta(minutes=30)}


def test_times_come_from_the_schedule_not_from_when_a_run_ended() -> None:
    """No drift: however late each run ends, the next due time stays on the minute."""
    t = table(every="15 minutes")
    moment = berlin(2026, 5, 4, 9, 0)
    for _ in range(50):
        due = t.due_after(moment)
        assert due.second == 0 and due.minute % 15 == 0
        moment = due + timedelta(seconds=61)  # the run took a minute and a second
    assert local([due]) == ["05-04 21:30+0200"]


# -- days and calendars ----------------------------------------------------------


def calendar_file(tmp_path: Path) -> Path:
    path = tmp_path / "cn-2026.yaml"
    path.write_text(
        "name: 法定节假日 2026\n"
        "holidays:\n"
        "  - 2026-10-01..2026-10-07\n"
        "  - 2026-12-25\n"
        "workdays:\n"
        "  - 2026-10-10   # a Saturday worked (调休)\n",
        encoding="utf-8",
    )
    return path


def test_holidays_do_not_fire_and_worked_weekends_do(tmp_path: Path) -> None:
    t = table(calendar_file(tmp_path), every="weekday", at="08:00")
    fired = [
        d for d in (date(2026, 9, 30) + timedelta(days=n) for n in range(14)) if t.instants_on(d)
    ]
    assert fired == [
        date(2026, 9, 30),  # Wednesday
        date(2026, 10, 8),  # Thursday: the holidays ended on the 7th
        date(2026, 10, 9),
        date(2026, 10, 10),  # Saturday, a workday in the calendar
        date(2026, 10, 12),
        date(2026, 10, 13),
    ]
    assert local([t.due_after(berlin(2026, 12, 24, 9, 0))]) == ["12-28 08:00+0100"]


def test_a_calendar_error_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("holidays:\n  - 2026-10-01\n  - 2026-13-01\n", encoding="utf-8")
    with pytest.raises(RecipeError) as caught:
        load_calendar(path)
    assert f"{path}:3" in str(caught.value) and "2026-13-01" in str(caught.value)


def test_a_schedule_that_never_fires_says_so(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(
        "holidays: ['2026-01-01..2026-12-31', '2027-01-01..2027-12-31',"
        " '2028-01-01..2028-12-31']\n",
        encoding="utf-8",
    )
    t = table(path, every="day", at="02:00")
    with pytest.raises(NeverFires):
        t.due_after(berlin(2026, 1, 1, 0, 0))


# -- in a recipe ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  every: fortnight\n  at: '02:30'\n", "'fortnight' is not a schedule"),
        ("  every: day\n", "`at:` is required"),
        ("  every: day\n  at: '25:00'\n", "hour must be in 0..23"),
        ("  every: 7 minutes\n", "must divide a day"),
        ("  every: day\n  at: '02:30'\n  timezone: Mars/Olympus\n", "unknown time zone"),
        ("  every: day\n  at: '02:30'\n  on_missed: later\n", "run_once"),
        ("  every: day\n  at: '02:30'\n  holidays: nowhere.yaml\n", "does not exist"),
    ],
)
def test_a_bad_schedule_is_refused_with_its_line(
    tmp_path: Path, section: str, message: str
) -> None:
    path = recipe_variant(tmp_path, "r.yaml", [], "schedule:\n" + section)
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    text = str(caught.value)
    assert message in text
    first = len(path.read_text().splitlines()) - section.count("\n")  # appended last
    assert any(f"{path}:{n}" in text for n in range(first, first + 5)), text


def test_a_good_schedule_loads_with_its_calendar(tmp_path: Path) -> None:
    calendar_file(tmp_path)
    path = recipe_variant(
        tmp_path,
        "r.yaml",
        [],
        "schedule:\n  every: [monday, thursday]\n  at: ['02:30', '14:00']\n"
        "  timezone: Asia/Shanghai\n  on_missed: skip\n  holidays: cn-2026.yaml\n",
    )
    loaded = load_recipe(path)
    assert loaded.recipe.schedule is not None and loaded.calendar is not None
    assert loaded.recipe.schedule.describe() == "monday, thursday at 02:30, 14:00 (Asia/Shanghai)"
    assert date(2026, 10, 1) in loaded.calendar.holidays


# -- decisions -------------------------------------------------------------------


def test_decisions_on_time_missed_and_first_time() -> None:
    t = table(every="day", at="02:30")
    yesterday = berlin(2026, 5, 3, 2, 30)
    on_time = decide(t, Standing("r", last_due_at=yesterday), None, berlin(2026, 5, 4, 2, 31))
    assert on_time.run and on_time.kind == "on_time" and on_time.missed == []

    late = berlin(2026, 5, 6, 9, 0)  # 4, 5 and 6 May missed
    owed = decide(t, Standing("r", last_due_at=yesterday), None, late)
    assert owed.run and owed.kind == "missed_run_once" and len(owed.missed) == 3
    assert "missed 3 runs" in owed.reason and "runs once now" in owed.reason

    t_skip = table(every="day", at="02:30", on_missed="skip")
    skipped = decide(t_skip, Standing("r", last_due_at=yesterday), None, late)
    assert (
        not skipped.run and skipped.kind == "missed_skip" and "2026-05-07 02:30" in skipped.reason
    )

    # A run by hand after the due time counts for it (the run history, not only ours).
    by_hand = decide(t, Standing("r", last_due_at=yesterday), berlin(2026, 5, 6, 3, 0), late)
    assert not by_hand.run and by_hand.kind == "not_due"

    never = decide(t, Standing("r"), None, late)
    assert not never.run and never.kind == "first_time"


def test_failures_in_a_row_pause_a_recipe_until_resumed(tmp_path: Path) -> None:
    ledger = Ledger.open(
        f"sqlite:///{tmp_path / 'l.sqlite3'}", lambda: datetime.now(UTC), staging_root=tmp_path
    )
    book = ScheduleBook(ledger, "test")
    now = berlin(2026, 5, 4, 2, 30)
    assert not record_finish(book, "r", 3, 3, now).paused
    assert record_finish(book, "r", 3, 75, now).failures_in_row == 1  # locked: not counted
    assert record_finish(book, "r", 3, 2, now).failures_in_row == 2
    assert record_finish(book, "r", 3, 1, now).failures_in_row == 0  # it ran: reset
    for _ in range(2):
        record_finish(book, "r", 3, 3, now)
    standing = record_finish(book, "r", 3, 143, now)  # stopped by SIGTERM: not counted
    assert not standing.paused
    standing = record_finish(book, "r", 3, 3, now)
    assert standing.paused and "3 scheduled runs failed in a row" in (standing.paused_reason or "")
    t = table(every="day", at="02:30")
    assert decide(t, standing, None, now + timedelta(days=1)).kind == "paused"
    assert not resume(book, "r", now).paused
    decisions = [e["decision"] for e in reversed(book.events("r"))]
    assert decisions[-3:] == ["failed", "paused", "resumed"]
    ledger.close()


def test_the_example_calendar_loads() -> None:
    from tests.conftest import ROOT

    calendar = load_calendar(ROOT / "recipes" / "calendars" / "example-cn.yaml")
    assert date(2026, 10, 7) in calendar.holidays and date(2026, 10, 10) in calendar.workdays
