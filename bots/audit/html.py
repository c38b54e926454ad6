"""The HTML writer: one self-contained page from ``bots/templates/audit.html.j2``.

Inline CSS, no scripts, fonts or images from elsewhere; printable. Jinja2 autoescapes
everything: details, titles and keys come from legacy systems' pages. Times are shown in
this machine's zone with their offset.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from .. import __version__
from ..timezones import local_zone
from .atomic import write_atomically
from .gather import AuditReport
from .views import EVENT_COLUMNS, INDEX_HEAD_NOTE, NO_INDEX, RUN_COLUMNS, _views, show_time


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
    write_atomically(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


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
