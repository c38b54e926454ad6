"""The chaos run: faults everywhere, the runner SIGKILLed and restarted, then the truth.

    python bench/chaos.py                      # 500 reports, all faults, 3 kills
    python bench/chaos.py --reports 60 --seed 11
    python bench/chaos.py --upload dnd         # the same, through the XHR upload page
    python bench/chaos.py --desktop --reports 40 --kills 2   # from the desktop client

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


def upload_recipe(upload: str, directory: Path, recipe: str = "demo") -> Path:
    """The demo recipe (or ``recipe``), its upload steps written for the archive page
    ``upload`` names (``form`` is the demo itself); its retention schedules are copied
    beside it."""
    demo = ROOT / "recipes" / f"{recipe}.yaml"
    if not UPLOADS[upload]:
        return demo
    text = demo.read_text(encoding="utf-8")
    for old, new in UPLOADS[upload]:
        if old not in text:
            raise ValueError(f"{demo} no longer holds {old!r}: update bench/chaos.py UPLOADS")
        text = text.replace(old, new)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "recipes" / "schedules", directory / "schedules", dirs_exist_ok=True)
    path = directory / f"{recipe}-{upload}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


SEEDED_CATALOGUE_MAX = 300  # the ERP seeds at most a year of reports; the rest are published
DESKTOP_RECIPE = "demo-desktop"
POLL = 0.2  # seconds between looks at the ledger while waiting for a kill point
RUN_TIMEOUT = 3600.0


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

    @property
    def clean(self) -> bool:
        return not (
            self.missing
            or self.duplicated
            or self.digest_mismatch
            or self.ledger_disagrees
            or self.number_breaks
        )

    @property
    def exactly_once(self) -> str:
        """The verdict on the archive's own ground truth: each report held exactly once."""
        if self.missing or self.duplicated:
            return f"NO ({len(self.missing)} missing, {len(self.duplicated)} more than once)"
        return f"yes ({self.reports} reports, each held once)"

    def line(self) -> str:
        faults = ",".join(f"{k}={v}" for k, v in sorted(self.faults.items()) if v)
        return (
            f"chaos: source={self.source} upload={self.upload} reports={self.reports} "
            f"seed={self.seed} "
            f"faults[{faults}] "
            f"restarts={self.restarts} runs={self.runs} missing={len(self.missing)} "
            f"duplicated={len(self.duplicated)} digest_mismatch={len(self.digest_mismatch)} "
            f"ledger_disagrees={len(self.ledger_disagrees)} "
            f"number_breaks={len(self.number_breaks)} wall={self.wall_s:.1f}s"
        )


def _ledger(path: Path) -> Ledger:
    """The running bot's ledger, through its own API (no upgrade: the bot does that)."""
    return Ledger(f"sqlite:///{path}", local_now, staging_root=path.parent / "staging")


def _confirmed(ledger: Path, recipe: str) -> int:
    if not ledger.exists():
        return 0
    try:
        with _ledger(ledger) as opened:
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
    echo: Any = print,
) -> ChaosResult:
    rng = random.Random(seed)
    work = Path(workdir or tempfile.mkdtemp(prefix="chaos-"))
    name = DESKTOP_RECIPE if desktop else "demo"
    recipe = upload_recipe(upload, work / "recipe", name)
    logs_dir = work / "logs"
    env = {
        **os.environ,
        "HOME": str(work / "home"),
        "FLEET_LOGS_DIR": str(logs_dir),
        "FLEET_KEYRING_KEY": f"chaos-master-key-{seed}",
        "FLEET_KEYRING_FILE": str(work / "keyring.cfg"),
    }
    store = open_store(env, Redactor())
    store.set("demo-desktop" if desktop else "demo-erp", "clerk", "clerk-demo")
    store.set("demo-archive", "archivist", "archivist-demo")
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
        ledger = logs_dir / "ledger.sqlite3"
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
                point, delay = (
                    (points[restarts], delays[restarts]) if restarts < kills else (0, 0.0)
                )
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
        faults = Counter(get_json(f"{source}/_sim/faults")["injected"])
        faults.update(get_json(f"{archive}/_sim/faults")["injected"])
        source_reports = get_json(f"{source}/_sim/state")["reports"]
        items = get_json(f"{archive}/_sim/state")["items"]
    wall = time.monotonic() - started
    result = _judge(
        reports,
        seed,
        dict(faults),
        restarts,
        exit_codes,
        source_reports,
        items,
        ledger,
        wall,
        logs_dir,
        upload,
        name,
    )
    result.source = "desktop" if desktop else "erp"
    return result


def _judge(
    reports: int,
    seed: int,
    faults: dict[str, int],
    restarts: int,
    exit_codes: list[int],
    erp_reports: list[dict[str, Any]],
    items: list[dict[str, Any]],
    ledger: Path,
    wall: float,
    logs_dir: Path,
    upload: str = "form",
    recipe: str = "demo",
) -> ChaosResult:
    """Ground truth against ground truth, then the ledger against both."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        remarks = item["metadata"].get("remarks") or ""
        key = remarks.rsplit(" ", 1)[-1] if remarks else f"?{item['archive_id']}"
        by_key.setdefault(key, []).append(item)
    truth = {r["id"]: r for r in erp_reports}
    missing = sorted(k for k in truth if k not in by_key)
    duplicated = sorted(k for k, found in by_key.items() if len(found) > 1)
    mismatch = sorted(
        k
        for k, found in by_key.items()
        if k in truth and any(i["sha256"] != truth[k]["sha256"] for i in found)
    )
    extra = sorted(k for k in by_key if k not in truth)
    with _ledger(ledger) as opened:
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
    result = ChaosResult(
        reports=len(erp_reports),
        seed=seed,
        faults=faults,
        restarts=restarts,
        runs=len(exit_codes),
        exit_codes=exit_codes,
        missing=missing,
        duplicated=duplicated + extra,
        digest_mismatch=mismatch,
        ledger_disagrees=disagree,
        number_breaks=_number_breaks(items),
        wall_s=wall,
        logs_dir=logs_dir,
        upload=upload,
    )
    if len(erp_reports) != reports:
        result.notes.append(f"the ERP holds {len(erp_reports)} reports, {reports} were asked for")
    return result


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
