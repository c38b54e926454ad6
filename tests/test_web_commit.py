"""The web driver sends what may commit itself, once: `submit`'s pressed button, and the
page's own upload requests while upload steps run (bots/drivers/web/commit.py).

Real Chromium against the archive simulator (its /register and /upload pages).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from bench.chaos import upload_recipe
from bots.demo import simulator
from bots.drivers.base import SessionConfig, StepContext
from bots.drivers.web.schema import WebStep
from bots.drivers.web.session import WebDriver, WebSession
from bots.drivers.web.transfer import _FORM_DATA_JS
from bots.errors import TransientError
from bots.recipe import load_recipe
from sims.control import get_json, post_json

META = {
    "fonds": "Z109",
    "category": "KU",
    "year": "2025",
    "retention": "D10",
    "department": "CWB",
    "title": "2025年1月资金日报表",
    "author": "财务部",
    "date": "20250131",
    "doc_number": "",
    "classification": "内部",
    "pages": "1",
    "remarks": "源系统报表编号 T1",
}


@dataclass
class Archive:
    url: str
    session: WebSession
    recipes: Path
    commits: list[str] = field(default_factory=list)

    def items(self) -> list[dict[str, Any]]:
        return get_json(f"{self.url}/_sim/state")["items"]

    def context(self, phase: str, **variables: Any) -> StepContext:
        base = {"credential": {"username": "archivist", "password": "archivist-demo"}}
        return StepContext(
            {**base, **variables}, phase=phase, on_commit=lambda: self.commits.append(phase)
        )

    def open(self, upload: str) -> WebSession:
        """A session on the archive for the demo recipe rewritten for ``upload``, logged in."""
        loaded = load_recipe(upload_recipe(upload, self.recipes / upload))
        config = SessionConfig(
            system="档案系统",
            spec=loaded.recipe.archive,
            target=self.url,
            recipe=loaded,
            emit=lambda *args, **kwargs: None,
        )
        self.session.close()
        self.session = self.driver.open(config)
        self.session.run(config.spec.login, self.context("login"))
        self.commits.clear()
        return self.session

    driver: Any = None


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    tmp = tmp_path_factory.mktemp("commit")
    driver = WebDriver({})
    with simulator(
        "sims.archive", ["--data", str(tmp / "data"), "--latency-ms", "0,5"], tmp / "archive.log"
    ) as url:
        try:
            loaded = load_recipe(upload_recipe("dnd", tmp / "first"))
            session = driver.open(
                SessionConfig("档案系统", loaded.recipe.archive, url, loaded, lambda *a, **k: None)
            )
            yield Archive(url, session, tmp, driver=driver)
        finally:
            driver.close()


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "资金日报表.csv"
    path.write_bytes("日期,金额\n2025-01-31,100\n".encode("gbk") * 200)
    return path


def steps(*raw: Any) -> Any:
    return TypeAdapter(list[WebStep]).validate_python(list(raw))


# -- submit: the pressed button ------------------------------------------------------------

FORM = """<form id=f action=/go method=post>
  <input name=title value=t>
  <button type=button name=noop value=1>not a submitter</button>
  <button name=op value=draft id=draft>暂存</button>
  <button type=submit name=op value=archive id=archive formaction=/other>归档</button>
  <input type=image name=pic id=pic alt=pic>
</form>
<form id=g><input type=submit name=x value=y id=foreign></form>"""


def form_data(archive: Archive, pressed: str | None) -> Any:
    page = archive.session.context.new_page()
    try:
        page.set_content(FORM)
        button = page.locator(pressed).element_handle() if pressed else None
        return page.locator("#f").evaluate(_FORM_DATA_JS, button)
    finally:
        page.close()


def test_the_first_submit_button_is_pressed_by_default(archive: Archive) -> None:
    fields, action, method = form_data(archive, None)
    assert fields == [["title", "t", False], ["op", "draft", False]]
    assert (action, method) == ("/go", "POST")


def test_the_button_given_is_pressed_and_its_formaction_wins(archive: Archive) -> None:
    fields, action, _ = form_data(archive, "#archive")
    assert fields == [["title", "t", False], ["op", "archive", False]]
    assert action == "/other"
    fields, _, _ = form_data(archive, "#pic")
    assert fields == [["title", "t", False], ["pic.x", "0", False], ["pic.y", "0", False]]


def test_a_button_of_another_form_is_refused(archive: Archive) -> None:
    assert form_data(archive, "#foreign") == "the button given does not belong to the form"


def test_submit_archives_only_with_the_button_the_server_needs(
    archive: Archive, report: Path
) -> None:
    session = archive.open("register")
    before = len(archive.items())
    # The default submitter is 暂存 (op=draft): the server keeps nothing.
    draft = steps(
        {"goto": "/register"},
        {"upload": {"selector": "#register-file"}},
        {"submit": "#register-form"},
        {"wait_for": "#not-archived"},
    )
    session.run(draft, archive.context("upload", file={"path": str(report)}))
    assert len(archive.items()) == before
    # The recipe's steps press 提交归档 (button: "#archive-btn").
    variables = {"meta": META, "file": {"path": str(report)}}
    context = archive.context("upload", **variables)
    session.run(session.config.spec.upload, context)
    items = archive.items()
    assert len(items) == before + 1
    assert items[-1]["archive_id"] == context.variables["archive_id"]
    assert items[-1]["filename"] == report.name
    assert archive.commits == ["upload", "upload"]  # each submit said so before sending


# -- the page's own upload requests ----------------------------------------------------------


def test_an_xhr_upload_is_sent_by_the_fleet_once(archive: Archive, report: Path) -> None:
    session = archive.open("dnd")
    before = len(archive.items())
    context = archive.context("upload", meta=META, file={"path": str(report)})
    session.run(session.config.spec.upload, context)
    items = archive.items()
    assert len(items) == before + 1
    item = items[-1]
    assert item["archive_id"] == context.variables["archive_id"]
    assert item["reference_code"] == context.variables["reference_code"]
    # The file the browser leaves out of the body it shows was filled in, whole.
    assert item["filename"] == report.name and item["size"] == report.stat().st_size
    assert archive.commits == ["upload"]


def test_a_lost_xhr_answer_is_an_unknown_outcome(archive: Archive, report: Path) -> None:
    session = archive.open("dnd")
    before = len(archive.items())
    post_json(f"{archive.url}/_sim/faults", {"seed": 1, "lost_response_rate": 1.0})
    try:
        context = archive.context("upload", meta=META, file={"path": str(report)})
        with pytest.raises(TransientError, match="whether it was taken is unknown"):
            session.run(session.config.spec.upload, context)
    finally:
        post_json(f"{archive.url}/_sim/faults", {})
    assert len(archive.items()) == before + 1  # stored once: nothing sent it again
    assert archive.commits == ["upload"]
    assert session.page.locator("p.upload-failed").count() == 1  # the page saw it fail


def test_a_routed_answer_sets_its_cookies_and_its_redirect_is_followed(archive: Archive) -> None:
    """The login form, posted while routing: the new session cookie reaches the browser."""
    session = archive.open("dnd")
    session.run(steps({"goto": "/logout"}), archive.context("login"))
    assert not session.context.cookies(archive.url)
    login = steps(
        {"fill": {"selector": "#sidebar input[name=username]", "value": "archivist"}},
        {"fill": {"selector": "#sidebar input[name=password]", "value": "archivist-demo"}},
        {"click": {"selector": "#login-form button[type=submit]", "navigates": True}},
    )
    session.run(login, archive.context("upload"))
    assert session.location.endswith("/dashboard")  # the 303 answer, followed by the browser
    assert archive.commits and archive.commits[0] == "upload"  # the login POST, routed
    cookies = {c["name"] for c in session.context.cookies(archive.url)}
    assert cookies  # the session cookie set by the routed answer
    session.run(steps({"goto": "/upload"}), archive.context("list"))
    assert not session.is_logged_out()


def test_idempotent_requests_are_not_routed(archive: Archive) -> None:
    session = archive.open("dnd")
    session.run(steps({"goto": "/items"}, {"goto": "/upload"}), archive.context("upload"))
    assert archive.commits == []
