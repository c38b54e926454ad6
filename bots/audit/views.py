"""What both formats show: the report as rows of cells, with bilingual labels and tones.

``_views`` turns an ``AuditReport`` into ``_Views``: the summary's lines, one ``_Row`` per
run and the events grouped by local day, each cell already text (or a time, a link, key:
value pairs) with its tone. The HTML page and the xlsx book both render these, so they
show the same rows. The underscored names are this package's own, shared by its writers;
``bots.audit`` exports only ``show_time``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from ..archival.evidence import EventType
from ..files import visible
from ..runlog import INDEX_NAME
from ..timezones import zone_name
from .gather import AuditReport

# Values shown bilingually, Chinese first; anything else is shown as it is.
ACTIONS = {
    "capture": "采集 capture",
    "inventory": "盘点 inventory",
    "review": "审核 review",
    "reconcile": "核对 reconcile",
}
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
        return (("", _text(text)),)
    if not isinstance(value, dict):
        return (("", _text(text)),)
    return _pairs(value)


def _pairs(mapping: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (
            _text(k),
            _text(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)),
        )
        for k, v in mapping.items()
    )


def _text(value: object) -> str:
    """A value as shown: what a legacy system sent (a file name, a key, a title) may hold
    a right-to-left override or a zero-width space, written out so it reads as it is."""
    return "" if value is None else visible(str(value), keep="\t\n\r")


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
