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
事件 Events). Both show the same rows from the same view (``views._views``).

The modules: ``gather`` (``collect``, ``AuditReport``), ``views`` (rows, cells and labels
for display), ``html`` and ``xlsx`` (the two writers), ``atomic`` (write, then rename).

Times: on SQLite the ledger keeps wall times in its clock's zone (the offset is dropped),
so the period is converted into that zone before comparing, as ``Ledger.captured`` does.
The report shows times in this machine's zone with their offset; the workbook, which has
no zones, writes them naive in that zone and says which zone on its summary sheet.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .gather import AuditReport, collect
from .html import write_html
from .views import show_time
from .xlsx import write_xlsx

__all__ = [
    "AuditReport",
    "collect",
    "show_time",
    "write_html",
    "write_report",
    "write_xlsx",
]

SUFFIXES = (".xlsx", ".html", ".htm")


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
