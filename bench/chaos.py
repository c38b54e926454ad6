"""The chaos run: faults everywhere, the runner SIGKILLed and restarted, then the truth.

    python bench/chaos.py                      # 500 reports, all faults, 3 kills
    python bench/chaos.py --reports 60 --seed 11
    python bench/chaos.py --upload dnd         # the same, through the XHR upload page
    python bench/chaos.py --desktop --reports 40 --kills 2   # from the desktop client
    python bench/chaos.py --fleet              # 3 fleet workers on PostgreSQL, 3 SIGKILLs

Both simulators inject seeded faults (10% HTTP 500, sessions expiring every N
requests, 5% of uploads committed with their response lost, latency spikes). The runner
is started like cron starts it, SIGKILLed (with its browser) at three points chosen from
the seed, and started again until a run finishes. At the end the archive simulator's own
state must hold exactly the ERP's reports: none missing, none twice, every digest equal;
and the ledger must agree with it. Prints one line of figures; exits 1 on any difference.

``--upload`` picks the archive's upload page the recipe uses: ``form`` (the demo's
wizard form, sent by `submit`), ``dnd`` (the drag-and-drop page whose script posts the
file by XHR, sent by the fleet's own client while upload steps run) or ``register`` (a
form whose server reads the pressed button). Every one must archive exactly once.

``--desktop`` captures from the desktop client simulator instead (recipes/demo-desktop.yaml,
in a private Xvfb; its faults: error dialogs, idle logouts, latency spikes and notices that
steal the focus). The client is the chaos run's, not the runner's: a SIGKILLed runner
leaves it in whatever state it was, dialogs open, as a crashed robot leaves a real one.

``--fleet`` runs the recipe on fleet workers instead (bench/fleetrig.py): a schema of its
own on PostgreSQL (``--database``, else $FLEET_BENCH_DATABASE_URL or
$FLEET_TEST_DATABASE_URL, else the local server), ``--workers`` worker processes of one
lane each (the recipe's ``sessions:`` twice as many: a dead worker's slots stay taken
until they expire), one listing deferred with ``run --fleet``. At each kill point a
worker chosen from the seed is SIGKILLed with its browsers and a replacement started;
its job is found stalled and retried by the others.
Whenever the queue is idle with documents not confirmed (a document that ran out of
attempts waits for the next listing, as it waits for cron's next run on one machine)
another listing is deferred. The simulators stay uncapped: a killed worker's sessions
stay logged in until they idle out. The ledger judged is the fleet's, on PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from bench.fleetrig import FAST, Rig, fleet_rig, log_events, server_url  # noqa: E402
from bots.demo import simulator  # noqa: E402
from bots.ledger import Ledger, State  # noqa: E402
from bots.pipeline import local_now  # noqa: E402
from bots.redaction import Redactor  # noqa: E402
from bots.virtualdisplay import virtual_display  # noqa: E402
from credentials import open_store  # noqa: E402
from sims.control import get_json, post_json  # noqa: E402

# The demo recipe's upload, rewritten for the archive's other upload pages (exact text
# replaced; see sims/archive/app.py for the pages).
_WIZARD = (
    "    # A two-step wizard: step 2 (the file) shows only after 下一步.\n"
    '    - click: "#next-btn"\n'
)
_SUBMIT = (
    "    # 提交归档, sent by the fleet itself rather than the browser: a browser may silently\n"
    "    # send a POST twice when its response is lost, archiving the report twice.\n"
    '    - submit: "#ingest-form"\n'
)
UPLOADS: dict[str, list[tuple[str, str]]] = {
    "form": [],
    "dnd": [
        ("    - goto: /ingest\n", "    - goto: /upload\n"),
        (_WIZARD, ""),
        (
            _SUBMIT,
            "    # 开始上传: the page's script posts the file by XHR. While upload steps run the\n"
            "    # fleet sends that request itself, once (bots/drivers/web/commit.py).\n"
            '    - click: "#start-upload"\n'
            "    - wait_for:\n"
            '        selector: "#archive-id, ul.errors, p.server-error, p.upload-failed, '
            'p.login-required"\n'
            "        timeout: 60\n"
            '    - retry_if: "p.server-error, p.upload-failed"\n',
        ),
    ],
    "register": [
        ("    - goto: /ingest\n", "    - goto: /register\n"),
        (_WIZARD, ""),
        (
            '    - upload: {selector: "#file-input"}\n',
            '    - upload: {selector: "#register-file"}\n',
        ),
        (
            '    - submit: "#ingest-form"\n',
            '    - submit: {form: "#register-form", button: "#archive-btn"}\n',
        ),
    ],
}


def upload_recipe(upload: str, directory: Path, recipe: str = "demo", *, sessions: int = 1) -> Path:
    """The demo recipe (or ``recipe``), its upload steps written for the archive page
    ``upload`` names (``form`` is the demo itself) and, when ``sessions`` > 1, that many
    sessions allowed on each system; its retention schedules are copied beside it."""
    demo = ROOT / "recipes" / f"{recipe}.yaml"
    changes = list(UPLOADS[upload])
    if sessions > 1:
        changes += [
            (f"  credential: {name}\n", f"  credential: {name}\n  sessions: {sessions}\n")
            for name in ("demo-erp", "demo-archive")
        ]
    if not changes:
        return demo
    text = demo.read_text(encoding="utf-8")
    for old, new in changes:
        if old not in text:
            raise ValueError(f"{demo} no longer holds {old!r}: update bench/chaos.py")
        text = text.replace(old, new)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "recipes" / "schedules", directory / "schedules", dirs_exist_ok=True)
    path = directory / f"{recipe}-{upload}-{sessions}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


SEEDED_CATALOGUE_MAX = 300  # the ERP seeds at most a year of reports; the rest are published
DESKTOP_RECIPE = "demo-desktop"
POLL = 0.2  # seconds between looks at the ledger while waiting for a kill point
RUN_TIMEOUT = 3600.0
# Listings a fleet chaos run defers at most: the first, then one each time the queue is
# idle with documents not confirmed (cron's next run, on one machine).
FLEET_LISTINGS = 10


@dataclass
class Truth:
    """Both simulators' ground truth against each other, and the ledger against both.
    Each list names reports (source keys); empty lists are the only good answer."""

    missing: list[str]
    duplicated: list[str]  # archived more than once, or archived with no such report
    digest_mismatch: list[str]
    ledger_disagrees: list[str]
    # Reference-code groups whose item numbers are not 1..n: a gap or a repeat (档号 rule).
    number_breaks: list[str]

    @property
    def clean(self) -> bool:
        return not (
            self.missing
            or self.duplicated
            or self.digest_mismatch
            or self.ledger_disagrees
            or self.number_breaks
        )


@dataclass
class ChaosResult:
    reports: int
    seed: int
    faults: dict[str, int]
    restarts: int
    runs: int
    exit_codes: list[int]
    missing: list[str]
    duplicated: list[str]
    digest_mismatch: list[str]
    ledger_disagrees: list[str]
    # Reference-code groups whose item numbers are not 1..n: a gap or a repeat (档号 rule).
    number_breaks: list[str]
    wall_s: float
    logs_dir: Path
    upload: str = "form"  # which archive upload page the recipe used (UPLOADS)
    source: str = "erp"  # the source simulator: the web ERP, or the desktop client
    notes: list[str] = field(default_factory=list)
    fleet: FleetChaos | None = None  # how the fleet ran, in fleet mode

    @property
    def clean(self) -> bool:
        truth = Truth(
            self.missing,
            self.duplicated,
            self.digest_mismatch,
            self.ledger_disagrees,
            self.number_breaks,
        )
        return truth.clean

    @property
    def exactly_once(self) -> str:
        """The verdict on the archive's own ground truth: each report held exactly once."""
        if self.missing or self.duplicated:
            return f"NO ({len(self.missing)} missing, {len(self.duplicated)} more than once)"
        return f"yes ({self.reports} reports, each held once)"

    def line(self) -> str:
        faults = ",".join(f"{k}={v}" for k, v in sorted(self.faults.items()) if v)
        runs = self.fleet.figures() if self.fleet else f"restarts={self.restarts} runs={self.runs}"
        return (
            f"chaos: source={self.source} upload={self.upload} reports={self.reports} "
            f"seed={self.seed} "
            f"faults[{faults}] "
            f"{runs} missing={len(self.missing)} "
            f"duplicated={len(self.duplicated)} digest_mismatch={len(self.digest_mismatch)} "
            f"ledger_disagrees={len(self.ledger_disagrees)} "
            f"number_breaks={len(self.number_breaks)} wall={self.wall_s:.1f}s"
        )


@dataclass
class FleetChaos:
    """How a fleet chaos run went, besides the ground truth."""

    workers: int  # running at once
    kills: int
    listings: int  # deferred with `run --fleet`
    jobs: dict[str, int]  # the queue's jobs by status at the end
    stalls_retried: int  # stalled jobs the sweepers put back (from the workers' logs)
    worker_exits: list[int]  # every worker's exit code, in the order started (-9: killed)
    logs_broken: dict[int, str]  # `logs verify` on a machine's logs that was not intact
    peaks: dict[str, int]  # the most sessions each simulator saw logged in at once

    def figures(self) -> str:
        jobs = ",".join(f"{k}={v}" for k, v in sorted(self.jobs.items()))
        exits = ",".join(str(c) for c in self.worker_exits)
        return (
            f"fleet workers={self.workers} kills={self.kills} listings={self.listings} "
            f"jobs[{jobs}] stalls_retried={self.stalls_retried} exits[{exits}] "
            f"logs_broken={len(self.logs_broken)} "
            f"peak_sessions[erp={self.peaks['erp']},archive={self.peaks['archive']}]"
        )

    @property
    def stopped_cleanly(self) -> bool:
        """Every worker not killed stopped on SIGTERM with exit 0."""
        return all(code in (0, -signal.SIGKILL) for code in self.worker_exits)


def _ledger(url: str, staging: Path) -> Ledger:
    """The running bot's ledger, through its own API (no upgrade: the bot does that)."""
    return Ledger(url, local_now, staging_root=staging)


def _confirmed(ledger: Path, recipe: str) -> int:
    if not ledger.exists():
        return 0
    try:
        with _ledger(f"sqlite:///{ledger}", ledger.parent / "staging") as opened:
            return opened.state_counts(recipe).get(State.CONFIRMED.value, 0)
    except SQLAlchemyError:  # being created, or locked for a moment
        return 0


def _kill_at(
    proc: subprocess.Popen[str], ledger: Path, recipe: str, point: int, delay: float
) -> bool:
    """SIGKILL the runner's process group once ``point`` documents are confirmed."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        if _confirmed(ledger, recipe) >= point:
            time.sleep(delay)  # a random moment past the point: anywhere in a capture
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                return True
            return False
        time.sleep(POLL)
    return False


def demo_env(work: Path, key: str, source: str = "demo-erp") -> dict[str, str]:
    """The environment of a bench's commands: HOME and the logs folder (``work/logs``)
    under ``work``, and a keyring there holding the demo's credentials for ``source``
    and the archive."""
    env = {
        **os.environ,
        "HOME": str(work / "home"),
        "FLEET_LOGS_DIR": str(work / "logs"),
        "FLEET_KEYRING_KEY": key,
        "FLEET_KEYRING_FILE": str(work / "keyring.cfg"),
    }
    store = open_store(env, Redactor())
    store.set(source, "clerk", "clerk-demo")
    store.set("demo-archive", "archivist", "archivist-demo")
    return env


def chaos(
    *,
    reports: int = 500,
    seed: int = 7,
    kills: int = 3,
    error_rate: float = 0.10,
    lost_response_rate: float = 0.05,
    session_expiry_every: int = 60,
    spike_rate: float = 0.02,
    spike_ms: int = 2500,
    focus_steal_rate: float = 0.05,
    workdir: Path | None = None,
    upload: str = "form",
    desktop: bool = False,
    fleet: int = 0,
    database: str | None = None,
    fast: bool = False,
    echo: Any = print,
) -> ChaosResult:
    """``fleet``: that many fleet workers (one lane each) instead of runs of the runner;
    ``database`` the PostgreSQL server they share, ``fast`` the short fleet timings
    (bench/fleetrig.py FAST) rather than the product's defaults."""
    if fleet and desktop:
        raise ValueError("the fleet chaos run captures from the web ERP (no --desktop)")
    rng = random.Random(seed)
    work = Path(workdir or tempfile.mkdtemp(prefix="chaos-"))
    name = DESKTOP_RECIPE if desktop else "demo"
    # In fleet mode a killed worker's session slots stay taken until they expire: room
    # for a replacement's sessions beside them, so that the cap is not what is measured
    # (tests/test_fleet.py proves the cap).
    recipe = upload_recipe(upload, work / "recipe", name, sessions=max(1, 2 * fleet))
    logs_dir = work / "logs"
    env = demo_env(work, f"chaos-master-key-{seed}", "demo-desktop" if desktop else "demo-erp")
    seeded = min(reports, SEEDED_CATALOGUE_MAX)
    source_args = ["--reports", str(seeded), "--seed", str(seed), "--gen-seconds", "1"]
    started = time.monotonic()
    with ExitStack() as stack:
        if desktop:
            display = stack.enter_context(virtual_display())
            env = display.env(env)
            env["DESKTOP_PYTHON"] = sys.executable
            source = stack.enter_context(
                simulator(
                    "sims.desktop",
                    [*source_args, "--latency-ms", "2,15"],
                    work / "desktop.log",
                    port_option="--state-port",
                    # The run's HOME: a save that misses its path lands in ~/Documents.
                    env=display.env({**os.environ, "HOME": env["HOME"]}),
                )
            )
        else:
            source = stack.enter_context(
                simulator("sims.erp", [*source_args, "--latency-ms", "2,15"], work / "erp.log")
            )
            env["ERP_URL"] = source
        archive = stack.enter_context(
            simulator(
                "sims.archive",
                ["--data", str(work / "archive-data"), "--latency-ms", "2,10"],
                work / "archive.log",
            )
        )
        if reports > seeded:
            post_json(f"{source}/_sim/publish", {"count": reports - seeded})
        common = {
            "error_rate": error_rate,
            "session_expiry_every": session_expiry_every,
            "spike_rate": spike_rate,
            "spike_ms": spike_ms,
        }
        extra = {"focus_steal_rate": focus_steal_rate} if desktop else {}
        post_json(f"{source}/_sim/faults", {"seed": seed, **common, **extra})
        post_json(
            f"{archive}/_sim/faults",
            {"seed": seed + 1, **common, "lost_response_rate": lost_response_rate},
        )
        env["ARCHIVE_URL"] = archive

        # Kill points: after this many documents are confirmed, plus a random moment more,
        # so that a kill can land anywhere in a document's capture.
        points = sorted(rng.sample(range(1, max(reports, kills + 1)), kills))
        delays = [rng.uniform(0.0, 3.0) for _ in points]
        fleet_run: FleetChaos | None = None
        if fleet:
            rig = stack.enter_context(
                fleet_rig(server_url(database), work, {**env, **(FAST if fast else {})})
            )
            fleet_run = _fleet_chaos(
                rig, recipe, name, reports, fleet, list(zip(points, delays, strict=True)), rng, echo
            )
            restarts, exit_codes = fleet_run.kills, fleet_run.worker_exits
            ledger_url, staging = rig.url, work / "staging"
            fleet_run.peaks = {
                system: get_json(f"{url}/_sim/state")["sessions"]["peak"]
                for system, url in (("erp", source), ("archive", archive))
            }
        else:
            restarts, exit_codes = _runner_chaos(env, recipe, name, points, delays, echo)
            ledger_url, staging = f"sqlite:///{logs_dir / 'ledger.sqlite3'}", logs_dir / "staging"
        faults = Counter(get_json(f"{source}/_sim/faults")["injected"])
        faults.update(get_json(f"{archive}/_sim/faults")["injected"])
        source_reports = get_json(f"{source}/_sim/state")["reports"]
        items = get_json(f"{archive}/_sim/state")["items"]
        wall = time.monotonic() - started
        truth = ground_truth(source_reports, items, _ledger(ledger_url, staging), name)
    result = ChaosResult(
        reports=len(source_reports),
        seed=seed,
        faults=dict(faults),
        restarts=restarts,
        runs=len(exit_codes),
        exit_codes=exit_codes,
        missing=truth.missing,
        duplicated=truth.duplicated,
        digest_mismatch=truth.digest_mismatch,
        ledger_disagrees=truth.ledger_disagrees,
        number_breaks=truth.number_breaks,
        wall_s=wall,
        logs_dir=work if fleet else logs_dir,
        upload=upload,
        source="desktop" if desktop else "erp",
        fleet=fleet_run,
    )
    if len(source_reports) != reports:
        result.notes.append(
            f"the source holds {len(source_reports)} reports, {reports} were asked for"
        )
    if fleet_run and not fleet_run.stopped_cleanly:
        result.notes.append(f"a worker did not stop with 0 on SIGTERM: {fleet_run.worker_exits}")
    for number, said in (fleet_run.logs_broken if fleet_run else {}).items():
        result.notes.append(f"logs verify on machine {number}: {said}")
    return result


def _runner_chaos(
    env: dict[str, str],
    recipe: Path,
    name: str,
    points: list[int],
    delays: list[float],
    echo: Any,
) -> tuple[int, list[int]]:
    """The runner run as cron runs it, SIGKILLed at each point, run again until a run
    finishes. The kills made, and every run's exit code."""
    ledger = Path(env["FLEET_LOGS_DIR"]) / "ledger.sqlite3"
    kills = len(points)
    exit_codes: list[int] = []
    restarts = 0
    while len(exit_codes) < kills + 25:
        proc = subprocess.Popen(
            [sys.executable, "runner.py", "run", str(recipe)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so a kill takes its browser too, like a reboot
        )
        try:
            point, delay = (points[restarts], delays[restarts]) if restarts < kills else (0, 0.0)
            killed = restarts < kills and _kill_at(proc, ledger, name, point, delay)
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
        finally:
            if proc.poll() is None:  # we are going down (an error, Ctrl-C): take it along
                os.killpg(proc.pid, signal.SIGKILL)
        exit_codes.append(proc.returncode)
        if killed:
            restarts += 1
            echo(f"chaos: killed the runner at >= {point} confirmed (+{delay:.1f}s)")
            continue
        last = out.strip().splitlines()[-1] if out.strip() else err.strip()[-300:]
        echo(f"chaos: run exited {proc.returncode}: {last}")
        if proc.returncode == 0:
            break
    return restarts, exit_codes


def _fleet_chaos(
    rig: Rig,
    recipe: Path,
    name: str,
    reports: int,
    workers: int,
    kill_points: list[tuple[int, float]],
    rng: random.Random,
    echo: Any,
) -> FleetChaos:
    """``workers`` workers, one listing deferred; at each kill point a worker chosen from
    ``rng`` SIGKILLed and a replacement started; a listing deferred again whenever the
    queue is idle with documents not confirmed. Returns once every report is confirmed
    (or FLEET_LISTINGS listings left some not), every worker stopped."""
    for _ in range(workers):
        rig.start_worker(lanes=1)
    rig.wait_registered(workers)
    rig.checked("run", str(recipe), "--fleet")
    listings, kills = 1, 0
    points = list(kill_points)
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        confirmed = rig.confirmed(name)
        if points and confirmed >= points[0][0]:
            point, delay = points.pop(0)
            time.sleep(delay)  # a random moment past the point: anywhere in a capture
            alive = rig.alive()
            victim = alive[rng.randrange(len(alive))]
            rig.kill(victim)
            kills += 1
            echo(f"chaos: killed worker {victim.number} at >= {point} confirmed (+{delay:.1f}s)")
            rig.start_worker(lanes=1)
            continue
        for worker in rig.workers:
            code = worker.proc.poll()
            if code not in (None, -signal.SIGKILL) and len(rig.alive()) < workers:
                echo(f"chaos: worker {worker.number} exited {code} by itself: {worker.said()}")
                rig.start_worker(lanes=1)  # a finding for the report; the run goes on
        if rig.busy_jobs() == 0:
            if confirmed >= reports:
                break
            if listings >= FLEET_LISTINGS:
                echo(f"chaos: {listings} listings and {confirmed} confirmed: giving up")
                break
            echo(f"chaos: the queue is idle at {confirmed} confirmed: listing again")
            rig.checked("run", str(recipe), "--fleet")
            listings += 1
        time.sleep(POLL)
    else:
        echo(f"chaos: not done within {RUN_TIMEOUT:g} s")
    exits = rig.stop()
    return FleetChaos(
        workers=workers,
        kills=kills,
        listings=listings,
        jobs=rig.job_counts(),
        stalls_retried=sum(e["event"] == "stalled_job_retried" for e in log_events(rig.log_dirs())),
        worker_exits=exits,
        logs_broken=rig.verify_logs(),
        peaks={},
    )


def ground_truth(
    source_reports: list[dict[str, Any]],
    items: list[dict[str, Any]],
    ledger: Ledger,
    recipe: str,
) -> Truth:
    """Ground truth against ground truth (the source's reports, the archive's items),
    then the ledger against both."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        remarks = item["metadata"].get("remarks") or ""
        key = remarks.rsplit(" ", 1)[-1] if remarks else f"?{item['archive_id']}"
        by_key.setdefault(key, []).append(item)
    truth = {r["id"]: r for r in source_reports}
    missing = sorted(k for k in truth if k not in by_key)
    duplicated = sorted(k for k, found in by_key.items() if len(found) > 1)
    mismatch = sorted(
        k
        for k, found in by_key.items()
        if k in truth and any(i["sha256"] != truth[k]["sha256"] for i in found)
    )
    extra = sorted(k for k in by_key if k not in truth)
    with ledger as opened:
        rows = {
            d.source_key: (d.state.value, d.archive_id, d.sha256) for d in opened.documents(recipe)
        }
    disagree = sorted(
        k
        for k, r in truth.items()
        if rows.get(k, (None,))[0] != "confirmed"
        or len(by_key.get(k, [])) != 1
        or rows[k][1] != by_key[k][0]["archive_id"]
        or rows[k][2] != r["sha256"]
    )
    return Truth(
        missing=missing,
        duplicated=duplicated + extra,
        digest_mismatch=mismatch,
        ledger_disagrees=disagree,
        number_breaks=_number_breaks(items),
    )


def _number_breaks(items: list[dict[str, Any]]) -> list[str]:
    """Groups (fonds-category·year-retention-department) whose item numbers are not 1..n."""
    groups: dict[str, list[int]] = {}
    for item in items:
        group, _, number = item["reference_code"].rpartition("-")
        groups.setdefault(group, []).append(int(number))
    return sorted(
        f"{group}: {sorted(numbers)}"
        for group, numbers in groups.items()
        if sorted(numbers) != list(range(1, len(numbers) + 1))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--error-rate", type=float, default=0.10)
    parser.add_argument("--lost-response-rate", type=float, default=0.05)
    parser.add_argument("--session-expiry-every", type=int, default=60)
    parser.add_argument(
        "--upload",
        choices=sorted(UPLOADS),
        default="form",
        help="the archive page the recipe uploads through (dnd: drag and drop, by XHR)",
    )
    parser.add_argument(
        "--desktop",
        action="store_true",
        help="capture from the desktop client simulator (recipes/demo-desktop.yaml, in Xvfb)",
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="run on fleet workers over PostgreSQL, SIGKILLing workers (see --workers)",
    )
    parser.add_argument("--workers", type=int, default=3, help="fleet workers at once")
    parser.add_argument("--database", help="the PostgreSQL server URL for --fleet")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="with --fleet: short heartbeats and timeouts (a dead worker's job back in ~5 s)",
    )
    parser.add_argument("--workdir", type=Path, help="keep logs, ledger and archive data here")
    parser.add_argument("--verbose", action="store_true", help="say what happens as it happens")
    args = parser.parse_args(argv)
    result = chaos(
        reports=args.reports,
        seed=args.seed,
        kills=args.kills,
        error_rate=args.error_rate,
        lost_response_rate=args.lost_response_rate,
        session_expiry_every=args.session_expiry_every,
        workdir=args.workdir,
        upload=args.upload,
        desktop=args.desktop,
        fleet=args.workers if args.fleet else 0,
        database=args.database,
        fast=args.fast,
        echo=print if args.verbose else (lambda *_: None),
    )
    print(result.line())
    print(f"chaos: exactly once (the archive's /_sim/state): {result.exactly_once}")
    for note in result.notes:
        print(f"chaos: note: {note}")
    if not result.clean:
        print(
            f"chaos: missing={result.missing[:10]} duplicated={result.duplicated[:10]} "
            f"digest_mismatch={result.digest_mismatch[:10]} "
            f"ledger_disagrees={result.ledger_disagrees[:10]} "
            f"number_breaks={result.number_breaks[:10]} (logs in {result.logs_dir})"
        )
    return 0 if result.clean else 1


if __name__ == "__main__":
    sys.exit(main())
