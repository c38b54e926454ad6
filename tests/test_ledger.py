"""Ledger transitions: forward only, checked against the state they start from."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from bots.ledger import (
    LATEST,
    Document,
    FailureKind,
    Ledger,
    LedgerError,
    LedgerVersionError,
    State,
    migrations,
    queries,
)
from bots.ledger.schema import documents
from tests.conftest import FrozenClock


@pytest.fixture
def ledger(ledger_url: str, clock: FrozenClock) -> Iterator[Ledger]:
    """A ledger on SQLite, and on PostgreSQL when FLEET_TEST_DATABASE_URL names one."""
    opened = Ledger.open(ledger_url, clock, staging_root=STAGING)
    try:
        yield opened
    finally:
        opened.close()


ROW = {"id": "R000001", "title": "2025年1月月度财务报表"}
STAGING = Path("/srv/rpa-fleet/logs/staging")  # only ever joined, never touched
STAGED = str(STAGING / "demo" / "R000001" / "x.pdf")


def downloaded(ledger: Ledger):  # type: ignore[no-untyped-def]
    doc = ledger.record_listed("demo", "R000001", ROW, "run-1")
    return ledger.advance(
        doc,
        State.DOWNLOADED,
        "run-1",
        sha256="ab" * 32,
        size=10,
        staged_path=STAGED,
        filename="x.pdf",
    )


def test_listing_twice_keeps_one_document(ledger: Ledger) -> None:
    first = ledger.record_listed("demo", "R000001", ROW, "run-1")
    second = ledger.record_listed("demo", "R000001", {**ROW, "title": "changed"}, "run-2")
    assert first.state is State.LISTED and second.state is State.LISTED
    assert second.title == ROW["title"]  # the first sighting is the record
    assert len(ledger.documents("demo")) == 1


def test_same_key_in_two_recipes_is_two_documents(ledger: Ledger) -> None:
    ledger.record_listed("demo", "R000001", ROW, "run-1")
    ledger.record_listed("other", "R000001", ROW, "run-1")
    assert len(ledger.documents("demo")) == 1 and len(ledger.documents("other")) == 1


def fail(ledger: Ledger, doc, reason: str = "boom"):  # type: ignore[no-untyped-def]
    return ledger.advance(
        doc,
        State.FAILED,
        "run-1",
        last_error=reason,
        failure_kind=FailureKind.SYSTEM,
        failed_stage=doc.state,
    )


def test_full_path_to_confirmed(ledger: Ledger, clock: FrozenClock) -> None:
    doc = downloaded(ledger)
    clock.advance(seconds=5)
    doc = ledger.advance(doc, State.UPLOADING, "run-1")
    assert doc.upload_uncertain
    doc = ledger.advance(
        doc,
        State.UPLOADED,
        "run-1",
        archive_id="A000001",
        reference_code="Z109-KU·2025-D10-CWB-0001",
        item_metadata={"title": "t"},
    )
    doc = ledger.advance(doc, State.CONFIRMED, "run-1")
    assert doc.state is State.CONFIRMED
    assert doc.archive_id == "A000001" and doc.item_metadata == {"title": "t"}
    assert ledger.state_counts("demo") == {"confirmed": 1}


def test_cannot_skip_a_state(ledger: Ledger) -> None:
    doc = ledger.record_listed("demo", "R000001", ROW, "run-1")
    with pytest.raises(LedgerError, match="cannot go from listed to uploaded"):
        ledger.advance(doc, State.UPLOADED, "run-1", archive_id="A1")
    doc = downloaded(ledger)
    with pytest.raises(LedgerError, match="cannot go from downloaded to uploaded"):
        ledger.advance(doc, State.UPLOADED, "run-1", archive_id="A1")  # intent first


def test_confirmed_is_final(ledger: Ledger) -> None:
    doc = downloaded(ledger)
    doc = ledger.advance(doc, State.UPLOADING, "run-1")
    doc = ledger.advance(doc, State.UPLOADED, "run-1", archive_id="A1")
    doc = ledger.advance(doc, State.CONFIRMED, "run-1")
    for state in State:
        with pytest.raises(LedgerError):
            ledger.advance(
                doc,
                state,
                "run-2",
                last_error="x",
                archive_id="A1",
                failure_kind=FailureKind.SYSTEM,
                failed_stage=State.CONFIRMED,
            )


def test_state_needs_its_evidence(ledger: Ledger) -> None:
    doc = ledger.record_listed("demo", "R000001", ROW, "run-1")
    with pytest.raises(LedgerError, match="without sha256, size, staged_path"):
        ledger.advance(doc, State.DOWNLOADED, "run-1")
    with pytest.raises(LedgerError, match="without last_error, failure_kind, failed_stage"):
        ledger.advance(doc, State.FAILED, "run-1")


def test_stale_document_cannot_advance(ledger: Ledger) -> None:
    """Two writers holding the same snapshot: only the first change lands."""
    doc = ledger.record_listed("demo", "R000001", ROW, "run-1")
    fail(ledger, doc)
    with pytest.raises(LedgerError, match="changed under us"):
        ledger.advance(
            doc,
            State.DOWNLOADED,
            "run-2",
            sha256="ab" * 32,
            size=1,
            staged_path=STAGED,
            filename="x",
        )


def test_failed_document_resumes_and_clears_its_error(ledger: Ledger) -> None:
    doc = downloaded(ledger)
    doc = ledger.advance(
        doc,
        State.FAILED,
        "run-1",
        last_error="archive refused: 题名不能为空",
        failure_kind=FailureKind.BUSINESS,
        failed_stage=State.DOWNLOADED,
        failed_recipe_digest="d1",
    )
    assert doc.last_error and doc.sha256 == "ab" * 32  # what was captured stays
    assert doc.failure_kind is FailureKind.BUSINESS and doc.failed_recipe_digest == "d1"
    assert not doc.upload_uncertain
    doc = ledger.advance(doc, State.UPLOADING, "run-2")
    assert doc.last_error is None and doc.failure_kind is None and doc.state is State.UPLOADING


def test_a_failure_while_uploading_stays_uncertain(ledger: Ledger) -> None:
    doc = ledger.advance(downloaded(ledger), State.UPLOADING, "run-1")
    doc = fail(ledger, doc, "connection dropped after submit")
    assert doc.failed_stage is State.UPLOADING and doc.upload_uncertain
    adopted = ledger.advance(doc, State.UPLOADED, "run-2", archive_id="A7")  # found it
    assert adopted.state is State.UPLOADED and not adopted.upload_uncertain


def test_interrupted_runs_are_closed(ledger: Ledger) -> None:
    for run_id in ("demo-1", "demo-2"):
        ledger.start_run(
            run_id=run_id,
            recipe="demo",
            recipe_digest="d" * 64,
            host="h",
            user="u",
            bot_version="0.1.0",
            log_path=f"/logs/{run_id}.jsonl",
        )
    assert ledger.close_interrupted_runs("demo", current_run="demo-2") == ["demo-1"]
    outcomes = {r["run_id"]: r["outcome"] for r in ledger.runs("demo")}
    assert outcomes == {"demo-1": "interrupted", "demo-2": None}


def test_an_older_ledger_gains_new_columns(ledger_url: str, clock: FrozenClock) -> None:
    """A ledger from before versions (tables, no ledger_version) is recognised as such
    and upgraded, keeping what it holds."""
    old = Ledger.open(ledger_url, clock, staging_root=STAGING)
    downloaded(old)
    with old.engine.begin() as conn:  # as version 0.1 wrote it: no failure columns
        conn.exec_driver_sql("DROP TABLE ledger_version")
        conn.exec_driver_sql("ALTER TABLE documents DROP COLUMN failure_kind")
    old.close()
    with pytest.raises(LedgerVersionError, match="older rpa-fleet .*runner.py ledger upgrade"):
        Ledger.open(ledger_url, clock, staging_root=STAGING, migrate=False)
    reopened = Ledger.open(ledger_url, clock, staging_root=STAGING)
    try:
        assert reopened.version() == LATEST
        kept = reopened.get("demo", "R000001")
        assert kept is not None and kept.state is State.DOWNLOADED and kept.failure_kind is None
        doc = reopened.record_listed("demo", "R1", ROW, "run-1")
        assert fail(reopened, doc).failure_kind is FailureKind.SYSTEM
    finally:
        reopened.close()


def test_a_version_4_ledger_gains_the_listing_and_detail_columns(
    ledger_url: str, clock: FrozenClock
) -> None:
    """Step 5: documents from before `listings` keep working, from no listing (`list`)."""
    old = Ledger.open(ledger_url, clock, staging_root=STAGING)
    downloaded(old)
    with old.engine.begin() as conn:  # as version 4 left it
        conn.execute(
            migrations.ledger_version.delete().where(migrations.ledger_version.c.version > 4)
        )
        conn.exec_driver_sql("ALTER TABLE documents DROP COLUMN listing_name")
        conn.exec_driver_sql("ALTER TABLE documents DROP COLUMN detail")
    old.close()
    with pytest.raises(LedgerVersionError, match="is at version 4"):
        Ledger.open(ledger_url, clock, staging_root=STAGING, migrate=False)
    reopened = Ledger.open(ledger_url, clock, staging_root=STAGING)
    try:
        assert reopened.version() == LATEST
        kept = reopened.get("demo", "R000001")
        assert kept is not None and kept.state is State.DOWNLOADED
        assert (kept.listing_name, kept.detail, kept.row) == (None, None, ROW)
    finally:
        reopened.close()


def test_a_document_keeps_its_listing_and_the_detail_read_with_its_file(ledger: Ledger) -> None:
    doc = ledger.record_listed("demo", "INC/R1", ROW, "run-1", listing_name="incidents")
    assert (doc.listing_name, doc.detail) == ("incidents", None)
    stale = ledger.count_attempt(doc)
    new = ledger.advance(
        stale,
        State.DOWNLOADED,
        "run-1",
        sha256="ab" * 32,
        size=10,
        staged_path=STAGED,
        detail={"severity": "高"},
    )
    assert new.detail == {"severity": "高"} and new.listing_name == "incidents"
    assert new.row == {**ROW, "severity": "高"} and new.listing == ROW
    with pytest.raises(LedgerError, match="changed under us"):  # compare-and-set, as ever
        ledger.advance(
            stale,
            State.DOWNLOADED,
            "run-2",
            sha256="cd" * 32,
            size=10,
            staged_path=STAGED,
            detail={"severity": "低"},
        )
    assert ledger.get("demo", "INC/R1") == new


def test_attempts_are_counted(ledger: Ledger) -> None:
    doc = ledger.record_listed("demo", "R000001", ROW, "run-1")
    doc = ledger.count_attempt(ledger.count_attempt(doc))
    assert doc.attempts == 2


def test_ledger_survives_reopening(ledger_url: str, clock: FrozenClock) -> None:
    first = Ledger.open(ledger_url, clock, staging_root=STAGING)
    downloaded(first)
    first.close()
    reader = Ledger.open(ledger_url, clock, staging_root=STAGING, migrate=False)
    again = reader.get("demo", "R000001")
    reader.close()
    assert again is not None and again.state is State.DOWNLOADED and again.listing == ROW


def test_runs_are_recorded(ledger: Ledger) -> None:
    ledger.start_run(
        run_id="demo-1",
        recipe="demo",
        recipe_digest="d" * 64,
        host="h",
        user="u",
        bot_version="0.1.0",
        log_path="/logs/runs/demo-1.jsonl",
    )
    ledger.finish_run("demo-1", "ok", {"listed": 3})
    [run] = list(ledger.runs("demo"))
    assert run["outcome"] == "ok" and run["counts"] == '{"listed": 3}' and run["ended_at"]


def test_a_concurrent_listing_of_the_same_key_is_absorbed(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between our read and our insert another writer listed the key: theirs stands."""
    other = Ledger(ledger.url, lambda: ledger._clock(), staging_root=STAGING)
    real_fetch = Ledger._fetch
    calls = {"n": 0}

    def fetch_racing(self, conn, recipe, key):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:  # our first look: nothing yet, then the other writer inserts
            return None
        return real_fetch(self, conn, recipe, key)

    first = other.record_listed("demo", "R000001", {"title": "theirs"}, "run-other")
    monkeypatch.setattr(Ledger, "_fetch", fetch_racing)
    doc = ledger.record_listed("demo", "R000001", {"title": "ours"}, "run-ours")
    assert doc.title == "theirs" and doc.listing == first.listing
    assert len(ledger.documents("demo")) == 1


# -- two writers, one document -------------------------------------------------------------


def race(*writers: Callable[[], Document]) -> tuple[list[Document], list[LedgerError]]:
    """Run the writers at the same moment, each on its own thread; what each got."""
    barrier = threading.Barrier(len(writers))
    won: list[Document] = []
    lost: list[LedgerError] = []

    def go(write: Callable[[], Document]) -> None:
        barrier.wait()
        try:
            won.append(write())
        except LedgerError as exc:
            lost.append(exc)

    threads = [threading.Thread(target=go, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return won, lost


@pytest.mark.parametrize("round_", range(5))
def test_two_ledgers_never_both_take_one_document(ledger: Ledger, round_: int) -> None:
    """Two processes' sessions (two Ledger objects on one database) holding the same
    snapshot both try the same step: exactly one lands, the other is told."""
    other = Ledger(ledger.url, ledger._clock, staging_root=STAGING)
    try:
        key = f"R{round_}"
        doc = ledger.record_listed("demo", key, ROW, "run-1")
        won, lost = race(lambda: ledger.count_attempt(doc), lambda: other.count_attempt(doc))
        assert len(won) == 1 and len(lost) == 1 and "changed under us" in str(lost[0])
        taken = won[0]
        assert taken.attempts == 1 and ledger.get("demo", key) == taken

        def download(on: Ledger) -> Callable[[], Document]:
            return lambda: on.advance(
                taken, State.DOWNLOADED, "run-x", sha256="ab" * 32, size=1, staged_path=STAGED
            )

        won, lost = race(download(ledger), download(other))
        assert len(won) == 1 and len(lost) == 1 and "changed under us" in str(lost[0])
    finally:
        other.close()


def test_a_state_that_repeats_is_still_taken_once(ledger: Ledger) -> None:
    """downloaded → downloaded leaves the state as it was: the attempt tells them apart."""
    doc = ledger.count_attempt(downloaded(ledger))
    ledger.count_attempt(doc)  # another run took it meanwhile
    with pytest.raises(LedgerError, match="changed under us"):
        ledger.advance(doc, State.DOWNLOADED, "run-2", sha256="cd" * 32, size=2, staged_path=STAGED)


def test_a_stale_attempt_count_is_refused(ledger: Ledger) -> None:
    doc = ledger.record_listed("demo", "R000001", ROW, "run-1")
    ledger.count_attempt(doc)
    with pytest.raises(LedgerError, match="changed under us"):
        ledger.count_attempt(doc)
    assert (ledger.get("demo", "R000001") or doc).attempts == 1


def test_a_run_is_finished_once(ledger: Ledger) -> None:
    ledger.start_run(
        run_id="demo-1",
        recipe="demo",
        recipe_digest="d" * 64,
        host="h",
        user="u",
        bot_version="0.1.0",
        log_path="/logs/runs/demo-1.jsonl",
    )
    assert ledger.close_interrupted_runs("demo", current_run="demo-2") == ["demo-1"]
    with pytest.raises(LedgerError, match="not open .*'interrupted'"):
        ledger.finish_run("demo-1", "ok", {})  # declared dead meanwhile: not overwritten
    assert [r["outcome"] for r in ledger.runs("demo")] == ["interrupted"]
    assert ledger.close_interrupted_runs("demo", current_run="demo-2") == []


def test_release_and_reopen_are_compare_and_set(ledger: Ledger) -> None:
    held = ledger.advance(
        ledger.count_attempt(downloaded(ledger)),
        State.FAILED,
        "run-1",
        last_error="refused",
        failure_kind=FailureKind.BUSINESS,
        failed_stage=State.DOWNLOADED,
        failed_recipe_digest="d1",
    )
    assert ledger.release_held("demo", ["R000001", "nope"]) == ["R000001"]
    released = ledger.get("demo", "R000001")
    assert released is not None and released.failed_recipe_digest is None
    assert released.state is State.FAILED and released.attempts == held.attempts
    with pytest.raises(LedgerError, match="not confirmed"):
        ledger.reopen(released, "review-1")


# -- staged files, relative to the staging root ---------------------------------------------


def stored_staged_path(ledger: Ledger, key: str) -> str | None:
    [row] = queries.table_rows(ledger, "documents", source_key=key)
    return row["staged_path"]  # type: ignore[no-any-return]


def test_staged_paths_are_stored_relative_to_the_staging_root(ledger: Ledger) -> None:
    doc = downloaded(ledger)
    assert doc.staged_path == STAGED  # callers see this machine's absolute path
    assert stored_staged_path(ledger, "R000001") == "demo/R000001/x.pdf"


def test_another_machine_finds_the_staged_file_under_its_own_root(ledger: Ledger) -> None:
    downloaded(ledger)
    elsewhere = Path("/data/fleet-2/staging")
    other = Ledger(ledger.url, ledger._clock, staging_root=elsewhere)
    try:
        seen = other.get("demo", "R000001")
        assert seen is not None and seen.staged_path == str(elsewhere / "demo/R000001/x.pdf")
    finally:
        other.close()


@pytest.mark.parametrize(
    "outside", ["/tmp/x.pdf", f"{STAGING}/../escaped.pdf", f"{STAGING}-2/demo/x.pdf"]
)
def test_a_staged_file_outside_the_root_is_refused(ledger: Ledger, outside: str) -> None:
    doc = ledger.record_listed("demo", "R000001", ROW, "run-1")
    with pytest.raises(LedgerError, match="outside the staging root"):
        ledger.advance(
            doc, State.DOWNLOADED, "run-1", sha256="ab" * 32, size=1, staged_path=outside
        )
    assert ledger.get("demo", "R000001") == doc


def test_upgrading_makes_old_absolute_staged_paths_relative(
    ledger: Ledger, clock: FrozenClock
) -> None:
    """Rows from before step 3 hold absolute paths: those under this machine's root become
    relative; one elsewhere (another machine's) is kept, and read as it is."""
    under = ledger.advance(
        ledger.record_listed("demo", "R1", ROW, "run-1"),
        State.DOWNLOADED,
        "run-1",
        sha256="ab" * 32,
        size=1,
        staged_path=str(STAGING / "demo" / "R1" / "a.pdf"),
    )
    downloaded(ledger)
    with ledger.engine.begin() as conn:  # as the bot wrote them before step 3
        conn.execute(
            update(documents)
            .where(documents.c.source_key == "R1")
            .values(staged_path=str(STAGING / "demo" / "R1" / "a.pdf"))
        )
        conn.execute(
            update(documents)
            .where(documents.c.source_key == "R000001")
            .values(staged_path="/elsewhere/staging/demo/R000001/x.pdf")
        )
        conn.execute(
            migrations.ledger_version.delete().where(migrations.ledger_version.c.version >= 3)
        )
    assert ledger.upgrade().before == 2
    assert stored_staged_path(ledger, "R1") == "demo/R1/a.pdf"
    assert stored_staged_path(ledger, "R000001") == "/elsewhere/staging/demo/R000001/x.pdf"
    assert ledger.get("demo", "R1") == under
    kept = ledger.get("demo", "R000001")
    assert kept is not None and kept.staged_path == "/elsewhere/staging/demo/R000001/x.pdf"


def test_a_file_of_several_gibibytes_is_recorded(ledger: Ledger) -> None:
    """Sizes are 64-bit on both databases (PostgreSQL's INTEGER stops at 2 GiB)."""
    size = 5 * (1 << 30)
    doc = ledger.record_listed("demo", "BIG", ROW, "run-1")
    doc = ledger.advance(doc, State.DOWNLOADED, "run-1", sha256="ab", size=size, staged_path=STAGED)
    ledger.record_inventory("inv-1", "demo", [{"archive_id": "A1", "size": size}])
    assert (ledger.get("demo", "BIG") or doc).size == size
    assert [r["size"] for r in queries.table_rows(ledger, "inventory")] == [size]


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_an_older_postgresql_ledger_gets_64_bit_sizes(ledger: Ledger) -> None:
    """SQLite's INTEGER is 64-bit already; PostgreSQL's was not, before step 4."""
    with ledger.engine.begin() as conn:  # as step 1 created it before sizes were BIGINT
        conn.exec_driver_sql("ALTER TABLE documents ALTER COLUMN size TYPE INTEGER")
        version = migrations.ledger_version
        conn.execute(version.delete().where(version.c.version >= 4))
    assert ledger.upgrade().before == 3
    test_a_file_of_several_gibibytes_is_recorded(ledger)
