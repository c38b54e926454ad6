"""A desktop listing through the clipboard, page by page, against the desktop client
simulator's own ground truth: the other way a grid gives its rows (the demo recipe
exports the list through 另存为 instead).

The client shows 50 rows a page; a click on the grid (relative to an image of its
header) gives it the keys; Ctrl+A and Ctrl+C copy the page's rows with a header line;
PageDown shows the next page. Sixty reports make two pages, so the
table's `next` steps and its stop (a page that brings no new row) are both exercised.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from bots.demo import simulator
from bots.drivers.base import SessionConfig, StepContext, TableCursor
from bots.drivers.desktop.session import DesktopSession
from bots.recipe import load_recipe
from sims.control import get_json
from tests.e2e import ROOT
from tests.xserver import XServer

PASSWORD = "rows-Pw-5521"

# The demo recipe's `list`, the export through 另存为 replaced by the clipboard.
EXPORT = """\
    - table:
        # Export the whole query result: 导出列表 defaults to the selected rows (none) and
        # to opening the file afterwards; choose 全部记录 and untick 导出后打开文件.
        steps:
          - press: {window: 财务管理系统, keys: ctrl+l}
          - focus: {title: 导出选项, timeout: 30}
          - press: [alt+a, alt+o, enter]
        from: {save_dialog: 另存为, done: 提示, encoding: gbk}
"""
CLIPBOARD = """\
    # The grid takes the keys once clicked: its 报表编号 header is the anchor, the first
    # row just below it.
    - click: {image: images/desktop/grid-header.png, offset: [0, 22]}
    - table:
        # Ctrl+A, Ctrl+C copy the page's rows with a header line.
        steps:
          - press: {window: 财务管理系统, keys: [ctrl+a, ctrl+c]}
        from: clipboard
        next:
          - press: {window: 财务管理系统, keys: pagedown}
"""


@dataclass
class Credential:
    username: str
    password: str


def clipboard_recipe(folder: Path) -> Path:
    text = (ROOT / "recipes" / "demo-desktop.yaml").read_text(encoding="utf-8")
    assert EXPORT in text, "the demo recipe's list export changed: update this test"
    path = folder / "clipboard.yaml"
    path.write_text(text.replace(EXPORT, CLIPBOARD), encoding="utf-8")
    shutil.copytree(ROOT / "recipes" / "schedules", folder / "schedules")
    shutil.copytree(ROOT / "recipes" / "images", folder / "images")
    return path


def test_a_grid_listed_through_the_clipboard_page_by_page_is_the_clients_truth(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_recipe(clipboard_recipe(tmp_path))
    source = loaded.recipe.source
    monkeypatch.setenv("DISPLAY", xserver.display)
    args = ["--reports", "60", "--password", PASSWORD, "--latency-ms", "5,20"]
    with simulator(
        "sims.desktop",
        args,
        tmp_path / "desktop.log",
        port_option="--state-port",
        env=xserver.env(),
    ) as state_url:
        config = SessionConfig(source.system, source, "", loaded, lambda *a, **k: None)
        session = DesktopSession(config, xserver.env())
        try:
            variables = {
                "credential": Credential("clerk", PASSWORD),
                "window": {"start": "2000-01-01", "end": "2099-12-31"},
            }
            session.run(source.login, StepContext(dict(variables), phase="login"))
            cursor = TableCursor()
            pages: list[int] = []
            context = StepContext(
                dict(variables),
                phase="list",
                cursor=cursor,
                on_rows=lambda rows, handles: pages.append(len(rows)),
            )
            outcome = session.run(source.listing or [], context)
        finally:
            session.close()
        truth = get_json(f"{state_url}/_sim/state")["reports"]
    assert pages == [50, 10]  # two pages; the third look brought nothing new and stopped
    assert cursor.done
    listed = {row["id"]: row for row in outcome.rows}
    assert sorted(listed) == sorted(r["id"] for r in truth)
    for report in truth:
        row = listed[report["id"]]
        assert (row["title"], row["kind"], row["date"], row["size"]) == (
            report["title"],
            report["kind"],
            report["date"],
            str(report["size"]),
        )
