"""Chromium is found in the documented order, or the error says how to get one; the web
steps real applications need work on real Chromium (tiny local pages)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from playwright.sync_api import Browser, Page, Route
from pydantic import TypeAdapter

from bots.drivers.base import ScreenshotRefused, SessionConfig, StepContext
from bots.drivers.web import browser
from bots.drivers.web.http import SessionHttp, accept_language
from bots.drivers.web.runner import StepRunner, join_url
from bots.drivers.web.schema import WebStep
from bots.drivers.web.session import (
    WebSession,
    context_options,
    password_filled,
    screenshot_page,
)
from bots.errors import BrowserNotFound, StepFailed
from bots.recipe import load_recipe
from bots.recipe.model import Timeouts
from tests.conftest import DEMO_RECIPE


def fake_playwright(executable: str) -> SimpleNamespace:
    return SimpleNamespace(chromium=SimpleNamespace(executable_path=executable))


def test_explicit_path_wins(tmp_path: Path) -> None:
    binary = tmp_path / "chrome"
    binary.write_text("")
    assert browser.find_chromium(fake_playwright(""), {"FLEET_CHROMIUM": str(binary)}) == str(
        binary
    )


def test_explicit_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BrowserNotFound, match="does not exist"):
        browser.find_chromium(fake_playwright(""), {"FLEET_CHROMIUM": str(tmp_path / "nope")})


def test_debian_chromium_before_playwrights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    debian = tmp_path / "chromium"
    debian.write_text("")
    bundled = tmp_path / "bundled"
    bundled.write_text("")
    monkeypatch.setattr(browser, "HEADLESS_SHELLS", ())
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUMS", (str(tmp_path / "absent"), str(debian)))
    assert browser.find_chromium(fake_playwright(str(bundled)), {}) == str(debian)


def test_headless_shell_first_unless_headed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Headless runs take Debian's headless shell (half Chromium's CPU per page); a headed
    run needs the whole browser."""
    shell, debian = tmp_path / "chromium-headless-shell", tmp_path / "chromium"
    shell.write_text("")
    debian.write_text("")
    monkeypatch.setattr(browser, "HEADLESS_SHELLS", (str(shell),))
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUMS", (str(debian),))
    assert browser.find_chromium(fake_playwright(""), {}) == str(shell)
    assert browser.find_chromium(fake_playwright(""), {"FLEET_HEADED": "1"}) == str(debian)


def test_playwrights_own_browser_when_no_system_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundled = tmp_path / "bundled"
    bundled.write_text("")
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUMS", ())
    monkeypatch.setattr(browser, "HEADLESS_SHELLS", ())
    assert browser.find_chromium(fake_playwright(str(bundled)), {}) == str(bundled)


def test_no_browser_at_all_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUMS", ())
    monkeypatch.setattr(browser, "HEADLESS_SHELLS", ())
    with pytest.raises(BrowserNotFound) as info:
        browser.find_chromium(fake_playwright(str(tmp_path / "missing")), {})
    message = str(info.value)
    assert "apt-get install chromium" in message and "playwright install chromium" in message
    assert "FLEET_CHROMIUM" in message


# -- the steps real apps need (issue 11), on real Chromium and tiny local pages ----------


class Pages(BaseHTTPRequestHandler):
    """Any path: a tiny page naming it; the headers each request sent are kept."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        Pages.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = f"<!DOCTYPE html><title>t</title><p id=path>{self.path}</p>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def config(
    target: str = "http://127.0.0.1:1/", step_timeout: float = 1.0, **system: Any
) -> SessionConfig:
    """A session's configuration over the demo recipe, with a short step timeout."""
    loaded = load_recipe(DEMO_RECIPE)
    recipe = loaded.recipe.model_copy(update={"timeouts": Timeouts(step=step_timeout)})
    spec = loaded.recipe.source.model_copy(update={"logged_out": None, **system})
    return SessionConfig(
        system="t",
        spec=spec,
        target=target,
        recipe=dataclasses.replace(loaded, recipe=recipe),
        emit=lambda *args, **kwargs: None,
    )


def steps(*items: dict[str, Any]) -> list[Any]:
    return [
        TypeAdapter(WebStep).validate_python({**item, "__line__": n})
        for n, item in enumerate(items, 1)
    ]


def run(page: Page, *items: dict[str, Any], **variables: Any) -> dict[str, Any]:
    context = StepContext(variables=dict(variables), phase="upload")
    StepRunner(page, config()).run(steps(*items), context)
    return context.variables


@pytest.mark.parametrize(
    ("base", "url", "joined"),
    [
        ("http://h/support/", "/support/", "http://h/support/"),
        ("http://h/support/", "/login", "http://h/support/login"),
        ("http://h/support/", "login", "http://h/support/login"),
        ("http://h/support", "/support/login?x=1", "http://h/support/login?x=1"),
        ("http://h/support", "/support", "http://h/support"),
        ("http://h/support/", "/supporters", "http://h/support/supporters"),
        ("http://h/support/", "#/items", "http://h/support/#/items"),
        ("http://h/support/", "?page=2", "http://h/support/?page=2"),
        ("http://h", "/login.do", "http://h/login.do"),
        ("http://h/", "", "http://h/"),
        ("http://h/support/", "https://other/x", "https://other/x"),
        ("http://h/support/", "//other/x", "http://other/x"),
    ],
)
def test_recipe_urls_join_the_base_path_once(base: str, url: str, joined: str) -> None:
    assert join_url(base, url) == joined


def test_goto_under_a_base_path(page: Page, server: str) -> None:
    runner = StepRunner(page, config(f"{server}/support/"))
    for url, path in (
        ("/support/", "/support/"),
        ("/login", "/support/login"),
        ("x", "/support/x"),
    ):
        runner.run(steps({"goto": url}), StepContext(variables={}, phase="login"))
        assert page.locator("#path").inner_text() == path


def test_locale_and_timezone_reach_the_page_and_every_request(
    chromium: Browser, server: str
) -> None:
    session = WebSession(chromium, config(server, locale="de-CH", timezone="Asia/Tokyo"))
    try:
        Pages.seen.clear()
        session.run(steps({"goto": "/"}), StepContext(variables={}, phase="login"))
        assert Pages.seen[-1]["accept-language"] == "de-CH"
        page_ = session.page
        assert page_.evaluate("navigator.language") == "de-CH"
        assert page_.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "Asia/Tokyo"
        http = session.runner.http  # submit, download: {href}
        http.client(server).get(
            f"{server}/own-client", headers=http.browser_headers(page_), timeout=5
        )
        assert Pages.seen[-1]["accept-language"] == "de-CH"
    finally:
        session.close()


def test_without_locale_the_machine_decides() -> None:
    assert context_options(config().spec) == {}
    assert accept_language(["en-US", "en"]) == "en-US,en;q=0.9"  # as Chromium says it


def test_read_pattern_keeps_the_first_group(page: Page) -> None:
    page.set_content("<a class=view href='/report?id=42&x=1'>Report  No. 42 / 2025</a>")
    found = run(
        page,
        {"read": {"selector": "a.view", "property": "href", "pattern": "id=(\\d+)", "into": "id"}},
        {"read": {"selector": "a.view", "pattern": "\\d{4}", "into": "year"}},
        {"read": {"selector": "a.view", "pattern": "id=(\\d+)", "into": "none", "optional": True}},
    )
    assert (found["id"], found["year"], found["none"]) == ("42", "2025", "")
    with pytest.raises(StepFailed) as info:
        run(page, {"read": {"selector": "a.view", "pattern": "id=(\\d+)", "into": "id"}})
    assert "pattern 'id=(\\\\d+)' does not match the value read: 'Report No. 42 / 2025'" in str(
        info.value
    )


def test_set_renders_in_order(page: Page) -> None:
    found = run(
        page,
        {"set": {"id": "{{ row.href | search('id=([0-9]+)') }}", "name": "R-{{ id }}"}},
        row={"href": "/r?id=7"},
    )
    assert (found["id"], found["name"]) == ("7", "R-7")


HIDDEN_FORM = """
<div style='display:none'>
  <input name=a><input name=b><input type=checkbox name=on><input type=checkbox name=off checked>
</div>
<script>
  window.seen = [];
  for (const e of document.querySelectorAll('input'))
    for (const kind of ['input', 'change'])
      e.addEventListener(kind, () => seen.push(kind + ':' + e.name));
</script>
"""


def test_fields_present_but_hidden_are_set_by_script(page: Page) -> None:
    page.set_content(HIDDEN_FORM)
    run(
        page,
        {"fill": {"selector": "input[name=a]", "value": "{{ x }}", "state": "attached"}},
        {"fill": {"fields": {"input[name=b]": "two"}, "state": "attached"}},
        {"check": {"selector": "input[name=on]", "state": "attached"}},
        {"uncheck": {"selector": "input[name=off]", "state": "attached"}},
        x="one",
    )
    assert page.input_value("input[name=a]") == "one" and page.input_value("input[name=b]") == "two"
    assert page.is_checked("input[name=on]") and not page.is_checked("input[name=off]")
    assert page.evaluate("seen") == [
        "input:a",
        "change:a",
        "input:b",
        "change:b",
        "input:on",
        "change:on",
        "input:off",
        "change:off",
    ]


def test_hidden_fields_are_refused_by_default(page: Page) -> None:
    page.set_content(HIDDEN_FORM)
    for step in (
        {"fill": {"selector": "input[name=a]", "value": "x"}},
        {"check": "input[name=on]"},
    ):
        with pytest.raises(StepFailed):
            run(page, step)
    assert page.input_value("input[name=a]") == "" and not page.is_checked("input[name=on]")


def test_expect_states(page: Page) -> None:
    page.set_content("<a class=logout style='display:none' href=/out>out</a>")
    run(
        page,
        {"expect": {"selector": "a.logout", "state": "attached"}},
        {"expect": {"selector": "a.logout", "state": "hidden"}},
        {"expect": {"selector": "a.absent", "state": "hidden"}},
    )
    with pytest.raises(StepFailed, match="expected 'a.logout' on the page, not there after 0.3s"):
        run(page, {"expect": {"selector": "a.logout", "timeout": 0.3}})
    page.set_content("<a class=logout href=/out>out</a>")
    with pytest.raises(StepFailed, match="expected 'a.logout' gone from the page, still shown"):
        run(page, {"expect": {"selector": "a.logout", "state": "hidden", "timeout": 0.3}})


def test_select_several_values_and_labels(page: Page) -> None:
    page.set_content(
        "<select name=tags multiple><option value=fin>Finance</option><option value=ops>Ops"
        "</option><option value=hr>HR</option></select>"
        "<select name=one><option value=''>--</option><option value=a>A</option></select>"
    )
    selected = "e => [...e.selectedOptions].map(o => o.value)"
    run(
        page,
        {
            "select": {
                "selector": "select[name=tags]",
                "value": ["fin", "{{ kind }}", "{{ empty }}"],
            }
        },
        kind="hr",
        empty="",
    )
    assert page.locator("select[name=tags]").evaluate(selected) == ["fin", "hr"]
    run(page, {"select": {"selector": "select[name=tags]", "label": ["Ops"]}})
    assert page.locator("select[name=tags]").evaluate(selected) == ["ops"]
    run(page, {"select": {"selector": "select[name=one]", "value": "a"}})
    run(page, {"select": {"selector": "select[name=one]", "value": "{{ empty }}"}}, empty="")
    assert page.locator("select[name=one]").evaluate(selected) == [""]  # a plain string is kept


def test_page_conditions(page: Page) -> None:
    page.set_content(
        "<form id=login></form><iframe srcdoc='<p id=inside>in</p>'></iframe>"
        "<script>setTimeout(() => document.body.append(Object.assign("
        "document.createElement('a'), {className: 'late'})), 1500)</script>"
    )
    page.frames[-1].wait_for_load_state()
    found = run(
        page,
        {"when": {"selector": "form#login"}, "set": {"login": "yes"}},
        {"when": {"selector": "form#login", "present": False}, "set": {"login": "no"}},
        {"when": {"selector": "a.late"}, "set": {"late_now": "seen"}},
        {"when": {"selector": "a.late", "timeout": 5}, "set": {"late": "seen"}},
        {
            "when": {"selector": "a.never", "present": False, "timeout": 0.2},
            "set": {"never": "gone"},
        },
        {"when": {"selector": "#inside"}, "set": {"page_sees_frame": "yes"}},
        {
            "frame": {
                "selector": "iframe",
                "steps": [{"when": {"selector": "#inside"}, "set": {"frame": "yes"}}],
            }
        },
        {"when": "login == 'yes'", "set": {"expression": "yes"}},
    )
    assert found == {
        "login": "yes",
        "late": "seen",
        "never": "gone",
        "frame": "yes",
        "expression": "yes",
    }


# -- the cost of a document (issue 15): one look for what is absent, one client, pictures --


def test_an_absent_optional_click_costs_one_look_not_its_timeout(page: Page) -> None:
    page.set_content("<p>no announcement today</p>")
    started = time.monotonic()
    run(page, {"click": {"selector": "#notice button.close", "optional": True, "timeout": 10}})
    assert time.monotonic() - started < 5  # one look; waiting would take the 10 s


def test_an_optional_element_in_the_page_gets_its_timeout_to_show(page: Page) -> None:
    """In the page but not shown yet (a banner a script reveals): waited for, clicked."""
    page.set_content(
        "<div id=notice style='display:none'><button class=close "
        "onclick='window.dismissed = true'>x</button></div>"
        "<script>setTimeout(() => notice.style.display = 'block', 300)</script>"
    )
    run(page, {"click": {"selector": "#notice button.close", "optional": True, "timeout": 10}})
    assert page.evaluate("window.dismissed") is True


def test_an_optional_element_a_script_adds_later_is_waited_for_by_a_page_condition(
    page: Page,
) -> None:
    page.set_content(
        "<script>setTimeout(() => document.body.insertAdjacentHTML('beforeend', "
        "\"<div id=late><button onclick='window.dismissed = true'>x</button></div>\"), 300)"
        "</script>"
    )
    run(
        page,
        {
            "when": {"selector": "#late", "timeout": 10},
            "click": {"selector": "#late button", "optional": True},
        },
    )
    assert page.evaluate("window.dismissed") is True


class KeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive offered: each request's client port and cookies kept."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[int, str]]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        KeepAlive.seen.append((self.client_address[1], self.headers.get("Cookie", "")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def test_one_http_client_per_session_with_the_cookies_of_the_moment(chromium: Browser) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/file"
    context = chromium.new_context()
    http = SessionHttp(context)
    try:
        context.add_cookies([{"name": "JSESSIONID", "value": "one", "url": url}])
        first = http.client(url)
        first.get(url, timeout=5)
        # The browser logged in again meanwhile: the next request carries the new id.
        context.add_cookies([{"name": "JSESSIONID", "value": "two", "url": url}])
        assert http.client(url) is first  # built once
        first.get(url, timeout=5)
        [(port_1, cookie_1), (port_2, cookie_2)] = KeepAlive.seen
        assert (cookie_1, cookie_2) == ("JSESSIONID=one", "JSESSIONID=two")
        # A connection of its own per request: the deadline watchdog sees each one made.
        assert port_1 != port_2
    finally:
        http.close()
        context.close()
        httpd.shutdown()
        httpd.server_close()


def routed_page(page: Page, pages: dict[str, str]) -> None:
    """Serve ``pages`` (URL -> HTML) to the page through routes: two origins, no server."""

    def serve(route: Route) -> None:
        route.fulfill(content_type="text/html", body=pages[route.request.url])

    for url in pages:
        page.route(url, serve)


def test_a_password_typed_in_a_frame_of_another_origin_refuses_the_picture(
    page: Page, tmp_path: Path
) -> None:
    routed_page(
        page,
        {
            "http://erp.test/": "<p>ERP</p><iframe src='http://sso.test/login'></iframe>",
            "http://sso.test/login": "<input type=password name=p>",
        },
    )
    page.goto("http://erp.test/")
    frame = page.frame(url="http://sso.test/login")
    assert frame is not None
    assert not password_filled(page)
    screenshot_page(page, tmp_path / "before.png")  # an empty password field: masked, taken
    frame.fill("input[name=p]", "s3cret")
    assert password_filled(page)
    with pytest.raises(ScreenshotRefused):
        screenshot_page(page, tmp_path / "after.png")
    assert not (tmp_path / "after.png").exists()


def test_a_page_taller_than_the_window_is_photographed_whole(page: Page, tmp_path: Path) -> None:
    page.set_viewport_size({"width": 800, "height": 600})
    page.set_content("<p>short</p>")
    screenshot_page(page, tmp_path / "short.png")
    page.set_content("<div style='height: 2000px'>tall</div><p id=end>end</p>")
    screenshot_page(page, tmp_path / "tall.png")
    assert png_size(tmp_path / "short.png") == (800, 600)
    width, height = png_size(tmp_path / "tall.png")
    assert width == 800 and height > 2000


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[16:24]  # the IHDR chunk's width and height
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")


def test_a_row_picture_has_the_pixels_of_playwrights_element_screenshot(
    page: Page, tmp_path: Path
) -> None:
    """Cut from the window after scrolling it into view, in a frame, like a frameset ERP."""
    from PIL import Image, ImageChops

    rows = "".join(f"<tr id=r{n}><td>R{n:06d}</td><td>报表 {n}</td></tr>" for n in range(80))
    page.set_content(f"<iframe style='width: 600px; height: 300px' srcdoc='<table>{rows}</table>'>")
    frame = page.frames[-1]
    frame.wait_for_load_state()
    row = frame.locator("#r60")  # below the frame's fold: it must be scrolled to
    row.screenshot(path=str(tmp_path / "playwright.png"))
    frame.evaluate("window.scrollTo(0, 0)")
    screenshot_page(page, tmp_path / "fleet.png", row)
    ours, theirs = Image.open(tmp_path / "fleet.png"), Image.open(tmp_path / "playwright.png")
    assert ours.size == theirs.size
    assert ImageChops.difference(ours.convert("RGB"), theirs.convert("RGB")).getbbox() is None


def test_rows_of_a_listing_page_cut_from_window_pictures(page: Page, tmp_path: Path) -> None:
    """A page of rows at once (screenshot_rows): each row's picture has the pixels of
    Playwright's own element screenshot, for rows below the frame's fold too; a hidden row
    is refused by itself, the rows after it still taken."""
    from PIL import Image, ImageChops

    from bots.drivers.web.session import screenshot_rows

    rows = "".join(f"<tr id=r{n}><td>R{n:06d}</td><td>报表 {n}</td></tr>" for n in range(40))
    rows = rows.replace("<tr id=r7>", '<tr id=r7 style="display:none">')
    page.set_content(f"<iframe style='width: 600px; height: 300px' srcdoc='<table>{rows}</table>'>")
    frame = page.frames[-1]
    frame.wait_for_load_state()
    wanted = [n for n in range(40) if n != 7]
    for n in wanted:
        frame.locator(f"#r{n}").screenshot(path=str(tmp_path / f"pw-{n}.png"))
    frame.evaluate("window.scrollTo(0, 0)")
    shots = [(tmp_path / f"ours-{n}.png", frame.locator(f"#r{n}")) for n in range(40)]
    refusals = screenshot_rows(page, shots)
    assert isinstance(refusals[7], ScreenshotRefused) and "not visible" in str(refusals[7])
    assert [n for n, refused in enumerate(refusals) if refused is not None] == [7]
    for n in wanted:
        ours = Image.open(tmp_path / f"ours-{n}.png").convert("RGB")
        theirs = Image.open(tmp_path / f"pw-{n}.png").convert("RGB")
        assert ours.size == theirs.size, n
        assert ImageChops.difference(ours, theirs).getbbox() is None, n


def test_rows_are_not_photographed_while_a_password_is_typed(page: Page, tmp_path: Path) -> None:
    from bots.drivers.web.session import screenshot_rows

    page.set_content("<table><tr id=r1><td>R1</td></tr></table><input type=password id=p>")
    page.fill("#p", "s3cret")
    refusals = screenshot_rows(page, [(tmp_path / "r1.png", page.locator("#r1"))])
    assert isinstance(refusals[0], ScreenshotRefused)
    assert not (tmp_path / "r1.png").exists()


def test_a_listing_page_s_plain_css_fields_read_at_once_as_playwright_reads_them(
    page: Page,
) -> None:
    """table reads a page's plain-CSS fields in one round trip (``_read_plain``): each
    value is what Playwright's own per-row look gives; Playwright-only selectors, a row
    with a shadow root (Playwright's CSS pierces it) and a non-HTML element are left to
    that look."""
    from bots.drivers.web.schema import FieldSpec
    from bots.drivers.web.table import _read_plain, _values, plain_css

    page.set_content(
        """<table id=t>
        <tr class=row data-id=1><td>R1</td><td> 月度  报表 </td>
          <td><a href='/r/1'>下载</a></td></tr>
        <tr class=row><td>R2</td><td>无链接</td><td></td></tr>
        <tr class=row data-id=3><td>R3</td><td><div id=host></div></td>
          <td><a href='x?a=1'>下载</a></td></tr>
        <tr class=row data-id=4><td>R4</td><td><svg><text>图</text></svg></td><td></td></tr>
        </table>"""
    )
    page.evaluate(
        "document.querySelector('#host').attachShadow({mode: 'open'}).innerHTML ="
        " '<span class=inner>影子</span>'"
    )
    fields = {
        "id": FieldSpec(selector="td:nth-child(1)"),
        "title": FieldSpec(selector="td:nth-child(2)"),
        "inner": FieldSpec(selector="span.inner", optional=True),
        "svg": FieldSpec(selector="td:nth-child(2) svg text", optional=True),
        "data": FieldSpec(selector=":scope", attr="data-id", optional=True),
        "href": FieldSpec(selector="a", property="href", optional=True),
        "link": FieldSpec(selector="a:text-is('下载')", attr="href", optional=True),
    }
    assert not plain_css("a:text-is('下载')") and not plain_css("text=下载")
    assert not plain_css("div >> a") and not plain_css("//tr") and plain_css("td:nth-child(2)")
    assert not plain_css(":scope")  # Playwright's matches the row itself
    rows = page.locator("#t").locator("tr.row")
    elements = rows.all()
    read = _read_plain(rows, len(elements), fields)
    assert read[2] is None  # the shadow root's row: field by field
    assert read[0] is not None and "link" not in read[0]  # Playwright-only: by Playwright
    assert read[3] is not None and "svg" not in read[3]  # not an HTMLElement: by Playwright
    for element, batch in zip(elements, read, strict=True):
        for name, spec in fields.items():
            theirs = _values(element.locator(spec.selector), spec.attr, spec.property)[:1]
            ours = batch.get(name) if batch is not None else None
            if ours is not None:
                assert ours == theirs, (name, ours, theirs)
    assert read[0]["href"][0].endswith("/r/1") and read[1]["href"] == []
