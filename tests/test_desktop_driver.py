"""The desktop driver against a small Tk client (tests/fakes/tkclient.py) on a real Xvfb:
focus and typing (with and without a window manager), untitled dialogs, images, the
save-dialog helper, the dismiss list, passwords kept out of logs and screenshots, and
the errors a recipe author sees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from bots.drivers import ScreenshotRefused, SessionConfig, StepContext
from bots.drivers.desktop.display import Display
from bots.drivers.desktop.errors import (
    DisplayUnavailable,
    FailSafeTriggered,
    FocusLost,
    ImageNotFound,
    WindowNotFound,
)
from bots.drivers.desktop.runner import HANDLERS
from bots.drivers.desktop.schema import DESKTOP_STEPS
from bots.drivers.desktop.session import DesktopSession
from bots.errors import RecipeError
from bots.files import safe_filename
from bots.recipe import LoadedRecipe, load_recipe
from tests.conftest import ROOT
from tests.fakes.tkclient import CONTENT, MAIN_TITLE, SUGGESTED
from tests.xserver import XServer

CLIENT = ROOT / "tests" / "fakes" / "tkclient.py"
SCHEDULE = ROOT / "tests" / "fakes" / "schedule.yaml"
PASSWORD = "s3cret-pw"

RECIPE = """\
recipe: desktop-test
source:
  driver: desktop
  system: 测试客户端 (Tk)
  credential: demo-desktop
  app:
{app}
  logged_out: 登录
{extra}
  window:
    start: "2000-01-01"
    end: "{{{{ today }}}}"
  login:
{login}
  list:
    - table:
        columns:
          {{id: 报表编号, title: 报表名称, kind: 类别, department: 部门, date: 日期, size: 大小}}
        key: "{{{{ row.id }}}}"
  download:
{download}
archive:
  system: 档案系统
  base_url: http://127.0.0.1:1
  credential: demo-archive
  login:
    - goto: /login
  upload:
    - upload: {{selector: "#file"}}
    - read: {{selector: "#id", into: archive_id}}
timeouts: {{step: 3, download: 20}}
retention_schedule: schedule.yaml
metadata:
  fonds: Z109
  category: KU
  year: "{{{{ row.date[:4] }}}}"
  retention: "{{{{ schedule.retention }}}}"
  department: "{{{{ schedule.department }}}}"
  title: "{{{{ row.title }}}}"
  author: "{{{{ row.department }}}}"
  date: "{{{{ row.date | replace('-', '') }}}}"
  doc_number: ""
  classification: 内部
  pages: "1"
"""


def icon_png(path: Path, colour: str = "red", size: tuple[int, int] = (48, 32)) -> Path:
    """A small, distinctive picture: a coloured block with a ring in it."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle([4, 4, w - 5, h - 5], fill=colour)
    draw.ellipse([w // 4, h // 4, 3 * w // 4, 3 * h // 4], outline="black", width=3)
    draw.line([4, h - 5, w - 5, 4], fill="yellow", width=2)
    image.save(path)
    return path


def write_recipe(
    folder: Path,
    login: str,
    download: str = "- download: {dialog: 另存为, done: 提示, settle: 0.6}",
    app: str = f"windows: [{MAIN_TITLE}]",
    extra: str = "",
) -> Path:
    shutil.copy(SCHEDULE, folder / "schedule.yaml")
    if not (folder / "icon.png").exists():
        icon_png(folder / "icon.png")
    path = folder / "recipe.yaml"
    path.write_text(
        RECIPE.format(
            app=textwrap.indent(textwrap.dedent(app).strip(), "    "),
            extra=textwrap.indent(textwrap.dedent(extra).strip(), "  "),
            login=textwrap.indent(textwrap.dedent(login).strip(), "    "),
            download=textwrap.indent(textwrap.dedent(download).strip(), "    "),
        ),
        encoding="utf-8",
    )
    return path


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def state(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "state.json").read_text(encoding="utf-8"))


def wait_for(check: Any, timeout: float = 5.0) -> Any:
    """``check()`` until truthy, bounded (the client answers in milliseconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)  # polling the client's state file; bounded by the deadline


@contextmanager
def tk_client(server: XServer, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The Tk client on ``server``, killed by PID afterwards."""
    icon = folder / "icon.png"
    if not icon.exists():
        icon_png(icon)
    process = subprocess.Popen(
        [sys.executable, str(CLIENT), str(folder / "state.json"), str(icon)],
        env=server.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: (folder / "state.json").exists(), 15), "the Tk client did not start"
        # Its state file is written before its window is mapped (under a window manager,
        # a while before): the session must find the client running, not start one.
        shown = Display(server.display)
        try:
            assert wait_for(lambda: shown.windows(MAIN_TITLE), 15), "no Tk client window shown"
        finally:
            shown.close()
        yield process
    finally:
        process.kill()
        process.wait(timeout=5)


@dataclass
class Credential:
    username: str
    password: str


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, **fields: Any) -> None:
        self.seen.append((event, fields))

    def text(self) -> str:
        return json.dumps(self.seen, ensure_ascii=False, default=str)


@contextmanager
def session(
    server: XServer, loaded: LoadedRecipe, monkeypatch: pytest.MonkeyPatch, events: Events
) -> Iterator[DesktopSession]:
    monkeypatch.setenv("DISPLAY", server.display)
    config = SessionConfig(
        loaded.recipe.source.system, loaded.recipe.source, MAIN_TITLE, loaded, events
    )
    opened = DesktopSession(config, server.env())
    try:
        yield opened
    finally:
        opened.close()


def login(opened: DesktopSession, loaded: LoadedRecipe, **variables: Any) -> StepContext:
    context = StepContext(
        variables={"credential": Credential("clerk", PASSWORD), **variables}, phase="login"
    )
    opened.run(loaded.recipe.source.login, context)
    return context


# -- the tests ------------------------------------------------------------------------------


def test_every_desktop_step_kind_has_a_handler() -> None:
    assert set(HANDLERS) == set(DESKTOP_STEPS)


def test_focus_and_typing_reach_the_entry(
    any_xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_recipe(tmp_path, f"- focus: {MAIN_TITLE}\n- type: hello 123")
    loaded = load_recipe(path)
    events = Events()
    with (
        tk_client(any_xserver, tmp_path),
        session(any_xserver, loaded, monkeypatch, events) as opened,
    ):
        login(opened, loaded)
        assert wait_for(lambda: state(tmp_path)["entry"] == "hello 123"), state(tmp_path)
        assert opened.location == f"window {MAIN_TITLE!r}"
    steps = [fields for name, fields in events.seen if name == "step"]
    assert [s["step"] for s in steps] == ["focus", "type"]
    assert "hello" not in events.text()  # what was typed is never logged


def test_a_password_typed_into_an_untitled_dialog_is_never_logged_or_photographed(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_recipe(
        tmp_path,
        f"""
        - press: {{keys: ctrl+d, window: {MAIN_TITLE}}}
        - type: {{text: "{{{{ credential.password }}}}", window: ""}}
        """,
    )
    loaded = load_recipe(path)
    events = Events()
    with tk_client(xserver, tmp_path), session(xserver, loaded, monkeypatch, events) as opened:
        login(opened, loaded)
        assert opened.location == "an untitled window"
        with pytest.raises(ScreenshotRefused, match="a password was typed into an untitled"):
            opened.screenshot(tmp_path / "shot.png")
        assert not (tmp_path / "shot.png").exists()
        from bots.drivers.desktop import keys

        keys.press("enter")  # the dialog takes it and closes
        assert wait_for(lambda: state(tmp_path)["secret"] == PASSWORD)
        assert wait_for(lambda: not opened.display.windows(""))
        opened.screenshot(tmp_path / "shot.png")  # the window is gone: allowed again
        assert (tmp_path / "shot.png").read_bytes().startswith(b"\x89PNG")
    assert PASSWORD not in events.text()


def test_a_keyboard_step_with_no_window_focused_yet_says_so(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_recipe(tmp_path, "- press: enter")
    loaded = load_recipe(path)
    with (
        tk_client(xserver, tmp_path),
        session(xserver, loaded, monkeypatch, Events()) as opened,
        pytest.raises(FocusLost) as info,
    ):
        login(opened, loaded)
    assert str(info.value).startswith(f"{path}:{line_of(path, '- press: enter')}: step 'press'")
    assert "give the step a `window:`" in str(info.value)


def test_an_image_is_clicked_and_a_missing_one_times_out_with_its_best_score(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    icon_png(tmp_path / "absent.png", colour="green", size=(40, 40))
    path = write_recipe(
        tmp_path,
        """
        - click: icon.png
        - wait_image: {image: absent.png, timeout: 1}
        """,
    )
    loaded = load_recipe(path)
    with tk_client(xserver, tmp_path), session(xserver, loaded, monkeypatch, Events()) as opened:
        with pytest.raises(ImageNotFound) as info:
            login(opened, loaded)
        assert wait_for(lambda: state(tmp_path)["clicked"] == 1), state(tmp_path)
    error = info.value
    assert str(error).startswith(f"{path}:{line_of(path, 'absent.png')}: step 'wait_image'")
    assert -1.0 <= error.score < 0.9
    assert f"best match score {error.score:.3f}" in str(error)


def test_a_missing_or_oversized_image_fails_when_the_recipe_loads(tmp_path: Path) -> None:
    icon_png(tmp_path / "huge.png", size=(1400, 60))
    (tmp_path / "text.png").write_text("not a picture", encoding="utf-8")
    path = write_recipe(
        tmp_path,
        """
        - click: nowhere.png
        - wait_image: huge.png
        - when: {selector: "image:text.png"}
          press: {keys: enter, window: x}
        """,
    )
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    problems = dict(info.value.problems)
    assert "does not exist" in problems[f"{path}:{line_of(path, 'nowhere.png')}"]
    assert "is 1400x60, larger than the screen" in problems[f"{path}:{line_of(path, 'huge.png')}"]
    assert "not a PNG or JPEG" in problems[f"{path}:{line_of(path, 'image:text.png')}"]


def test_an_unknown_key_name_fails_when_the_recipe_loads(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, "- press: [tab, ctrl+entr]")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    [(where, what)] = info.value.problems
    assert where == f"{path}:{line_of(path, 'ctrl+entr')}"
    assert "unknown key 'entr' in 'ctrl+entr' (did you mean 'enter'?)" in what


def test_the_save_helper_never_takes_a_half_written_file(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_recipe(
        tmp_path,
        f"- focus: {MAIN_TITLE}",
        download=f"""
        - press: {{keys: ctrl+s, window: {MAIN_TITLE}}}
        - download: {{dialog: 另存为, done: 提示, settle: 0.6}}
        """,
    )
    loaded = load_recipe(path)
    staging = tmp_path / "staging"
    events = Events()
    with tk_client(xserver, tmp_path), session(xserver, loaded, monkeypatch, events) as opened:
        context = StepContext(variables={}, phase="download", key="R0001", staging_dir=staging)
        outcome = opened.run(loaded.recipe.source.download, context)
    staged = outcome.downloaded
    assert staged is not None
    assert staged.filename == safe_filename(SUGGESTED, "x") and staged.original == SUGGESTED
    assert staged.path.read_bytes() == CONTENT  # whole, though the client wrote it in parts
    assert staged.size == len(CONTENT)
    assert [p.name for p in staging.iterdir() if p.is_file()] == [staged.filename]


def test_the_dismiss_list_closes_a_focus_stealing_notice_before_the_next_step(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_recipe(
        tmp_path,
        f"""
        - press: {{keys: ctrl+m, window: {MAIN_TITLE}}}
        - type: {{text: after, window: {MAIN_TITLE}}}
        """,
        extra="dismiss: [系统消息]",
    )
    loaded = load_recipe(path)
    events = Events()
    with tk_client(xserver, tmp_path), session(xserver, loaded, monkeypatch, events) as opened:
        # The press waits until the client has handled Ctrl+M (it answers a ping only
        # then): the notice is up, holding the focus, when the `type` step begins.
        login(opened, loaded)
        assert not opened.display.windows("系统消息")
        assert wait_for(lambda: state(tmp_path)["entry"] == "after"), state(tmp_path)
    assert (
        "dismissed",
        {"key": None, "system": "测试客户端 (Tk)", "window": "系统消息", "outcome": "ok"},
    ) in events.seen


def test_a_window_that_never_appears_names_the_line_and_what_is_open(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_recipe(tmp_path, "- focus: {title: 登录, timeout: 0.5}")
    loaded = load_recipe(path)
    with tk_client(xserver, tmp_path), session(xserver, loaded, monkeypatch, Events()) as opened:
        assert not opened.is_logged_out()
        with pytest.raises(WindowNotFound) as info:
            login(opened, loaded)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_of(path, 'focus:')}: step 'focus'")
    assert f"no window '登录' appeared within 0.5s; open now: '{MAIN_TITLE}'" in message


def test_the_session_starts_the_client_when_it_is_not_running_and_ends_it_on_close(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    icon_png(tmp_path / "icon.png")
    path = write_recipe(
        tmp_path,
        f"- focus: {MAIN_TITLE}",
        app=f"""
        command: ["{sys.executable}", "{CLIENT}", "{tmp_path / "state.json"}", "icon.png"]
        windows: [{MAIN_TITLE}]
        start_timeout: 15
        """,
    )
    loaded = load_recipe(path)
    events = Events()
    with session(xserver, loaded, monkeypatch, events) as opened:
        login(opened, loaded)
        process = opened.process
        assert process is not None and process.poll() is None
    assert process.poll() is not None  # ended with the session
    assert events.seen[0] == ("client_started", {"system": "测试客户端 (Tk)", "pid": process.pid})


def test_no_display_is_a_usage_error_naming_xvfb_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    loaded = load_recipe(write_recipe(tmp_path, f"- focus: {MAIN_TITLE}"))
    config = SessionConfig("x", loaded.recipe.source, MAIN_TITLE, loaded, Events())
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    with pytest.raises(DisplayUnavailable) as info:
        DesktopSession(config, env)
    message = str(info.value)
    assert "\n" not in message and "DISPLAY is not set" in message
    # The fix, ready to paste: this recipe, under a display of the size it asks for.
    assert f'xvfb-run -a -s "-screen 0 1280x1024x24" python runner.py run {loaded.path}' in message
    assert info.value.exit_code == 2


def test_a_menu_step_waits_for_the_posted_menu_before_picking(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_recipe(tmp_path, f"- menu: {{keys: [alt+f, m], window: {MAIN_TITLE}}}")
    loaded = load_recipe(path)
    with tk_client(xserver, tmp_path), session(xserver, loaded, monkeypatch, Events()) as opened:
        login(opened, loaded)
        assert wait_for(lambda: state(tmp_path).get("menu")), state(tmp_path)


def test_ocr_reads_what_the_window_shows(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tesseract (with Chinese) is installed by scripts/setup.sh; without it this fails
    # with the driver's own message naming the packages, which is the point too.
    path = write_recipe(
        tmp_path,
        f"""
        - type: {{text: "ORDER 47113", window: {MAIN_TITLE}}}
        - read: {{from: ocr, window: {MAIN_TITLE}, into: number, pattern: "(\\\\d{{5}})"}}
        """,
    )
    loaded = load_recipe(path)
    with tk_client(xserver, tmp_path), session(xserver, loaded, monkeypatch, Events()) as opened:
        context = login(opened, loaded)
    # The label under the entry echoes it: the number is read off the screen's pixels.
    assert context.variables["number"] == "47113"


def test_the_fail_safe_stays_on_and_stops_the_run_as_a_system_error(
    xserver: XServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A person who wants the bot to stop pushes the mouse into a corner of the screen.
    path = write_recipe(tmp_path, f"- type: {{text: never, window: {MAIN_TITLE}}}")
    loaded = load_recipe(path)
    with tk_client(xserver, tmp_path), session(xserver, loaded, monkeypatch, Events()) as opened:
        subprocess.run(
            ["xdotool", "mousemove", "0", "0"], env=xserver.env(), check=True, timeout=10
        )
        with pytest.raises(FailSafeTriggered) as info:
            login(opened, loaded)
    assert info.value.exit_code == 3 and not info.value.retryable
    assert "fail-safe" in str(info.value)
    assert state(tmp_path)["entry"] == ""  # nothing was typed
