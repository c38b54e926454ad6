"""The tracker's reports and their attachments, deterministic from a seed.

Two kinds: incidents (``INC-0001``, a PDF report each) and meeting minutes
(``MIN-0001``, a CSV of action items each). Every attachment is rendered once, when the
report is created, so its size and SHA-256 are known for ``/_sim/state`` and stay the
same for the life of the process (and for every process started with the same seed).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import random
import threading
from dataclasses import dataclass, field

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

INCIDENT = "incident"
MINUTES = "minutes"
KINDS = (INCIDENT, MINUTES)
PREFIX = {INCIDENT: "INC", MINUTES: "MIN"}
FORMAT = {INCIDENT: "pdf", MINUTES: "csv"}
CONTENT_TYPE = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}

SEVERITIES = ("critical", "major", "minor", "trivial")
STATUSES = ("open", "resolved", "closed")
FIRST_DATE = dt.date(2026, 1, 5)

_PEOPLE = (
    "Priya Natarajan",
    "Tomás Ferreira",
    "Grace Okafor",
    "Lars Eriksson",
    "Mei Lin",
    "Daniel Kowalski",
    "Aisha Rahman",
)
_COMPONENTS = (
    "Checkout API",
    "Billing export",
    "Login service",
    "Search index",
    "Report scheduler",
    "Mail relay",
    "Warehouse sync",
    "Mobile gateway",
)
_SYMPTOMS = (
    "returns 502 under load",
    "times out after deploy",
    "drops messages at midnight",
    "serves stale data",
    "leaks database connections",
    "rejects valid tokens",
    "fills the disk with logs",
    "double-charges retried orders",
)
_MEETINGS = (
    "Weekly operations sync",
    "Release planning",
    "Incident review board",
    "Architecture council",
    "Change advisory board",
)
_ACTIONS = (
    "Add an alert on queue depth",
    "Write the post-incident review",
    "Rotate the service credentials",
    "Raise the connection pool limit",
    "Document the failover runbook",
    "Schedule the index rebuild",
    "Check the backup restore time",
    "Review the on-call rota",
)
_LOREM = (
    "Customers reported errors shortly after the morning peak began.",
    "The on-call engineer acknowledged the page and opened a bridge.",
    "Metrics showed the error rate climbing on two of three nodes.",
    "A rollback of the last change did not clear the symptoms.",
    "Restarting the worker pool restored service for most users.",
    "The root cause was traced to an exhausted connection pool.",
    "Follow-up actions are tracked in the linked tasks below.",
)


@dataclass(frozen=True)
class Report:
    id: str  # INC-0007, MIN-0003: shown only inside the download link's href
    kind: str
    number: int  # the page number in the URL: /incidents/7, /wiki/minutes/3
    title: str
    reporter: str
    severity: str  # "" for minutes
    status: str
    date: dt.date
    content: bytes = field(repr=False)
    sha256: str = ""
    gzipped: bytes = field(default=b"", repr=False)  # gzip of content, for gzip clients

    @property
    def fmt(self) -> str:
        return FORMAT[self.kind]

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def filename(self) -> str:
        return f"{self.id}.{self.fmt}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPE[self.fmt]

    @property
    def path(self) -> str:
        if self.kind == INCIDENT:
            return f"/incidents/{self.number}"
        return f"/wiki/minutes/{self.number}"

    @property
    def download_path(self) -> str:
        return f"/files/download?id={self.id}&fmt={self.fmt}"

    def state(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "number": self.number,
            "title": self.title,
            "reporter": self.reporter,
            "severity": self.severity,
            "status": self.status,
            "date": self.date.isoformat(),
            "filename": self.filename,
            "format": self.fmt,
            "size": self.size,
            "gzip_size": len(self.gzipped),
            "sha256": self.sha256,
            "url": self.path,
        }


class Catalogue:
    """Every report, by kind in creation order; thread safe (the server is threaded)."""

    def __init__(self, seed: int, incidents: int, minutes: int) -> None:
        self._rng = random.Random(f"tracker/{seed}")
        self._lock = threading.Lock()
        self._reports: dict[str, list[Report]] = {INCIDENT: [], MINUTES: []}
        self._by_id: dict[str, Report] = {}
        self._last_date = {INCIDENT: FIRST_DATE, MINUTES: FIRST_DATE}
        for kind, count in ((INCIDENT, incidents), (MINUTES, minutes)):
            for _ in range(count):
                self._add(kind, None)

    def _add(self, kind: str, on: dt.date | None) -> Report:
        rng = self._rng
        number = len(self._reports[kind]) + 1
        if on is None:
            step = rng.randint(1, 6) if kind == INCIDENT else 7
            on = self._last_date[kind] + dt.timedelta(days=step)
        self._last_date[kind] = on
        reporter = rng.choice(_PEOPLE)
        if kind == INCIDENT:
            title = f"{rng.choice(_COMPONENTS)} {rng.choice(_SYMPTOMS)}"
            severity = rng.choice(SEVERITIES)
            status = rng.choice(STATUSES)
        else:
            title = f"{rng.choice(_MEETINGS)} {on.isoformat()}"
            severity = ""
            status = "published"
        report_id = f"{PREFIX[kind]}-{number:04d}"
        details = rng.sample(_LOREM, k=rng.randint(3, len(_LOREM)))
        actions = rng.sample(_ACTIONS, k=rng.randint(2, len(_ACTIONS)))
        draft = Report(report_id, kind, number, title, reporter, severity, status, on, b"")
        if kind == INCIDENT:
            content = _incident_pdf(draft, details, actions)
        else:
            content = _minutes_csv(draft, actions, rng)
        report = Report(
            report_id,
            kind,
            number,
            title,
            reporter,
            severity,
            status,
            on,
            content,
            hashlib.sha256(content).hexdigest(),
            gzip.compress(content, mtime=0),
        )
        self._reports[kind].append(report)
        self._by_id[report_id] = report
        return report

    def publish(self, kind: str, count: int, today: dt.date) -> list[Report]:
        with self._lock:
            return [self._add(kind, today) for _ in range(count)]

    def of_kind(self, kind: str) -> list[Report]:
        with self._lock:
            return list(self._reports[kind])

    def get(self, report_id: str) -> Report | None:
        with self._lock:
            return self._by_id.get(report_id)

    def by_number(self, kind: str, number: int) -> Report | None:
        with self._lock:
            reports = self._reports[kind]
            return reports[number - 1] if 1 <= number <= len(reports) else None

    def all(self) -> list[Report]:
        with self._lock:
            return [*self._reports[INCIDENT], *self._reports[MINUTES]]


def _incident_pdf(report: Report, details: list[str], actions: list[str]) -> bytes:
    """A one-page incident report; ``invariant`` makes the bytes the same every time."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1, pageCompression=0)
    pdf.setTitle(f"{report.id} {report.title}")
    pdf.setAuthor(report.reporter)
    y = A4[1] - 72
    pdf.setFont("Helvetica-Bold", 15)
    pdf.drawString(72, y, f"Incident report {report.id}")
    y -= 26
    pdf.setFont("Helvetica", 11)
    lines = [
        f"Title: {report.title}",
        f"Reporter: {report.reporter}",
        f"Severity: {report.severity}",
        f"Status: {report.status}",
        f"Opened: {report.date.isoformat()}",
        "",
        "Summary",
        *details,
        "",
        "Follow-up actions",
        *(f"- {action}" for action in actions),
    ]
    for line in lines:
        pdf.drawString(72, y, line)
        y -= 16
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _minutes_csv(report: Report, actions: list[str], rng: random.Random) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Meeting", report.title])
    writer.writerow(["Date", report.date.isoformat()])
    writer.writerow(["Recorded by", report.reporter])
    writer.writerow([])
    writer.writerow(["Action item", "Owner", "Due", "Status"])
    for action in actions:
        due = report.date + dt.timedelta(days=rng.randint(3, 30))
        writer.writerow(
            [action, rng.choice(_PEOPLE), due.isoformat(), rng.choice(("open", "done"))]
        )
    return out.getvalue().encode("utf-8")
