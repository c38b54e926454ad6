"""The capture pipeline, in-process, against the fake driver's in-memory systems.

No browser, no subprocess, no sleep: `retry.backoff` is 0 and the clock is frozen. Each
test judges the run by what the fake systems hold and saw (every call is recorded),
then by the exit code, the summary and the run log where that is the behaviour.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bots.archival.bag import export_bag
from bots.audit import collect, write_html
from bots.cli import main
from bots.errors import RecipeError, RecipeRuntimeError, RecipeStepError, UsageError
from bots.files import invisible_characters
from bots.ledger import Document, FailureKind, Ledger, State, is_held
from bots.pipeline import RunSummary, capture, inventory
from bots.pipeline.run import declared_env
from bots.progress import NullProgress
from bots.recipe import LoadedRecipe, load_recipe
from bots.reconcile.classify import Result, classify
from bots.reconcile.command import reconcile
from bots.reconcile.review import Decision, Review
from bots.reconcile.sources import inventory_frame, ledger_frame
from bots.redaction import Redactor
from bots.resilience import StopFlag
from bots.settings import Settings
from bots.templating import TemplateProblem, render
from credentials import Credential
from tests import bombs
from tests.conftest import FrozenClock
from tests.fakes import (
    LISTINGS_RECIPE,
    PROFILE_RECIPE,
    RECIPE,
    FakeArchive,
    FakeSource,
    FakeWorld,
    MemoryStore,
    Report,
    csv_report,
    registered,
)

PASSWORDS = {"fake-erp": "erp-Geheim-7731", "fake-archive": "arc-Sécret-0420"}
USERS = {"fake-erp": "bot", "fake-archive": "archivist"}
REPORTS = [
    csv_report("R1", "2026年9月资产负债表", "2026-10-08"),
    csv_report("R2", "2026年9月利润表", "2026-10-09"),
    csv_report("R3", "2025年度财务决算报告", "2026-03-31", kind="年度财务决算报告"),
]
SCHEDULE = {
    "月度财务报表": ("D10", "CWB"),
    "年度财务决算报告": ("Y", "CWB"),
    "销售明细": ("D10", "XSB"),
}


def expected_metadata(report: Report) -> dict[str, str]:
    """What the archive must file each report with (tests/fakes/recipe.yaml, by hand)."""
    retention, department = SCHEDULE[report.kind]
    return {
        "fonds": "Z109",
        "category": "KU",
        "year": report.date[:4],
        "retention": retention,
        "department": department,
        "title": report.title,
        "author": report.department,
        "date": report.date.replace("-", ""),
        "doc_number": "",
        "classification": "内部",
        "pages": "",
        "remarks": f"源系统报表编号 {report.id}",
    }


@dataclass
class Bench:
    """One test's world: the fake systems, the settings, and the recipe it runs."""

    world: FakeWorld
    tmp: Path
    clock: FrozenClock
    redactor: Redactor
    store: MemoryStore
    settings: Settings
    recipe_path: Path = RECIPE

    @property
    def source(self) -> FakeSource:
        return self.world.source

    @property
    def archive(self) -> FakeArchive:
        return self.world.archive

    def loaded(self) -> LoadedRecipe:
        return load_recipe(self.recipe_path)

    def run(self, stop: StopFlag | None = None) -> RunSummary:
        return capture(
            self.loaded(), self.settings, self.store, self.redactor, clock=self.clock, stop=stop
        )

    @property
    def name(self) -> str:
        return self.loaded().name

    def variant(self, old: str, new: str) -> None:
        """Run a changed copy of the current recipe from now on."""
        text = self.recipe_path.read_text(encoding="utf-8")
        assert old in text, f"test is stale: {old!r} is not in {self.recipe_path}"
        folder = self.tmp / "recipe"
        folder.mkdir(exist_ok=True)
        shutil.copy(RECIPE.parent / "schedule.yaml", folder / "schedule.yaml")
        self.recipe_path = folder / "fake.yaml"
        self.recipe_path.write_text(text.replace(old, new, 1), encoding="utf-8")

    @contextmanager
    def ledger(self) -> Iterator[Ledger]:
        ledger = Ledger.open(
            self.settings.ledger_url, self.clock, staging_root=self.settings.staging_root
        )
        try:
            yield ledger
        finally:
            ledger.close()

    def doc(self, key: str) -> Document:
        with self.ledger() as ledger:
            found = ledger.get(self.name, key)
        assert found is not None, f"{key} is not in the ledger"
        return found

    def states(self) -> dict[str, State]:
        with self.ledger() as ledger:
            return {d.source_key: d.state for d in ledger.documents(self.name)}

    def staged_path(self, report: Report) -> Path:
        return self.settings.staging_dir(self.name) / report.id / report.filename


@pytest.fixture
def bench(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    with pipeline_bench(tmp_path, clock, monkeypatch) as made:
        yield made


@contextmanager
def pipeline_bench(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bench]:
    """The fake world, settings and credentials a pipeline test runs in (other test
    modules' fixtures use it too)."""
    # No virus scanner on PATH: the check says not_run, and no scanner process starts.
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    world = FakeWorld(
        FakeSource(REPORTS, {USERS["fake-erp"]: PASSWORDS["fake-erp"]}),
        FakeArchive({USERS["fake-archive"]: PASSWORDS["fake-archive"]}),
    )
    redactor = Redactor()
    store = MemoryStore(
        redactor, [Credential(name, USERS[name], password) for name, password in PASSWORDS.items()]
    )
    settings = Settings(
        logs_dir=tmp_path / "logs", ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3", env={}
    )
    with registered(world):
        yield Bench(world, tmp_path, clock, redactor, store, settings)


def events(summary: RunSummary, name: str) -> list[dict[str, Any]]:
    lines = summary.log_path.read_text(encoding="utf-8").splitlines()
    return [record for line in lines if (record := json.loads(line))["event"] == name]


def assert_archived_once(bench: Bench, reports: list[Report]) -> None:
    """The archive holds each report exactly once, with the bytes the source holds."""
    for report in reports:
        held = bench.archive.holding(report.id)
        assert len(held) == 1, f"the archive holds {report.id} {len(held)} times"
        assert held[0].sha256 == report.sha256
        assert held[0].data == report.data


def keys(docs: list[Document]) -> list[str]:
    return [d.source_key for d in docs]


# -- a whole capture -----------------------------------------------------------------


def test_a_capture_archives_every_report_once_with_its_bytes_and_metadata(bench: Bench) -> None:
    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    assert_archived_once(bench, REPORTS)
    assert len(bench.archive.items) == len(REPORTS)
    codes = {}
    for report in REPORTS:
        [item] = bench.archive.holding(report.id)
        assert item.metadata == expected_metadata(report)
        assert item.filename == report.filename
        codes[report.id] = item.reference_code
        # The ledger agrees with the archive, not only with itself.
        doc = bench.doc(report.id)
        assert doc.state is State.CONFIRMED
        assert (doc.archive_id, doc.reference_code) == (item.archive_id, item.reference_code)
        assert doc.sha256 == report.sha256
        # Confirmed by reading the item back and by downloading the stored file back.
        assert bench.archive.count("read", key=report.id, phase="confirm") == 1
        assert bench.archive.count("download", key=report.id, phase="fixity") == 1
    assert codes == {
        "R1": "Z109-KU\u00b72026-D10-CWB-0001",
        "R2": "Z109-KU\u00b72026-D10-CWB-0002",
        "R3": "Z109-KU\u00b72026-Y-CWB-0001",
    }
    assert (summary.listed, summary.new, keys(summary.archived)) == (3, 3, ["R1", "R2", "R3"])
    assert bench.source.logins == ["bot"] and bench.archive.logins == ["archivist"]
    [check] = events(summary, "batch_check")
    assert check["outcome"] == "ok"


def test_a_second_run_uploads_nothing(bench: Bench) -> None:
    bench.run()
    downloads, uploads = bench.source.count("download"), bench.archive.count("upload")

    second = bench.run()

    assert second.exit_code == 0
    assert (second.listed, second.new, second.archived) == (3, 0, [])
    assert second.already_confirmed == 3
    assert bench.source.count("download") == downloads
    assert bench.archive.count("upload") == uploads
    assert_archived_once(bench, REPORTS)


# -- retries: one layer ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "kind", "stage"),
    [
        ("source", "download", "download"),
        ("archive", "upload", "upload"),
        ("archive", "open", "confirm"),
    ],
)
def test_a_step_failing_twice_costs_three_calls_of_it(
    bench: Bench, system: str, kind: str, stage: str
) -> None:
    target = getattr(bench, system)
    target.fail(kind, key="R1", phase=stage, times=2)

    summary = bench.run()

    assert target.count(kind, key="R1", phase=stage) == 3  # attempts=4: two failures, one success
    assert summary.exit_code == 0, summary.line()
    assert_archived_once(bench, REPORTS)
    retries = events(summary, "retry")
    assert [(r["key"], r["details"]["stage"]) for r in retries] == [("R1", stage)] * 2


@pytest.mark.parametrize(
    ("system", "kind", "failed_stage"),
    [("source", "download", State.LISTED), ("archive", "upload", State.UPLOADING)],
)
def test_a_stage_out_of_attempts_fails_its_document_as_system_and_the_run_goes_on(
    bench: Bench, system: str, kind: str, failed_stage: State
) -> None:
    target = getattr(bench, system)
    target.fail(kind, key="R1", times=None)

    summary = bench.run()

    assert target.count(kind, key="R1") == 4  # attempts: 4, and no more
    assert summary.exit_code == 3
    assert [(key, kind) for key, _, kind in summary.failures] == [("R1", FailureKind.SYSTEM)]
    assert summary.system_failure is None  # the run itself went on
    doc = bench.doc("R1")
    assert (doc.state, doc.failure_kind, doc.failed_stage) == (
        State.FAILED,
        FailureKind.SYSTEM,
        failed_stage,
    )
    assert bench.archive.holding("R1") == []
    assert_archived_once(bench, REPORTS[1:])

    target.heal()
    again = bench.run()

    assert again.exit_code == 0, again.line()
    assert keys(again.archived) == ["R1"]
    assert_archived_once(bench, REPORTS)


def test_every_failed_attempt_is_photographed_for_the_evidence(bench: Bench) -> None:
    bench.source.fail("download", key="R1", times=2)

    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    shots = events(summary, "failure_screenshot")
    assert [(e["key"], e["details"]["stage"], e["details"]["attempt"]) for e in shots] == [
        ("R1", "download", 1),
        ("R1", "download", 2),
    ]
    for shot in shots:  # the picture is kept where the event says, with its digest
        path = Path(shot["details"]["path"])
        assert path.parent.name == "R1" and path.name.startswith("failure-download-")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == shot["details"]["sha256"]


# -- a lost session ------------------------------------------------------------------------


@pytest.mark.parametrize("silently", [False, True], ids=["says-so", "silent"])
def test_an_expired_session_costs_one_login_and_the_document_carries_on(
    bench: Bench, silently: bool
) -> None:
    bench.source.expire("download", key="R2", silently=silently)

    summary = bench.run()

    assert bench.source.logins == ["bot", "bot"]  # the run's login, and one after the expiry
    assert bench.source.count("download", key="R2") == 2
    assert summary.exit_code == 0, summary.line()
    assert keys(summary.archived) == ["R1", "R2", "R3"]
    assert_archived_once(bench, REPORTS)
    [lost] = events(summary, "session_lost")
    assert (lost["key"], lost["details"]["stage"]) == ("R2", "download")
    assert bench.doc("R2").attempts == 1  # carried on within its one attempt, not failed


# -- the breaker ---------------------------------------------------------------------------


def test_the_breaker_stops_the_run_and_the_next_run_resumes(bench: Bench) -> None:
    bench.variant("breaker: 8", "breaker: 3")
    bench.source.fail("download", times=None)

    summary = bench.run()

    assert summary.exit_code == 3
    assert "run stopped by a system failure" in summary.line()
    assert bench.source.count("download") == 3  # three errors in a row, then no more
    assert bench.source.keys_touched() == {"R1"}
    assert bench.archive.calls == []
    assert bench.states() == {"R1": State.FAILED, "R2": State.LISTED, "R3": State.LISTED}
    assert bench.doc("R1").failure_kind is FailureKind.SYSTEM
    assert len(events(summary, "circuit_open")) == 1

    bench.source.heal()
    again = bench.run()

    assert again.exit_code == 0, again.line()
    assert keys(again.archived) == ["R1", "R2", "R3"]
    assert_archived_once(bench, REPORTS)


# -- resume from every state -----------------------------------------------------------------

PREP_RUN = "prepared-by-test"
OTHER_DIGEST = "0" * 64


def _report(n: int, kind: str = "月度财务报表") -> Report:
    return csv_report(f"S{n:02d}", f"2026年9月报表（{n}）", f"2026-10-{n:02d}", kind=kind)


# key -> (how the ledger has it, (downloads, finds, uploads, confirms) this run must cost)
RESUME: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "S01": ("listed", (1, 0, 1, 1)),
    "S02": ("downloaded", (0, 0, 1, 1)),
    "S03": ("downloaded, its staged file gone", (1, 0, 1, 1)),
    "S04": ("uploading, and the archive has it", (0, 1, 0, 1)),
    "S05": ("uploading, and the archive has not", (0, 1, 1, 1)),
    "S06": ("uploaded", (0, 0, 0, 1)),
    "S07": ("confirmed", (0, 0, 0, 0)),
    "S08": ("failed (system) from listed", (1, 0, 1, 1)),
    "S09": ("failed (system) from downloaded", (0, 0, 1, 1)),
    "S10": ("failed (system) from uploading, and the archive has it", (0, 1, 0, 1)),
    "S11": ("failed (system) from uploaded", (0, 0, 0, 1)),
    "S12": ("failed (business) under this recipe", (0, 0, 0, 0)),
    "S13": ("failed (business) under another recipe", (0, 0, 1, 1)),
}


def _prepare(bench: Bench, ledger: Ledger, report: Report, how: str, digest: str) -> None:
    """Put ``report`` in the ledger (through its methods only) as ``how`` says, with the
    archive and the staging folder as a run that got that far would have left them."""
    doc = ledger.record_listed("fake", report.id, report.row(), PREP_RUN)

    def fail(doc: Document, kind: FailureKind, failed_digest: str = digest) -> Document:
        return ledger.advance(
            doc,
            State.FAILED,
            PREP_RUN,
            last_error="an earlier run failed here",
            failure_kind=kind,
            failed_stage=doc.state,
            failed_recipe_digest=failed_digest,
        )

    if how.endswith("from listed"):
        fail(doc, FailureKind.SYSTEM)
    if how == "listed" or how.endswith("from listed"):
        return
    staged = bench.staged_path(report)
    staged.parent.mkdir(parents=True, exist_ok=True)
    if "gone" not in how:
        staged.write_bytes(report.data)
    doc = ledger.advance(
        doc,
        State.DOWNLOADED,
        PREP_RUN,
        sha256=report.sha256,
        size=len(report.data),
        staged_path=str(staged),
        filename=report.filename,
        source_filename=report.filename,
    )
    if how.startswith("downloaded"):
        return
    if "(business)" in how:
        fail(doc, FailureKind.BUSINESS, digest if "this recipe" in how else OTHER_DIGEST)
        return
    if how.endswith("from downloaded"):
        fail(doc, FailureKind.SYSTEM)
        return
    doc = ledger.advance(doc, State.UPLOADING, PREP_RUN, file_format="CSV")
    meta = expected_metadata(report)
    if "archive has it" in how or "uploaded" in how or how == "confirmed":
        # The upload went through before the run that sent it died.
        item = bench.archive.ingest(report.id, meta, report.filename, report.data)
    if how.startswith("uploading"):
        return
    if how.endswith("from uploading, and the archive has it"):
        fail(doc, FailureKind.SYSTEM)
        return
    doc = ledger.advance(
        doc,
        State.UPLOADED,
        PREP_RUN,
        archive_id=item.archive_id,
        reference_code=item.reference_code,
        item_metadata=meta,
    )
    if how.endswith("from uploaded"):
        fail(doc, FailureKind.SYSTEM)
    elif how == "confirmed":
        ledger.advance(doc, State.CONFIRMED, PREP_RUN)


def test_every_ledger_state_resumes_and_the_archive_holds_each_report_once(
    bench: Bench,
) -> None:
    reports = [_report(n) for n in range(1, len(RESUME) + 1)]
    bench.source.reports = reports
    digest = bench.loaded().digest
    with bench.ledger() as ledger:
        for report in reports:
            _prepare(bench, ledger, report, RESUME[report.id][0], digest)
    assert {k: s.value for k, s in bench.states().items()} == {
        k: how.split(",")[0].split(" ")[0] for k, (how, _) in RESUME.items()
    }
    preserved = len(bench.archive.items)

    summary = bench.run()

    cost = {
        r.id: (
            bench.source.count("download", key=r.id),
            bench.archive.count("find", key=r.id),
            bench.archive.count("upload", key=r.id),
            bench.archive.count("open", key=r.id, phase="confirm"),
        )
        for r in reports
    }
    assert cost == {key: calls for key, (_, calls) in RESUME.items()}
    held = [r for r in reports if RESUME[r.id][0] == "failed (business) under this recipe"]
    assert_archived_once(bench, [r for r in reports if r not in held])
    assert [bench.archive.holding(r.id) for r in held] == [[]]
    assert len(bench.archive.items) == len(reports) - len(held)
    assert preserved == 5  # S04, S06, S07, S10, S11 were already there
    assert bench.states() == {r.id: State.FAILED if r in held else State.CONFIRMED for r in reports}
    assert keys(summary.held) == ["S12"]
    assert summary.failures == []
    assert summary.exit_code == 1  # a held report is still one to act on
    # The confirmed one was not touched at all.
    assert "S07" not in bench.source.keys_touched() | bench.archive.keys_touched()


@pytest.mark.parametrize("failed", [False, True], ids=["uploading", "failed-from-uploading"])
def test_an_uncertain_upload_whose_staged_file_vanished_is_fetched_again_and_found_first(
    bench: Bench, failed: bool
) -> None:
    report = REPORTS[0]
    with bench.ledger() as ledger:
        doc = ledger.record_listed("fake", report.id, report.row(), PREP_RUN)
        doc = ledger.advance(
            doc,
            State.DOWNLOADED,
            PREP_RUN,
            sha256=report.sha256,
            size=len(report.data),
            staged_path=str(bench.staged_path(report)),  # never written, or cleaned up since
            filename=report.filename,
        )
        doc = ledger.advance(doc, State.UPLOADING, PREP_RUN, file_format="CSV")
        if failed:
            ledger.advance(
                doc,
                State.FAILED,
                PREP_RUN,
                last_error="no answer to the upload",
                failure_kind=FailureKind.SYSTEM,
                failed_stage=State.UPLOADING,
                failed_recipe_digest=OTHER_DIGEST,
            )
    bench.archive.ingest(report.id, expected_metadata(report), report.filename, report.data)

    summary = bench.run()

    # The same bytes fetched again (another machine's worker died holding them), then
    # found in the archive: confirmed with the id the archive has, never uploaded again.
    assert summary.exit_code == 0, summary.failures
    assert bench.source.count("download", key="R1") == 1
    assert bench.archive.count("upload", key="R1") == 0
    assert keys(summary.archived) == ["R1", "R2", "R3"]
    assert_archived_once(bench, REPORTS)


def test_an_uncertain_upload_whose_source_now_serves_other_bytes_is_held(bench: Bench) -> None:
    report = REPORTS[0]
    with bench.ledger() as ledger:
        doc = ledger.record_listed("fake", report.id, report.row(), PREP_RUN)
        doc = ledger.advance(
            doc,
            State.DOWNLOADED,
            PREP_RUN,
            sha256="0" * 64,  # what was captured then is not what the source serves now
            size=len(report.data),
            staged_path=str(bench.staged_path(report)),
            filename=report.filename,
        )
        ledger.advance(doc, State.UPLOADING, PREP_RUN, file_format="CSV")

    summary = bench.run()

    assert [(key, kind) for key, _, kind in summary.failures] == [("R1", FailureKind.BUSINESS)]
    assert "digest_unchanged" in summary.failures[0][1]
    assert "not the one captured" in summary.failures[0][1]
    assert bench.archive.count("upload", key="R1") == 0
    assert bench.archive.count("find", key="R1") == 0
    assert keys(summary.archived) == ["R2", "R3"]


# -- a lost answer, a refusal, a page where a file belongs ----------------------------


def test_a_lost_upload_answer_is_looked_up_and_not_uploaded_again(bench: Bench) -> None:
    bench.archive.lose_answer(key="R2")

    summary = bench.run()

    assert bench.archive.count("upload", key="R2") == 1
    assert bench.archive.count("find", key="R2") == 1
    assert summary.exit_code == 0, summary.line()
    assert_archived_once(bench, REPORTS)
    [item] = bench.archive.holding("R2")
    [found] = events(summary, "find")
    assert (found["key"], found["details"]["found"]) == ("R2", True)
    assert bench.doc("R2").archive_id == item.archive_id


def test_a_refused_upload_is_held_until_the_recipe_changes(bench: Bench) -> None:
    bench.archive.refuse(key="R2", reason="题名与内容不符")

    first = bench.run()

    assert first.exit_code == 1
    assert [(key, kind) for key, _, kind in first.failures] == [("R2", FailureKind.BUSINESS)]
    assert "题名与内容不符" in first.failures[0][1]
    assert bench.archive.count("upload", key="R2") == 1  # a refusal is never retried
    assert bench.archive.holding("R2") == []
    assert_archived_once(bench, [REPORTS[0], REPORTS[2]])

    bench.archive.heal()
    second = bench.run()

    assert keys(second.held) == ["R2"] and second.exit_code == 1
    assert bench.archive.count("upload", key="R2") == 1

    bench.variant("description: the pipeline", "description: the changed pipeline")
    third = bench.run()

    assert third.exit_code == 0, third.line()
    assert keys(third.archived) == ["R2"]
    assert_archived_once(bench, REPORTS)


def test_a_page_where_a_file_belongs_is_fetched_again_and_held_when_it_persists(
    bench: Bench,
) -> None:
    bench.source.serve_html(key="R1", times=1)
    bench.source.serve_html(key="R3", times=None)

    summary = bench.run()

    # Once: taken for a lost session, answered by a login, then the real file.
    assert bench.source.count("download", key="R1") == 2
    assert_archived_once(bench, REPORTS[:2])
    # Every time: the report is held with the check that failed, never archived.
    assert bench.archive.holding("R3") == []
    assert [(key, kind) for key, _, kind in summary.failures] == [("R3", FailureKind.BUSINESS)]
    failed = [
        result["name"]
        for record in events(summary, "checks")
        if record["key"] == "R3"
        for result in record["details"]["results"]
        if result["outcome"] == "fail"
    ]
    assert failed == ["format_matches_extension"]
    assert summary.exit_code == 1


# -- stops ---------------------------------------------------------------------------------


def test_a_stop_during_a_document_finishes_it_and_the_next_run_does_the_rest(
    bench: Bench,
) -> None:
    stop = StopFlag()
    bench.archive.hook("upload", lambda: stop.set("SIGTERM"), key="R1")

    summary = bench.run(stop=stop)

    assert (summary.stopped_by, summary.exit_code) == ("SIGTERM", 143)
    assert keys(summary.archived) == ["R1"]
    assert_archived_once(bench, REPORTS[:1])
    assert bench.source.keys_touched() == {"R1"}
    assert bench.states() == {"R1": State.CONFIRMED, "R2": State.LISTED, "R3": State.LISTED}
    [stopped] = events(summary, "stop")
    assert stopped["details"]["left_for_next_run"] == 2

    again = bench.run(stop=StopFlag())

    assert again.exit_code == 0, again.line()
    assert keys(again.archived) == ["R2", "R3"]
    assert_archived_once(bench, REPORTS)
    assert bench.archive.count("upload", key="R1") == 1


@pytest.mark.parametrize(("kind", "stage"), [("login", "login"), ("table", "list")])
def test_a_stop_while_login_or_listing_backs_off_exits_143(
    bench: Bench, kind: str, stage: str
) -> None:
    stop = StopFlag()
    bench.source.fail(kind, times=None)
    bench.source.hook(kind, lambda: stop.set("SIGTERM"))

    summary = bench.run(stop=stop)

    assert summary.exit_code == 143, summary.line()
    assert (summary.stopped_by, summary.system_failure) == ("SIGTERM", None)
    assert bench.source.count(kind) == 1  # the backoff was cut short: no second attempt
    assert [r["details"]["stage"] for r in events(summary, "retry")] == [stage]
    assert bench.archive.calls == []


# -- recipe errors found while running -------------------------------------------------------


def test_download_steps_that_produce_no_file_are_a_recipe_error_keeping_what_was_captured(
    bench: Bench,
) -> None:
    bench.variant(
        '    - download: {id: "{{ row.id }}"}',
        '    - when: row.id != "R3"\n      download: {id: "{{ row.id }}"}',
    )

    with pytest.raises(RecipeRuntimeError) as info:
        bench.run()

    assert info.value.exit_code == 2
    assert "R3 but no `download` step applied" in str(info.value)
    assert_archived_once(bench, REPORTS[:2])
    assert bench.archive.holding("R3") == []
    assert bench.states() == {"R1": State.CONFIRMED, "R2": State.CONFIRMED, "R3": State.LISTED}
    with bench.ledger() as ledger:
        [run] = ledger.runs("fake")
    assert run["outcome"] == "error"


def test_a_base_url_template_error_is_a_usage_error_before_any_system_is_contacted(
    bench: Bench,
) -> None:
    bench.variant("{{ env.FAKE_ERP_URL | default('fake://erp') }}", "{{ env.FAKE_ERP_URL }}")

    with pytest.raises(RecipeRuntimeError) as info:
        bench.run()

    assert info.value.exit_code == 2
    assert "source.base_url" in str(info.value)
    assert bench.world.drivers_started == 0
    assert bench.source.sessions_opened == bench.archive.sessions_opened == 0
    assert bench.source.calls == [] and bench.archive.calls == []

    # The same recipe, with the variable it reads set, reaches the source.
    bench.settings = replace(bench.settings, env={"FAKE_ERP_URL": "fake://erp"})
    assert bench.run().exit_code == 0
    assert_archived_once(bench, REPORTS)


def test_only_the_declared_env_names_reach_templates(bench: Bench) -> None:  # noqa: ARG001 - registers the fake driver
    environ = {
        "FAKE_ERP_URL": "fake://erp",
        "PATH": "/usr/bin",
        "DB_PW": "hunter2",
        "FLEET_KEYRING_KEY": "k" * 32,
    }
    env = declared_env(environ, load_recipe(RECIPE))  # declares only FAKE_ERP_URL
    assert env == {"FAKE_ERP_URL": "fake://erp"}
    # An undeclared name is undefined: a template error that names it.
    with pytest.raises(TemplateProblem, match="DB_PW"):
        render("{{ env.DB_PW }}", {"env": env})
    # A declared name that is not set is undefined too; `default()` covers it.
    assert declared_env({}, load_recipe(RECIPE)) == {}
    assert render("{{ env.FAKE_ERP_URL | default('x') }}", {"env": {}}) == "x"


def test_a_declared_env_url_with_a_password_is_refused_at_run_start(bench: Bench) -> None:
    bench.settings = replace(bench.settings, env={"FAKE_ERP_URL": "fake://bot:Pa55-w0rd@erp/"})

    with pytest.raises(UsageError) as info:
        bench.run()

    assert info.value.exit_code == 2
    message = str(info.value)
    assert "FAKE_ERP_URL" in message and "a URL with a password" in message
    assert "Pa55-w0rd" not in message
    assert bench.world.drivers_started == 0
    assert bench.source.calls == [] and bench.archive.calls == []
    for file in bench.tmp.rglob("*"):
        if file.is_file():
            assert b"Pa55-w0rd" not in file.read_bytes(), file

    # Without the user part, the same value reaches the source.
    bench.settings = replace(bench.settings, env={"FAKE_ERP_URL": "fake://erp"})
    assert bench.run().exit_code == 0


# -- metadata profiles ---------------------------------------------------------------------


def profile_metadata(report: Report) -> dict[str, Any]:
    """What the archive with its own fields must file each report with
    (tests/fakes/profile.yaml, by hand): a list field arrives as its items."""
    annual = SCHEDULE[report.kind][0] == "Y"
    return {
        "report_id": report.id,
        "title": report.title,
        "source_system": "fake ERP",
        "report_date": report.date,
        "retention_years": "30" if annual else "10",
        "tags": ["finance", "annual" if annual else "monthly", report.department],
    }


@pytest.fixture
def profile_bench(bench: Bench) -> Bench:
    """The archive of tests/fakes/profile.yaml: its own required fields, no reference codes."""
    bench.recipe_path = PROFILE_RECIPE
    bench.archive.codes = False
    bench.archive.required = ("report_id", "source_system", "retention_years")
    return bench


def check_results(summary: RunSummary, key: str) -> dict[str, tuple[str, str]]:
    """The checks recorded for ``key`` in this run: name -> (outcome, reason)."""
    return {
        result["name"]: (result["outcome"], result["reason"])
        for record in events(summary, "checks")
        if record["key"] == key
        for result in record["details"]["results"]
    }


def test_an_archive_with_its_own_fields_receives_them_as_the_profile_maps_them(
    profile_bench: Bench,
) -> None:
    bench = profile_bench

    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    assert_archived_once(bench, REPORTS)
    for report in REPORTS:
        [item] = bench.archive.holding(report.id)
        assert item.metadata == profile_metadata(report)  # the archive's own ground truth
        assert item.reference_code == ""
        doc = bench.doc(report.id)
        assert doc.state is State.CONFIRMED
        assert doc.item_metadata == profile_metadata(report)
        results = check_results(summary, report.id)
        assert results["metadata_valid"][0] == "pass"
        assert results["mandatory_fields"][0] == "pass"
        # No codes in this profile: the code check is skipped, not failed.
        assert results["reference_code"] == (
            "not_run",
            "the metadata profile has no reference codes (standard: none)",
        )
        assert "retention_not_shorter" not in results  # a DA/T rule
    [batch] = events(summary, "batch_check")
    assert batch["outcome"] == "ok" and batch["details"]["item_number_breaks"] == {}


def test_a_value_outside_its_fields_rules_is_held_naming_the_field_by_its_label(
    profile_bench: Bench,
) -> None:
    bench = profile_bench
    bench.variant("values: [1, 3, 10, 30]", "values: [1, 3, 30]")  # 10 years no longer allowed
    odd = csv_report("X-4", "2025年度销售决算报告", "2026-03-31", kind="年度财务决算报告")
    bench.source.reports.append(odd)

    summary = bench.run()

    assert summary.exit_code == 1, summary.line()
    assert_archived_once(bench, [REPORTS[2]])  # the annual report: 30 years, id R3
    reasons = {key: reason for key, reason, kind in summary.failures}
    assert {kind for *_, kind in summary.failures} == {FailureKind.BUSINESS}
    for key in ("R1", "R2"):
        assert bench.archive.holding(key) == []
        assert (
            "Retention (years) (retention_years): '10' is not one of '1', '3', '30'" in reasons[key]
        )
    assert bench.archive.holding("X-4") == []
    assert "Report ID (report_id): 'X-4' does not match the pattern ^R\\d+$" in reasons["X-4"]
    outcome, reason = check_results(summary, "X-4")["metadata_valid"]
    assert outcome == "fail" and reason.startswith("Report ID (report_id)")


def test_dat46_and_the_archives_own_fields_together(bench: Bench) -> None:
    bench.variant(
        "metadata:\n  fonds: Z109\n",
        "metadata_profile:\n"
        "  fields:\n"
        '    report_id: {label: 报表编号, required: true, pattern: "^R\\\\d+$"}\n'
        "    tags: {label: 标签, type: list}\n"
        "metadata:\n"
        '  report_id: "{{ row.id }}"\n'
        '  tags: "{{ row.kind }}; {{ row.department }};"\n'
        "  fonds: Z109\n",
    )

    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    assert_archived_once(bench, REPORTS)
    for report in REPORTS:
        [item] = bench.archive.holding(report.id)
        assert item.metadata == {
            **expected_metadata(report),
            "report_id": report.id,
            "tags": [report.kind, report.department],
        }
        assert check_results(summary, report.id)["reference_code"][0] == "pass"
    codes = {r.id: bench.archive.holding(r.id)[0].reference_code for r in REPORTS}
    assert codes == {
        "R1": "Z109-KU\u00b72026-D10-CWB-0001",
        "R2": "Z109-KU\u00b72026-D10-CWB-0002",
        "R3": "Z109-KU\u00b72026-Y-CWB-0001",
    }


# -- secrets -------------------------------------------------------------------------------


def test_the_password_never_reaches_the_run_log_or_the_ledger(bench: Bench) -> None:
    erp, archive = PASSWORDS["fake-erp"], PASSWORDS["fake-archive"]
    # Systems that echo what was typed into their error pages: the secrets reach the
    # fleet's error messages, which go to the run log and the ledger.
    bench.source.fail("login", message=f"login form shown again (password={erp})")
    bench.archive.fail("upload", key="R1", times=None, message=f"bad form: password={archive}")

    summary = bench.run()

    assert bench.archive.logins == ["archivist"]  # the passwords were really used
    assert summary.exit_code == 3
    log = summary.log_path.read_text(encoding="utf-8")
    assert erp not in log and archive not in log
    assert log.count("[REDACTED]") >= 2  # both messages were written, masked
    with bench.ledger() as ledger:
        db = ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        tables = [
            name for (name,) in conn.execute("select name from sqlite_master where type='table'")
        ]
        dump = json.dumps(
            [conn.execute(f"select * from {table}").fetchall() for table in tables],
            ensure_ascii=False,
            default=str,
        )
    assert erp not in dump and archive not in dump
    assert "[REDACTED]" in (bench.doc("R1").last_error or "")


# -- several listings, and detail pages -------------------------------------------------------

LISTED = [
    csv_report("I1", "2026年9月资产负债表", "2026-10-08", detail={"severity": "高"}),
    csv_report("I2", "2026年9月利润表", "2026-10-09", detail={"severity": "低"}),
    csv_report(
        "C1",
        "2025年度财务决算报告",
        "2026-03-31",
        kind="年度财务决算报告",
        detail={"severity": "中", "owner": "王会计"},
    ),
    # In both lists: two documents, one per listing.
    csv_report("X1", "2026年9月现金流量表", "2026-10-10", detail={"severity": "高", "owner": "李"}),
]
LISTS = {"/incidents": ["I1", "I2", "X1"], "/changes": ["C1", "X1"]}
# source key -> (listing, report id), as tests/fakes/listings.yaml keys them.
LISTED_KEYS = {
    "incidents/I1": ("incidents", "I1"),
    "incidents/I2": ("incidents", "I2"),
    "incidents/X1": ("incidents", "X1"),
    "CHG-C1": ("changes", "C1"),
    "CHG-X1": ("changes", "X1"),
}


def listed_metadata(report: Report, listing: str) -> dict[str, str]:
    """What the archive must file a report with under tests/fakes/listings.yaml."""
    return {
        **expected_metadata(report),
        "author": report.detail["owner"] if listing == "changes" else report.department,
        "remarks": f"源系统报表编号 {report.id}（{listing}，{report.detail['severity']}）",
    }


@pytest.fixture
def listings(bench: Bench) -> Bench:
    """The bench with tests/fakes/listings.yaml and a source with two lists."""
    bench.recipe_path = LISTINGS_RECIPE
    bench.source.reports = list(LISTED)
    bench.source.lists = {path: list(ids) for path, ids in LISTS.items()}
    return bench


def test_two_listings_archive_every_document_once_under_prefixed_keys(listings: Bench) -> None:
    summary = listings.run()

    assert summary.exit_code == 0, summary.line()
    assert (summary.listed, summary.new) == (5, 5)
    assert keys(summary.archived) == list(LISTED_KEYS)  # each listing in turn, in order
    assert sorted(i.source_key for i in listings.archive.items) == sorted(LISTED_KEYS)
    for key, (listing, ident) in LISTED_KEYS.items():
        report = listings.source.report(ident)
        [item] = listings.archive.holding(key)
        assert item.data == report.data
        assert item.metadata == listed_metadata(report, listing)
        doc = listings.doc(key)
        assert (doc.state, doc.listing_name, doc.archive_id) == (
            State.CONFIRMED,
            listing,
            item.archive_id,
        )
        # The changes listing downloads with its own steps, the incidents with the source's.
        assert listings.source.count("open", key=key, phase="download") == (listing == "changes")
    # Each listing its own walk: incidents in two pages (page_size 2), changes in one.
    assert listings.source.count("table", phase="list") == 3


def test_detail_fields_reach_the_metadata_and_the_ledger_and_are_read_once(
    listings: Bench,
) -> None:
    summary = listings.run()

    assert summary.exit_code == 0, summary.line()
    for key, (listing, ident) in LISTED_KEYS.items():
        report = listings.source.report(ident)
        wanted = {"severity"} | ({"owner"} if listing == "changes" else set())
        # Only the report's own page shows them; its listing row never does.
        assert listings.doc(key).listing == report.row()
        assert listings.doc(key).detail == {n: report.detail[n] for n in wanted}
        assert listings.source.count("read", key=key, phase="detail") == len(wanted)
    [item] = listings.archive.holding("CHG-C1")
    assert item.metadata["author"] == "王会计"
    assert item.metadata["remarks"].endswith("（changes，中）")
    details = {e["key"]: e["details"] for e in events(summary, "detail")}
    assert details["CHG-C1"] == {
        "listing": "changes",
        "fields": {"severity": "中", "owner": "王会计"},
    }
    assert set(details) == set(LISTED_KEYS)


class Crash(Exception):
    """The machine going down: not an error the fleet knows, nothing catches it."""


def test_a_crash_after_download_resumes_with_the_detail_fields_it_read(listings: Bench) -> None:
    def crash() -> None:
        raise Crash("power cut")

    listings.archive.hook("login", crash)  # after the first document is downloaded

    with pytest.raises(Crash):
        listings.run()

    first = listings.doc("incidents/I1")
    assert first.state is State.DOWNLOADED and first.detail == {"severity": "高"}
    assert listings.archive.items == []
    # The detail page changes since: the document keeps what was read with its file.
    listings.source.reports[0] = replace(LISTED[0], detail={"severity": "改过"})

    again = listings.run()

    assert again.exit_code == 0, again.line()
    assert listings.source.count("open", key="incidents/I1", phase="detail") == 1
    assert listings.source.count("download", key="incidents/I1") == 1
    [item] = listings.archive.holding("incidents/I1")
    assert item.metadata == listed_metadata(LISTED[0], "incidents")
    assert sorted(i.source_key for i in listings.archive.items) == sorted(LISTED_KEYS)


def test_a_recapture_no_longer_listed_is_fetched_with_its_own_listings_steps(
    listings: Bench,
) -> None:
    listings.run()
    # The archive lost the item, a reviewer asked for it again, its staged file is gone,
    # and the source lists it no more.
    [lost] = listings.archive.holding("CHG-C1")
    listings.archive.items.remove(lost)
    with listings.ledger() as ledger:
        doc = ledger.reopen(listings.doc("CHG-C1"), PREP_RUN)
    Path(doc.staged_path or "").unlink()
    listings.source.lists["/changes"] = ["X1"]

    summary = listings.run()

    assert summary.exit_code == 0, summary.line()
    assert keys(summary.archived) == ["CHG-C1"]
    # The changes listing's detail (owner) and download (its own page) steps, again.
    assert listings.source.count("read", key="CHG-C1", phase="detail") == 4
    assert listings.source.count("open", key="CHG-C1", phase="download") == 2
    [item] = listings.archive.holding("CHG-C1")
    assert item.metadata == listed_metadata(listings.source.report("C1"), "changes")


def test_one_list_with_detail_keeps_its_keys_and_its_rows_gain_the_fields(bench: Bench) -> None:
    bench.source.reports = [replace(r, detail={"severity": "高"}) for r in REPORTS]
    bench.variant(
        "  list:\n",
        '  detail:\n    - open: "/reports/{{ row.id }}"\n'
        "    - read: {what: severity, into: severity}\n  list:\n",
    )
    bench.variant(
        '报表编号 {{ row.id }}"', '报表编号 {{ row.id }} {{ row.severity }}{{ listing }}"'
    )

    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    assert_archived_once(bench, REPORTS)
    for report in REPORTS:
        [item] = bench.archive.holding(report.id)
        assert item.metadata["remarks"] == f"源系统报表编号 {report.id} 高"
        doc = bench.doc(report.id)
        assert (doc.listing_name, doc.detail) == (None, {"severity": "高"})


@pytest.mark.parametrize(
    ("old", "new", "at", "problem"),
    [
        (
            "  listings:\n",
            '  list:\n    - table: {key: "{{ row.id }}", fields: [id]}\n  listings:\n',
            "  listings:",
            "`list` and `listings` are exclusive",
        ),
        ("    - name: changes", "    - name: incidents", "  listings:", "already used"),
        ("    - name: changes", "    - name: 2changes", "name: 2changes", "should match pattern"),
        (
            "      key_prefix: CHG-",
            '      key_prefix: "incidents/C"',
            "  listings:",
            "the key prefix 'incidents/' of listing 'incidents' begins the prefix 'incidents/C'",
        ),
        (
            '        - table:\n            key: "{{ row.id }}"\n'
            "            fields: [id, title, kind, department, date, size]\n      detail:\n",
            "      detail:\n",
            "      steps:",
            "`steps` must contain exactly one `table` step",
        ),
        (
            '  download:\n    - download: {id: "{{ row.id }}"}\n\n',
            "\n",
            "source:",
            "listing(s) 'incidents' have no `download` of their own",
        ),
        ("into: severity}", "into: listing}", "into: listing}", "would overwrite a name"),
        (
            "      detail:\n",
            "      detail:\n        - download: {id: x}\n",
            "      detail:",
            "cannot appear in detail",
        ),
    ],
    ids=[
        "exclusive",
        "duplicate-name",
        "bad-name",
        "prefixes-meet",
        "no-table",
        "no-download",
        "reserved",
        "detail-download",
    ],
)
def test_listings_mistakes_are_named_with_file_and_line(
    bench: Bench, old: str, new: str, at: str, problem: str
) -> None:
    bench.recipe_path = LISTINGS_RECIPE
    bench.variant(old, new)

    with pytest.raises(RecipeError) as info:
        bench.loaded()

    [(where, what)] = info.value.problems
    assert problem in what
    text = bench.recipe_path.read_text(encoding="utf-8").splitlines()
    line = max(n for n, t in enumerate(text, 1) if at in t)  # the last: the second listing's
    assert where == f"{bench.recipe_path}:{line}"


def test_a_recipe_with_neither_list_nor_listings_is_refused(bench: Bench) -> None:
    bench.variant(
        '  list:\n    - open: /reports\n    - table:\n        key: "{{ row.id }}"\n'
        "        fields: [id, title, kind, department, date, size]\n",
        "",
    )

    with pytest.raises(RecipeError) as info:
        bench.loaded()

    problems = info.value.problems
    assert any("`list` or `listings` is required" in what for _, what in problems), problems


# -- errors that tell the truth (issue 11) ----------------------------------------------------


def test_documents_that_keep_arriving_broken_are_held_by_name_and_never_open_the_breaker(
    bench: Bench,
) -> None:
    bench.variant("breaker: 8", "breaker: 3")
    bench.source.serve_html(key="R1", times=None)
    bench.source.serve_truncated(key="R2", times=None)

    summary = bench.run()

    # Each used its own attempts, no more; the breaker (3) never counted them.
    assert bench.source.count("download", key="R1") == 4
    assert bench.source.count("download", key="R2") == 4
    assert events(summary, "circuit_open") == [] and summary.system_failure is None
    assert [(key, kind) for key, _, kind in summary.failures] == [
        ("R1", FailureKind.BUSINESS),
        ("R2", FailureKind.BUSINESS),
    ]
    failed = {
        record["key"]: [r["name"] for r in record["details"]["results"] if r["outcome"] == "fail"]
        for record in events(summary, "checks")
        if record["key"] in ("R1", "R2")
    }
    assert failed == {"R1": ["format_matches_extension"], "R2": ["size_matches_declared"]}
    assert keys(summary.archived) == ["R3"]
    assert_archived_once(bench, REPORTS[2:])
    assert bench.archive.holding("R1") == bench.archive.holding("R2") == []
    assert summary.exit_code == 1
    # A page where a file belongs may be the login page: a new login before each retry,
    # none after the last attempt.
    assert bench.source.logins == ["bot"] * 4


@pytest.mark.parametrize(("kind", "stage"), [("login", "login"), ("table", "list")])
def test_a_recipe_step_that_does_not_fit_the_login_or_the_list_stops_the_run_after_one_attempt(
    bench: Bench, kind: str, stage: str
) -> None:
    bench.source.misfit(kind, times=None, message="'input[name=usr]' matched nothing")

    with pytest.raises(RecipeStepError) as info:
        bench.run()

    assert info.value.exit_code == 2
    message = str(info.value)
    assert message.startswith("recipe problem: ") and "'input[name=usr]' matched nothing" in message
    assert f"step {kind!r}" in message and "recipe.yaml:" in message
    assert bench.source.count(kind) == 1  # one attempt, no retry, no breaker
    assert bench.archive.calls == []
    with bench.ledger() as ledger:
        [run] = ledger.runs("fake")
    assert run["outcome"] == "error"
    lines = [json.loads(line) for line in next(bench.settings.logs_dir.rglob("*.jsonl")).open()]
    assert not [r for r in lines if r["event"] == "retry"]


def test_a_recipe_step_that_does_not_fit_a_documents_page_holds_it_and_the_run_goes_on(
    bench: Bench,
) -> None:
    bench.source.misfit("download", key="R2", times=None)

    summary = bench.run()

    assert bench.source.count("download", key="R2") == 1
    assert keys(summary.archived) == ["R1", "R3"]
    assert_archived_once(bench, [REPORTS[0], REPORTS[2]])
    [(key, reason, kind)] = summary.failures
    assert (key, kind) == ("R2", FailureKind.BUSINESS)
    assert reason.startswith("recipe problem: ")
    assert summary.recipe_problems == ["R2"]
    assert summary.exit_code == 2  # the recipe needs fixing
    assert "recipe problem" in summary.line()
    doc = bench.doc("R2")
    assert (doc.state, doc.failure_kind) == (State.FAILED, FailureKind.BUSINESS)

    # Held while the recipe stays as it is; a changed recipe tries it again.
    bench.source.heal()
    again = bench.run()
    assert keys(again.held) == ["R2"] and again.exit_code == 1
    bench.variant("description: the pipeline", "description: the fixed pipeline")
    fixed = bench.run()
    assert fixed.exit_code == 0, fixed.line()
    assert_archived_once(bench, REPORTS)


def test_a_system_failure_outranks_a_recipe_problem_in_the_exit_code(bench: Bench) -> None:
    bench.source.misfit("download", key="R1")
    bench.source.fail("download", key="R3", times=None)

    summary = bench.run()

    assert summary.recipe_problems == ["R1"]
    assert summary.exit_code == 3


UPLOAD_FORM = (
    '    - upload: {key: "{{ row.id }}"}',
    '    - fill: {selector: title, value: "{{ meta.title }}"}\n    - upload: {key: "{{ row.id }}"}',
)


def _upload_states(summary: RunSummary, key: str) -> list[str]:
    return [e["details"]["to"] for e in events(summary, "state") if e["key"] == key]


def test_a_failure_before_the_commit_is_not_an_uncertain_upload(bench: Bench) -> None:
    bench.variant(*UPLOAD_FORM)
    bench.archive.fail("fill", key="R1", times=1)

    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    assert bench.archive.count("fill", key="R1") == 2
    assert bench.archive.count("find") == 0  # nothing was sent: nothing to look for
    assert bench.archive.count("upload", key="R1") == 1
    assert_archived_once(bench, REPORTS)
    # The intent was recorded once, when the upload was about to be sent.
    assert _upload_states(summary, "R1").count("uploading") == 1


def test_an_upload_form_that_always_fails_leaves_no_uncertain_upload(bench: Bench) -> None:
    bench.variant(*UPLOAD_FORM)
    bench.archive.fail("fill", key="R1", times=None)

    summary = bench.run()

    assert summary.exit_code == 3
    doc = bench.doc("R1")
    assert (doc.state, doc.failed_stage) == (State.FAILED, State.DOWNLOADED)
    assert not doc.upload_uncertain
    assert "uploading" not in _upload_states(summary, "R1")
    assert bench.archive.count("upload", key="R1") == 0

    bench.archive.heal()
    again = bench.run()

    assert again.exit_code == 0, again.line()
    assert bench.archive.count("find") == 0  # known not sent: uploaded without a look
    assert_archived_once(bench, REPORTS)


def test_a_driver_that_cannot_tell_when_it_commits_goes_through_uploading(bench: Bench) -> None:
    bench.archive.announces_commit = False

    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    assert_archived_once(bench, REPORTS)
    for report in REPORTS:
        states = _upload_states(summary, report.id)
        assert states.index("uploading") + 1 == states.index("uploaded"), states


def test_a_lost_answer_after_the_commit_is_still_looked_up(bench: Bench) -> None:
    bench.variant(*UPLOAD_FORM)
    bench.archive.lose_answer(key="R1")

    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    assert bench.archive.count("find", key="R1") == 1
    assert bench.archive.count("upload", key="R1") == 1
    assert_archived_once(bench, REPORTS)


# -- an id the archive does not bear out: held by name, and a way out -----------------------


def retry_command(bench: Bench, *keys: str) -> tuple[int, str]:
    """``runner.py retry`` on the bench's recipe and ledger: its exit code and output."""
    result = CliRunner().invoke(
        main,
        [
            "retry",
            str(bench.recipe_path),
            *keys,
            "--logs-dir",
            str(bench.settings.logs_dir),
            "--ledger",
            bench.settings.ledger_url,
        ],
    )
    return result.exit_code, result.output


def test_an_id_the_archive_does_not_hold_is_held_by_name_and_retry_finds_before_uploading(
    bench: Bench,
) -> None:
    bench.archive.acknowledge_only(key="R2")  # answers with an id, keeps nothing

    first = bench.run()

    # A business finding with a way out, not a system error: held once, by name.
    assert first.exit_code == 1, first.line()
    assert [(key, kind) for key, _, kind in first.failures] == [("R2", FailureKind.BUSINESS)]
    reason = first.failures[0][1]
    assert "not held by the archive" in reason and "R2 as A00002" in reason
    assert "runner.py retry fake R2" in reason and "`find`" in reason
    assert bench.archive.count("open", key="R2", phase="confirm") == 1  # not retried
    doc = bench.doc("R2")
    assert (doc.state, doc.failed_stage, doc.archive_id) == (
        State.FAILED,
        State.UPLOADED,
        "A00002",
    )
    assert_archived_once(bench, [REPORTS[0], REPORTS[2]])

    # The next night: reported as held, not read back again and again.
    second = bench.run()
    assert keys(second.held) == ["R2"] and second.exit_code == 1
    assert bench.archive.count("open", key="R2", phase="confirm") == 1

    code, said = retry_command(bench, "R2")

    assert code == 0, said
    assert said == (
        "R2: failed (business) at uploaded → uploading: forgot archive id A00002 "
        "(Z109-KU·2026-D10-CWB-0002); the next run looks it up with `find` before "
        "uploading again\n"
    )
    doc = bench.doc("R2")
    assert (doc.state, doc.archive_id, doc.reference_code) == (State.UPLOADING, None, None)

    third = bench.run()

    assert third.exit_code == 0, third.line()
    assert keys(third.archived) == ["R2"]
    assert bench.archive.count("find", key="R2") == 1  # looked first, found nothing
    assert bench.archive.count("upload", key="R2") == 2  # the lost one, and this one
    assert_archived_once(bench, REPORTS)
    [item] = bench.archive.holding("R2")
    assert bench.doc("R2").archive_id == item.archive_id == "A00004"


def test_a_wrong_id_is_forgotten_by_retry_and_find_confirms_the_copy_the_archive_holds(
    bench: Bench,
) -> None:
    """Uploaded under an id that is not the item's: the retry goes through `find`, which
    finds the one copy the archive holds; nothing is uploaded again."""
    report = REPORTS[1]
    with bench.ledger() as ledger:
        doc = ledger.record_listed("fake", report.id, report.row(), PREP_RUN)
        staged = bench.staged_path(report)
        staged.parent.mkdir(parents=True)
        staged.write_bytes(report.data)
        doc = ledger.advance(
            doc,
            State.DOWNLOADED,
            PREP_RUN,
            sha256=report.sha256,
            size=len(report.data),
            staged_path=str(staged),
            filename=report.filename,
        )
        doc = ledger.advance(doc, State.UPLOADING, PREP_RUN, file_format="CSV")
        held = bench.archive.ingest(
            report.id, expected_metadata(report), report.filename, report.data
        )
        ledger.advance(
            doc,
            State.UPLOADED,
            PREP_RUN,
            archive_id="A09999",  # read off the wrong element of the answer page
            item_metadata=expected_metadata(report),
        )

    code, said = retry_command(bench, "R2", "R9")

    assert code == 2  # R9 is not in the ledger
    assert said.splitlines() == [
        "R2: uploaded → uploading: forgot archive id A09999; the next run looks it up "
        "with `find` before uploading again",
        "R9: not in the ledger for recipe fake; nothing done",
    ]

    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    assert bench.archive.count("find", key="R2") == 1
    assert bench.archive.count("upload", key="R2") == 0
    assert_archived_once(bench, REPORTS)
    assert bench.doc("R2").archive_id == held.archive_id


def test_a_fixity_download_that_finds_nothing_holds_the_document_by_name(bench: Bench) -> None:
    def vanish() -> None:
        bench.archive.items[:] = [i for i in bench.archive.items if i.source_key != "R3"]

    bench.archive.hook("download", vanish, key="R3", phase="fixity")

    summary = bench.run()

    assert [(key, kind) for key, _, kind in summary.failures] == [("R3", FailureKind.BUSINESS)]
    reason = summary.failures[0][1]
    assert "not held by the archive" in reason and "A00003" in reason and "HTTP 404" in reason
    assert bench.archive.count("download", key="R3", phase="fixity") == 1  # not retried
    assert summary.exit_code == 1


def test_retry_says_what_it_did_from_every_state(bench: Bench) -> None:
    reports = [_report(n) for n in range(1, len(RESUME) + 1)]
    bench.source.reports = reports
    digest = bench.loaded().digest
    with bench.ledger() as ledger:
        for report in reports:
            _prepare(bench, ledger, report, RESUME[report.id][0], digest)

    code, said = retry_command(bench, *(r.id for r in reports))

    assert code == 0, said
    lines = dict(line.split(": ", 1) for line in said.splitlines())
    assert lines["S01"].startswith("listed, not failed: the next run takes it up anyway")
    assert lines["S04"].startswith("uploading, not failed")
    assert lines["S06"].startswith("uploaded → uploading: forgot archive id A00002")
    assert lines["S07"].startswith("confirmed as A00003: nothing to retry")
    assert lines["S08"] == "failed (system) at listed, not held (a system failure is " + (
        "retried anyway); the next run downloads it again"
    )
    assert lines["S10"].startswith("failed (system) at uploading, not held")
    assert lines["S10"].endswith(
        "looks it up with `find` before uploading again (its upload may have gone through)"
    )
    assert lines["S11"].startswith("failed (system) at uploaded → uploading: forgot archive id")
    assert lines["S12"].startswith("failed (business) at downloaded, released from its hold")
    with bench.ledger() as ledger:
        assert not is_held(ledger.get("fake", "S12"), digest)  # type: ignore[arg-type]

    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    assert_archived_once(bench, reports)
    # The forgotten ids were looked up, and found: nothing was uploaded twice.
    assert [bench.archive.count("upload", key=k) for k in ("S06", "S11")] == [0, 0]


def test_a_reviewers_recapture_of_an_id_the_archive_does_not_hold_finds_then_uploads(
    bench: Bench,
) -> None:
    bench.archive.acknowledge_only(key="R2")
    assert bench.run().exit_code == 1
    taken = inventory(
        bench.loaded(), bench.settings, bench.store, bench.redactor, clock=bench.clock
    )
    assert taken.exit_code == 0, taken.line()
    with bench.ledger() as ledger:
        _, items = inventory_frame(ledger, "fake")
        classified = classify(ledger_frame(ledger, "fake"), items)
    result = dict(zip(classified["key"], classified["result"], strict=True))
    assert result == {"R1": Result.MATCH, "R2": Result.MISSING, "R3": Result.MATCH}
    workbook = bench.tmp / "review.xlsx"
    workbook.write_bytes(b"the reviewer's workbook")
    decision = Decision(
        cell="核对 Reconciliation!Q3",
        recipe="fake",
        key="R2",
        archive_id="A00002",
        result=Result.MISSING.value,
        action="recapture",
        owner="王档案",
        note="the archive never kept it",
    )
    review = Review(bench.settings, workbook, clock=bench.clock, redactor=bench.redactor)

    [applied] = review.apply([decision])

    assert applied.outcome == "applied", applied.reason
    assert "forgot archive id A00002" in applied.reason and "`find`" in applied.reason
    assert bench.doc("R2").state is State.UPLOADING
    [again] = Review(bench.settings, workbook, clock=bench.clock, redactor=bench.redactor).apply(
        [decision]
    )
    assert again.outcome == "unchanged"

    bench.source.reports = [REPORTS[0], REPORTS[2]]  # no longer listed: taken all the same
    summary = bench.run()

    assert summary.exit_code == 0, summary.line()
    assert keys(summary.archived) == ["R2"]
    assert bench.archive.count("find", key="R2") == 1
    assert_archived_once(bench, REPORTS)


# -- reconciliation against an archive whose list shows no sizes ----------------------------


def test_reconcile_closes_the_batch_when_the_list_shows_no_size_and_read_backs_match(
    bench: Bench,
) -> None:
    bench.variant(
        "fields: [archive_id, reference_code, title, size]",
        "fields: [archive_id, reference_code, title]",
    )
    assert bench.run().exit_code == 0
    loaded = bench.loaded()
    taken = inventory(loaded, bench.settings, bench.store, bench.redactor, clock=bench.clock)
    assert taken.exit_code == 0, taken.line()

    outcome = reconcile(
        bench.settings,
        [bench.recipe_path],
        since=None,
        out=bench.tmp / "batch.xlsx",
        inventory=None,
        progress=NullProgress(),
        redactor=bench.redactor,
    )

    assert outcome.closes, outcome.line
    assert outcome.line.startswith("reconciled 3 rows: 3 一致")
    with bench.ledger() as ledger:
        frame = ledger_frame(ledger, "fake")
    assert list(frame["read_back_sha256"]) == [r.sha256 for r in REPORTS]


# -- reference codes: unique within the archive that assigned them ----------------------------


def test_two_archives_sharing_a_fonds_code_do_not_refuse_each_others_codes(bench: Bench) -> None:
    second = FakeArchive({USERS["fake-archive"]: PASSWORDS["fake-archive"]}, "档案馆 B", "fake://b")
    bench.world.others.append(second)
    assert bench.run().exit_code == 0
    codes = {r.id: bench.doc(r.id).reference_code for r in REPORTS}
    bench.variant("recipe: fake\n", "recipe: fake-b\n")
    bench.variant(
        "system: fake archive\n  base_url: fake://archive", "system: 档案馆 B\n  base_url: fake://b"
    )

    summary = bench.run()

    # Archive B numbers its own items: the same codes, in another archive.
    assert summary.exit_code == 0, summary.line()
    assert {r.id: second.holding(r.id)[0].reference_code for r in REPORTS} == codes
    with bench.ledger() as ledger:
        docs = ledger.documents("fake-b")
        first = ledger.get("fake", "R1")
    assert [(d.state, d.archive_system) for d in docs] == [(State.CONFIRMED, "档案馆 B")] * 3
    assert first is not None and first.archive_system == "fake archive"


def test_a_code_another_recipe_holds_in_the_same_archive_is_refused(bench: Bench) -> None:
    with bench.ledger() as ledger:  # another recipe, filing into the same archive
        doc = ledger.record_listed("other", "X1", {"id": "X1"}, PREP_RUN)
        staged = bench.settings.staging_dir("other") / "X1.csv"
        staged.parent.mkdir(parents=True)
        staged.write_bytes(b"x")
        doc = ledger.advance(
            doc, State.DOWNLOADED, PREP_RUN, sha256="0" * 64, size=1, staged_path=str(staged)
        )
        doc = ledger.advance(doc, State.UPLOADING, PREP_RUN)
        ledger.advance(
            doc,
            State.UPLOADED,
            PREP_RUN,
            archive_id="Z1",
            reference_code="Z109-KU\u00b72026-D10-CWB-0001",
            archive_system="fake archive",
        )

    summary = bench.run()

    assert [(key, kind) for key, _, kind in summary.failures] == [("R1", FailureKind.BUSINESS)]
    assert "is also held by other/X1 in fake archive" in summary.failures[0][1]
    assert keys(summary.archived) == ["R2", "R3"]


# -- file names that read as something else ---------------------------------------------------

# A byte-order mark, a zero-width space and a right-to-left override: the name shows as
# "2026年9月资产负债表vsc.docx", ends in a zero-width space, and is a .csv.
BIDI_NAME = "\ufeff2026年9月资产负债表\u202excod.csv\u200b"
CLEANED_NAME = "2026年9月资产负债表xcod.csv"


def test_invisible_characters_leave_every_name_the_fleet_keeps_and_shows_and_are_reported(
    bench: Bench,
) -> None:
    bench.source.reports[0] = replace(REPORTS[0], filename=BIDI_NAME)

    summary = bench.run()

    assert summary.exit_code == 0, summary.line()  # removed and reported, not held
    assert_archived_once(bench, REPORTS)
    # Staging, the ledger and the archive: the cleaned name; the ledger keeps the name sent.
    staging = bench.settings.staging_dir(bench.name)
    assert [p.name for p in (staging / "R1").iterdir()] == [CLEANED_NAME]
    doc = bench.doc("R1")
    assert (doc.filename, doc.source_filename) == (CLEANED_NAME, BIDI_NAME)
    assert [i.filename for i in bench.archive.holding("R1")] == [CLEANED_NAME]
    # An ordinary Chinese name is untouched.
    assert bench.doc("R2").filename == REPORTS[1].filename == "2026年9月利润表.csv"
    assert not invisible_characters(REPORTS[1].filename)
    # The check says which characters were removed, by code point.
    with bench.ledger() as ledger:
        db = ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        reasons = dict(
            conn.execute(
                "select source_key, reason from checks where name = 'filename_safe'"
            ).fetchall()
        )
    assert reasons["R1"] == (
        "cleaned: removed invisible format characters U+FEFF ZERO WIDTH NO-BREAK SPACE, "
        f"U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE; stored as {CLEANED_NAME!r}"
    )
    assert reasons["R2"] == "name is clean"
    # The capture event (run log, ledger, audit page): the name sent, written out.
    [detail] = [e["details"] for e in events(summary, "premis") if _is_capture_of(e, "R1")]
    assert detail["filename"] == CLEANED_NAME
    assert detail["source_filename"] == "\\ufeff2026年9月资产负债表\\u202excod.csv\\u200b"
    assert detail["filename_note"] == (
        "invisible format characters removed from the source's file name: "
        "U+FEFF ZERO WIDTH NO-BREAK SPACE, U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE"
    )
    log = summary.log_path.read_text(encoding="utf-8")
    assert not invisible_characters(log)

    # The bag: payload names (extension from the cleaned name), manifests, item metadata.
    with bench.ledger() as ledger:
        bag = export_bag(
            ledger.captured(run_id=summary.run_id),
            bench.tmp / "bag",
            organization="Z109",
            external_id="test",
        )
    files = [p for p in bag.path.rglob("*") if p.is_file()]
    assert all(not invisible_characters(p.name) for p in files)
    payload = sorted(p.name for p in (bag.path / "data").rglob("*") if p.is_file())
    assert all(name.endswith(".csv") for name in payload) and len(payload) == 3
    for tag in ("manifest-sha256.txt", "item-metadata.csv", "item-metadata.json"):
        assert not invisible_characters((bag.path / tag).read_text(encoding="utf-8-sig"))

    # The audit page: the cleaned name, the name sent written out, the note; nothing hidden.
    with bench.ledger() as ledger:
        report = collect(ledger, bench.settings.runs_dir, datetime(2000, 1, 1, tzinfo=UTC))
    page = bench.tmp / "audit.html"
    write_html(report, page)
    text = page.read_text(encoding="utf-8")
    assert not invisible_characters(text)
    assert CLEANED_NAME in text
    assert "\\ufeff2026年9月资产负债表\\u202excod.csv\\u200b" in text
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in text


def _is_capture_of(event: dict[str, Any], key: str) -> bool:
    return event["key"] == key and event["details"]["event_type"] == "capture"


def test_decompression_bombs_fail_inspection_bounded_and_the_rest_of_the_run_archives(
    bench: Bench,
) -> None:
    bench.variant("accept: [csv]", "accept: [csv, pdf, xlsx]")
    pdf = REPORTS[0]
    bombs_ = [
        Report("B1", "爆炸PDF", "月度财务报表", "财务部", "2026-10-08", "b1.pdf", bombs.pdf_bomb()),
        Report(
            "B2", "爆炸XLSX", "月度财务报表", "财务部", "2026-10-08", "b2.xlsx", bombs.xlsx_bomb()
        ),
    ]
    bench.source.reports[:] = [pdf, *bombs_]

    started = time.monotonic()
    summary = bench.run()
    elapsed = time.monotonic() - started

    # Each bomb is a document problem, held by name; the normal report is archived.
    assert keys(summary.archived) == ["R1"]
    assert_archived_once(bench, [pdf])
    assert [(key, kind) for key, _, kind in summary.failures] == [
        ("B1", FailureKind.BUSINESS),
        ("B2", FailureKind.BUSINESS),
    ]
    for key, limit in (("B1", "memory"), ("B2", "memory")):
        results = check_results(summary, key)
        outcome, why = results["inspection_bounded"]
        assert outcome == "fail", (key, why)
        assert why.startswith(f"inspecting the file needed more than 512 MB / 30 s ({limit}")
        assert why.endswith("a decompression bomb or a damaged file")
        assert results["opens"][0] == "not_run"
        assert bench.archive.holding(key) == []
    assert summary.exit_code == 1
    # Within the limits: the run's own memory never held a bomb, and no bomb took 30 s.
    assert elapsed < 2 * 30
    (end,) = events(summary, "run_end")
    assert 0 < end["details"]["inspect_peak_rss_mb"] < 512
    assert end["details"]["peak_rss_mb"] < 512
