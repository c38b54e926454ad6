"""The auditor's view: every run and every document event of a period, in one file.

Auditors read; they do not run tools. ``collect`` gathers, for a period [since, until):

- each run the ledger knows that started in it: who, on which host, which recipe version
  (by digest), when it started and ended, how it ended, and the state of its run log;
- each PREMIS-style event (reviewers' decisions included), with its evidence file checked
  against the SHA-256 recorded when it was taken;
- the verification of the whole runs folder (``bots.logchain.verify``), and the index's
  latest hash, which an auditor can write down: a later, consistent rewrite of the logs
  must change it.

``write_report`` writes it as one self-contained HTML page (``bots/templates/audit.html.j2``:
inline CSS, no scripts, printable) or as an xlsx workbook (概要 Summary, 运行 Runs,
事件 Events). Both show the same rows from the same view (``_views``).

Times: on SQLite the ledger keeps wall times in its clock's zone (the offset is dropped),
so the period is converted into that zone before comparing, as ``Ledger.captured`` does.
The report shows times in this machine's zone with their offset; the workbook, which has
no zones, writes them naive in that zone and says which zone on its summary sheet.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from . import __version__
from .archival.evidence import EventType
from .errors import UsageError
from .files import sha256_file
from .ledger import Ledger, queries
from .logchain import VerifyReport, verify
from .runlog import INDEX_NAME, read_last_line
from .timezones import local_zone, zone_name

__all__ = [
    "AuditReport",
    "collect",
    "show_time",
    "write_html",
    "write_report",
    "write_xlsx",
]

# The ledger's columns each frame carries (the contract), then what ``collect`` adds.
RUN_FIELDS = (
    "run_id",
    "recipe",
    "action",
    "user",
    "host",
    "recipe_digest",
    "bot_version",
    "started_at",
    "ended_at",
    "outcome",
    "counts",
    "log_path",
)
RUN_ADDED = ("log_file", "log_status", "log_note")  # where the log was checked, and how
EVENT_FIELDS = (
    "event_time",
    "recipe",
    "source_key",
    "run_id",
    "event_type",
    "outcome",
    "detail",
    "agent",
    "evidence_path",
    "evidence_sha256",
)
EVENT_ADDED = ("evidence_file", "evidence_status")  # the file found, and whether it matches

SUFFIXES = (".xlsx", ".html", ".htm")
SUMMARY_SHEET, RUNS_SHEET, EVENTS_SHEET = "概要 Summary", "运行 Runs", "事件 Events"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
MAX_TEXT = 32_767  # characters Excel keeps in a cell

# Values shown bilingually, Chinese first; anything else is shown as it is.
ACTIONS = {"capture": "采集 capture", "inventory": "盘点 inventory", "review": "审核 review"}
RUN_OUTCOMES = {
    "ok": ("成功 ok", "ok"),
    "partial": ("部分失败 partial", "warn"),
    "failed": ("失败 failed", "bad"),
    "error": ("出错 error", "bad"),
    "stopped": ("已停止 stopped", "warn"),
    "interrupted": ("中断 interrupted", "warn"),
}
NOT_FINISHED = ("未结束 not finished", "warn")
EVENT_TYPES = {
    EventType.CAPTURE: "采集 capture",
    EventType.DIGEST: "摘要计算 message digest calculation",
    EventType.FORMAT: "格式识别 format identification",
    EventType.VALIDATION: "验证 validation",
    EventType.VIRUS_CHECK: "病毒检查 virus check",
    EventType.INGESTION: "接收入库 ingestion",
    EventType.FIXITY: "固定性检查 fixity check",
    EventType.REVIEW: "人工审核 review decision",
}
EVENT_OUTCOMES = {
    "success": ("成功 success", "ok"),
    "failure": ("失败 failure", "bad"),
    "not_run": ("未执行 not run", "warn"),
}
LOG_STATES = {
    "intact": ("完整 intact", "ok"),
    "altered": ("被改动 altered", "bad"),
    "unclosed": ("未关闭 unclosed", "warn"),
    "missing": ("缺失 missing", "bad"),
}
EVIDENCE_STATES = {
    "ok": ("摘要一致 digest matches", "ok"),
    "differs": ("摘要不符 (digest differs!)", "bad"),
    "missing": ("文件缺失 (file missing)", "bad"),
    "unreadable": ("无法读取 (unreadable)", "bad"),
    "unrecorded": ("未记录摘要 (no digest recorded)", "warn"),
}
INDEX_HEAD_NOTE = (
    "最新索引哈希 Latest index hash — write it down or send it elsewhere: anyone who "
    "rewrites the logs consistently must also change this value"
)
NO_INDEX = f"无 none: no {INDEX_NAME} (no run has closed in this folder yet)"


@dataclass(frozen=True)
class AuditReport:
    """What an auditor sees for [since, until). Times are tz-aware."""

    since: datetime
    until: datetime | None  # exclusive; None: up to now
    generated_at: datetime
    runs: pd.DataFrame  # RUN_FIELDS + RUN_ADDED, one row per run started in the period
    events: pd.DataFrame  # EVENT_FIELDS + EVENT_ADDED, one row per event in the period
    logs: VerifyReport  # the whole runs folder, verified
    index_head: str | None  # last_hash of the index's last line; None when no index


# -- collecting -----------------------------------------------------------------------------


def collect(
    ledger: Ledger,
    runs_dir: Path,
    since: datetime,
    until: datetime | None = None,
    *,
    now: datetime | None = None,
) -> AuditReport:
    """Everything the auditor's report shows, read from the ledger and the runs folder.

    A naive ``since``/``until`` is read in the ledger clock's zone.
    """
    zone = ledger.zone
    start = ledger.wall_time(since)
    end = ledger.wall_time(until) if until is not None else None
    if end is not None and end <= start:
        raise UsageError(f"the period is empty: until ({end}) is not after since ({start})")
    generated = ledger.wall_time(now) if now is not None else ledger.now()
    runs_dir = Path(runs_dir)
    # The head first: the index only grows, so the verification below covers at least
    # the chain this value ends; read after it, it could name a run never verified.
    head = _index_head(runs_dir)
    logs = _verify_logs(runs_dir, ledger)
    read = queries.runs_and_events(ledger, start, end, RUN_FIELDS, EVENT_FIELDS)
    run_frame, event_frame = _plain(read[0]), _plain(read[1])
    run_frame["started_at"] = _aware(run_frame["started_at"], zone)
    run_frame["ended_at"] = _aware(run_frame["ended_at"], zone)
    # Older ledgers have no action column values: those runs were captures.
    run_frame["action"] = run_frame["action"].fillna("capture")
    run_frame["counts"] = run_frame["counts"].map(_counts)
    event_frame["event_time"] = _aware(event_frame["event_time"], zone)
    return AuditReport(
        since=start,
        until=end,
        generated_at=generated,
        runs=_with_log_states(run_frame, runs_dir, logs),
        events=_with_evidence_states(event_frame, runs_dir),
        logs=logs,
        index_head=head,
    )


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Python objects, missing values as None (not NaN/NaT), for the page and the book."""
    return frame.astype(object).where(frame.notna(), None).reset_index(drop=True)


def _aware(values: pd.Series, zone: tzinfo) -> pd.Series:
    """Times as tz-aware timestamps in ``zone``, whichever database they came from."""
    present = values.dropna()
    if len(present) and getattr(present.iloc[0], "tzinfo", None) is not None:
        return pd.to_datetime(values, utc=True).dt.tz_convert(zone)  # real instants
    return pd.to_datetime(values).dt.tz_localize(zone)  # SQLite: wall times of the clock


def _counts(text: object) -> dict[str, Any] | str | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict) else text


def _index_head(runs_dir: Path) -> str | None:
    try:
        with open(runs_dir / INDEX_NAME, "rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)  # a run closing now appends whole lines
            try:
                last = read_last_line(f)
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        entry = json.loads(last) if last is not None else None
    except ValueError:
        return None  # the verification names the damaged line
    head = entry.get("last_hash") if isinstance(entry, dict) else None
    return head if isinstance(head, str) else None


def _verify_logs(runs_dir: Path, ledger: Ledger) -> VerifyReport:
    """verify(runs_dir); a missing folder is tampering only if the ledger knows of runs."""
    if runs_dir.exists():
        return verify(runs_dir)
    known = queries.run_count(ledger)
    if known:
        return VerifyReport(
            problems=[f"{runs_dir}: no such runs folder, yet the ledger records {known} run(s)"]
        )
    return VerifyReport(warnings=[f"{runs_dir}: no such runs folder (no run was logged yet)"])


def _with_log_states(frame: pd.DataFrame, runs_dir: Path, logs: VerifyReport) -> pd.DataFrame:
    """Add where each run's log was checked and what the check said of it."""
    frame = frame.copy()
    files, states, notes = [], [], []
    for log_path in frame["log_path"]:
        # The ledger keeps the path the bot was given (often relative to where it ran);
        # the file verified is the one of that name in the runs folder.
        name = Path(str(log_path or "")).name
        file = (runs_dir / name).resolve()
        problems = _naming(logs.problems, name)
        warnings = _naming(logs.warnings, name)
        if not name or not file.is_file():
            state, note = "missing", "; ".join(problems) or f"{file}: no such file"
        elif problems:
            state, note = "altered", "; ".join(problems)
        elif warnings:
            state, note = "unclosed", "; ".join(warnings)
        else:
            state, note = "intact", ""
        files.append(str(file))
        states.append(state)
        notes.append(note)
    for name, values in (("log_file", files), ("log_status", states), ("log_note", notes)):
        frame[name] = _objects(values, frame.index)
    return frame


def _naming(messages: Iterable[str], name: str) -> list[str]:
    """The messages about file ``name`` (verify starts each with the file's name)."""
    return [m for m in messages if name and (m.startswith(f"{name} ") or m.startswith(f"{name}:"))]


def _with_evidence_states(frame: pd.DataFrame, runs_dir: Path) -> pd.DataFrame:
    """Add the evidence file found for each event and whether its digest still matches."""
    frame = frame.copy()
    digests: dict[Path, str | None] = {}  # one read per file, however many events cite it
    files: list[str | None] = []
    states: list[str | None] = []
    for path, recorded in zip(frame["evidence_path"], frame["evidence_sha256"], strict=True):
        if not path:
            files.append(None)
            states.append(None)
            continue
        file = _find_evidence(Path(str(path)), runs_dir)
        if file not in digests:
            digests[file] = _digest(file)
        files.append(str(file))
        states.append(_evidence_state(digests[file], file, recorded))
    frame["evidence_file"] = _objects(files, frame.index)
    frame["evidence_status"] = _objects(states, frame.index)
    return frame


def _objects(values: list[Any], index: pd.Index) -> pd.Series:
    """A column that keeps None as None (pandas would make text columns NaN-holding str)."""
    return pd.Series(values, index=index, dtype=object)


def _find_evidence(path: Path, runs_dir: Path) -> Path:
    """Where an evidence path recorded by a bot is now.

    The bot records paths as it was given them: with the default logs folder, relative to
    where runner.py ran (the project folder, where an audit runs too). Failing that, the
    folder that holds the logs folder is the project folder of the default layout.
    """
    if path.is_absolute():
        return path
    here = Path.cwd() / path
    project = runs_dir.resolve().parent.parent / path
    return (project if not here.exists() and project.exists() else here).resolve()


def _digest(file: Path) -> str | None:
    try:
        return sha256_file(file)[0] if file.is_file() else None
    except OSError:
        return None


def _evidence_state(digest: str | None, file: Path, recorded: object) -> str:
    if digest is None:
        return "missing" if not file.exists() else "unreadable"
    if not isinstance(recorded, str) or not recorded:
        return "unrecorded"
    return "ok" if digest == recorded.strip().lower() else "differs"


# -- what both formats show -----------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    zh: str
    en: str
    width: int  # the most characters the workbook's column grows to


@dataclass(frozen=True)
class _Cell:
    text: str = ""
    when: datetime | None = None  # a time in the display zone: a real datetime in the workbook
    href: str | None = None  # a URL relative to the output's folder, or "#anchor" of a run row
    tone: str = ""  # "ok", "warn" or "bad": the colour
    pairs: tuple[tuple[str, str], ...] = ()  # key: value lines (details, counts)
    mono: bool = False  # digests and ids: fixed width, broken anywhere

    @property
    def flat(self) -> str:
        """The whole cell as one line of text (the workbook's value)."""
        if self.pairs:
            return "; ".join(f"{k}: {v}" if k else v for k, v in self.pairs)
        return self.text


@dataclass(frozen=True)
class _Row:
    anchor: str | None
    cells: tuple[_Cell, ...]


@dataclass(frozen=True)
class _Day:
    day: str
    rows: list[_Row]


@dataclass(frozen=True)
class _Line:
    label: str
    value: str = ""
    when: datetime | None = None
    tone: str = ""


@dataclass(frozen=True)
class _Views:
    zone_name: str
    since: datetime
    until: datetime | None
    generated_at: datetime
    logs_ok: bool
    logs_line: str
    problems: list[str]
    warnings: list[str]
    index_head: str | None
    facts: list[_Line]  # counts and evidence state, under the logs status
    runs: list[_Row]
    events: list[_Day]


RUN_COLUMNS = (
    _Column("运行编号", "Run id", 40),
    _Column("配方", "Recipe", 16),
    _Column("操作", "Action", 14),
    _Column("用户", "User", 16),
    _Column("主机", "Host", 20),
    _Column("配方摘要", "Recipe digest", 66),
    _Column("程序版本", "Bot version", 10),
    _Column("开始时间", "Started", 20),
    _Column("结束时间", "Ended", 20),
    _Column("结果", "Outcome", 18),
    _Column("计数", "Counts", 50),
    _Column("运行日志", "Run log", 44),
    _Column("日志校验", "Log check", 50),
)
EVENT_COLUMNS = (
    _Column("时间", "Time", 20),
    _Column("配方", "Recipe", 16),
    _Column("文件编号", "Source key", 20),
    _Column("运行编号", "Run id", 40),
    _Column("事件类型", "Event type", 26),
    _Column("结果", "Outcome", 16),
    _Column("详情", "Detail", 70),
    _Column("执行者", "Agent", 30),
    _Column("证据", "Evidence", 50),
    _Column("证据摘要", "Evidence SHA-256", 66),
    _Column("证据校验", "Evidence check", 28),
)


def _views(report: AuditReport, out_dir: Path, zone: tzinfo) -> _Views:
    logs = report.logs
    if logs.ok:
        line = f"日志完整 Logs intact: {logs.files} files, {logs.records} records"
    else:
        line = (
            f"日志被改动 Logs NOT intact: {len(logs.problems)} problem(s) "
            f"({logs.files} files, {logs.records} records checked)"
        )
    anchors = {str(r): _anchor(str(r)) for r in report.runs["run_id"]}
    return _Views(
        zone_name=zone_name(zone),
        since=report.since.astimezone(zone),
        until=report.until.astimezone(zone) if report.until is not None else None,
        generated_at=report.generated_at.astimezone(zone),
        logs_ok=logs.ok,
        logs_line=line,
        problems=list(logs.problems),
        warnings=list(logs.warnings),
        index_head=report.index_head,
        facts=_facts(report),
        runs=[_run_row(r, out_dir, zone) for r in _records(report.runs)],
        events=_days([_event_row(e, out_dir, zone, anchors) for e in _records(report.events)]),
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, any missing value (NaN, NaT, NA) as None."""
    plain = frame.astype(object)
    return [dict(r) for r in plain.where(plain.notna(), None).to_dict("records")]


def _facts(report: AuditReport) -> list[_Line]:
    states = report.events["evidence_status"].value_counts().to_dict()
    bad = sum(n for s, n in states.items() if EVIDENCE_STATES[str(s)][1] == "bad")
    lost = int((report.runs["log_status"] == "missing").sum())
    evidence = ", ".join(f"{EVIDENCE_STATES[str(s)][0]}: {n}" for s, n in sorted(states.items()))
    return [
        _Line("运行 Runs", str(len(report.runs))),
        _Line("事件 Events", str(len(report.events))),
        _Line(
            "引用证据的事件 Events citing evidence",
            f"{sum(states.values())}" + (f" ({evidence})" if evidence else ""),
            tone="bad" if bad else "",
        ),
        _Line("运行日志缺失 Run logs missing", str(lost), tone="bad" if lost else ""),
    ]


def _run_row(run: dict[str, Any], out_dir: Path, zone: tzinfo) -> _Row:
    outcome = run["outcome"]
    shown, tone = (
        RUN_OUTCOMES.get(outcome, (str(outcome), "")) if outcome is not None else NOT_FINISHED
    )
    log_file = Path(run["log_file"])
    state, log_tone = LOG_STATES[run["log_status"]]
    note = run["log_note"]
    counts = run["counts"]
    return _Row(
        anchor=_anchor(str(run["run_id"])),
        cells=(
            _Cell(str(run["run_id"]), mono=True),
            _Cell(_text(run["recipe"])),
            _Cell(ACTIONS.get(run["action"], _text(run["action"]))),
            _Cell(_text(run["user"])),
            _Cell(_text(run["host"])),
            _Cell(_text(run["recipe_digest"]), mono=True),
            _Cell(_text(run["bot_version"])),
            _time_cell(run["started_at"], zone),
            _time_cell(run["ended_at"], zone),
            _Cell(shown, tone=tone),
            _Cell(pairs=_pairs(counts)) if isinstance(counts, dict) else _Cell(_text(counts)),
            # The name is enough to find it in the runs folder; the link knows the way.
            _Cell(log_file.name, href=_href(log_file, out_dir) if log_file.is_file() else None),
            _Cell(f"{state}: {note}" if note else state, tone=log_tone),
        ),
    )


def _event_row(event: dict[str, Any], out_dir: Path, zone: tzinfo, anchors: dict[str, str]) -> _Row:
    outcome, tone = EVENT_OUTCOMES.get(event["outcome"], (_text(event["outcome"]), ""))
    run_id = _text(event["run_id"])
    anchor = anchors.get(run_id)
    return _Row(
        anchor=None,
        cells=(
            _time_cell(event["event_time"], zone),
            _Cell(_text(event["recipe"])),
            _Cell(_text(event["source_key"])),
            # A run that started before the period has no row here to link to.
            _Cell(run_id, href=f"#{anchor}" if anchor else None, mono=True),
            _Cell(EVENT_TYPES.get(event["event_type"], _text(event["event_type"]))),
            _Cell(outcome, tone=tone),
            _Cell(pairs=_detail(event["detail"])),
            _Cell(_text(event["agent"])),
            *_evidence_cells(event, out_dir),
        ),
    )


def _evidence_cells(event: dict[str, Any], out_dir: Path) -> tuple[_Cell, _Cell, _Cell]:
    recorded = _Cell(_text(event["evidence_sha256"]), mono=True)
    if event["evidence_file"] is None:
        return _Cell(), recorded, _Cell()
    file = Path(event["evidence_file"])
    state, tone = EVIDENCE_STATES[event["evidence_status"]]
    # A missing file gets no link: there is nothing to open, only the path to look for.
    href = None if event["evidence_status"] == "missing" else _href(file, out_dir)
    return (
        _Cell(_shown_path(file, out_dir), href=href, mono=True),
        recorded,
        _Cell(state, tone=tone),
    )


def _days(rows: list[_Row]) -> list[_Day]:
    """Events grouped by local day (the rows are in time order)."""
    days: list[_Day] = []
    for row in rows:
        when = row.cells[0].when
        day = f"{when:%Y-%m-%d}" if when is not None else "—"
        if not days or days[-1].day != day:
            days.append(_Day(day, []))
        days[-1].rows.append(row)
    return days


def _time_cell(value: object, zone: tzinfo) -> _Cell:
    if value is None or pd.isna(value):
        return _Cell()
    # Whole seconds: what the page shows, and a workbook time that reads back the same.
    when = pd.Timestamp(value).to_pydatetime().astimezone(zone).replace(microsecond=0)
    return _Cell(show_time(when), when=when)


def show_time(when: datetime) -> str:
    """'2026-11-21 09:03:11 +08:00': the wall time and the offset that makes it an instant."""
    offset = when.strftime("%z") or "+0000"
    return f"{when:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:5]}"


def _detail(text: object) -> tuple[tuple[str, str], ...]:
    """An event's JSON detail as key: value pairs; text that is not a JSON object as is."""
    if not isinstance(text, str) or not text:
        return ()
    try:
        value = json.loads(text)
    except ValueError:
        return (("", text),)
    if not isinstance(value, dict):
        return (("", text),)
    return _pairs(value)


def _pairs(mapping: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True))
        for k, v in mapping.items()
    )


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _anchor(run_id: str) -> str:
    """An HTML id for a run's row: its id when that is plain, else made plain and unique."""
    plain = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    if plain == run_id:
        return f"run-{run_id}"
    return f"run-{plain}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def _href(target: Path, out_dir: Path) -> str:
    """A link to ``target`` from a file in ``out_dir``: relative, so the folder can move."""
    try:
        relative = os.path.relpath(target, out_dir)
    except ValueError:  # another drive (Windows): no relative path exists
        return target.resolve().as_uri()
    # Percent-encoded, ':' included: a path like 'javascript:x' must stay a path.
    return quote(Path(relative).as_posix(), safe="/")


def _shown_path(target: Path, out_dir: Path) -> str:
    try:
        return Path(os.path.relpath(target, out_dir)).as_posix()
    except ValueError:
        return str(target)


# -- writing --------------------------------------------------------------------------------


def write_report(report: AuditReport, path: Path) -> None:
    """Write the report as the file name says: .xlsx, or .html / .htm."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        write_xlsx(report, path)
    elif suffix in (".html", ".htm"):
        write_html(report, path)
    else:
        raise UsageError(
            f"{path}: cannot write an audit report there; the file name must end in "
            + ", ".join(SUFFIXES)
        )


def write_html(report: AuditReport, path: Path) -> None:
    """One self-contained page: inline CSS, no scripts, fonts or images from elsewhere."""
    path = Path(path)
    views = _views(report, path.parent.resolve(), local_zone())
    page = (
        _templates()
        .get_template("audit.html.j2")
        .render(
            v=views,
            run_columns=RUN_COLUMNS,
            event_columns=EVENT_COLUMNS,
            show_time=show_time,
            index_head_note=INDEX_HEAD_NOTE,
            no_index=NO_INDEX,
            version=__version__,
        )
    )
    _atomic(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


@cache
def _templates() -> jinja2.Environment:
    # autoescape everywhere: details, titles and keys come from legacy systems' pages.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bots", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


GREEN, RED, ORANGE = "C6EFCE", "FFC7CE", "FFE5B4"
TONES = {"ok": GREEN, "bad": RED, "warn": ORANGE}
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
HEADER_FILL_EN = PatternFill("solid", fgColor="EEF4FB")
LINK_FONT = Font(color="0563C1", underline="single")
WRAP = Alignment(wrap_text=True, vertical="top")


def write_xlsx(report: AuditReport, path: Path) -> None:
    """Summary, runs and events sheets; times as real datetimes, naive in the local zone."""
    path = Path(path)
    views = _views(report, path.parent.resolve(), local_zone())
    wb = Workbook()
    wb.properties.title = "审计报告 Audit report"
    summary = wb.active
    assert isinstance(summary, Worksheet)
    summary.title = SUMMARY_SHEET
    _summary_sheet(summary, views)
    run_rows = _table_sheet(wb.create_sheet(RUNS_SHEET), RUN_COLUMNS, views.runs, {})
    events = [row for day in views.events for row in day.rows]
    _table_sheet(wb.create_sheet(EVENTS_SHEET), EVENT_COLUMNS, events, run_rows)
    _atomic(path, wb.save)


def _summary_sheet(ws: Worksheet, v: _Views) -> None:
    ws.append(["审计报告 Audit report"])
    ws["A1"].font = Font(bold=True, size=14)
    _header_rows(ws, (_Column("项目", "Item", 40), _Column("值", "Value", 90)), first=2)
    lines = [
        _Line("期间起 Period from", when=v.since),
        _Line("期间止（不含）Period until (exclusive)", "至今 up to now", when=v.until),
        _Line("生成时间 Generated at", when=v.generated_at),
        _Line("时间按时区 Times are in", v.zone_name),
        _Line("日志状态 Logs status", v.logs_line, tone="ok" if v.logs_ok else "bad"),
        *(_Line("问题 Problem", p, tone="bad") for p in v.problems),
        *(_Line("提示 Warning", w, tone="warn") for w in v.warnings),
        _Line(INDEX_HEAD_NOTE, v.index_head or NO_INDEX),
        *v.facts,
        _Line("程序 Made by", f"rpa-fleet {__version__}"),
    ]
    for line in lines:
        row = ws.max_row + 1
        label = ws.cell(row, 1, line.label)
        label.alignment = WRAP
        if line.when is not None:
            value = ws.cell(row, 2, line.when.replace(tzinfo=None))
            value.number_format = DATETIME_FORMAT
        else:
            value = _text_cell(ws, row, 2, line.value)
        value.alignment = Alignment(wrap_text=True, vertical="top", horizontal="left")
        if line.tone:
            fill = PatternFill("solid", fgColor=TONES[line.tone])
            label.fill = value.fill = fill
            label.font = value.font = Font(bold=True)
    ws.column_dimensions["A"].width = 44
    ws.column_dimensions["B"].width = 90
    ws.freeze_panes = "A4"
    _print_setup(ws, landscape=False)


def _table_sheet(
    ws: Worksheet, columns: Sequence[_Column], rows: Sequence[_Row], run_rows: dict[str, int]
) -> dict[str, int]:
    """Two header rows, then the rows; returns each anchored row's sheet row number."""
    _header_rows(ws, columns, first=1)
    placed: dict[str, int] = {}
    for number, row in enumerate(rows, start=3):
        if row.anchor:
            placed[row.anchor] = number
        for col, cell in enumerate(row.cells, start=1):
            _write_cell(ws, number, col, cell, run_rows)
    last = get_column_letter(len(columns))
    ws.auto_filter.ref = f"A2:{last}{max(ws.max_row, 2)}"
    ws.freeze_panes = "B3"  # the header rows and the first column stay in view
    for col, column in enumerate(columns, start=1):
        texts = [column.zh, column.en, *(r.cells[col - 1].flat for r in rows[:500])]
        width = max(_width(t) for t in texts) + 2
        ws.column_dimensions[get_column_letter(col)].width = min(max(width, 8), column.width)
    _print_setup(ws, landscape=True)
    return placed


def _header_rows(ws: Worksheet, columns: Sequence[_Column], *, first: int) -> None:
    """Chinese on row ``first``, English below it; both repeat on every printed page."""
    for row, texts, fill in (
        (first, [c.zh for c in columns], HEADER_FILL),
        (first + 1, [c.en for c in columns], HEADER_FILL_EN),
    ):
        for col, text in enumerate(texts, start=1):
            cell = ws.cell(row, col, text)
            cell.fill = fill
            cell.font = Font(bold=row == first)
    ws.print_title_rows = f"{first}:{first + 1}"


def _write_cell(ws: Worksheet, row: int, col: int, cell: _Cell, run_rows: dict[str, int]) -> None:
    if cell.when is not None:
        target = ws.cell(row, col, cell.when.replace(tzinfo=None))
        target.number_format = DATETIME_FORMAT
    else:
        target = _text_cell(ws, row, col, cell.flat)
    if cell.href and cell.href.startswith("#"):
        at = run_rows.get(cell.href[1:])
        if at is not None:
            target.hyperlink = Hyperlink(ref="", location=f"'{RUNS_SHEET}'!A{at}")
            target.font = LINK_FONT
    elif cell.href:
        target.hyperlink = Hyperlink(ref="", target=cell.href)
        target.font = LINK_FONT
    if cell.tone:
        target.fill = PatternFill("solid", fgColor=TONES[cell.tone])
    target.alignment = WRAP


def _text_cell(ws: Worksheet, row: int, col: int, text: str) -> Cell:
    """Text as text: never a formula or an error code, whatever the source page said."""
    clean = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)[:MAX_TEXT]
    cell = ws.cell(row, col, clean if clean else None)
    assert isinstance(cell, Cell)
    if cell.data_type in ("f", "e"):
        cell.data_type = "s"
    return cell


def _width(text: str) -> int:
    """Columns a text takes: CJK characters are two wide."""
    longest = max(text.split("\n"), key=len) if text else ""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in longest)


def _print_setup(ws: Worksheet, *, landscape: bool) -> None:
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def _atomic(path: Path, write: Callable[[str], object]) -> None:
    """Write through a temporary file and a rename: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its file is owner-only, and a report is written to be handed on.
    tmp = str(path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp"))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
