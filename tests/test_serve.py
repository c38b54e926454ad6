"""`serve`: the loop on an injected clock (no sleeps), with children that end when the
test says; and `serve --once --now` for real, against the simulators."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bots.ledger import Ledger
from bots.scheduling.book import ScheduleBook
from bots.scheduling.commands import RecipeCommand
from bots.scheduling.serve import ScheduledRecipe, Server
from bots.scheduling.spec import RunSchedule
from bots.scheduling.status import recipe_status
from bots.scheduling.timetable import Timetable

from .e2e import ROOT, ledger_documents, ledger_rows, recipe_variant, wait_until, world

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)  # type: ignore[misc]


class FakeClock:
    """Time moves only when the test moves it; a wait returns at once."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def wait(self, seconds: float, wake: threading.Event) -> None:
        pass


@dataclass
class FakeChild:
    name: str
    code: int | None = None
    signals: list[int] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> int | None:
        return self.code

    def wait(self) -> int:
        # serve's watcher thread waits here; a test that leaves a child running ends
        # without it, and the thread (a daemon) gives up.
        self.ended.wait(5)
        return self.code if self.code is not None else -9

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        self.end(143)  # as `run` does: finishes its document, exits 143

    def end(self, code: int) -> None:
        self.code = code
        self.ended.set()


@dataclass
class FakeLauncher:
    clock: FakeClock
    children: list[FakeChild] = field(default_factory=list)
    started: list[tuple[str, datetime]] = field(default_factory=list)
    exit_code: int | None = None  # end each child at once with this code
    refuse: set[str] = field(default_factory=set)

    def __call__(self, recipe: ScheduledRecipe) -> FakeChild:
        if recipe.name in self.refuse:
            raise OSError(f"cannot start {recipe.name}")
        child = FakeChild(recipe.name)
        self.children.append(child)
        self.started.append((recipe.name, self.clock.now()))
        if self.exit_code is not None:
            child.end(self.exit_code)
        return child

    def running(self) -> list[str]:
        return [c.name for c in self.children if c.code is None]


def scheduled(name: str, pause_after: int = 3, **spec: object) -> ScheduledRecipe:
    schedule = RunSchedule.model_validate({"timezone": "Europe/Berlin", **spec})
    return ScheduledRecipe(
        name=name,
        path=Path(f"/recipes/{name}.yaml"),
        timetable=Timetable.of(schedule, None, UTC),
        pause_after=pause_after,
        command=RecipeCommand(["true"], Path("/")),
    )


@pytest.fixture
def book(tmp_path: Path) -> Iterator[ScheduleBook]:
    ledger = Ledger.open(
        f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        lambda: datetime.now(UTC),
        staging_root=tmp_path,
    )
    yield ScheduleBook(ledger, "serve")
    ledger.close()


def server(
    book: ScheduleBook, clock: FakeClock, recipes: list[ScheduledRecipe], **options: object
) -> tuple[Server, FakeLauncher]:
    launcher = FakeLauncher(clock)
    srv = Server(recipes=lambda: recipes, book=book, clock=clock, launcher=launcher, **options)  # type: ignore[arg-type]
    srv.load()
    return srv, launcher


def at_next_run(srv: Server, clock: FakeClock) -> None:
    """Move the clock to the next due time, as the loop's wait would, and tick."""
    clock.moment = min(j.next_run for j in srv.scheduler.get_jobs("recipes") if j.next_run)
    srv.tick()


def seen_before(book: ScheduleBook, *names: str, at: datetime) -> None:
    for name in names:
        book.update(name, at, last_due_at=at)


def test_two_recipes_due_at_once_run_side_by_side(book: ScheduleBook) -> None:
    clock = FakeClock(berlin(2026, 5, 4, 12, 0))
    seen_before(book, "a", "b", at=berlin(2026, 5, 4, 2, 30))
    srv, launcher = server(
        book,
        clock,
        [scheduled("a", every="day", at="02:30"), scheduled("b", every="day", at="02:30")],
    )
    at_next_run(srv, clock)
    assert clock.moment == berlin(2026, 5, 5, 2, 30)
    assert sorted(launcher.running()) == ["a", "b"]  # both at once, neither waiting


def test_max_parallel_makes_the_rest_wait_their_turn(book: ScheduleBook) -> None:
    clock = FakeClock(berlin(2026, 5, 4, 12, 0))
    names = ["a", "b", "c"]
    seen_before(book, *names, at=berlin(2026, 5, 4, 2, 30))
    srv, launcher = server(
        book, clock, [scheduled(n, every="day", at="02:30") for n in names], max_parallel=2
    )
    at_next_run(srv, clock)
    assert launcher.running() == ["a", "b"] and list(srv.queue) == ["c"]
    launcher.children[0].end(0)
    srv.tick()
    assert launcher.running() == ["b", "c"] and not srv.queue


def test_one_recipe_never_runs_twice_at_once(book: ScheduleBook) -> None:
    clock = FakeClock(berlin(2026, 5, 4, 9, 5))
    seen_before(book, "a", at=berlin(2026, 5, 4, 9, 0))
    srv, launcher = server(book, clock, [scheduled("a", every="15 minutes")])
    at_next_run(srv, clock)  # 09:15: starts
    at_next_run(srv, clock)  # 09:30: still running: owed once, not started
    at_next_run(srv, clock)  # 09:45: still owed once
    assert len(launcher.started) == 1 and launcher.running() == ["a"]
    launcher.children[0].end(0)
    srv.tick()  # it ended: the owed run starts, once
    assert len(launcher.started) == 2 and launcher.running() == ["a"]
    assert [e["decision"] for e in book.events("a")].count("queued") == 1


def test_a_job_that_raises_does_not_stop_the_loop(book: ScheduleBook) -> None:
    class Broken(Timetable):
        def last_due(self, moment: datetime) -> datetime | None:
            raise RuntimeError("a bug in one recipe's job")

    good = scheduled("good", every="day", at="02:30")
    bad = scheduled("bad", every="day", at="02:30")
    bad = ScheduledRecipe(
        bad.name, bad.path, Broken(bad.timetable.schedule, BERLIN), 3, bad.command
    )
    clock = FakeClock(berlin(2026, 5, 4, 12, 0))
    seen_before(book, "good", at=berlin(2026, 5, 4, 2, 30))
    srv, launcher = server(book, clock, [bad, good], max_parallel=4)
    launcher.exit_code = 0
    at_next_run(srv, clock)
    at_next_run(srv, clock)  # the next day too: the loop went on
    assert [name for name, _ in launcher.started] == ["good", "good"]
    errors = [e for e in book.events("bad") if e["decision"] == "error"]
    assert len(errors) == 2 and "a bug in one recipe's job" in errors[0]["detail"]


def test_a_recipe_failing_n_runs_in_a_row_is_paused_and_shown_paused(book: ScheduleBook) -> None:
    clock = FakeClock(berlin(2026, 5, 4, 12, 0))
    seen_before(book, "a", at=berlin(2026, 5, 4, 2, 30))
    srv, launcher = server(book, clock, [scheduled("a", pause_after=2, every="day", at="02:30")])
    launcher.exit_code = 3  # a system failure every time
    for _ in range(4):
        at_next_run(srv, clock)
        srv.tick()  # reap
    assert len(launcher.started) == 2  # paused after the second; the next two not run
    status = recipe_status(book, "a", srv.known["a"].timetable, clock.now())
    assert status.paused and "2 scheduled runs failed in a row" in (status.paused_reason or "")
    assert not status.healthy
    decisions = [e["decision"] for e in reversed(book.events("a", limit=50))]
    assert decisions.count("paused") == 3  # paused once, then twice "still paused"


def test_a_recipe_whose_last_run_stopped_on_an_error_needs_a_person(book: ScheduleBook) -> None:
    """A run that stopped on an error (a recipe problem, the ERP refusing the login) may
    have listed nothing: no document says so, the run does. `status` says it, and
    `--json` exits 1, until a run ends well."""
    from bots.scheduling.status import as_lines

    def ran(run_id: str, outcome: str) -> None:
        book.ledger.start_run(
            run_id=run_id,
            recipe="erp",
            recipe_digest="d" * 64,
            host="h",
            user="u",
            bot_version="0",
            log_path=f"/logs/{run_id}.jsonl",
            action="capture",
        )
        book.ledger.finish_run(run_id, outcome, {"listed": 45, "archived": 17})

    ran("erp-1", "ok")
    ran("erp-2", "error")
    status = recipe_status(book, "erp", None, datetime.now(UTC))
    assert status.last_run is not None and status.last_run["run_id"] == "erp-2"
    assert not status.healthy
    assert as_lines([status])[0] == "erp: LAST RUN FAILED"
    ran("erp-3", "ok")
    status = recipe_status(book, "erp", None, datetime.now(UTC))
    assert status.healthy and as_lines([status])[0] == "erp: ok"


def test_a_failure_to_start_counts_and_the_loop_goes_on(book: ScheduleBook) -> None:
    clock = FakeClock(berlin(2026, 5, 4, 12, 0))
    seen_before(book, "a", "b", at=berlin(2026, 5, 4, 2, 30))
    srv, launcher = server(
        book,
        clock,
        [scheduled("a", every="day", at="02:30"), scheduled("b", every="day", at="02:30")],
    )
    launcher.refuse = {"a"}
    at_next_run(srv, clock)
    assert launcher.running() == ["b"]
    assert book.standing("a").failures_in_row == 1


def test_each_daily_run_happens_once_across_daylight_saving(book: ScheduleBook) -> None:
    """The loop itself, from one due time to the next, through both changes of 2026."""
    for start in (berlin(2026, 3, 26, 12, 0), berlin(2026, 10, 22, 12, 0)):
        clock = FakeClock(start)
        name = f"r{start:%m}"
        seen_before(book, name, at=start - timedelta(hours=9))
        srv, launcher = server(book, clock, [scheduled(name, every="day", at="02:30")])
        launcher.exit_code = 0
        for _ in range(6):
            at_next_run(srv, clock)
        local = [t.astimezone(BERLIN) for _, t in launcher.started]
        assert len(local) == 6 and len({t.date() for t in local}) == 6
        times = [t.strftime("%H:%M") for t in local]
        if start.month == 3:  # 29 March: 02:30 does not exist; it ran at the jump
            assert local[2].strftime("%d %H:%M%z") == "29 03:00+0200"
            assert times.count("02:30") == 5
        else:  # 25 October: 02:30 happened twice; it ran the first time only
            assert local[2].strftime("%d %H:%M%z") == "25 02:30+0200"
            assert times == ["02:30"] * 6


@pytest.mark.parametrize("on_missed", ["run_once", "skip"])
def test_after_a_restart_missed_runs_follow_on_missed(book: ScheduleBook, on_missed: str) -> None:
    clock = FakeClock(berlin(2026, 5, 6, 9, 0))  # the machine was off since the 3rd
    seen_before(book, "a", at=berlin(2026, 5, 3, 2, 30))
    srv, launcher = server(
        book, clock, [scheduled("a", every="day", at="02:30", on_missed=on_missed)]
    )
    srv.catch_up()
    srv.tick()
    decision = book.events("a")[0] if on_missed == "skip" else book.events("a")[-1]
    if on_missed == "run_once":
        assert len(launcher.started) == 1
        assert decision["decision"] == "missed_run_once" and "missed 3 runs" in decision["detail"]
    else:
        assert launcher.started == []
        assert (
            decision["decision"] == "missed_skip"
            and "waits for 2026-05-07 02:30" in decision["detail"]
        )
    srv.catch_up()  # a second look (another restart) owes nothing more
    srv.tick()
    assert len(launcher.started) == (1 if on_missed == "run_once" else 0)


def test_sigterm_lets_runs_finish_and_sighup_reloads(book: ScheduleBook) -> None:
    clock = FakeClock(berlin(2026, 5, 4, 12, 0))
    seen_before(book, "a", "b", at=berlin(2026, 5, 4, 3, 0))
    recipes = [scheduled("a", every="day", at="02:30")]
    launcher = FakeLauncher(clock)
    srv = Server(recipes=lambda: list(recipes), book=book, clock=clock, launcher=launcher)
    restore = srv.install_signals()
    try:
        srv.load()
        recipes.append(scheduled("b", every="day", at="03:00"))
        signal.raise_signal(signal.SIGHUP)
        srv.tick()
        assert sorted(srv.known) == ["a", "b"] and len(srv.scheduler.get_jobs("recipes")) == 2
        at_next_run(srv, clock)  # 02:30: a starts
        assert launcher.running() == ["a"]
        signal.raise_signal(signal.SIGTERM)
        assert srv.stopping == "SIGTERM"
        srv._stop_children()
    finally:
        restore()
    assert launcher.children[0].signals == [signal.SIGTERM] and not srv.running
    assert book.events("a")[0]["decision"] == "not_run"  # stopped by SIGTERM: not a failure


# -- for real -----------------------------------------------------------------------


def test_serve_once_runs_a_missed_run_once_or_skips_it(tmp_path: Path) -> None:
    """`serve --once --now` past a missed 02:30: under run_once the recipe runs (the
    archive simulator holds the reports afterwards), under skip it does not; both say
    why in serve's log and in the ledger."""
    with world(tmp_path, reports=4) as w:
        recipes = {}
        for on_missed in ("run_once", "skip"):
            recipes[on_missed] = recipe_variant(
                tmp_path,
                f"{on_missed}.yaml",
                [("recipe: demo\n", f"recipe: demo-{on_missed.replace('_', '-')}\n")],
                "schedule:\n  every: day\n  at: '02:30'\n  timezone: Asia/Shanghai\n"
                f"  on_missed: {on_missed}\n",
            )
        # Each last ran (the ledger says) on 1 May at 02:30; it is now 3 May, 09:00.
        for path in recipes.values():
            subprocess.run(
                [sys.executable, "-c", _SEED, str(w.logs_dir), path.stem],
                cwd=ROOT,
                check=True,
                env=w.env,
            )
        now = "2026-05-03T09:00:00+08:00"
        for on_missed, path in recipes.items():
            proc = subprocess.run(
                [sys.executable, "runner.py", "serve", str(path), "--once", "--now", now],
                cwd=ROOT,
                env=w.env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 0, proc.stderr
            if on_missed == "run_once":
                assert "missed 2 runs" in proc.stderr and "runs once now" in proc.stderr
                assert len(w.archive_state()) == 4  # the run archived every report
            else:
                assert "on_missed: skip" in proc.stderr
        assert len(w.archive_state()) == 4  # the skipped one archived nothing more
        runs = ledger_rows(w.logs_dir, "runs")
        assert [r["recipe"] for r in runs] == ["demo-run-once"]
        log = (w.logs_dir / "serve" / "serve.log").read_text(encoding="utf-8")
        assert "on_missed: run_once" in log and "on_missed: skip" in log
        status = subprocess.run(
            [sys.executable, "runner.py", "status", str(recipes["run_once"]), "--json"],
            cwd=ROOT,
            env=w.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        report = json.loads(status.stdout)["recipes"][0]
        assert report["last_run"]["outcome"] == "ok" and report["confirmed"] == 4
        assert report["next_due"].endswith("+08:00") and not report["paused"]


_SEED = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from bots.ledger import Ledger
from bots.scheduling.book import ScheduleBook
logs, name = Path(sys.argv[1]), sys.argv[2]
logs.mkdir(parents=True, exist_ok=True)
ledger = Ledger.open(f"sqlite:///{logs / 'ledger.sqlite3'}", lambda: datetime.now(UTC),
                     staging_root=logs / "staging")
when = datetime(2026, 4, 30, 18, 30, tzinfo=UTC)  # 1 May 02:30 in Shanghai
ScheduleBook(ledger, "test").update("demo-" + name.replace("_", "-"), when, last_due_at=when)
ledger.close()
"""


def two_recipes(tmp_path: Path) -> dict[str, Path]:
    """Two scheduled variants of the demo, each with an archive name of its own (reference
    codes are unique per archive), both due every day at 02:30 Shanghai time."""
    recipes = {}
    for name in ("left", "right"):
        recipes[name] = recipe_variant(
            tmp_path,
            f"{name}.yaml",
            [
                ("recipe: demo\n", f"recipe: demo-{name}\n"),
                ("  system: 档案系统 (archive simulator)\n", f"  system: 档案系统 {name}\n"),
            ],
            "schedule:\n  every: day\n  at: '02:30'\n  timezone: Asia/Shanghai\n",
        )
    return recipes


def seed_history(w: object, names: list[str]) -> None:
    for name in names:
        subprocess.run(
            [sys.executable, "-c", _SEED, str(w.logs_dir), name],  # type: ignore[attr-defined]
            cwd=ROOT,
            check=True,
            env=w.env,  # type: ignore[attr-defined]
        )


def test_serve_runs_two_due_recipes_side_by_side_for_real(tmp_path: Path) -> None:
    """Two recipes due at the same moment run as two processes at once (their runs
    overlap in the ledger's own times), each archiving every report once."""
    with world(tmp_path, reports=5) as w:
        recipes = two_recipes(tmp_path)
        seed_history(w, ["left", "right"])
        proc = subprocess.run(
            [
                sys.executable,
                "runner.py",
                "serve",
                *map(str, recipes.values()),
                "--once",
                "--now",
                "2026-05-02T02:30:00+08:00",
                "--max-parallel",
                "2",
            ],
            cwd=ROOT,
            env=w.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        runs = {r["recipe"]: r for r in ledger_rows(w.logs_dir, "runs")}
        assert sorted(runs) == ["demo-left", "demo-right"]
        left, right = runs["demo-left"], runs["demo-right"]
        assert left["started_at"] < right["ended_at"] and right["started_at"] < left["ended_at"]
        assert all(r["outcome"] == "ok" for r in runs.values())
        held = Counter(item["sha256"] for item in w.archive_state())
        source = {report["sha256"] for report in w.erp_state()}
        assert set(held) == source and set(held.values()) == {2}  # each once per recipe


def test_sigterm_to_serve_lets_the_run_finish_its_document(tmp_path: Path) -> None:
    """SIGTERM to `serve` reaches the run, which finishes the document in hand and stops;
    serve waits for it and exits. Nothing is half-done: what the ledger confirmed is
    what the archive simulator holds, and the stop does not count as a failure."""
    with world(tmp_path, reports=12) as w:
        recipe = two_recipes(tmp_path)["left"]
        seed_history(w, ["left"])
        serve = subprocess.Popen(
            [
                sys.executable,
                "runner.py",
                "serve",
                str(recipe),
                "--once",
                "--now",
                "2026-05-02T02:30:00+08:00",
            ],
            cwd=ROOT,
            env=w.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: len(w.archive_state()) >= 2, 120, "two reports archived")
            serve.send_signal(signal.SIGTERM)
            _out, err = serve.communicate(timeout=120)
        finally:
            if serve.poll() is None:
                serve.kill()
        assert serve.returncode == 0, err
        assert "SIGTERM: stopping" in err
        documents = ledger_documents(w.logs_dir)
        confirmed = {k for k, d in documents.items() if d["state"] == "confirmed"}
        assert 2 <= len(confirmed) < 12  # stopped early, not cut off
        assert {d["state"] for d in documents.values()} <= {"confirmed", "listed"}
        assert len(w.archive_state()) == len(confirmed)
        (run,) = ledger_rows(w.logs_dir, "runs")
        assert run["outcome"] == "stopped"
        events = ledger_rows(w.logs_dir, "schedule_events", recipe="demo-left")
        assert events[-1]["decision"] == "not_run" and events[-1]["exit_code"] == 143


_DESKTOP_CHILD = """
import os, signal, subprocess, sys, time
out = sys.argv[1]
def stop(signum, frame):
    # the run finishing its document: the display must still be there
    alive = subprocess.run(["xdpyinfo"], capture_output=True).returncode == 0
    open(out, "a").write(f"SIGTERM display-alive={alive}\\n")
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
open(out, "a").write(f"started DISPLAY={os.environ.get('DISPLAY')}\\n")
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    signal.pause()
"""


def test_a_desktop_run_gets_its_own_display_and_sigterm_reaches_it(tmp_path: Path) -> None:
    """serve starts a desktop recipe's run on a private Xvfb (not under xvfb-run, whose
    shell would die of SIGTERM and leave the run going): the signal reaches the run
    itself, the display outlives it while the run finishes, and goes when the run ends."""
    from bots.scheduling.serve import process_launcher

    out = tmp_path / "child.out"
    recipe = ScheduledRecipe(
        name="desk",
        path=tmp_path / "desk.yaml",
        timetable=scheduled("desk", every="day", at="02:30").timetable,
        pause_after=3,
        command=RecipeCommand([sys.executable, "-c", _DESKTOP_CHILD, str(out)], tmp_path),
        screen="1024x768",
    )
    child = process_launcher(tmp_path / "logs")(recipe)
    wait_until(lambda: out.exists() and "started" in out.read_text(), 30, "the child started")
    display = out.read_text().split("DISPLAY=")[1].split()[0]
    assert display.startswith(":")
    child.send_signal(signal.SIGTERM)
    assert child.wait() == 143
    assert "SIGTERM display-alive=True" in out.read_text()
    gone = subprocess.run(["xdpyinfo", "-display", display], capture_output=True)
    assert gone.returncode != 0  # the display was stopped with its run
