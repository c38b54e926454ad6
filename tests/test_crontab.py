"""`runner.py crontab`: the lines (zones, daylight saving, desktop, environment) and a
real Debian cron running them against the simulators."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bots.recipe import LoadedRecipe, load_recipe
from bots.redaction import Redactor
from bots.scheduling.cron import CronOptions, cron_field, crontab_text, recipe_lines
from bots.scheduling.environment import run_environment
from bots.scheduling.timetable import Timetable
from credentials import open_store
from credentials.store import create_key_file
from tests.e2e import (
    ARCHIVE_PASSWORD,
    ERP_PASSWORD,
    ROOT,
    archive_args,
    ledger_rows,
    recipe_variant,
    start_simulators,
    unscheduled_recipe,
    wait_until,
)

UTC_ZONE = ZoneInfo("UTC")
NOW = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)


def scheduled(tmp_path: Path, schedule: str, *, desktop: bool = False) -> LoadedRecipe:
    base = ROOT / "recipes" / ("demo-desktop.yaml" if desktop else "demo.yaml")
    path = recipe_variant(tmp_path, "r.yaml", [], f"schedule: {schedule}\n", base=base)
    return load_recipe(path)


def options(zone: ZoneInfo = UTC_ZONE, **extra: object) -> CronOptions:
    root = Path("/opt/rpa fleet")  # a blank: every path must be quoted
    values: dict[str, object] = {
        "root": root,
        "python": root / ".venv/bin/python",
        "logs_dir": root / "logs",
        "machine_zone": zone,
        "now": NOW,
    }
    values.update(extra)
    return CronOptions(**values)  # type: ignore[arg-type]


def times(loaded: LoadedRecipe, zone: ZoneInfo = UTC_ZONE) -> list[str]:
    """The five time fields of each cron line of ``loaded``."""
    lines = recipe_lines(loaded, options(zone))
    return [" ".join(line.split()[:5]) for line in lines if not line.startswith("#")]


def field_matches(field: str, value: int, high: int) -> bool:
    """Whether a cron field (`*`, `*/N`, `A-B/N`, `A-B`, lists) includes ``value``."""
    for part in field.split(","):
        spec, _, step = part.partition("/")
        low, _, top = spec.partition("-")
        start = 0 if spec == "*" else int(low)
        end = high if spec == "*" or (step and not top) else int(top or low)
        if start <= value <= end and (value - start) % int(step or 1) == 0:
            return True
    return False


def fires_at(lines: list[str], moment: datetime) -> bool:
    for line in lines:
        minute, hour, _, _, weekday = line.split()
        if (
            field_matches(minute, moment.minute, 59)
            and field_matches(hour, moment.hour, 23)
            and field_matches(weekday, (moment.weekday() + 1) % 7, 6)
        ):
            return True
    return False


# -- the time fields ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "low", "high", "expected"),
    [
        (set(range(60)), 0, 59, "*"),
        ({0, 15, 30, 45}, 0, 59, "*/15"),
        ({5, 25, 45}, 0, 59, "5-59/20"),
        ({0, 12}, 0, 23, "*/12"),
        ({1, 2, 3, 4, 5}, 0, 6, "1-5"),
        ({0, 1}, 0, 23, "0,1"),
        ({18}, 0, 23, "18"),
        ({0, 1, 2, 7, 9}, 0, 23, "0-2,7,9"),
    ],
)
def test_cron_field_spelling(values: set[int], low: int, high: int, expected: str) -> None:
    assert cron_field(values, low, high) == expected
    assert {v for v in range(low, high + 1) if field_matches(expected, v, high)} == values


def test_same_zone_without_daylight_saving_is_one_line(tmp_path: Path) -> None:
    assert times(scheduled(tmp_path, "{every: day, at: '02:30', timezone: UTC}")) == ["30 2 * * *"]


def test_another_zone_is_converted_with_its_weekdays(tmp_path: Path) -> None:
    """02:30 and 14:00 on weekdays in Shanghai (UTC+8) on a UTC machine: 18:30 the day
    before (Sunday to Thursday) and 06:00 the same day."""
    loaded = scheduled(
        tmp_path, "{every: weekday, at: ['02:30', '14:00'], timezone: Asia/Shanghai}"
    )
    assert times(loaded) == ["0 6 * * 1-5", "30 18 * * 0-4"]


def test_daylight_saving_gets_a_line_per_offset_and_the_skipped_hour(tmp_path: Path) -> None:
    """Berlin's 02:30 is 00:30 UTC in summer, 01:30 in winter, and on the night the
    clocks skip it (a Sunday), 01:00 UTC, the jump: every due instant of the coming year
    has a line that fires at it."""
    loaded = scheduled(tmp_path, "{every: day, at: '02:30', timezone: Europe/Berlin}")
    lines = times(loaded)
    assert lines == ["30 0,1 * * *", "0 1 * * 0"]
    assert loaded.recipe.schedule is not None
    timetable = Timetable.of(loaded.recipe.schedule, None, UTC_ZONE)
    year = list(timetable.due_between(NOW, NOW + timedelta(days=365)))
    assert len(year) == 365
    assert all(fires_at(lines, instant) for instant in year)
    assert datetime(2027, 3, 28, 1, 0, tzinfo=UTC) in year  # the skipped 02:30


def test_machine_zone_with_daylight_saving(tmp_path: Path) -> None:
    """The same in reverse: a UTC schedule on a New York machine."""
    loaded = scheduled(tmp_path, "{every: monday, at: '12:00', timezone: UTC}")
    new_york = ZoneInfo("America/New_York")
    lines = times(loaded, new_york)
    assert lines == ["0 7,8 * * 1"]
    assert loaded.recipe.schedule is not None
    timetable = Timetable.of(loaded.recipe.schedule, None, new_york)
    for instant in timetable.due_between(NOW, NOW + timedelta(days=365)):
        assert fires_at(lines, instant.astimezone(new_york)), instant


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("{every: 15 minutes}", ["*/15 * * * *"]),
        ("{every: 1 minute}", ["* * * * *"]),
        ("{every: 2 hours, timezone: Asia/Kathmandu}", ["15 */2 * * *"]),  # UTC+05:45
        ("{every: 30 minutes, on: weekday, timezone: UTC}", ["*/30 * * * 1-5"]),
    ],
)
def test_intervals(tmp_path: Path, schedule: str, expected: list[str]) -> None:
    assert times(scheduled(tmp_path, schedule)) == expected


def test_interval_across_daylight_saving_fires_at_every_due_instant(tmp_path: Path) -> None:
    loaded = scheduled(tmp_path, "{every: 2 hours, on: weekday, timezone: Europe/Berlin}")
    lines = times(loaded)
    assert loaded.recipe.schedule is not None
    timetable = Timetable.of(loaded.recipe.schedule, None, UTC_ZONE)
    year = list(timetable.due_between(NOW, NOW + timedelta(days=365), limit=5000))
    assert all(fires_at(lines, instant) for instant in year)
    # and not every hour of every day: weekends in Berlin stay quiet on Saturday noon
    assert not fires_at(lines, datetime(2027, 1, 9, 12, 0, tzinfo=UTC))


# -- the command -------------------------------------------------------------------


def test_line_runs_the_scheduled_recipe_from_the_project_through_tee(tmp_path: Path) -> None:
    loaded = scheduled(tmp_path, "{every: day, at: '02:30', timezone: UTC}")
    (line,) = [line for line in recipe_lines(loaded, options()) if not line.startswith("#")]
    command = line.split(None, 5)[5]
    assert command == (
        "cd '/opt/rpa fleet' && mkdir -p '/opt/rpa fleet/logs/cron' && "
        f"'/opt/rpa fleet/.venv/bin/python' '/opt/rpa fleet/runner.py' run {loaded.path.resolve()}"
        " --scheduled 2>&1 | tee -a '/opt/rpa fleet/logs/cron/demo.log'"
    )
    comment = recipe_lines(loaded, options())[0]
    assert comment.startswith("# demo: day at 02:30 (UTC)")


def test_desktop_recipe_runs_under_xvfb_run_with_percent_escaped(tmp_path: Path) -> None:
    loaded = scheduled(tmp_path, "{every: day, at: '02:30'}", desktop=True)
    odd = options(logs_dir=Path("/var/log/fleet%d"))
    (line,) = [line for line in recipe_lines(loaded, odd) if not line.startswith("#")]
    assert " xvfb-run -a -s '-screen 0 1280x1024x24 -nolisten tcp' '/opt/rpa fleet/.venv" in line
    assert "fleet\\%d" in line and "fleet%d" not in line.replace("fleet\\%d", "")


def test_environment_lines_carry_settings_never_the_key(tmp_path: Path) -> None:
    loaded = scheduled(tmp_path, "{every: day, at: '02:30'}")
    env = {
        "FLEET_KEYRING_KEY": "master-key-value-91c2",
        "FLEET_KEYRING_KEY_FILE": "/etc/fleet/key",
        "FLEET_LOGS_DIR": "/srv/logs",
        "FLEET_LEDGER_URL": "postgresql+psycopg://fleet:ledger-pw-77@db/fleet",
        "ERP_URL": "http://erp.example:8301",
        "UNRELATED": "x",
    }
    text = crontab_text(
        [loaded], run_environment(env, loaded.recipe.env), options(mailto="ops@example.org")
    )
    head = text.split("\n\n")[0].splitlines()
    settings = [line for line in head if not line.startswith("#")]
    assert settings == [
        "SHELL=/bin/sh",
        "PATH=/opt/rpa fleet/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
        ":/sbin:/bin",
        "MAILTO=ops@example.org",
        "FLEET_LOGS_DIR=/srv/logs",
        "FLEET_LEDGER_URL=postgresql+psycopg://fleet@db/fleet",
        "FLEET_KEYRING_KEY_FILE=/etc/fleet/key",
        "ERP_URL=http://erp.example:8301",
    ]
    assert "master-key-value-91c2" not in text and "ledger-pw-77" not in text
    assert any("FLEET_KEYRING_KEY is set here but left out" in line for line in head)
    assert any("~/.pgpass" in line for line in head)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "runner.py", *args],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_recipe_without_a_schedule_is_refused(tmp_path: Path) -> None:
    result = run_cli("crontab", str(unscheduled_recipe(tmp_path)))
    assert result.returncode == 2
    assert "no `schedule:` section" in result.stderr
    assert result.stdout == ""


# -- a real cron -------------------------------------------------------------------

SENDMAIL = Path("/usr/sbin/sendmail")
CRON_WAIT = 150  # seconds: the next minute, a run of three reports, a failing login


@contextmanager
def fake_sendmail(mail_dir: Path) -> Iterator[None]:
    """Debian's cron mails a job's output through /usr/sbin/sendmail; with no MTA it
    drops it. This one keeps each message in ``mail_dir``, for the test's lifetime."""
    mail_dir.mkdir()
    SENDMAIL.write_text(f'#!/bin/sh\ncat > "$(mktemp {mail_dir}/mail.XXXXXX)"\n', encoding="utf-8")
    SENDMAIL.chmod(0o755)
    try:
        yield
    finally:
        SENDMAIL.unlink()


@contextmanager
def installed_crontab(text: str, tmp_path: Path) -> Iterator[None]:
    """``text`` as this user's crontab; the one before (or none) back afterwards."""
    before = subprocess.run(["crontab", "-l"], capture_output=True, text=True, timeout=30)
    new = tmp_path / "fleet.cron"
    new.write_text(text, encoding="utf-8")
    subprocess.run(["crontab", str(new)], check=True, timeout=30)
    try:
        yield
    finally:
        if before.returncode == 0:
            subprocess.run(["crontab", "-"], input=before.stdout, text=True, check=True, timeout=30)
        else:
            subprocess.run(["crontab", "-r"], check=True, timeout=30)


@contextmanager
def cron_daemon(tmp_path: Path) -> Iterator[None]:
    """Debian's cron in the foreground, stopped by its PID; none started when one runs."""
    running = subprocess.run(["pgrep", "-x", "cron"], capture_output=True, timeout=30)
    if running.returncode == 0:
        yield
        return
    with (tmp_path / "cron.out").open("wb") as out:
        daemon = subprocess.Popen(["cron", "-f"], stdout=out, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def processes_mentioning(needle: str) -> list[int]:
    """PIDs whose command line names ``needle`` (runs cron started from this test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue  # it ended meanwhile
    return found


def stop_leftover_runs(recipes_dir: Path) -> None:
    """A minute may have started another run before the crontab was taken back: wait
    for it (bounded), then stop it, so the simulators are not pulled from under it."""
    try:
        wait_until(lambda: not processes_mentioning(str(recipes_dir)), 60, "cron's runs end")
    except AssertionError:
        for pid in processes_mentioning(str(recipes_dir)):
            os.kill(pid, 15)


def keyfile_env(tmp_path: Path) -> dict[str, str]:
    """A world's environment with the keyring's master key in a key file, as a crontab
    should have it: never FLEET_KEYRING_KEY."""
    env = {key: value for key, value in os.environ.items() if key != "FLEET_KEYRING_KEY"}
    env.update(
        {
            "HOME": str(tmp_path / "home"),
            "FLEET_LOGS_DIR": str(tmp_path / "logs"),
            "FLEET_KEYRING_KEY_FILE": str(tmp_path / "keyring" / "master.key"),
            "FLEET_KEYRING_FILE": str(tmp_path / "keyring" / "credentials.cfg"),
        }
    )
    assert create_key_file(Path(env["FLEET_KEYRING_KEY_FILE"]))
    store = open_store(env, Redactor())
    store.set("demo-erp", "clerk", ERP_PASSWORD)
    store.set("demo-archive", "archivist", ARCHIVE_PASSWORD)
    store.set("demo-archive-wrong", "archivist", "not-" + ARCHIVE_PASSWORD)
    return env


@pytest.mark.cron
@pytest.mark.e2e
def test_real_cron_runs_the_crontab_and_mails_only_failures(tmp_path: Path) -> None:
    """The issue's test: the printed crontab, installed for real, runs a demo recipe on
    the next minute and leaves a run log; nothing is mailed for it. A second recipe whose
    archive password is wrong fails in the same minute: cron mails its errors."""
    if shutil.which("cron") is None or shutil.which("crontab") is None:
        pytest.skip("Debian's cron is not installed (scripts/setup.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("starting cron and changing root's crontab needs root")
    if SENDMAIL.exists():
        pytest.skip(f"{SENDMAIL} is a real mailer here: the test would mail root for real")
    env = keyfile_env(tmp_path)
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    every_minute = "schedule: {every: 1 minute}\n"
    ok = recipe_variant(
        recipes, "cron-ok.yaml", [("recipe: demo\n", "recipe: cron-ok\n")], every_minute
    )
    bad = recipe_variant(
        recipes,
        "cron-bad.yaml",
        [
            ("recipe: demo\n", "recipe: cron-bad\n"),
            ("credential: demo-archive\n", "credential: demo-archive-wrong\n"),
        ],
        every_minute,
    )
    logs = tmp_path / "logs"
    with ExitStack() as stack:
        erp_args = ["--password", ERP_PASSWORD, "--reports", "3", "--gen-seconds", "1"]
        erp_url, archive_url = start_simulators(
            stack, tmp_path, env, erp=erp_args, archive=archive_args(tmp_path)
        )
        printed = run_cli("crontab", str(ok), str(bad), "--mailto", "root", env=env)
        assert printed.returncode == 0, printed.stderr
        text = printed.stdout
        assert "FLEET_KEYRING_KEY=" not in text and f"ARCHIVE_URL={archive_url}" in text
        stack.callback(stop_leftover_runs, recipes)
        stack.enter_context(fake_sendmail(tmp_path / "mail"))
        stack.enter_context(installed_crontab(text, tmp_path))
        stack.enter_context(cron_daemon(tmp_path))

        def ok_run_ended() -> list[dict[str, object]]:
            return [r for r in ledger_rows(logs, "runs", recipe="cron-ok") if r["ended_at"]]

        def bad_mail() -> list[str]:
            return [p.read_text(errors="replace") for p in (tmp_path / "mail").iterdir()]

        (run,) = wait_until(ok_run_ended, CRON_WAIT, "cron starts cron-ok and it ends")[:1]
        mails = wait_until(bad_mail, CRON_WAIT, "cron mails cron-bad's failure")
        # Its shell gone, tee has written (and cron been handed) all that cron-ok printed.
        wait_until(lambda: not processes_mentioning(str(ok)), 60, "cron-ok's job exits")
        mails = bad_mail()
        archived = [item["metadata"] for item in get_archive(archive_url)]
        reports = get_reports(erp_url)

    assert run["outcome"] == "ok", run
    assert len(reports) == 3 and len(archived) == 3
    run_log = Path(str(run["log_path"]))
    assert run_log.is_file() and '"event": "run_end"' in run_log.read_text(encoding="utf-8")
    # Nothing printed on success, so nothing in the cron log and nothing mailed.
    assert (logs / "cron" / "cron-ok.log").read_text(encoding="utf-8") == ""
    assert all("cron-ok" not in mail for mail in mails), mails
    # The failure: its errors in its cron log and in cron's mail to root.
    failure = (logs / "cron" / "cron-bad.log").read_text(encoding="utf-8")
    assert "FAILED cron-bad" in failure and "cannot log in" in failure, failure
    assert any("To: root" in mail and failure.splitlines()[0] in mail for mail in mails), mails


def get_archive(url: str) -> list[dict[str, object]]:
    from sims.control import get_json

    return list(get_json(f"{url}/_sim/state")["items"])


def get_reports(url: str) -> list[dict[str, object]]:
    from sims.control import get_json

    return list(get_json(f"{url}/_sim/state")["reports"])
