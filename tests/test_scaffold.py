"""`runner.py scaffold`: a recipe drafted from a new system's own pages (issue 16).

Against the real simulators (``python -m sims.erp`` and ``python -m sims.tracker`` on free
ports, started as the end-to-end tests start them): the command runs as cron would run
any command (a subprocess with its own keyring), the recipe it writes must pass `check`,
and its source section, unchanged, must list every report the simulator holds by its own
ground truth (``/_sim/state``), read through the fleet's web driver exactly as a run
reads it: the recipe's login steps, then its list steps with a table cursor.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bots.demo import simulator
from bots.drivers.base import SessionConfig, StepContext, TableCursor
from bots.recipe import LoadedRecipe, load_recipe
from bots.recipe.steps import of_kind
from bots.redaction import Redactor
from bots.templating import render
from credentials import open_store
from sims.control import get_json
from tests.e2e import ERP_PASSWORD, ROOT, Result, command_in, world_env
from tests.e2e_second import TRACKER_PASSWORD, TRACKER_USER

pytestmark = pytest.mark.e2e

TIMEOUT = 180  # seconds for one command: a bound, not an expectation
WRONG_PASSWORD = "not-the-Pw-4e1d77"
REPORTS = 45  # three pages of the ERP's list (20 a page), generate-first reports among them
INCIDENTS = 23  # three pages of the tracker's (10 a page)


@dataclass
class Systems:
    erp: str
    tracker: str
    env: dict[str, str]
    tmp: Path


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Systems]:
    """Both simulators and a keyring holding their credentials (and a wrong one)."""
    tmp = tmp_path_factory.mktemp("scaffold")
    env = world_env(
        tmp,
        "scaffold-master-key-8c2f",
        {
            "erp-new": ("clerk", ERP_PASSWORD),
            "tracker-new": (TRACKER_USER, TRACKER_PASSWORD),
            "erp-wrong": ("clerk", WRONG_PASSWORD),
        },
    )
    fast = ["--latency-ms", "0,5"]
    with ExitStack() as stack:
        erp = stack.enter_context(
            simulator(
                "sims.erp",
                ["--password", ERP_PASSWORD, "--reports", str(REPORTS), *fast],
                tmp / "sims" / "erp.log",
            )
        )
        tracker = stack.enter_context(
            simulator(
                "sims.tracker",
                ["--password", TRACKER_PASSWORD, "--incidents", str(INCIDENTS), *fast],
                tmp / "sims" / "tracker.log",
            )
        )
        yield Systems(erp, tracker, env, tmp)


def runner(systems: Systems, *args: str) -> Result:
    return command_in(systems.env, *args, timeout=TIMEOUT)


def scaffold(systems: Systems, url: str, login_url: str, credential: str, *args: str) -> Result:
    return runner(
        systems, "scaffold", url, "--login-url", login_url, "--credential", credential, *args
    )


def listed_keys(loaded: LoadedRecipe, credential: str, env: dict[str, str]) -> list[str]:
    """The keys the recipe's source section lists, read through the web driver the way a
    run reads them: its login steps, then its list steps with a table cursor (every page)."""
    from bots.drivers.web.session import WebDriver

    source = loaded.recipe.source
    today = date.today().isoformat()
    base: dict[str, Any] = {"today": today, "now": today, "vars": loaded.recipe.vars, "env": {}}
    window = {"start": render(source.window.start, base), "end": render(source.window.end, base)}
    secret = open_store(env, Redactor()).get(credential)
    driver = WebDriver(dict(os.environ))
    try:
        session = driver.open(
            SessionConfig(
                source.system,
                source,
                render(source.base_url, base),
                loaded,
                lambda *args, **kwargs: None,
            )
        )
        session.run(source.login, StepContext({**base, "credential": secret}, phase="login"))
        # Logged in already: the login steps again must not insist on the form (the tracker
        # sends /login straight on to its dashboard then).
        session.run(source.login, StepContext({**base, "credential": secret}, phase="login"))
        variables = {**base, "window": window, "listing": ""}
        cursor = TableCursor()
        session.run(source.listing or [], StepContext(variables, phase="list", cursor=cursor))
        table = of_kind(source.listing or [], "table")[0].args
        assert cursor.done and cursor.pages >= 2, "the paginator must have been followed"
        return [render(table.key, {**base, "row": row}) for row in cursor.rows]
    finally:
        driver.close()


def checked(systems: Systems, out: Path) -> LoadedRecipe:
    result = runner(systems, "check", str(out))
    assert result.code == 0, result.output
    assert ": ok (recipe" in result.stdout
    return load_recipe(out)


def test_erp_recipe_lists_every_report_the_erp_holds(systems: Systems) -> None:
    out = systems.tmp / "recipes" / "erp-draft.yaml"
    result = scaffold(
        systems,
        f"{systems.erp}/report/list.do",
        f"{systems.erp}/login.do",
        "erp-new",
        "--out",
        str(out),
    )
    assert result.code == 0, result.output
    # What was found, said plainly, and what to run next.
    assert "found: login form form[name=loginForm]" in result.stdout
    assert "found: query dates input[name=start], input[name=end]" in result.stdout
    assert "found: table table#dataGrid, rows tr.row: 20 rows on the first page" in result.stdout
    assert "paginator: div.pager a:text-is('下一页')" in result.stdout
    assert f"runner.py check {out}" in result.stdout
    assert f"runner.py try {out} list" in result.stdout
    assert "may need a generate step" in result.stdout  # 凭证汇总表 has no 下载 link yet

    loaded = checked(systems, out)
    source = loaded.recipe.source
    assert source.base_url == systems.erp
    assert source.credential == "erp-new"
    assert source.logged_out == "form[name=loginForm]"
    table = of_kind(source.listing or [], "table")[0].args
    assert table.selector == "table#dataGrid" and table.rows == "tr.row"
    assert {"id", "title", "kind", "department", "date", "size", "href"} <= set(table.fields)
    assert table.fields["href"].optional and table.fields["href"].property == "href"
    assert table.key == "{{ row.id }}"
    assert table.next == "div.pager a:text-is('下一页')"
    # The archive side is the demo's, and its retention schedule still resolves.
    assert (
        loaded.recipe.archive.system
        == load_recipe(ROOT / "recipes/demo.yaml").recipe.archive.system
    )
    assert loaded.schedule.path.resolve() == (ROOT / "recipes/schedules/accounting.yaml").resolve()
    text = out.read_text(encoding="utf-8")
    assert "copied from recipes/demo.yaml" in text

    truth = get_json(f"{systems.erp}/_sim/state")["reports"]
    keys = listed_keys(loaded, "erp-new", systems.env)
    assert len(keys) == len(set(keys)) == REPORTS
    assert set(keys) == {report["id"] for report in truth}
    # What the author runs next, as the scaffold says: `try` lists them all, unchanged.
    tried = runner(systems, "try", str(out), "list")
    assert tried.code == 0, tried.output
    assert f"listed {REPORTS} rows on 3 page(s)" in tried.stdout
    for report in truth:
        assert f"\n  {report['id']} (id='{report['id']}'" in tried.stdout

    # The password is a template in the recipe and nowhere in what the command said.
    for where in (text, result.output, tried.output):
        assert ERP_PASSWORD not in where
    assert "{{ credential.password }}" in text


def test_tracker_recipe_lists_every_incident(systems: Systems) -> None:
    out = systems.tmp / "recipes" / "tracker-draft.yaml"
    result = scaffold(
        systems,
        f"{systems.tracker}/incidents",
        f"{systems.tracker}/login",
        "tracker-new",
        "--out",
        str(out),
        "--locale",
        "en-US",
    )
    assert result.code == 0, result.output
    assert "found: table table#incidents, rows tr.incident: 10 rows" in result.stdout
    assert "paginator: nav.pagination a:text-is('Next ›')" in result.stdout
    assert "download link on each row's own page: a.download" in result.stdout
    # The demo's archive side reads row fields an issue tracker's list does not have.
    assert "department, kind" in result.stdout

    loaded = checked(systems, out)
    source = loaded.recipe.source
    assert source.locale == "en-US"
    assert loaded.name == "northwind-tracker" and source.system == "Northwind Tracker"
    table = of_kind(source.listing or [], "table")[0].args
    assert table.selector == "table#incidents"
    assert table.fields["id"].selector == "td.number"
    assert table.key == "{{ row.id | replace('#', '') }}"
    assert table.next == "nav.pagination a:text-is('Next ›')"
    assert of_kind(source.detail or [], "read")[0].args.into == "download_url"

    truth = get_json(f"{systems.tracker}/_sim/state")["reports"]
    incidents = {str(r["number"]) for r in truth if r["kind"] == "incident"}
    keys = listed_keys(loaded, "tracker-new", systems.env)
    assert len(keys) == len(set(keys)) == INCIDENTS
    assert set(keys) == incidents
    tried = runner(systems, "try", str(out), "list")
    assert tried.code == 0, tried.output
    assert f"listed {INCIDENTS} rows on 3 page(s)" in tried.stdout
    shown = set(re.findall(r"^  (\d+) \(id='#", tried.stdout, re.M))
    assert shown == incidents, tried.stdout
    text = out.read_text(encoding="utf-8")
    for where in (text, result.output, tried.output):
        assert TRACKER_PASSWORD not in where


class Frameset(BaseHTTPRequestHandler):
    """A portal page holding the ERP's list in a frame, as intranets of its time did."""

    erp: ClassVar[str] = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        inside = {"/portal.html": "/report/list.do", "/sign-in.html": "/login.do"}.get(self.path)
        body = (
            "<!DOCTYPE html><html><head><title>门户 - 华北机电 ERP 系统 V3.2</title></head>"
            '<frameset rows="40,*"><frame name="banner" src="/banner.html">'
            f'<frame name="main" src="{self.erp}{inside}"></frameset></html>'
            if inside
            else "<!DOCTYPE html><title>banner</title><p>门户</p>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def portal(systems: Systems) -> Iterator[str]:
    Frameset.erp = systems.erp
    server = ThreadingHTTPServer(("127.0.0.1", 0), Frameset)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_table_inside_a_frame_is_listed_through_a_frame_step(
    systems: Systems, portal: str
) -> None:
    out = systems.tmp / "recipes" / "portal-draft.yaml"
    result = scaffold(
        systems, f"{portal}/portal.html", f"{systems.erp}/login.do", "erp-new", "--out", str(out)
    )
    assert result.code == 0, result.output
    assert "in frame frame[name=main]" in result.stdout
    loaded = checked(systems, out)
    steps = loaded.recipe.source.listing or []
    assert [s.kind for s in steps] == ["goto", "frame"]
    assert steps[1].args.selector == "frame[name=main]"
    assert [s.kind for s in steps[1].args.steps][-1] == "table"
    truth = get_json(f"{systems.erp}/_sim/state")["reports"]
    assert set(listed_keys(loaded, "erp-new", systems.env)) == {r["id"] for r in truth}


def test_a_login_form_inside_a_frame_is_filled_through_a_frame_step(
    systems: Systems, portal: str
) -> None:
    out = systems.tmp / "recipes" / "sign-in-draft.yaml"
    login = f"{portal}/sign-in.html"
    result = scaffold(systems, f"{systems.erp}/report/list.do", login, "erp-new", "--out", str(out))
    assert result.code == 0, result.output
    loaded = checked(systems, out)
    steps = loaded.recipe.source.login
    assert [s.kind for s in steps] == ["goto", "frame", "frame"]
    assert steps[0].args == login  # another origin than the list's: the whole address
    assert [s.kind for s in steps[1].args.steps] == ["fill", "click"]
    # The check looks into the frame only while the portal still holds it.
    assert steps[2].when.selector == "frame[name=main]"
    assert [s.kind for s in steps[2].args.steps] == ["reject_if"]
    truth = get_json(f"{systems.erp}/_sim/state")["reports"]
    assert set(listed_keys(loaded, "erp-new", systems.env)) == {r["id"] for r in truth}


def test_a_page_without_a_table_is_refused_naming_it(systems: Systems) -> None:
    url = f"{systems.erp}/welcome.do"
    result = scaffold(
        systems, url, f"{systems.erp}/login.do", "erp-new", "--out", str(systems.tmp / "x.yaml")
    )
    assert result.code == 2, result.output
    assert f"no table of repeated rows at {url}" in result.stderr
    assert not (systems.tmp / "x.yaml").exists()


def test_a_wrong_password_is_refused_naming_the_login_page(systems: Systems) -> None:
    login = f"{systems.erp}/login.do"
    out = systems.tmp / "wrong.yaml"
    result = scaffold(
        systems, f"{systems.erp}/report/list.do", login, "erp-wrong", "--out", str(out)
    )
    assert result.code == 3, result.output
    assert f"cannot log in at {login} as 'clerk' (credential 'erp-wrong')" in result.stderr
    assert "用户名或密码错误" in result.stderr  # what the page said
    assert WRONG_PASSWORD not in result.output
    assert not out.exists()


def test_a_login_page_without_a_form_is_refused_naming_it(systems: Systems, portal: str) -> None:
    login = f"{portal}/banner.html"
    result = scaffold(systems, f"{systems.erp}/report/list.do", login, "erp-new")
    assert result.code == 2, result.output
    assert f"no login form at {login}" in result.stderr
    assert "The page showed: title 'banner'" in result.stderr


def test_an_unreachable_system_and_a_missing_credential_are_told_apart(systems: Systems) -> None:
    closed = "http://127.0.0.1:9"  # discard: nothing listens there
    result = scaffold(systems, f"{closed}/list", f"{closed}/login", "erp-new")
    assert result.code == 3, result.output
    assert f"cannot reach the login page {closed}/login" in result.stderr

    result = scaffold(systems, f"{systems.erp}/report/list.do", f"{systems.erp}/login.do", "nobody")
    assert result.code == 2, result.output
    assert "no credential named 'nobody'" in result.stderr


def test_an_existing_file_is_kept_without_force(systems: Systems) -> None:
    out = systems.tmp / "kept.yaml"
    out.write_text("# mine\n", encoding="utf-8")
    result = scaffold(
        systems,
        f"{systems.erp}/report/list.do",
        f"{systems.erp}/login.do",
        "erp-new",
        "--out",
        str(out),
    )
    assert result.code == 2, result.output
    assert f"{out} exists already" in result.stderr
    assert out.read_text(encoding="utf-8") == "# mine\n"


# -- what the pages' words become (no browser) -----------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("报表编号", "id"),
        ("报表名称", "title"),
        ("部门名称", "department"),
        ("类别", "kind"),
        ("报表日期", "date"),
        ("文件大小", "size"),
        ("#", "id"),
        ("No.", "id"),
        ("Report ID", "id"),
        ("Title", "title"),
        ("Opened", "date"),
        ("Created by", "author"),
        ("序号", "seq"),
        ("操作", None),
        ("Actions", None),
        ("Frobnication", ""),
    ],
)
def test_column_headers_become_field_names(header: str, name: str | None) -> None:
    from bots.authoring.scaffold_recipe import field_name

    assert field_name(header) == name


def _table(**columns: list[str]) -> Any:
    from bots.authoring.scaffold_pages import Column, Table

    return Table(
        selector="table#t",
        rows="tbody tr",
        count=len(next(iter(columns.values()))),
        odd_rows=0,
        header=True,
        th_header=True,
        columns=[
            Column(i, header, f"td:nth-child({i})", values, False, [], 0)
            for i, (header, values) in enumerate(columns.items(), 1)
        ],
        download=None,
        row_link=None,
    )


def test_the_key_is_a_unique_identifier_and_never_a_silent_guess() -> None:
    from bots.authoring.scaffold_recipe import choose_key, table_fields

    table = _table(序号=["1", "2", "3"], Title=["a", "b", "c"], Number=["#7", "#8", "#9"])
    fields, _ = table_fields(table, None)
    assert [f.name for f in fields] == ["seq", "title", "id"]
    key = choose_key(table, fields)
    assert (key.template, key.sure) == ("{{ row.id | replace('#', '') }}", True)

    titles = _table(Title=["a", "b"], Date=["2025-01-01", "2025-01-02"])
    fields, _ = table_fields(titles, None)
    key = choose_key(titles, fields)
    assert (key.field, key.sure) == ("title", False) and "check:" in key.note

    repeated = _table(Title=["a", "a"])
    fields, _ = table_fields(repeated, None)
    assert not choose_key(repeated, fields).sure


def test_system_and_recipe_names_from_the_titles() -> None:
    from bots.authoring.scaffold import recipe_name, system_name

    erp = system_name(["用户登录 - 华北机电 ERP 系统 V3.2", "华北机电 ERP 系统 V3.2"])
    assert erp == "华北机电 ERP 系统 V3.2"
    assert recipe_name(erp, "http://10.0.0.5/list") == "erp"
    tracker = system_name(["Sign in · Northwind Tracker", "Incidents · Northwind Tracker"])
    assert tracker == "Northwind Tracker"
    assert recipe_name(tracker, "http://x/") == "northwind-tracker"
    assert recipe_name("财务系统", "http://finance.corp.example/list") == "finance"
    assert recipe_name("财务系统", "http://10.0.0.5/list") == "new-source"
