"""The simulated legacy ERP keeps its HTML contract and its legacy manners.

Flask test client throughout (no browser); time is an injected fake clock, so session
idling and report generation are tested without sleeping. One test starts the real
``python -m sims.erp --port 0`` process.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import openpyxl
import pypdf
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sims.erp import content
from sims.erp.app import create_app
from sims.erp.reports import EICAR, seeded_catalogue

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "clerk-demo"
GBK_HTML = "text/html; charset=GBK"
META = '<meta http-equiv="Content-Type" content="text/html; charset=gbk">'
FRAMESET = (
    '<frameset rows="60,*"><frame name="top" src="top.do"><frameset cols="160,*">'
    '<frame name="menu" src="menu.do"><frame name="main" src="welcome.do"></frameset></frameset>'
)
YEAR = {"start": "2025-01-01", "end": "2025-12-31"}


class FakeClock:
    """Stands in for ``time.time``; tests move it forward explicitly."""

    def __init__(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2025, 3, 15, 10, 0))


@pytest.fixture
def app(clock: FakeClock) -> Flask:
    return create_app(latency_ms=(0, 0), clock=clock, idle_timeout=300, gen_seconds=3)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def erp(client: FlaskClient) -> FlaskClient:
    """A client logged in as clerk."""
    response = login(client)
    assert response.status_code == 302
    return client


def text(response: TestResponse) -> str:
    """The page as the browser reads it: declared GBK, decoded as GBK."""
    assert response.headers["Content-Type"] == GBK_HTML
    return response.data.decode("gbk")


def token_of(page: str) -> str:
    match = re.search(r'<input type="hidden" name="token" value="([^"]+)">', page)
    assert match, "login page without a token"
    return match.group(1)


def login(client: FlaskClient, password: str = PASSWORD, token: str | None = None) -> TestResponse:
    if token is None:
        token = token_of(text(client.get("/login.do")))
    return client.post(
        "/login.do", data={"username": "clerk", "password": password, "token": token}
    )


def is_login_page(page: str) -> bool:
    return '<form name="loginForm" method="post" action="login.do">' in page


def state(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get("/_sim/state")
    assert response.status_code == 200
    return response.get_json()["reports"]


class Grid(HTMLParser):
    """Reads the list page: data rows' cells and action, pager text and links."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.header: list[str] = []
        self.pager_text = ""
        self.pager_links: dict[str, str] = {}
        self._cell: list[str] | None = None
        self._row: dict[str, Any] | None = None
        self._in_header = self._in_pager = False
        self._href: str | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and "row" in (a.get("class") or "").split():
            self._row = {"cells": [], "href": None, "generate": None}
        elif tag == "tr" and a.get("class") == "header":
            self._in_header = True
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "div" and a.get("class") == "pager":
            self._in_pager = True
        elif tag == "a":
            self._href = a.get("href")
            if self._row is not None:
                self._row["href"] = a.get("href")
        elif tag == "input" and self._row is not None and a.get("name") == "id":
            self._row["generate"] = a.get("value")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            cell = "".join(self._cell).strip()
            if self._row is not None:
                self._row["cells"].append(cell)
            elif self._in_header:
                self.header.append(cell)
            self._cell = None
        elif tag == "tr":
            if self._row is not None:
                self.rows.append(self._row)
            self._row, self._in_header = None, False
        elif tag == "div":
            self._in_pager = False
        elif tag == "a":
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_pager:
            self.pager_text += data
            if self._href is not None:
                self.pager_links[data.strip()] = self._href

    @property
    def ids(self) -> list[str]:
        return [row["cells"][0] for row in self.rows]


def grid(client: FlaskClient, **params: str) -> Grid:
    response = client.get("/report/list.do", query_string=params)
    assert response.status_code == 200
    return Grid(text(response))


# --- login, tokens, encoding ----------------------------------------------------------


def test_root_redirects_to_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login.do"


def test_login_page_is_gbk_by_header_meta_and_bytes(client: FlaskClient) -> None:
    response = client.get("/login.do")
    assert response.headers["Content-Type"] == GBK_HTML
    assert "登录".encode("gbk") in response.data
    with pytest.raises(UnicodeDecodeError):
        response.data.decode("utf-8")  # GBK bytes, not UTF-8 mislabelled
    page = response.data.decode("gbk")
    assert META in page
    for tag in (
        '<input type="text" name="username">',
        '<input type="password" name="password">',
        '<input type="submit" value="登录">',
    ):
        assert tag.rstrip(">") in page


def test_login_page_renders_a_fresh_token_each_time(client: FlaskClient) -> None:
    assert token_of(text(client.get("/login.do"))) != token_of(text(client.get("/login.do")))


def test_login_token_is_single_use(client: FlaskClient) -> None:
    token = token_of(text(client.get("/login.do")))
    assert login(client, token=token).status_code == 302
    client.delete_cookie("JSESSIONID")
    replay = login(client, token=token)
    assert replay.status_code == 200
    assert "非法请求，请重新登录" in text(replay)
    assert "JSESSIONID" not in replay.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("token", ["", "0123456789abcdef0123456789abcdef"])
def test_login_with_missing_or_unknown_token_is_an_illegal_request(
    client: FlaskClient, token: str
) -> None:
    response = login(client, token=token)
    assert response.status_code == 200
    assert "非法请求，请重新登录" in text(response)


def test_wrong_password_shows_red_message_and_no_session(client: FlaskClient) -> None:
    response = login(client, password="wrong")
    assert response.status_code == 200
    page = text(response)
    assert '<font color="red" class="msg">用户名或密码错误</font>' in page
    assert is_login_page(page)
    assert "Set-Cookie" not in response.headers


def test_wrong_password_consumes_the_token(client: FlaskClient) -> None:
    token = token_of(text(client.get("/login.do")))
    login(client, password="wrong", token=token)
    assert "非法请求，请重新登录" in text(login(client, token=token))


def test_login_sets_httponly_session_cookie_and_redirects_to_main(client: FlaskClient) -> None:
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/main.do"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("JSESSIONID=")
    assert "HttpOnly" in cookie


# --- frameset and chrome ----------------------------------------------------------------


def test_main_is_the_frameset(erp: FlaskClient) -> None:
    page = text(erp.get("/main.do"))
    assert FRAMESET in page
    assert META in page


def test_top_menu_and_welcome_frames(erp: FlaskClient) -> None:
    top = text(erp.get("/top.do"))
    assert "欢迎您，clerk" in top
    assert '<a href="logout.do" target="_top">' in top and "退出</" in top
    assert '<a href="report/list.do" target="main">报表查询</a>' in text(erp.get("/menu.do"))
    assert "欢迎" in text(erp.get("/welcome.do"))


def test_logout_ends_the_session(erp: FlaskClient) -> None:
    assert is_login_page(text(erp.get("/logout.do")))
    assert is_login_page(text(erp.get("/main.do")))


# --- sessions -----------------------------------------------------------------------------


def test_protected_page_without_cookie_is_login_page_with_200(client: FlaskClient) -> None:
    response = client.get("/report/list.do")
    assert response.status_code == 200
    page = text(response)
    assert is_login_page(page)
    assert "会话已超时" not in page


def test_session_survives_while_used_and_expires_after_idle_timeout(
    erp: FlaskClient, clock: FakeClock
) -> None:
    clock.advance(299)
    assert FRAMESET in text(erp.get("/main.do"))  # this request restarts the idle timer
    clock.advance(299)
    assert FRAMESET in text(erp.get("/main.do"))
    clock.advance(300)
    response = erp.get("/main.do")
    assert response.status_code == 200
    page = text(response)
    assert is_login_page(page) and "会话已超时，请重新登录" in page
    assert token_of(page)
    assert is_login_page(text(erp.get("/main.do")))  # and it stays dead


def test_expired_session_download_answers_login_page_not_file(
    erp: FlaskClient, clock: FakeClock
) -> None:
    assert erp.get("/report/download.do?id=R000001").headers["Content-Type"] == "application/pdf"
    clock.advance(301)
    response = erp.get("/report/download.do?id=R000001")
    assert response.status_code == 200
    assert "Content-Disposition" not in response.headers
    page = text(response)
    assert is_login_page(page) and "会话已超时，请重新登录" in page


def test_login_page_shown_under_report_path_can_still_log_in(client: FlaskClient) -> None:
    # the form's relative action resolves to /report/login.do inside the main frame
    token = token_of(text(client.get("/report/list.do")))
    response = client.post(
        "/report/login.do", data={"username": "clerk", "password": PASSWORD, "token": token}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/main.do"


# --- the report list ----------------------------------------------------------------------


def test_list_without_dates_shows_only_the_current_month(
    erp: FlaskClient, clock: FakeClock
) -> None:
    march = [r["id"] for r in state(erp) if r["date"].startswith("2025-03")]
    assert march, "the seeded catalogue should have March reports"
    page = text(erp.get("/report/list.do"))
    assert Grid(page).ids == march
    assert '<input type="text" name="start" value="2025-03-01"' in page
    assert '<input type="text" name="end" value="2025-03-31"' in page
    clock.now = dt.datetime(2025, 4, 20, 9, 0).timestamp()
    login(erp)
    april = [r["id"] for r in state(erp) if r["date"].startswith("2025-04")]
    assert grid(erp).ids == april and april != march


def test_list_query_form_contract_and_it_keeps_the_values(erp: FlaskClient) -> None:
    page = text(
        erp.get(
            "/report/list.do",
            query_string={"start": "2025-02-01", "end": "2025-06-30", "report_no": "R000007"},
        )
    )
    assert '<form name="queryForm" method="get" action="list.do">' in page
    assert '<input type="text" name="start" value="2025-02-01"' in page
    assert '<input type="text" name="end" value="2025-06-30"' in page
    assert '<input type="text" name="report_no" value="R000007"' in page
    assert '<input type="submit" value="查询">' in page


def test_list_date_filter_is_inclusive_and_sorted(erp: FlaskClient) -> None:
    reports = state(erp)
    expected = sorted(
        (r for r in reports if "2025-03-13" <= r["date"] <= "2025-05-20"),
        key=lambda r: (r["date"], r["id"]),
    )
    shown = grid(erp, start="2025-03-13", end="2025-05-20")
    assert shown.ids == [r["id"] for r in expected]
    assert {r["date"] for r in expected} >= {"2025-03-13", "2025-05-20"}  # both bounds hit


def test_list_pages_twenty_rows_with_pager_links(erp: FlaskClient) -> None:
    first = grid(erp, **YEAR)
    assert len(first.rows) == 20
    assert "共 45 条 第 1/3 页" in first.pager_text
    assert set(first.pager_links) == {"首页", "下一页", "末页"}  # 上一页 is plain text
    assert "上一页" in first.pager_text
    nxt = parse_qs(urlsplit(first.pager_links["下一页"]).query, keep_blank_values=True)
    assert nxt == {"start": ["2025-01-01"], "end": ["2025-12-31"], "report_no": [""], "page": ["2"]}
    second = grid(erp, **YEAR, page="2")
    assert len(second.rows) == 20 and "第 2/3 页" in second.pager_text
    assert {"上一页", "下一页"} <= set(second.pager_links)
    last = grid(erp, **YEAR, page="3")
    assert len(last.rows) == 5 and "第 3/3 页" in last.pager_text
    assert set(last.pager_links) == {"首页", "上一页", "末页"}
    assert "下一页" in last.pager_text
    every = first.ids + second.ids + last.ids
    expected = sorted(state(erp), key=lambda r: (r["date"], r["id"]))
    assert every == [r["id"] for r in expected]


def test_list_rows_show_state_values_with_thousands_separators(erp: FlaskClient) -> None:
    truth = {r["id"]: r for r in state(erp)}
    shown = grid(erp, **YEAR)
    assert shown.header == ["报表编号", "报表名称", "类别", "部门", "报表日期", "文件大小", "操作"]
    for row in shown.rows:
        rid, title, kind, dept, date, size, _ = row["cells"]
        r = truth[rid]
        assert (title, kind, dept, date) == (r["title"], r["kind"], r["department"], r["date"])
        assert size == f"{r['size']:,}" and "," in size  # every file is over 1,000 bytes
        if r["needs_generate"]:
            assert row["generate"] == rid and row["href"] is None
        else:
            assert row["href"] == f"download.do?id={rid}"


def test_list_report_no_is_an_exact_filter(erp: FlaskClient) -> None:
    assert grid(erp, **YEAR, report_no="R000012").ids == ["R000012"]
    assert grid(erp, **YEAR, report_no="R00001").ids == []


@pytest.mark.parametrize("bad", ["2025/01/01", "2025-02-30", "20250101", "yesterday"])
def test_list_malformed_date_shows_error_and_no_rows(erp: FlaskClient, bad: str) -> None:
    page = text(erp.get("/report/list.do", query_string={"start": bad, "end": "2025-12-31"}))
    assert '<font color="red" class="msg">日期格式错误</font>' in page
    shown = Grid(page)
    assert shown.rows == [] and shown.header
    assert f'name="start" value="{bad}"' in page


def test_list_with_no_match_has_header_only_and_zero_count(erp: FlaskClient) -> None:
    shown = grid(erp, start="2024-01-01", end="2024-12-31")
    assert shown.rows == [] and len(shown.header) == 7
    assert "共 0 条" in shown.pager_text
    assert "日期格式错误" not in shown.pager_text


# --- downloads ---------------------------------------------------------------------------


def test_content_disposition_has_ascii_fallback_and_utf8_chinese_name(erp: FlaskClient) -> None:
    truth = {r["id"]: r for r in state(erp)}
    response = erp.get("/report/download.do?id=R000014")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="R000014.pdf"; ')
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert encoded.isascii()
    assert unquote(encoded, encoding="utf-8") == truth["R000014"]["filename"]
    assert truth["R000014"]["filename"] == "2025年3月月度财务报表.pdf"


def test_csv_reports_are_served_inline_others_as_attachments(erp: FlaskClient) -> None:
    # Legacy quirk: the sales CSV opens in the browser tab (inline) instead of downloading,
    # yet still names the file; PDF and XLSX are attachments.
    seen = set()
    for r in state(erp):
        if r["needs_generate"]:
            continue
        ext = r["filename"].rsplit(".", 1)[1]
        response = erp.get(f"/report/download.do?id={r['id']}")
        disposition = response.headers["Content-Disposition"]
        match = re.fullmatch(
            r'(inline|attachment); filename="([ -~]+)"; filename\*=UTF-8\'\'(\S+)', disposition
        )
        assert match, disposition
        kind, fallback, encoded = match.groups()
        assert kind == ("inline" if ext == "csv" else "attachment"), (r["id"], disposition)
        assert fallback == f"{r['id']}.{ext}"
        assert encoded.isascii()
        assert unquote(encoded, encoding="utf-8", errors="strict") == r["filename"]
        if ext == "csv":
            assert r["kind"] == "销售明细"
            assert response.headers["Content-Type"] == "text/csv; charset=GBK"
            assert int(response.headers["Content-Length"]) == len(response.data) == r["size"]
            assert hashlib.sha256(response.data).hexdigest() == r["sha256"]
        seen.add(ext)
    assert seen == {"pdf", "csv", "xlsx"}


def test_generated_report_download_is_an_attachment(erp: FlaskClient, clock: FakeClock) -> None:
    rid = first_to_generate(erp)["id"]
    erp.post("/report/generate.do", data={"id": rid})
    clock.advance(3)
    disposition = erp.get(f"/report/download.do?id={rid}").headers["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="{rid}.')


def test_downloads_match_state_sha256_type_and_length(erp: FlaskClient) -> None:
    types = {
        "pdf": "application/pdf",
        "csv": "text/csv; charset=GBK",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    for r in state(erp):
        if r["needs_generate"]:
            continue
        response = erp.get(f"/report/download.do?id={r['id']}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == types[r["filename"].rsplit(".", 1)[1]]
        assert int(response.headers["Content-Length"]) == len(response.data) == r["size"]
        assert hashlib.sha256(response.data).hexdigest() == r["sha256"]


def downloads(erp: FlaskClient, ext: str) -> list[tuple[dict[str, Any], bytes]]:
    files = [
        (r, erp.get(f"/report/download.do?id={r['id']}").data)
        for r in state(erp)
        if r["filename"].endswith("." + ext) and not r["needs_generate"]
    ]
    assert files
    return files


def test_pdf_reports_are_real_with_seeded_page_counts(erp: FlaskClient) -> None:
    counts = set()
    for r, data in downloads(erp, "pdf"):
        reader = pypdf.PdfReader(io.BytesIO(data))
        assert 1 <= len(reader.pages) <= 6
        counts.add(len(reader.pages))
        first = reader.pages[0].extract_text()
        assert r["title"] in first and r["department"] in first and r["date"] in first
    assert len(counts) > 1  # page count really varies with the seed


def test_xlsx_reports_open_in_openpyxl_with_chinese_header(erp: FlaskClient) -> None:
    for _, data in downloads(erp, "xlsx"):
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        header = [c.value for c in sheet[1]]
        assert header[0] in ("账户名称", "物料编码")
        assert sheet.max_row >= 3
        assert any(isinstance(c.value, (int, float)) for c in sheet[2])


def test_csv_reports_are_gbk_with_chinese_header(erp: FlaskClient) -> None:
    for _, data in downloads(erp, "csv"):
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
        rows = list(csv.reader(io.StringIO(data.decode("gbk"), newline="")))
        assert rows[0][:3] == ["单据日期", "销售单号", "客户名称"]
        assert len(rows) > 10 and all(len(row) == len(rows[0]) for row in rows)


def test_unknown_report_download_is_404_html_in_gbk(erp: FlaskClient) -> None:
    response = erp.get("/report/download.do?id=R999999")
    assert response.status_code == 404
    assert "报表不存在" in text(response)


def test_file_bytes_do_not_depend_on_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    reports = {r.kind.ext: r for r in seeded_catalogue(2005, 45)}
    before = {ext: content.render(r, 2005) for ext, r in reports.items()}
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 400 * 86400)  # zip and PDF stamps
    assert {ext: content.render(r, 2005) for ext, r in reports.items()} == before


# --- generate-first reports ---------------------------------------------------------------


def first_to_generate(client: FlaskClient) -> dict[str, Any]:
    return next(r for r in state(client) if r["needs_generate"])


def test_generate_first_report_is_not_downloadable_before_generation(erp: FlaskClient) -> None:
    r = first_to_generate(erp)
    response = erp.get(f"/report/download.do?id={r['id']}")
    assert response.status_code == 200
    assert "报表尚未生成" in text(response)
    assert "Content-Disposition" not in response.headers


def test_generate_flow_job_page_refreshes_then_offers_download(
    erp: FlaskClient, clock: FakeClock
) -> None:
    r = first_to_generate(erp)
    rid, window = r["id"], {"start": r["date"], "end": r["date"]}
    assert (
        f'<form method="post" action="generate.do" style="display:inline">'
        f'<input type="hidden" name="id" value="{rid}"><input type="submit" value="生成">'
        f"</form>"
    ) in text(erp.get("/report/list.do", query_string=window))
    response = erp.post("/report/generate.do", data={"id": rid})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/report/job.do?id={rid}"
    running = text(erp.get(f"/report/job.do?id={rid}"))
    assert '<meta http-equiv="refresh" content="1">' in running
    assert "报表正在生成，请稍候…" in running
    row = next(row for row in grid(erp, **window).rows if row["cells"][0] == rid)
    assert row["cells"][6] == "生成中" and row["href"] is None
    assert "报表尚未生成" in text(erp.get(f"/report/download.do?id={rid}"))
    clock.advance(3)
    done = text(erp.get(f"/report/job.do?id={rid}"))
    assert "报表已生成" in done and f'<a href="download.do?id={rid}">下载</a>' in done
    assert 'http-equiv="refresh"' not in done
    row = next(row for row in grid(erp, **window).rows if row["cells"][0] == rid)
    assert row["href"] == f"download.do?id={rid}"
    data = erp.get(f"/report/download.do?id={rid}").data
    assert hashlib.sha256(data).hexdigest() == r["sha256"]
    assert next(s for s in state(erp) if s["id"] == rid)["generated"] is True


def test_generating_again_only_redirects_to_the_job(erp: FlaskClient, clock: FakeClock) -> None:
    rid = first_to_generate(erp)["id"]
    erp.post("/report/generate.do", data={"id": rid})
    clock.advance(2)
    again = erp.post("/report/generate.do", data={"id": rid})  # must not restart the timer
    assert again.status_code == 302 and again.headers["Location"] == f"/report/job.do?id={rid}"
    clock.advance(1)
    assert "报表已生成" in text(erp.get(f"/report/job.do?id={rid}"))
    assert erp.post("/report/generate.do", data={"id": rid}).status_code == 302
    assert "报表已生成" in text(erp.get(f"/report/job.do?id={rid}"))


# --- catalogue, publish, determinism ------------------------------------------------------


def test_seeded_catalogue_has_every_kind_in_2025_with_unique_gbk_names(client: FlaskClient) -> None:
    reports = state(client)
    assert [r["id"] for r in reports] == [f"R{n:06d}" for n in range(1, 46)]
    assert all(r["date"].startswith("2025-") for r in reports)
    assert [r["date"] for r in reports] == sorted(r["date"] for r in reports)
    kinds = {r["kind"]: r for r in reports}
    assert {k: (v["department"], v["filename"].rsplit(".", 1)[1]) for k, v in kinds.items()} == {
        "月度财务报表": ("财务部", "pdf"),
        "资金日报表": ("财务部", "xlsx"),
        "销售明细": ("销售部", "csv"),
        "库存盘点表": ("仓储部", "xlsx"),
        "凭证汇总表": ("财务部", "pdf"),
        "年度财务决算报告": ("财务部", "pdf"),
    }
    to_generate = [r for r in reports if r["needs_generate"]]
    assert {r["kind"] for r in to_generate} == {"凭证汇总表"}
    assert 5 <= len(to_generate) <= 7  # about one in seven or eight
    assert len({r["filename"] for r in reports}) == len(reports)
    for r in reports:
        assert r["filename"] == r["title"] + "." + r["filename"].rsplit(".", 1)[1]
        (r["title"] + r["department"] + r["kind"]).encode("gbk")
    assert re.fullmatch(r"\d{4}年\d{1,2}月月度财务报表", kinds["月度财务报表"]["title"])


def test_publish_adds_reports_dated_today(erp: FlaskClient) -> None:
    response = erp.post("/_sim/publish", json={"count": 3})
    assert response.status_code == 200
    assert response.get_json() == {"published": ["R000046", "R000047", "R000048"]}
    reports = state(erp)
    new = reports[45:]
    assert [r["id"] for r in new] == ["R000046", "R000047", "R000048"]
    assert {r["date"] for r in new} == {"2025-03-15"}  # the injected clock's local date
    assert len({r["filename"] for r in reports}) == 48
    assert set(grid(erp).ids) >= {"R000046", "R000047", "R000048"}


def test_publish_is_deterministic_and_validates_count(clock: FakeClock) -> None:
    a, b = (create_app(latency_ms=(0, 0), clock=clock).test_client() for _ in range(2))
    for c in (a, b):
        c.post("/_sim/publish", json={"count": 5})
    assert state(a) == state(b)
    for bad in ({"count": 0}, {"count": "3"}, {"count": 10**6}, [1]):
        assert a.post("/_sim/publish", json=bad).status_code == 400


def publish(client: FlaskClient, **body: Any) -> dict[str, Any]:
    """Publish one report with these options; return its ``/_sim/state`` row."""
    response = client.post("/_sim/publish", json=body)
    assert response.status_code == 200, response.get_json()
    [rid] = response.get_json()["published"]
    return next(r for r in state(client) if r["id"] == rid)


def test_publish_size_makes_a_streamed_gbk_sales_csv_of_exactly_that_size(
    erp: FlaskClient,
) -> None:
    size = 10_000_000
    r = publish(erp, size=size)
    assert (r["kind"], r["size"], r["filename"][-4:]) == ("销售明细", size, ".csv")
    response = erp.get(f"/report/download.do?id={r['id']}")
    assert response.is_streamed  # generated as it is sent, not built in memory
    assert response.headers["Content-Type"] == "text/csv; charset=GBK"
    assert response.headers["Content-Length"] == str(size)
    data = response.data
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == r["sha256"]
    lines = data.decode("gbk").split("\r\n")  # whole characters even where it is cut
    assert lines[0].split(",")[:3] == ["单据日期", "销售单号", "客户名称"]
    assert r["id"] in lines[1]
    assert len(lines) > 50_000
    row = next(row for row in grid(erp, report_no=r["id"]).rows)
    assert row["cells"][5] == "10,000,000"


def test_sized_reports_are_each_their_own_file(erp: FlaskClient) -> None:
    response = erp.post("/_sim/publish", json={"size": 5000, "count": 2})
    rows = [r for r in state(erp) if r["id"] in response.get_json()["published"]]
    assert [r["size"] for r in rows] == [5000, 5000]
    assert rows[0]["sha256"] != rows[1]["sha256"]
    for r in rows:
        data = erp.get(f"/report/download.do?id={r['id']}").data
        assert hashlib.sha256(data).hexdigest() == r["sha256"]


@pytest.mark.parametrize("size", [0, 1, 37, 200])
def test_publish_tiny_sizes_are_exact_and_size_zero_is_empty(erp: FlaskClient, size: int) -> None:
    r = publish(erp, size=size)
    response = erp.get(f"/report/download.do?id={r['id']}")
    assert response.headers["Content-Length"] == str(size)
    assert len(response.data) == size == r["size"]
    assert hashlib.sha256(response.data).hexdigest() == r["sha256"]
    response.data.decode("gbk")
    if size == 0:
        assert response.data == b""


def test_publishing_a_large_report_never_holds_its_file_in_memory(erp: FlaskClient) -> None:
    size = 200 * 1024 * 1024
    tracemalloc.start()
    try:
        r = publish(erp, size=size)
        response = erp.get(f"/report/download.do?id={r['id']}", buffered=False)
        digest, received = hashlib.sha256(), 0
        for chunk in response.response:
            digest.update(chunk)
            received += len(chunk)
        response.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size and digest.hexdigest() == r["sha256"]
    assert peak < 16 * 1024 * 1024, peak


def test_publish_kind_fixes_the_kind_of_every_report(erp: FlaskClient) -> None:
    response = erp.post("/_sim/publish", json={"kind": "凭证汇总表", "count": 3})
    new = [r for r in state(erp) if r["id"] in response.get_json()["published"]]
    assert [r["kind"] for r in new] == ["凭证汇总表"] * 3
    assert all(r["needs_generate"] and not r["generated"] for r in new)
    assert len({r["title"] for r in new}) == 3  # reissues are numbered


def test_publish_infected_serves_the_eicar_test_file_and_says_so(erp: FlaskClient) -> None:
    r = publish(erp, infected=True)
    assert (r["kind"], r["filename"][-4:], r["infected"]) == ("销售明细", ".csv", True)
    assert (r["size"], r["sha256"]) == (68, hashlib.sha256(EICAR).hexdigest())
    assert hashlib.md5(EICAR).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"
    response = erp.get(f"/report/download.do?id={r['id']}")
    assert response.data == EICAR
    row = next(row for row in grid(erp, report_no=r["id"]).rows)
    assert row["cells"][5] == "68"  # the listing shows the size of the file it serves
    pdf = publish(erp, infected=True, kind="月度财务报表")
    assert (pdf["filename"][-4:], pdf["size"], pdf["infected"]) == (".pdf", 68, True)
    others = [s for s in state(erp) if s["id"] not in (r["id"], pdf["id"])]
    assert others and not any(s["infected"] for s in others)


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "报表"},
        {"kind": "sales"},
        {"size": -1},
        {"size": "10"},
        {"size": True},
        {"size": 10, "kind": "月度财务报表"},
        {"size": 16 << 30, "count": 2},
        {"filename": ""},
        {"filename": "a\r\nSet-Cookie: x=1"},
        {"filename": 7},
        {"raw_gbk_filename": "yes"},
        {"raw_gbk_filename": True, "filename": "报表📄.csv"},
        {"sizes": 10},
        {"infected": "yes"},
        {"infected": True, "size": 68},
    ],
)
def test_publish_refuses_bad_options_and_publishes_nothing(
    erp: FlaskClient, body: dict[str, Any]
) -> None:
    response = erp.post("/_sim/publish", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert len(state(erp)) == 45


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.csv",
        "..\\..\\windows\\win.ini",
        "bell\x07esc\x1b[31mred\ttab\x7f.csv",
        'quote" ; filename=evil.exe',
        "报表\u202ecsv.exe",
    ],
)
def test_given_filename_is_sent_verbatim_in_both_names_and_shown_in_state(
    erp: FlaskClient, name: str
) -> None:
    r = publish(erp, filename=name)
    assert r["filename"] == name
    disposition = erp.get(f"/report/download.do?id={r['id']}").headers["Content-Disposition"]
    head, star = disposition.split("; filename*=UTF-8''")
    kind, fallback = head.split("; ", 1)
    assert kind in ("inline", "attachment")
    # the header's bytes as sent: the name itself (raw UTF-8 where it is not ASCII)
    assert fallback.encode("latin-1") == b'filename="' + name.encode("utf-8") + b'"'
    assert star.isascii() and unquote(star, errors="strict") == name


def test_raw_gbk_filename_sends_only_gbk_bytes_of_the_title(erp: FlaskClient) -> None:
    r = publish(erp, kind="销售明细", raw_gbk_filename=True)
    disposition = erp.get(f"/report/download.do?id={r['id']}").headers["Content-Disposition"]
    assert "filename*" not in disposition
    expected = 'inline; filename="{}"'.format(r["filename"])
    assert disposition.encode("latin-1") == expected.encode("gbk")
    assert r["filename"] == r["title"] + ".csv"


def test_same_seed_same_state_different_seed_different_state(clock: FakeClock) -> None:
    def st(seed: int) -> list[dict[str, Any]]:
        return state(create_app(seed=seed, latency_ms=(0, 0), clock=clock).test_client())

    assert st(2005) == st(2005)
    other = st(7)
    assert [r["sha256"] for r in other] != [r["sha256"] for r in st(2005)]


def test_reports_setting_sizes_the_catalogue(clock: FakeClock) -> None:
    client = create_app(reports=12, latency_ms=(0, 0), clock=clock).test_client()
    assert len(state(client)) == 12


def test_every_request_is_delayed_by_the_configured_latency(clock: FakeClock) -> None:
    client = create_app(latency_ms=(60, 60), clock=clock).test_client()
    started = time.perf_counter()
    client.get("/login.do")
    assert time.perf_counter() - started >= 0.06


# --- the real process ---------------------------------------------------------------------


def test_module_serves_on_port_zero_and_prints_ready_line(clock: FakeClock) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sims.erp", "--port", "0", "--latency-ms", "0,0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "random"},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=20)
        match = re.fullmatch(r"READY (http://127\.0\.0\.1:(\d+)) erp\n", line)
        assert match and int(match.group(2)) > 0, line
        with urllib.request.urlopen(match.group(1) + "/_sim/state", timeout=20) as response:
            served = json.load(response)["reports"]
        # same seed in another process (other hash seed): byte-identical files
        local = state(create_app(latency_ms=(0, 0), clock=clock).test_client())
        assert [(r["id"], r["sha256"]) for r in served] == [(r["id"], r["sha256"]) for r in local]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
