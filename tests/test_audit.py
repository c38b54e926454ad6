"""The auditor's report: real ledger, real chained run logs, real evidence files."""

from __future__ import annotations

import hashlib
import json
import re
import struct
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook

from bots.audit import AuditReport, collect, write_html, write_report, write_xlsx
from bots.errors import UsageError
from bots.ledger import Ledger
from bots.redaction import Redactor
from bots.runlog import INDEX_NAME, RunLog
from tests.conftest import FrozenClock

TZ8 = timezone(timedelta(hours=8))
SINCE = datetime(2026, 11, 21, tzinfo=TZ8)
UNTIL = datetime(2026, 11, 22, tzinfo=TZ8)
DIGEST = "3f" * 32  # the recipe version
HOSTILE = "<script>alert(1)</script>"
INJECTION = "=cmd|' /C calc'!A0"  # what a spreadsheet would run as a formula

BEFORE = "demo-20261120T100000-aaaaaa"  # before the period
AT_START = "erp-20261121T000000-cccccc"  # exactly at since (included); an older row: no action
INSIDE = "demo-20261121T090311-bbbbbb"  # the run with evidence and every kind of event
AT_END = "demo-20261122T000000-dddddd"  # exactly at until (excluded: until is exclusive)


def png(rgb: tuple[int, int, int], size: int = 4) -> bytes:
    """A real (tiny) PNG, as a screenshot would be."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


@dataclass
class World:
    root: Path
    ledger: Ledger
    clock: FrozenClock
    runs: Path = field(init=False)

    def __post_init__(self) -> None:
        self.runs = self.root / "logs" / "runs"

    def evidence(self, run_id: str, key: str, rgb: tuple[int, int, int]) -> tuple[str, str]:
        """A screenshot saved as the bot saves it: path relative to the project folder."""
        relative = Path("logs", "evidence", "demo", key, f"listing-row-{run_id}.png")
        (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
        data = png(rgb)
        (self.root / relative).write_bytes(data)
        return str(relative), hashlib.sha256(data).hexdigest()

    def run(
        self,
        run_id: str,
        at: datetime,
        events: Sequence[dict[str, Any]] = (),
        *,
        close: bool = True,
        action: str | None = "capture",
    ) -> None:
        """One run as Capture leaves it: a runs row, a chained log, events in the ledger."""
        self.clock.now = at
        recipe = run_id.split("-")[0]
        log_path = Path("logs", "runs", f"{run_id}.jsonl")  # as the bot records it
        values: dict[str, Any] = {
            "run_id": run_id,
            "recipe": recipe,
            "recipe_digest": DIGEST,
            "host": "archive-pc-07",
            "user": "clerk",
            "bot_version": "0.1.0",
            "log_path": str(log_path),
        }
        if action is not None:
            values["action"] = action
        self.ledger.start_run(**values)
        log = RunLog(
            self.root / log_path,
            run_id=run_id,
            recipe=recipe,
            redactor=Redactor(),
            clock=self.clock,
        )
        log.event("step", note="listed")
        for e in events:
            self.clock.advance(seconds=1)
            self.ledger.record_event(
                event_id=str(uuid.uuid4()),
                recipe=recipe,
                source_key=e["key"],
                run_id=run_id,
                event_type=e["type"],
                event_time=self.clock(),
                outcome=e.get("outcome", "success"),
                detail=e.get("raw") or json.dumps(e["detail"], ensure_ascii=False),
                agent="rpa-fleet 0.1.0 on archive-pc-07",
                evidence_path=e.get("evidence", (None, None))[0],
                evidence_sha256=e.get("evidence", (None, None))[1],
            )
            log.event("premis", key=e["key"], event_type=e["type"])
        if close:
            self.clock.advance(seconds=2)
            log.close("ok", listed=len(events))
            self.ledger.finish_run(run_id, "ok", {"listed": len(events), "archived": 1})


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # The bot runs in the project folder and records paths relative to it; so does the audit.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    clock = FrozenClock()
    w = World(
        tmp_path,
        Ledger.open(
            f"sqlite:///{tmp_path / 'ledger.sqlite3'}", clock, staging_root=tmp_path / "staging"
        ),
        clock,
    )
    w.run(
        BEFORE,
        datetime(2026, 11, 20, 10, 0, tzinfo=TZ8),
        [{"key": "R000000", "type": "capture", "detail": {"note": "old"}}],
    )
    w.run(
        AT_START,
        SINCE,
        [{"key": "E000001", "type": "capture", "detail": {"rows": 1}}],
        action=None,
    )
    shot = w.evidence(INSIDE, "R000001", (200, 30, 30))
    w.run(
        INSIDE,
        datetime(2026, 11, 21, 9, 3, 10, tzinfo=TZ8),
        [
            {"key": "R000001", "type": "capture", "detail": {"url": "/r/1"}, "evidence": shot},
            {"key": "R000001", "type": "message digest calculation", "detail": {"size": 4}},
            {"key": "R000001", "type": "ingestion", "detail": {"title": HOSTILE}},
            {
                "key": "R000001",
                "type": "review decision",
                "detail": {"action": "ignore", "note": "重复 duplicate", "reviewer": "王芳"},
            },
            {"key": INJECTION, "type": "validation", "outcome": "failure", "detail": {}},
        ],
    )
    w.run(
        AT_END,
        UNTIL,
        [{"key": "R000009", "type": "capture", "detail": {"note": "next day"}}],
    )
    yield w
    w.ledger.close()


def report_of(world: World, **kwargs: Any) -> AuditReport:
    return collect(
        world.ledger,
        world.runs,
        kwargs.pop("since", SINCE),
        kwargs.pop("until", UNTIL),
        now=datetime(2026, 11, 23, 8, 0, tzinfo=TZ8),
    )


class Links(HTMLParser):
    """Every href and id in a page, and the text, to check what an auditor can follow."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("href"):
            self.hrefs.append(str(values["href"]))
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if values.get("src"):
            self.srcs.append(str(values["src"]))


def page_of(report: AuditReport, path: Path) -> tuple[str, Links]:
    write_html(report, path)
    text = path.read_text(encoding="utf-8")
    links = Links()
    links.feed(text)
    return text, links


# -- collecting ---------------------------------------------------------------------------


def test_runs_inside_the_period_are_listed_and_those_outside_are_not(world: World) -> None:
    report = report_of(world)
    assert list(report.runs["run_id"]) == [AT_START, INSIDE]  # since inclusive, until exclusive
    inside = report.runs.set_index("run_id").loc[INSIDE]
    assert (inside["user"], inside["host"], inside["recipe_digest"]) == (
        "clerk",
        "archive-pc-07",
        DIGEST,
    )
    assert inside["started_at"] == datetime(2026, 11, 21, 9, 3, 10, tzinfo=TZ8)
    assert inside["ended_at"] == datetime(2026, 11, 21, 9, 3, 17, tzinfo=TZ8)
    assert inside["outcome"] == "ok" and inside["counts"] == {"listed": 5, "archived": 1}
    # A runs row from an older ledger has no action: it was a capture.
    assert report.runs.set_index("run_id").loc[AT_START, "action"] == "capture"
    assert set(report.events["run_id"]) == {AT_START, INSIDE}
    assert report.events["event_time"].is_monotonic_increasing
    assert report.since == SINCE and report.until == UNTIL


def test_without_until_everything_since_is_listed(world: World) -> None:
    report = collect(world.ledger, world.runs, SINCE)
    assert report.until is None
    assert list(report.runs["run_id"]) == [AT_START, INSIDE, AT_END]


@pytest.mark.parametrize(
    "since",
    [SINCE.astimezone(UTC), datetime(2026, 11, 21)],  # another zone; naive = the ledger's zone
    ids=["utc", "naive"],
)
def test_the_period_is_compared_in_the_ledgers_zone(world: World, since: datetime) -> None:
    # SQLite keeps wall times without their offset: 16:00 UTC must not be read as 16:00 +08.
    report = report_of(world, since=since)
    assert list(report.runs["run_id"]) == [AT_START, INSIDE]


def test_an_empty_or_reversed_period_is_a_usage_error(world: World) -> None:
    with pytest.raises(UsageError, match="period is empty"):
        report_of(world, since=UNTIL, until=SINCE)


def test_the_index_head_is_the_last_hash_of_the_last_index_line(world: World) -> None:
    last = (world.runs / INDEX_NAME).read_bytes().splitlines()[-1]
    report = report_of(world)
    assert report.index_head == json.loads(last)["last_hash"]
    assert re.fullmatch("[0-9a-f]{64}", report.index_head or "")


# -- the page -----------------------------------------------------------------------------


def test_the_page_lists_runs_and_events_with_local_times(world: World) -> None:
    text, links = page_of(report_of(world), world.root / "audit" / "report.html")
    assert "2026-11-21 09:03:10 +08:00" in text  # INSIDE's start, in the local zone
    assert "Asia/Shanghai (UTC+08:00)" in text
    assert INSIDE in text and AT_START in text
    assert BEFORE not in text and AT_END not in text
    assert "clerk" in text and "archive-pc-07" in text and DIGEST in text
    assert "采集 capture" in text  # the NULL action, shown as a capture
    # Every event's run links to that run's row.
    run_links = [h for h in links.hrefs if h.startswith("#")]
    assert f"#run-{INSIDE}" in run_links
    assert all(h[1:] in links.ids for h in run_links)


def test_times_follow_the_machines_zone(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    text, _ = page_of(report_of(world), world.root / "report.html")
    assert "2026-11-21 01:03:10 +00:00" in text


def test_a_review_and_other_details_read_as_key_value_pairs(world: World) -> None:
    text, _ = page_of(report_of(world), world.root / "report.html")
    assert "人工审核 review" in text
    for key, value in (("action", "ignore"), ("reviewer", "王芳"), ("note", "重复 duplicate")):
        assert re.search(rf'<span class="k">{key}:</span> {value}</div>', text), key
    assert "{&#34;" not in text and '{"' not in text  # never raw JSON


def test_hostile_text_is_shown_as_text(world: World) -> None:
    text, links = page_of(report_of(world), world.root / "report.html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script" not in text.lower()
    # Self-contained: nothing is fetched from elsewhere, and no link leaves the machine.
    assert links.srcs == [] and "<link" not in text.lower() and "@import" not in text
    assert not [h for h in links.hrefs if h.startswith(("http:", "https:", "//"))]


def test_the_evidence_link_resolves_and_shows_its_digest(world: World) -> None:
    report = report_of(world)
    out = world.root / "audit" / "2026-11" / "report.html"
    text, links = page_of(report, out)
    [href] = [h for h in links.hrefs if h.endswith(".png")]
    assert not href.startswith(("/", "file:"))  # relative: the folder can be moved whole
    target = (out.parent / unquote(href)).resolve()
    assert target == (world.root / "logs/evidence/demo/R000001").resolve() / (
        f"listing-row-{INSIDE}.png"
    )
    assert target.is_file()
    recorded = hashlib.sha256(target.read_bytes()).hexdigest()
    assert recorded in text
    assert "摘要一致 digest matches" in text
    assert "(digest differs!)" not in text and "(file missing)" not in text


def test_a_changed_evidence_file_is_flagged(world: World) -> None:
    shot = world.root / "logs/evidence/demo/R000001" / f"listing-row-{INSIDE}.png"
    shot.write_bytes(png((30, 200, 30)))  # another picture under the same name
    report = report_of(world)
    assert list(report.events["evidence_status"].dropna()) == ["differs"]
    text, _ = page_of(report, world.root / "report.html")
    assert "摘要不符 (digest differs!)" in text
    assert "引用证据的事件 Events citing evidence" in text


def test_a_deleted_evidence_file_is_flagged_and_not_linked(world: World) -> None:
    (world.root / "logs/evidence/demo/R000001" / f"listing-row-{INSIDE}.png").unlink()
    text, links = page_of(report_of(world), world.root / "report.html")
    assert "文件缺失 (file missing)" in text
    assert not [h for h in links.hrefs if h.endswith(".png")]


def test_intact_logs_say_so(world: World) -> None:
    report = report_of(world)
    lines = sum(len(p.read_bytes().splitlines()) for p in world.runs.glob("*.jsonl"))
    assert report.logs.ok and report.logs.files == 4 and report.logs.records == lines
    assert set(report.runs["log_status"]) == {"intact"}
    text, _ = page_of(report, world.root / "report.html")
    assert f"日志完整 Logs intact: 4 files, {lines} records" in text
    assert 'class="status ok"' in text
    assert report.index_head is not None and report.index_head in text
    assert "最新索引哈希 Latest index hash" in text


def test_one_changed_byte_in_a_run_log_is_named(world: World) -> None:
    name = f"{INSIDE}.jsonl"
    path = world.runs / name
    data = path.read_bytes()
    assert data.count(b'"note": "listed"') == 1
    path.write_bytes(data.replace(b'"note": "listed"', b'"note": "listeD"'))
    report = report_of(world)
    assert not report.logs.ok
    [problem] = report.logs.problems
    assert problem.startswith(f"{name} line 1: altered")
    states = report.runs.set_index("run_id")["log_status"].to_dict()
    assert states == {AT_START: "intact", INSIDE: "altered"}
    text, _ = page_of(report, world.root / "report.html")
    assert "日志被改动 Logs NOT intact" in text and 'class="status bad"' in text
    assert f"<li>{problem}</li>" in text


def test_a_deleted_run_log_is_named(world: World) -> None:
    (world.runs / f"{INSIDE}.jsonl").unlink()
    report = report_of(world)
    assert report.logs.problems[0].startswith(f"{INSIDE}.jsonl: missing, listed in")
    assert report.runs.set_index("run_id").loc[INSIDE, "log_status"] == "missing"


def test_a_deleted_runs_folder_is_not_intact(world: World) -> None:
    for path in world.runs.iterdir():
        path.unlink()
    world.runs.rmdir()
    report = report_of(world)
    assert report.logs.problems == [
        f"{world.runs}: no such runs folder, yet the ledger records 4 run(s)"
    ]
    assert report.index_head is None
    assert set(report.runs["log_status"]) == {"missing"}
    text, _ = page_of(report, world.root / "report.html")
    assert "日志被改动 Logs NOT intact" in text and "无 none: no index.ndjson" in text


def test_an_unfinished_run_is_shown_as_such(world: World) -> None:
    world.run(
        "demo-20261121T120000-eeeeee",
        datetime(2026, 11, 21, 12, 0, tzinfo=TZ8),
        [{"key": "R000002", "type": "capture", "detail": {}}],
        close=False,
    )
    report = report_of(world)
    assert report.logs.ok and report.logs.warnings  # killed or still going: not tampering
    row = report.runs.set_index("run_id").loc["demo-20261121T120000-eeeeee"]
    assert row["outcome"] is None and row["log_status"] == "unclosed"
    text, _ = page_of(report, world.root / "report.html")
    assert "未结束 not finished" in text and "提示 Warnings" in text


def test_an_empty_period_still_writes_a_readable_page(world: World) -> None:
    report = report_of(world, since=datetime(2030, 1, 1, tzinfo=TZ8), until=None)
    assert report.runs.empty and report.events.empty
    text, _ = page_of(report, world.root / "empty.html")
    assert "本期间没有运行。No runs in this period." in text
    assert "No events in this period." in text
    assert "日志完整 Logs intact" in text  # the logs are still checked, whatever the period
    write_xlsx(report, world.root / "empty.xlsx")
    book = load_workbook(world.root / "empty.xlsx")
    assert book[" ".join(("运行", "Runs"))].max_row == 2  # the two header rows only


# -- the workbook -------------------------------------------------------------------------


def test_the_workbook_has_three_bilingual_sheets_with_real_times_and_links(world: World) -> None:
    out = world.root / "audit" / "report.xlsx"
    write_report(report_of(world), out)
    book = load_workbook(out)
    assert book.sheetnames == ["概要 Summary", "运行 Runs", "事件 Events"]

    runs = book["运行 Runs"]
    header = [c.value for c in runs[1]], [c.value for c in runs[2]]
    assert header[0][:3] == ["运行编号", "配方", "操作"]
    assert header[1][:3] == ["Run id", "Recipe", "Action"]
    assert runs.freeze_panes == "B3" and runs.auto_filter.ref == f"A2:M{runs.max_row}"
    rows = {r[0].value: r for r in runs.iter_rows(min_row=3)}
    assert list(rows) == [AT_START, INSIDE]
    started = rows[INSIDE][header[1].index("Started")]
    assert started.value == datetime(2026, 11, 21, 9, 3, 10)  # naive, in Asia/Shanghai
    assert started.number_format == "yyyy-mm-dd hh:mm:ss"

    events = book["事件 Events"]
    names = [c.value for c in events[2]]
    assert [c.value for c in events[1]][names.index("Evidence")] == "证据"
    data = list(events.iter_rows(min_row=3))
    assert all(isinstance(r[0].value, datetime) for r in data)
    [shot] = [r[names.index("Evidence")] for r in data if r[names.index("Evidence")].value]
    assert shot.hyperlink is not None and shot.hyperlink.target is not None
    assert (out.parent / unquote(shot.hyperlink.target)).resolve().is_file()
    sha = shot.row and events.cell(shot.row, names.index("Evidence SHA-256") + 1).value
    assert (
        sha
        == hashlib.sha256(
            (world.root / "logs/evidence/demo/R000001" / f"listing-row-{INSIDE}.png").read_bytes()
        ).hexdigest()
    )
    # An event's run id links to the run's row on the Runs sheet.
    run_cell = data[-1][names.index("Run id")]
    assert run_cell.value == INSIDE and run_cell.hyperlink is not None
    location = run_cell.hyperlink.location or ""
    assert location.startswith("'运行 Runs'!A")
    assert runs[location.split("!")[1]].value == INSIDE
    # Text from a legacy page is never a formula.
    [injected] = [r[names.index("Source key")] for r in data if r[2].value == INJECTION]
    assert injected.data_type == "s"

    summary = book["概要 Summary"]
    values = {r[0].value: r[1].value for r in summary.iter_rows(min_row=4)}
    assert values["时间按时区 Times are in"] == "Asia/Shanghai (UTC+08:00)"
    assert values["期间起 Period from"] == datetime(2026, 11, 21)
    assert str(values["日志状态 Logs status"]).startswith("日志完整 Logs intact: 4 files")
    index_label = next(k for k in values if str(k).startswith("最新索引哈希"))
    assert re.fullmatch("[0-9a-f]{64}", str(values[index_label]))
    assert [summary["A2"].value, summary["A3"].value] == ["项目", "Item"]


def test_the_workbook_lists_every_problem(world: World) -> None:
    (world.runs / f"{INSIDE}.jsonl").unlink()
    out = world.root / "report.xlsx"
    write_report(report_of(world), out)
    summary = load_workbook(out)["概要 Summary"]
    rows = [(r[0].value, r[1].value) for r in summary.iter_rows(min_row=4)]
    assert ("问题 Problem", report_of(world).logs.problems[0]) in rows
    status = dict(rows)["日志状态 Logs status"]
    assert str(status).startswith("日志被改动 Logs NOT intact")


# -- choosing the format ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["report.htm", "REPORT.HTML", "report.xlsx"])
def test_the_suffix_chooses_the_format(world: World, name: str) -> None:
    out = world.root / name
    write_report(report_of(world), out)
    head = out.read_bytes()[:20]
    assert head.startswith(b"PK") if name.endswith("xlsx") else b"<!DOCTYPE html>" in head


def test_another_suffix_is_refused(world: World) -> None:
    out = world.root / "report.pdf"
    with pytest.raises(UsageError) as caught:
        write_report(report_of(world), out)
    assert str(out) in str(caught.value)
    assert ".xlsx" in str(caught.value) and ".html" in str(caught.value)
    assert not out.exists()
