"""Archive system simulator: HTML contract, validation, numbering, storage, concurrency, CLI.

Fast tests through Flask's test client (no browser). Latency is set to 0 except where
latency itself is under test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sims.archive.app import create_app
from sims.archive.store import ARCHIVE_TZ

REPO_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "archivist-demo"


# --------------------------------------------------------------------------- helpers


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""
    children: list[Element] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    """Just enough of an HTML parser to assert on tags, attributes and text."""

    VOID = {"input", "meta", "br", "hr", "img", "link"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._stack: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        if self._stack:
            self._stack[-1].children.append(element)
        self.elements.append(element)
        if tag not in self.VOID:
            self._stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i].tag == tag:
                del self._stack[i:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._stack:
            element.text += data


class Page:
    def __init__(self, html: str) -> None:
        self.html = html
        builder = _TreeBuilder()
        builder.feed(html)
        self.elements = builder.elements

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        def matches(e: Element) -> bool:
            if tag is not None and e.tag != tag:
                return False
            for key, want in attrs.items():
                key = key.rstrip("_").replace("_", "-") if key != "name" else key
                have = e.attrs.get(key)
                if key == "class":
                    if have is None or want not in have.split():
                        return False
                elif have != want:
                    return False
            return True

        return [e for e in self.elements if matches(e)]

    def one(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]

    def by_id(self, element_id: str) -> Element:
        found = [e for e in self.elements if e.attrs.get("id") == element_id]
        assert len(found) == 1, f"expected one #{element_id}, found {len(found)}"
        return found[0]

    def named(self, name: str) -> Element:
        found = [e for e in self.elements if e.attrs.get("name") == name]
        assert len(found) == 1, f"expected one [name={name}], found {len(found)}"
        return found[0]


def page(response: Any) -> Page:
    return Page(response.get_data(as_text=True))


def sidebar_html(html: str) -> str:
    return html.split('<aside id="sidebar">', 1)[1].split("</aside>", 1)[0]


def next_year() -> int:
    return dt.datetime.now(ARCHIVE_TZ).year + 1


def valid_fields(**overrides: str) -> dict[str, str]:
    fields = {
        "fonds": "Z109",
        "category": "KU",
        "year": "2025",
        "retention": "D10",
        "department": "CWB",
        "title": "2025年3月资金日报表",
        "author": "财务部",
        "date": "20250331",
        "doc_number": "",
        "classification": "内部",
        "pages": "12",
    }
    fields.update(overrides)
    return fields


def post_ingest(
    client: FlaskClient,
    *,
    content: bytes | None = b"%PDF-1.7 report body",
    filename: str = "report.pdf",
    **overrides: str,
) -> Any:
    data: dict[str, Any] = valid_fields(**overrides)
    if content is not None:
        data["file"] = (io.BytesIO(content), filename)
    return client.post("/ingest", data=data, content_type="multipart/form-data")


def login(client: FlaskClient, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"username": "archivist", "password": password})


def state_items(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get("/_sim/state")
    assert response.status_code == 200
    return response.get_json()["items"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def app(data_dir: Path) -> Flask:
    return create_app(data=data_dir, latency_ms=(0, 0))


@pytest.fixture
def anon(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A logged-in client that has already dismissed the announcement."""
    c = app.test_client()
    assert login(c).status_code == 303
    assert c.post("/notice/dismiss").status_code == 204
    return c


def upload_ok(client: FlaskClient, **kwargs: Any) -> str:
    """Upload and return the archive id the redirect names."""
    response = post_ingest(client, **kwargs)
    assert response.status_code == 303, page(response).find_all("li")
    match = re.fullmatch(r"/items/(A\d{6})\?created=1", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


# --------------------------------------------------------------------------- login and session


def test_root_page_has_login_form_in_sidebar(anon: FlaskClient) -> None:
    response = anon.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    p = page(response)
    p.one("aside", id="sidebar")
    form = p.one("form", id="login-form")
    assert 'id="login-form"' in sidebar_html(p.html)
    assert form.attrs["method"] == "post" and form.attrs["action"] == "/login"
    assert p.named("username").tag == "input"
    assert p.named("password").attrs["type"] == "password"
    assert p.one("button", type="submit").text == "登录"


def test_wrong_password_shows_error_and_sets_no_session(anon: FlaskClient) -> None:
    response = login(anon, password="wrong")
    assert response.status_code == 200
    assert '<div class="alert alert-error">用户名或密码错误</div>' in response.get_data(
        as_text=True
    )
    assert page(response).one("form", id="login-form")
    assert anon.get_cookie("ARCSESSION") is None
    assert anon.get("/dashboard").status_code == 302


def test_wrong_username_is_refused_too(anon: FlaskClient) -> None:
    response = anon.post("/login", data={"username": "admin", "password": PASSWORD})
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert anon.get_cookie("ARCSESSION") is None


def test_right_credentials_set_httponly_session_cookie_and_redirect_303(
    anon: FlaskClient,
) -> None:
    response = login(anon)
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard"
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("ARCSESSION=") and "HttpOnly" in set_cookie
    assert anon.get("/dashboard").status_code == 200


def test_password_option_replaces_default(data_dir: Path) -> None:
    c = create_app(data=data_dir, password="s3cret", latency_ms=(0, 0)).test_client()
    assert login(c, PASSWORD).status_code == 200
    assert login(c, "s3cret").status_code == 303


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/dashboard"),
        ("GET", "/ingest"),
        ("POST", "/ingest"),
        ("GET", "/items"),
        ("GET", "/items/A000001"),
        ("GET", "/items/A000001/file"),
        ("GET", "/app"),
        ("POST", "/notice/dismiss"),
        ("GET", "/no-such-page"),
    ],
)
def test_protected_pages_redirect_302_to_root_without_session(
    anon: FlaskClient, method: str, path: str
) -> None:
    response = anon.open(path, method=method)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_forged_session_cookie_is_not_a_session(anon: FlaskClient) -> None:
    anon.set_cookie("ARCSESSION", "forged-token")
    assert anon.get("/dashboard").status_code == 302


def test_sim_state_needs_no_session(anon: FlaskClient) -> None:
    response = anon.get("/_sim/state")
    assert response.status_code == 200
    assert response.get_json() == {
        "items": [],
        "sessions": {"active": 0, "peak": 0, "refused": 0, "max": None},
    }


def test_logout_ends_the_session_server_side(anon: FlaskClient, app: Flask) -> None:
    login(anon)
    token = anon.get_cookie("ARCSESSION").value
    assert anon.get("/logout").status_code == 303
    # Even a client that kept the old cookie is no longer let in.
    other = app.test_client()
    other.set_cookie("ARCSESSION", token)
    assert other.get("/dashboard").status_code == 302


# --------------------------------------------------------------------------- announcement overlay


def test_notice_overlay_shows_on_every_page_until_dismissed_then_never_again(
    app: Flask,
) -> None:
    c = app.test_client()
    login(c)
    for path in ("/dashboard", "/ingest", "/items", "/app", "/"):
        p = page(c.get(path))
        notice = p.one("div", id="notice")
        assert notice.attrs["class"] == "overlay"
        assert "系统公告" in notice.text
        close = p.one("button", class_="close")
        assert close.text == "知道了" and close in notice.children[0].children
    assert "/notice/dismiss" in p.html and "'POST'" in p.html

    assert c.post("/notice/dismiss").status_code == 204
    for path in ("/dashboard", "/ingest", "/items", "/app", "/", "/dashboard"):
        assert 'id="notice"' not in c.get(path).get_data(as_text=True)

    # A new session (a new login) sees the announcement again.
    fresh = app.test_client()
    login(fresh)
    assert 'id="notice"' in fresh.get("/dashboard").get_data(as_text=True)


def test_notice_overlay_is_fixed_over_the_whole_viewport(app: Flask) -> None:
    c = app.test_client()
    login(c)
    html = c.get("/dashboard").get_data(as_text=True)
    rule = re.search(r"\.overlay\s*\{([^}]*)\}", html)
    assert rule, "no .overlay style rule"
    declarations = re.sub(r"\s+", "", rule.group(1))
    for needed in ("position:fixed", "top:0", "left:0", "right:0", "bottom:0"):
        assert needed in declarations


def test_anonymous_pages_show_no_overlay(anon: FlaskClient) -> None:
    assert 'id="notice"' not in anon.get("/").get_data(as_text=True)


# --------------------------------------------------------------------------- pages


def test_dashboard_nav_links_to_ingest_and_items(client: FlaskClient) -> None:
    html = client.get("/dashboard").get_data(as_text=True)
    nav = html.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert '<a href="/ingest">档案著录</a>' in nav
    assert '<a href="/items">档案检索</a>' in nav


def test_ingest_form_has_the_contracted_controls(client: FlaskClient) -> None:
    p = page(client.get("/ingest"))
    form = p.one("form", id="ingest-form")
    assert form.attrs == {
        "id": "ingest-form",
        "method": "post",
        "action": "/ingest",
        "enctype": "multipart/form-data",
    }
    for name in ("fonds", "year", "department", "title", "author", "date", "doc_number", "pages"):
        control = p.named(name)
        assert (control.tag, control.attrs["type"]) == ("input", "text"), name

    def options(name: str) -> list[tuple[str | None, str]]:
        select = p.named(name)
        assert select.tag == "select"
        return [(o.attrs.get("value"), o.text) for o in select.children if o.tag == "option"]

    category = options("category")
    assert ("WS", "文书") in category and ("KU", "会计") in category
    assert 3 <= len(category) <= 4
    retention = options("retention")
    assert retention[0][0] == ""
    assert retention[1:] == [("Y", "永久"), ("D30", "30年"), ("D10", "10年")]
    assert [v for v, _ in options("classification")] == ["", "公开", "内部", "秘密"]

    checkbox = p.named("has_remarks")
    assert checkbox.attrs["type"] == "checkbox"
    label = p.one("label", for_=checkbox.attrs["id"])
    assert label.text == "填写备注"
    remarks = p.named("remarks")
    assert remarks.tag == "textarea" and "disabled" in remarks.attrs

    assert p.by_id("dropzone").text == "将文件拖到此处，或点击选择文件"
    file_input = p.by_id("file-input")
    assert file_input.attrs["type"] == "file" and file_input.attrs["name"] == "file"
    assert "hidden" in file_input.attrs
    submit = p.by_id("submit-btn")
    assert submit.tag == "button" and submit.attrs["type"] == "submit"
    assert submit.text == "提交归档"
    # The remarks box and the drop zone are wired by script.
    assert "remarks.disabled = !hasRemarks.checked" in p.html
    assert "input.click()" in p.html


def test_ingest_form_is_a_two_step_wizard_in_one_form(client: FlaskClient) -> None:
    p = page(client.get("/ingest"))
    form = p.one("form", id="ingest-form")
    step1, step2 = p.by_id("step-1"), p.by_id("step-2")
    assert [c for c in form.children if c.tag == "fieldset"] == [step1, step2]
    assert step1.tag == step2.tag == "fieldset"
    assert step1.attrs["class"] == step2.attrs["class"] == "wizard-step"
    assert "hidden" not in step1.attrs and "hidden" in step2.attrs

    def inside(panel: Element) -> set[str]:
        found: set[str] = set()
        stack = list(panel.children)
        while stack:
            e = stack.pop()
            found.update(v for k, v in e.attrs.items() if k in ("id", "name") and v)
            stack.extend(e.children)
        return found

    one, two = inside(step1), inside(step2)
    metadata = {
        "fonds",
        "category",
        "year",
        "retention",
        "department",
        "title",
        "author",
        "date",
        "doc_number",
        "classification",
        "pages",
        "has_remarks",
        "remarks",
    }
    assert metadata <= one and "next-btn" in one
    assert not metadata & two
    assert {"dropzone", "file-input", "file-name", "submit-btn", "prev-btn"} <= two
    assert not {"dropzone", "file-input", "submit-btn", "prev-btn"} & one

    nxt, prev = p.by_id("next-btn"), p.by_id("prev-btn")
    assert (nxt.tag, nxt.attrs["type"], nxt.text) == ("button", "button", "下一步")
    assert (prev.tag, prev.attrs["type"], prev.text) == ("button", "button", "上一步")
    assert p.by_id("submit-btn").text == "提交归档"
    # Only script moves between the steps: no link, no second form, no extra request.
    assert len(p.find_all("form")) == 1
    assert "step1.hidden = n !== 1" in p.html and "step2.hidden = n !== 2" in p.html
    # The panels must not be given a display rule that would defeat [hidden].
    styles = " ".join(re.findall(r"\.wizard-step[^{]*\{([^}]*)\}", p.html))
    assert "display" not in styles


def test_rejected_form_comes_back_on_step_one_with_errors_above_the_panels(
    client: FlaskClient,
) -> None:
    response = post_ingest(client, title="")
    html = response.get_data(as_text=True)
    p = Page(html)
    assert "hidden" not in p.by_id("step-1").attrs
    assert "hidden" in p.by_id("step-2").attrs
    assert html.index('<ul class="errors">') < html.index('id="ingest-form"')
    assert p.named("author").attrs["value"] == "财务部"


# --------------------------------------------------------------------------- ingest and numbering


def test_first_upload_gets_A000001_and_item_number_0001(client: FlaskClient) -> None:
    archive_id = upload_ok(client)
    assert archive_id == "A000001"
    [item] = state_items(client)
    assert item["archive_id"] == "A000001"
    assert item["reference_code"] == "Z109-KU\u00b72025-D10-CWB-0001"
    assert set(item) == {
        "archive_id",
        "reference_code",
        "sha256",
        "size",
        "filename",
        "ingested_at",
        "metadata",
    }
    assert item["metadata"] == {
        "fonds": "Z109",
        "category": "KU",
        "year": "2025",
        "retention": "D10",
        "department": "CWB",
        "title": "2025年3月资金日报表",
        "author": "财务部",
        "date": "20250331",
        "doc_number": "",
        "classification": "内部",
        "pages": 12,
        "remarks": "",
        "item_number": 1,
    }
    ingested = dt.datetime.fromisoformat(item["ingested_at"])
    assert ingested.utcoffset() is not None
    assert abs(dt.datetime.now(dt.UTC) - ingested) < dt.timedelta(minutes=1)


def test_item_numbers_continue_within_group_and_restart_in_another_group(
    client: FlaskClient,
) -> None:
    upload_ok(client)
    upload_ok(client)
    upload_ok(client, department="XZB")
    upload_ok(client, retention="Y")
    upload_ok(client)
    codes = [(i["archive_id"], i["reference_code"]) for i in state_items(client)]
    assert codes == [
        ("A000001", "Z109-KU·2025-D10-CWB-0001"),
        ("A000002", "Z109-KU·2025-D10-CWB-0002"),
        ("A000003", "Z109-KU·2025-D10-XZB-0001"),
        ("A000004", "Z109-KU·2025-Y-CWB-0001"),
        ("A000005", "Z109-KU·2025-D10-CWB-0003"),
    ]


def test_boundary_values_are_accepted(client: FlaskClient) -> None:
    upload_ok(
        client,
        fonds="ABCDEFGHIJ12",
        department="AB",
        year="1949",
        title="题" * 200,
        date="20240229",
        classification="",
        pages="0",
        doc_number="财发〔2025〕3号",
    )
    upload_ok(client, fonds="Z", department="ABCDEFG8", year=str(next_year()), pages="")
    first, second = state_items(client)
    assert first["metadata"]["pages"] == 0 and first["metadata"]["classification"] == ""
    assert first["metadata"]["doc_number"] == "财发〔2025〕3号"
    assert second["metadata"]["pages"] is None


def _stored_files(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob("*") if p.is_file() and not p.name.startswith("archive.")]


TITLE_201 = "题" * 201


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fonds": ""}, "全宗号不能为空"),
        ({"fonds": "z109"}, "全宗号格式错误：z109（应为 1–12 位大写字母或数字）"),
        ({"fonds": "ABCDEFGHIJKLM"}, "全宗号格式错误：ABCDEFGHIJKLM（应为 1–12 位大写字母或数字）"),
        ({"fonds": "Z-109"}, "全宗号格式错误：Z-109（应为 1–12 位大写字母或数字）"),
        ({"category": "XX"}, "门类代码无效：XX（应为 WS、KU、KJ 或 ZP）"),
        ({"category": ""}, "门类代码不能为空（应为 WS、KU、KJ 或 ZP）"),
        ({"year": ""}, "年度不能为空"),
        ({"year": "25"}, "年度格式错误：25（应为四位数字）"),
        ({"year": "1948"}, "年度超出范围：1948（应在 1949–{next} 之间）"),
        ({"year": "{after_next}"}, "年度超出范围：{after_next}（应在 1949–{next} 之间）"),
        ({"retention": "X"}, "保管期限无效：X（应为 Y、D30 或 D10）"),
        ({"retention": ""}, "保管期限不能为空（应为 Y、D30 或 D10）"),
        ({"department": ""}, "机构代码不能为空"),
        ({"department": "C"}, "机构代码格式错误：C（应为 2–8 位大写字母或数字）"),
        ({"department": "ABCDEFGHI"}, "机构代码格式错误：ABCDEFGHI（应为 2–8 位大写字母或数字）"),
        ({"department": "cwb"}, "机构代码格式错误：cwb（应为 2–8 位大写字母或数字）"),
        ({"title": ""}, "题名不能为空"),
        ({"title": "   "}, "题名不能为空"),
        ({"title": TITLE_201}, "题名过长：201 个字符（最多 200 个）"),
        ({"author": ""}, "责任者不能为空"),
        ({"date": ""}, "日期不能为空"),
        ({"date": "2024-13-01"}, "日期格式错误：2024-13-01（应为 YYYYMMDD）"),
        ({"date": "2024031"}, "日期格式错误：2024031（应为 YYYYMMDD）"),
        ({"date": "20241301"}, "日期无效：20241301（不是有效的日历日期）"),
        ({"date": "20230229"}, "日期无效：20230229（不是有效的日历日期）"),
        ({"classification": "绝密"}, "密级无效：绝密（应为 空、公开、内部 或 秘密）"),
        ({"pages": "-1"}, "页数格式错误：-1（应为非负整数）"),
        ({"pages": "1.5"}, "页数格式错误：1.5（应为非负整数）"),
        ({"pages": "十二"}, "页数格式错误：十二（应为非负整数）"),
        ({"pages": "99999999999999999999"}, "页数过大：99999999999999999999（最多 2147483647）"),
    ],
)
def test_each_validation_rule_rejects_with_its_message_and_stores_nothing(
    client: FlaskClient, data_dir: Path, overrides: dict[str, str], message: str
) -> None:
    subst = {"next": str(next_year()), "after_next": str(next_year() + 1)}
    overrides = {k: v.format(**subst) for k, v in overrides.items()}
    message = message.format(**subst)
    response = post_ingest(client, **overrides)
    assert response.status_code == 200
    p = page(response)
    errors = p.one("ul", class_="errors")
    assert [li.text for li in errors.children] == [message]
    assert p.one("form", id="ingest-form")
    assert state_items(client) == []
    assert _stored_files(data_dir) == []


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (None, "", "原文文件不能为空：请选择要上传的文件"),
        (b"", "", "原文文件不能为空：请选择要上传的文件"),  # what a browser sends with no file
        (b"", "empty.pdf", "原文文件为空：empty.pdf（0 字节）"),
    ],
)
def test_missing_or_empty_file_is_rejected_and_nothing_stored(
    client: FlaskClient, data_dir: Path, content: bytes | None, filename: str, message: str
) -> None:
    response = post_ingest(client, content=content, filename=filename)
    assert response.status_code == 200
    assert [li.text for li in page(response).one("ul", class_="errors").children] == [message]
    assert state_items(client) == []
    assert _stored_files(data_dir) == []


def test_rejection_lists_every_problem_and_keeps_entered_values(client: FlaskClient) -> None:
    response = post_ingest(
        client,
        fonds="z109",
        retention="X",
        date="2024-13-01",
        title="",
        category="WS",
        classification="秘密",
        content=None,
    )
    p = page(response)
    assert [li.text for li in p.one("ul", class_="errors").children] == [
        "全宗号格式错误：z109（应为 1–12 位大写字母或数字）",
        "保管期限无效：X（应为 Y、D30 或 D10）",
        "题名不能为空",
        "日期格式错误：2024-13-01（应为 YYYYMMDD）",
        "原文文件不能为空：请选择要上传的文件",
    ]
    assert p.named("fonds").attrs["value"] == "z109"
    assert p.named("date").attrs["value"] == "2024-13-01"
    assert p.named("author").attrs["value"] == "财务部"
    selected = [o.attrs["value"] for o in p.named("category").children if "selected" in o.attrs]
    assert selected == ["WS"]
    selected = [
        o.attrs["value"] for o in p.named("classification").children if "selected" in o.attrs
    ]
    assert selected == ["秘密"]


def test_remarks_are_stored_only_when_has_remarks_is_ticked(client: FlaskClient) -> None:
    upload_ok(client, remarks="不应保存")
    upload_ok(client, remarks="机器人归档，原件为 PDF", has_remarks="1")
    upload_ok(client, remarks="browser default value", has_remarks="on")
    remarks = [i["metadata"]["remarks"] for i in state_items(client)]
    assert remarks == ["", "机器人归档，原件为 PDF", "browser default value"]


def test_rejected_form_keeps_remarks_enabled_only_when_ticked(client: FlaskClient) -> None:
    p = page(post_ingest(client, title="", remarks="备注内容", has_remarks="1"))
    assert "disabled" not in p.named("remarks").attrs
    assert p.named("remarks").text == "备注内容"
    assert "checked" in p.named("has_remarks").attrs
    p = page(post_ingest(client, title="", remarks="备注内容"))
    assert "disabled" in p.named("remarks").attrs


# --------------------------------------------------------------------------- item page and file


def test_item_page_shows_ids_metadata_and_file_link(client: FlaskClient) -> None:
    content = b"%PDF-1.7\n" + bytes(range(256)) * 10
    archive_id = upload_ok(
        client,
        content=content,
        filename="2025年3月资金日报表.pdf",
        remarks="核对无误",
        has_remarks="1",
    )
    response = client.get(f"/items/{archive_id}?created=1")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<div class="alert alert-success">归档成功</div>' in html
    p = Page(html)
    assert p.one("td", id="archive-id").text == "A000001"
    assert p.one("td", id="reference-code").text == "Z109-KU·2025-D10-CWB-0001"
    assert p.one("td", id="sha256").text == hashlib.sha256(content).hexdigest()
    assert p.one("td", id="size").text == str(len(content))
    assert p.one("td", id="filename").text == "2025年3月资金日报表.pdf"
    [item] = state_items(client)
    assert p.one("td", id="ingested-at").text == item["ingested_at"]
    expected_meta = {
        "fonds": "Z109",
        "category": "KU",
        "year": "2025",
        "retention": "D10",
        "department": "CWB",
        "title": "2025年3月资金日报表",
        "author": "财务部",
        "date": "20250331",
        "doc_number": "",
        "classification": "内部",
        "pages": "12",
        "remarks": "核对无误",
    }
    for name, value in expected_meta.items():
        assert p.one("td", id=f"meta-{name}").text == value, name
    link = p.one("a", id="file-link")
    assert link.attrs["href"] == "/items/A000001/file" and link.text == "下载原文"

    # Without created=1 there is no success banner.
    assert "归档成功" not in client.get(f"/items/{archive_id}").get_data(as_text=True)


def test_unknown_item_and_its_file_are_404(client: FlaskClient) -> None:
    assert client.get("/items/A999999").status_code == 404
    assert client.get("/items/A999999/file").status_code == 404


# --------------------------------------------------------------------------- viewer app and API


def test_api_item_returns_the_state_shape_with_a_session(client: FlaskClient) -> None:
    upload_ok(client, content=b"first", filename="一.pdf")
    upload_ok(client, content=b"second", filename="二.pdf", title="<b>粗体</b>")
    response = client.get("/api/items/A000002")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    assert body == state_items(client)[1]
    assert list(body) == [
        "archive_id",
        "reference_code",
        "sha256",
        "size",
        "filename",
        "ingested_at",
        "metadata",
    ]
    assert body["sha256"] == hashlib.sha256(b"second").hexdigest()
    assert body["metadata"]["title"] == "<b>粗体</b>"


def test_api_item_without_session_is_401_json(anon: FlaskClient, client: FlaskClient) -> None:
    upload_ok(client)
    for path in ("/api/items/A000001", "/api/items/A999999"):
        response = anon.get(path)
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/json"
        assert response.get_json() == {"error": "login required"}
        assert "Location" not in response.headers


def test_api_unknown_item_is_404_json(client: FlaskClient) -> None:
    for path in ("/api/items/A999999", "/api/items/a000001", "/api/nothing"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"] == "application/json"
        assert response.get_json() == {"error": "not found"}


def test_app_shell_is_static_and_carries_the_viewer_script(client: FlaskClient) -> None:
    upload_ok(client)
    response = client.get("/app")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    html = response.get_data(as_text=True)
    p = Page(html)
    p.one("div", id="viewer")
    # Nothing of the item is in the HTML itself: it is rendered by script after load.
    for cell in ("archive-id", "sha256", "reference-code", "file-link", "loading"):
        assert f'id="{cell}"' not in html
    assert hashlib.sha256(b"%PDF-1.7 report body").hexdigest() not in html
    script = p.find_all("script")[0].text
    for needed in (
        "location.hash",
        "'hashchange'",
        "'/api/items/'",
        "'加载中…'",
        "'档案不存在'",
        "'error not-found'",
        "'error login-required'",
        "'error server-error'",
        "id: 'loading'",
        "id: 'file-link'",
        "'下载原文'",
        "'archive-id'",
        "'reference-code'",
        "'sha256'",
        "'size'",
        "'filename'",
        "'ingested-at'",
        "'meta-' + field",
        "textContent",
    ):
        assert needed in script, needed
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    for name in (
        "fonds",
        "category",
        "year",
        "retention",
        "department",
        "item_number",
        "title",
        "author",
        "date",
        "doc_number",
        "classification",
        "pages",
        "remarks",
    ):
        assert f"'{name}'" in script, name
    assert '"item_number": "件号"' in script  # labels as on the item page


def test_viewer_tells_a_server_error_from_a_missing_item_and_a_lost_login(
    client: FlaskClient,
) -> None:
    script = page(client.get("/app")).find_all("script")[0].text
    # one branch per outcome, each a p.error with its own class and words
    branches = {
        "xhr.status === 404": "show(message('档案不存在', 'error not-found'));",
        "xhr.status === 401": "show(message('登录已失效，请重新登录', 'error login-required'));",
        "xhr.status >= 500": (
            "show(message('服务器错误（HTTP ' + xhr.status + '），请稍后重试', "
            "'error server-error'));"
        ),
    }
    for condition, action in branches.items():
        at = script.index(condition)
        assert script.index(action, at) < script.index("} else", at + len(condition)), condition
    # no answer at all (refused, dropped) is a server error too
    onerror = script[script.index("xhr.onerror") :]
    assert "'error server-error'" in onerror[: onerror.index("};")]
    assert "服务器错误（" in onerror[: onerror.index("};")]


def test_app_without_session_redirects_to_root(anon: FlaskClient) -> None:
    response = anon.get("/app")
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_download_bytes_and_sha256_equal_upload_and_sim_state(
    client: FlaskClient, data_dir: Path
) -> None:
    # Over a megabyte, more than Werkzeug would keep in memory, with every byte value.
    content = os.urandom(1_300_000) + bytes(range(256))
    digest = hashlib.sha256(content).hexdigest()
    archive_id = upload_ok(client, content=content, filename="ledger.bin")
    response = client.get(f"/items/{archive_id}/file")
    assert response.status_code == 200
    assert response.is_streamed  # sent from the file, not built in memory
    body = response.get_data()
    assert body == content
    assert response.headers["Content-Length"] == str(len(content))
    assert response.headers["Content-Disposition"].startswith("attachment;")
    [item] = state_items(client)
    assert item["sha256"] == digest == hashlib.sha256(body).hexdigest()
    assert item["size"] == len(content)
    # The store holds exactly the received bytes under the archive id; no temp file is left.
    assert (data_dir / "files" / archive_id).read_bytes() == content
    assert list((data_dir / "tmp").iterdir()) == []


def test_filename_star_round_trips_a_chinese_name(client: FlaskClient) -> None:
    name = "2025年3月资金日报表（终稿）.xlsx"
    archive_id = upload_ok(client, content=b"PK\x03\x04 sheet", filename=name)
    disposition = client.get(f"/items/{archive_id}/file").headers["Content-Disposition"]
    match = re.fullmatch(r'attachment; filename="([ -~]*)"; filename\*=UTF-8\'\'(\S+)', disposition)
    assert match, disposition
    fallback, encoded = match.groups()
    assert fallback == "A000001.xlsx"
    assert unquote(encoded, encoding="utf-8", errors="strict") == name
    assert state_items(client)[0]["filename"] == name


def test_ascii_filename_is_its_own_fallback(client: FlaskClient) -> None:
    archive_id = upload_ok(client, content=b"a,b\n1,2\n", filename="daily report.csv")
    disposition = client.get(f"/items/{archive_id}/file").headers["Content-Disposition"]
    assert disposition == (
        "attachment; filename=\"daily report.csv\"; filename*=UTF-8''daily%20report.csv"
    )


def test_browser_style_raw_utf8_filename_is_preserved(client: FlaskClient) -> None:
    # Chromium sends the file name as raw UTF-8 inside filename="..."; build that by hand.
    boundary = "----WebKitFormBoundaryq1w2e3r4t5y6u7i8"
    parts = []
    for key, value in valid_fields().items():
        disposition = f'Content-Disposition: form-data; name="{key}"'
        parts.append(f"--{boundary}\r\n{disposition}\r\n\r\n{value}\r\n".encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="资金日报表.pdf"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
        + b"%PDF-1.4 body\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    response = client.post(
        "/ingest", data=b"".join(parts), content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 303
    [item] = state_items(client)
    assert item["filename"] == "资金日报表.pdf"
    assert item["sha256"] == hashlib.sha256(b"%PDF-1.4 body").hexdigest()


# --------------------------------------------------------------------------- list and search


def test_list_paginates_20_per_page_oldest_first_with_next_then_prev(client: FlaskClient) -> None:
    for n in range(21):
        upload_ok(client, title=f"日报 {n + 1:02d}", content=f"report {n}".encode())

    first = page(client.get("/items"))
    rows = first.one("table", id="items").children
    header, body = rows[0], rows[1]
    assert header.tag == "thead" and body.tag == "tbody"
    first_rows = body.children
    assert len(first_rows) == 20
    ids = [r.children[0].text.strip() for r in first_rows]
    assert ids == [f"A{n:06d}" for n in range(1, 21)]
    cells = [c.text.strip() for c in first_rows[0].children]
    state = state_items(client)[0]
    assert cells == [
        "A000001",
        state["reference_code"],
        "日报 01",
        "20250331",
        str(state["size"]),
        state["ingested_at"],
    ]
    assert first_rows[0].children[0].children[0].attrs["href"] == "/items/A000001"
    assert "共 21 条" in first.html
    next_link = first.one("a", class_="next")
    assert next_link.text == "下一页"
    assert first.find_all("a", class_="prev") == []

    second = page(client.get(next_link.attrs["href"]))
    second_rows = second.one("table", id="items").children[1].children
    assert [r.children[0].text.strip() for r in second_rows] == ["A000021"]
    assert second.find_all("a", class_="next") == []
    assert second.one("a", class_="prev").attrs["href"] == "/items?page=1"
    assert "共 21 条" in second.html


def test_search_matches_title_reference_code_or_archive_id_substring(
    client: FlaskClient,
) -> None:
    upload_ok(client, title="2025年3月资金日报表")
    upload_ok(client, title="2025年度财务决算报告", department="XZB")
    upload_ok(client, title="100%完成情况_汇总", retention="Y")

    def found(q: str) -> list[str]:
        p = page(client.get("/items", query_string={"q": q}))
        body = p.one("table", id="items").children[1]
        return [r.children[0].text.strip() for r in body.children]

    assert found("资金日报") == ["A000001"]
    assert found("XZB-0001") == ["A000002"]
    assert found("A000003") == ["A000003"]
    assert found("a000003") == ["A000003"]
    assert found("2025") == ["A000001", "A000002", "A000003"]
    assert found("%") == ["A000003"]  # a literal percent sign, not a wildcard
    assert found("_汇") == ["A000003"]
    assert found("不存在") == []
    assert "共 0 条" in client.get("/items?q=不存在").get_data(as_text=True)


def test_search_matches_remarks_and_sha256_substrings(client: FlaskClient) -> None:
    upload_ok(client, content=b"twelve", has_remarks="1", remarks="源系统报表编号 R000012")
    upload_ok(client, content=b"thirteen", has_remarks="1", remarks="源系统报表编号 R000013")
    upload_ok(client, content=b"unticked", remarks="源系统报表编号 R000014")  # not saved

    def found(q: str) -> list[str]:
        p = page(client.get("/items", query_string={"q": q}))
        body = p.one("table", id="items").children[1]
        return [r.children[0].text.strip() for r in body.children]

    assert found("源系统报表编号 R000012") == ["A000001"]
    assert found("R000013") == ["A000002"]
    assert found("源系统报表编号") == ["A000001", "A000002"]
    assert found("R000014") == []
    digest = hashlib.sha256(b"thirteen").hexdigest()
    assert found(digest) == ["A000002"]
    assert found(digest.upper()) == ["A000002"]  # case-insensitive
    assert found(digest[20:36]) == ["A000002"]  # any substring


def test_search_pager_keeps_the_query(client: FlaskClient) -> None:
    for n in range(21):
        upload_ok(client, title=f"月报 {n}", content=b"x")
    upload_ok(client, title="other", content=b"y")
    p = page(client.get("/items", query_string={"q": "月报"}))
    assert "共 21 条" in p.html
    href = p.one("a", class_="next").attrs["href"]
    second = page(client.get(href))
    assert len(second.one("table", id="items").children[1].children) == 1


# --------------------------------------------------------------------------- persistence


def test_second_app_over_same_data_directory_sees_items_and_continues_numbering(
    data_dir: Path,
) -> None:
    first = create_app(data=data_dir, latency_ms=(0, 0)).test_client()
    login(first)
    upload_ok(first, content=b"first report", filename="一号.pdf")
    before = state_items(first)

    second = create_app(data=data_dir, latency_ms=(0, 0)).test_client()
    assert state_items(second) == before
    login(second)
    assert second.get("/items/A000001/file").get_data() == b"first report"
    assert upload_ok(second) == "A000002"
    assert state_items(second)[1]["reference_code"] == "Z109-KU·2025-D10-CWB-0002"


# --------------------------------------------------------------------------- concurrency


def test_concurrent_uploads_never_share_item_number_or_archive_id(app: Flask) -> None:
    workers = 12
    clients = []
    for _ in range(workers):
        c = app.test_client()
        login(c)
        clients.append(c)
    barrier = threading.Barrier(workers)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def upload(c: FlaskClient, n: int) -> None:
        barrier.wait(timeout=10)
        response = post_ingest(c, content=f"report {n}".encode() * 1000)
        with lock:
            results.append((response.status_code, response.headers.get("Location", "")))

    threads = [threading.Thread(target=upload, args=(c, n)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert [status for status, _ in results] == [303] * workers

    items = state_items(clients[0])
    assert sorted(i["metadata"]["item_number"] for i in items) == list(range(1, workers + 1))
    assert sorted(i["archive_id"] for i in items) == [f"A{n:06d}" for n in range(1, workers + 1)]
    assert len({i["reference_code"] for i in items}) == workers


# --------------------------------------------------------------------------- latency


def test_each_request_sleeps_a_seeded_latency_within_range(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sims.archive.app as archive_app

    slept: list[float] = []
    monkeypatch.setattr(archive_app.time, "sleep", slept.append)

    def delays(seed: int) -> list[float]:
        slept.clear()
        c = create_app(data=data_dir, latency_ms=(10, 60), seed=seed).test_client()
        for _ in range(5):
            c.get("/")
        return list(slept)

    first = delays(1)
    assert len(first) == 5 and all(0.010 <= s <= 0.060 for s in first)
    assert delays(1) == first
    assert delays(2) != first


# --------------------------------------------------------------------------- command line


def _start(args: list[str]) -> tuple[subprocess.Popen[str], queue.Queue[str], queue.Queue[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sims.archive", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    # Reader threads turn the pipes into queues, so every wait below has a timeout.
    for stream, sink in ((proc.stdout, out), (proc.stderr, err)):
        threading.Thread(target=_pump, args=(stream, sink), daemon=True).start()
    return proc, out, err


def _pump(stream: Any, sink: queue.Queue[str]) -> None:
    for line in stream:
        sink.put(line)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_cli_port_0_prints_ready_line_and_serves(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    proc, out, _ = _start(["--port", "0", "--data", str(tmp_path / "d"), "--latency-ms", "0,0"])
    processes.append(proc)
    line = out.get(timeout=30)
    match = re.fullmatch(r"READY (http://127\.0\.0\.1:(\d+)) archive\n", line)
    assert match, line
    assert int(match.group(2)) > 0
    with urllib.request.urlopen(match.group(1) + "/", timeout=10) as response:
        assert 'id="login-form"' in response.read().decode("utf-8")
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert (tmp_path / "d" / "archive.sqlite3").exists()  # --data persists


def test_cli_default_data_directory_is_removed_at_exit(
    processes: list[subprocess.Popen[str]],
) -> None:
    proc, out, err = _start(["--port", "0", "--latency-ms", "0,0"])
    processes.append(proc)
    assert out.get(timeout=30).startswith("READY ")
    data_line = err.get(timeout=10)
    assert data_line.startswith("archive data directory: ")
    data = Path(data_line.split(": ", 1)[1].strip())
    assert (data / "archive.sqlite3").exists()
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert not data.exists()


def test_cli_rejects_a_bad_latency_range() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sims.archive", "--port", "0", "--latency-ms", "60,10"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "MIN <= MAX" in proc.stderr


# --------------------------------------------------------------------------- tampering


def tamper(client: FlaskClient, body: Any) -> Any:
    return client.post("/_sim/tamper", json=body)


def test_tamper_delete_removes_the_item_everywhere(
    client: FlaskClient, anon: FlaskClient, data_dir: Path
) -> None:
    upload_ok(client, content=b"keep one", title="保留的文件")
    gone = upload_ok(client, content=b"lose me", title="将被删除的文件")
    upload_ok(client, content=b"keep two", title="保留的文件")
    gone_item = state_items(client)[1]

    response = tamper(anon, {"delete": gone})  # no login needed
    assert response.status_code == 200
    assert response.get_json() == {"deleted": gone}

    remaining = state_items(client)
    assert [i["archive_id"] for i in remaining] == ["A000001", "A000003"]
    # Nobody else is renumbered.
    assert [i["reference_code"] for i in remaining] == [
        "Z109-KU·2025-D10-CWB-0001",
        "Z109-KU·2025-D10-CWB-0003",
    ]
    assert client.get(f"/items/{gone}").status_code == 404
    assert client.get(f"/items/{gone}/file").status_code == 404
    api = client.get(f"/api/items/{gone}")
    assert api.status_code == 404 and api.get_json() == {"error": "not found"}
    listing = client.get("/items").get_data(as_text=True)
    assert gone not in listing and "将被删除的文件" not in listing
    kept = page(client.get("/items", query_string={"q": "保留"})).find_all(
        "td", class_="archive-id"
    )
    assert [cell.text for cell in kept] == ["A000001", "A000003"]  # search itself works
    for query in (gone, "将被删除", gone_item["reference_code"], gone_item["sha256"]):
        found = page(client.get("/items", query_string={"q": query})).find_all("td")
        assert not any(gone in cell.text for cell in found), query
    assert not (data_dir / "files" / gone).exists()
    assert sorted(p.name for p in (data_dir / "files").iterdir()) == ["A000001", "A000003"]
    # A second delete finds nothing.
    assert tamper(anon, {"delete": gone}).status_code == 404


def test_deleted_numbers_are_never_reused(client: FlaskClient, data_dir: Path) -> None:
    upload_ok(client)
    upload_ok(client, department="XZB")
    last = upload_ok(client)  # A000003, CWB-0002: the highest of everything
    assert tamper(client, {"delete": last}).status_code == 200
    # Both the archive id and the item number continue past the deleted item's.
    assert upload_ok(client) == "A000004"
    assert state_items(client)[-1]["reference_code"] == "Z109-KU·2025-D10-CWB-0003"
    # Another group is untouched by the gap.
    assert upload_ok(client, department="XZB") == "A000005"
    assert state_items(client)[-1]["reference_code"] == "Z109-KU·2025-D10-XZB-0002"
    # The gap survives a restart over the same data directory.
    again = create_app(data=data_dir, latency_ms=(0, 0)).test_client()
    login(again)
    assert tamper(again, {"delete": "A000005"}).status_code == 200
    assert upload_ok(again, department="XZB") == "A000006"
    assert state_items(again)[-1]["reference_code"] == "Z109-KU·2025-D10-XZB-0003"


def test_tamper_corrupt_changes_served_bytes_but_not_the_record(
    client: FlaskClient, anon: FlaskClient, data_dir: Path
) -> None:
    content = os.urandom(100_001)
    digest = hashlib.sha256(content).hexdigest()
    archive_id = upload_ok(client, content=content, filename="ledger.bin")
    [before] = state_items(client)

    response = tamper(anon, {"corrupt": archive_id})  # no login needed
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["corrupted", "sha256_before", "sha256_after"]
    assert body["corrupted"] == archive_id and body["sha256_before"] == digest

    served = client.get(f"/items/{archive_id}/file").get_data()
    assert len(served) == len(content)
    differing = [i for i, (a, b) in enumerate(zip(served, content, strict=True)) if a != b]
    assert differing == [len(content) // 2]  # one byte, in the middle, in place
    assert hashlib.sha256(served).hexdigest() == body["sha256_after"] != digest
    assert (data_dir / "files" / archive_id).read_bytes() == served
    # The catalogue still vouches for the original bytes, everywhere it shows them.
    assert state_items(client) == [before]
    assert client.get(f"/api/items/{archive_id}").get_json()["sha256"] == digest
    assert digest in client.get(f"/items/{archive_id}").get_data(as_text=True)
    assert list((data_dir / "tmp").iterdir()) == []


def test_tamper_corrupt_twice_reports_the_bytes_on_disk(client: FlaskClient) -> None:
    archive_id = upload_ok(client, content=b"x")  # one byte: the middle is byte 0
    first = tamper(client, {"corrupt": archive_id}).get_json()
    second = tamper(client, {"corrupt": archive_id}).get_json()
    assert second["sha256_before"] == first["sha256_after"]
    assert second["sha256_after"] == first["sha256_before"]  # flipped back
    assert client.get(f"/items/{archive_id}/file").get_data() == b"x"


@pytest.mark.parametrize("action", ["delete", "corrupt"])
def test_tamper_unknown_item_is_404_json(
    client: FlaskClient, anon: FlaskClient, action: str
) -> None:
    upload_ok(client)
    before = state_items(client)
    for archive_id in ("A999999", "a000001", ""):
        response = tamper(anon, {action: archive_id})
        assert response.status_code == 404, archive_id
        assert response.headers["Content-Type"] == "application/json"
        assert archive_id in response.get_json()["error"]
    assert state_items(client) == before


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "exactly one"),
        ({"delete": "A000001", "corrupt": "A000001"}, "exactly one"),
        ({"remove": "A000001"}, "'remove'"),
        ({"delete": "A000001", "extra": 1}, "'extra'"),
        ({"delete": 1}, "'delete' must be an archive id string"),
        ({"corrupt": None}, "'corrupt' must be an archive id string"),
        ({"corrupt": ["A000001"]}, "'corrupt' must be an archive id string"),
        (["delete", "A000001"], "not a JSON object"),
        ("A000001", "not a JSON object"),
    ],
)
def test_tamper_malformed_body_is_400_naming_the_problem(
    client: FlaskClient, anon: FlaskClient, body: Any, named: str
) -> None:
    upload_ok(client)
    before = state_items(client)
    response = tamper(anon, body)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert named in response.get_json()["error"]
    assert state_items(client) == before


def test_tamper_non_json_body_is_400(anon: FlaskClient) -> None:
    for kwargs in ({"data": "delete=A000001"}, {"data": "{", "content_type": "application/json"}):
        response = anon.post("/_sim/tamper", **kwargs)
        assert response.status_code == 400
        assert "not a JSON object" in response.get_json()["error"]


def test_tamper_is_never_delayed_failed_or_counted(data_dir: Path) -> None:
    app = create_app(data=data_dir, latency_ms=(0, 0), faults={"error_rate": 1.0})
    c = app.test_client()
    response = tamper(c, {"delete": "A000001"})
    assert response.status_code == 404 and response.get_json() == {"error": "no item A000001"}
    assert c.get("/_sim/faults").get_json()["injected"]["error"] == 0


# --------------------------------------------------------------------------- other upload pages


def post_upload(client: FlaskClient, path: str, **extra: Any) -> Any:
    data: dict[str, Any] = {**valid_fields(), "file": (io.BytesIO(b"%PDF-1.7 xhr"), "报表.pdf")}
    data.update(extra)
    return client.post(path, data=data, content_type="multipart/form-data")


def test_the_upload_page_posts_by_script_and_has_no_form_to_submit(client: FlaskClient) -> None:
    html = client.get("/upload").get_data(as_text=True)
    assert "XMLHttpRequest" in html and "'/api/ingest'" in html
    page = Page(html)
    assert page.by_id("upload-form").attrs.get("action") is None
    assert "name" not in page.by_id("file-input").attrs  # the script sends the file itself
    assert page.by_id("start-upload").attrs["type"] == "button"


def test_the_json_endpoint_archives_and_answers_the_ids(client: FlaskClient) -> None:
    response = post_upload(client, "/api/ingest")
    assert response.status_code == 201
    body = response.get_json()
    [item] = state_items(client)
    assert body == {"archive_id": item["archive_id"], "reference_code": item["reference_code"]}
    assert item["filename"] == "报表.pdf"


def test_the_json_endpoint_says_what_is_wrong_and_keeps_nothing(client: FlaskClient) -> None:
    response = post_upload(client, "/api/ingest", year="19")
    assert response.status_code == 422
    assert response.get_json()["errors"]
    assert state_items(client) == []


def test_the_json_endpoint_answers_401_without_a_session(anon: FlaskClient) -> None:
    response = post_upload(anon, "/api/ingest")
    assert response.status_code == 401 and response.get_json() == {"error": "login required"}


def test_a_lost_response_on_the_json_endpoint_is_stored_then_dropped(app: Flask) -> None:
    from sims.faults import ConnectionDropped

    client = app.test_client()
    login(client)
    client.post("/_sim/faults", json={"lost_response_rate": 1.0})
    with pytest.raises(ConnectionDropped):
        post_upload(client, "/api/ingest").get_data()
    assert len(state_items(client)) == 1
    assert client.get("/_sim/faults").get_json()["injected"]["lost_response"] == 1


def test_register_archives_only_when_the_archive_button_was_pressed(client: FlaskClient) -> None:
    page = Page(client.get("/register").get_data(as_text=True))
    buttons = [b for b in page.find_all("button") if b.attrs.get("name") == "op"]
    assert [(b.attrs["name"], b.attrs["value"]) for b in buttons] == [
        ("op", "draft"),
        ("op", "archive"),
    ]
    draft = Page(post_upload(client, "/register", op="draft").get_data(as_text=True))
    assert draft.by_id("not-archived")
    missing = Page(post_upload(client, "/register").get_data(as_text=True))
    assert [li.text for li in missing.one("ul", class_="errors").children] == [
        "未选择操作（暂存或提交归档）：未归档"
    ]
    assert state_items(client) == []
    archived = post_upload(client, "/register", op="archive")
    assert archived.status_code == 303
    [item] = state_items(client)
    assert archived.headers["Location"].endswith(f"/items/{item['archive_id']}?created=1")
