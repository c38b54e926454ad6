"""The desktop client simulator (sims/desktop) under a real X server, driven with xdotool,
xprop and xclip only: exact window titles, login, queries, exports, faults, idle logout.

Every wait is a poll with a deadline. The only fixed pauses are the clerk's own pause in
the save dialog, which is the behaviour under test (an Enter within 0.5 s is swallowed).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sims.control import get_json, post_json
from tests.conftest import ROOT
from tests.xserver import XServer

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("Xvfb", "xdotool", "xprop", "xclip")),
    reason="needs Xvfb, xdotool, xprop and xclip (scripts/setup.sh installs them)",
)

DEADLINE = 10.0
POLL = 0.05  # seconds between two looks at the X server or the state port
SWALLOW_PAUSE = 0.7  # the clerk's pause before Enter in 另存为 (the client swallows < 0.5 s)
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = DEADLINE) -> T:
    """Poll ``probe`` until it returns something truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(POLL)
    raise AssertionError(f"within {timeout:.0f} s: {what} (last seen: {last!r})")


@dataclass
class Sim:
    process: subprocess.Popen[bytes]
    url: str
    server: XServer
    home: Path

    def x(self, *args: str) -> str:
        result = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=DEADLINE, check=False
        )
        return result.stdout

    @property
    def env(self) -> dict[str, str]:
        base = {"PATH": os.environ["PATH"], "HOME": str(self.home), "LANG": "C.UTF-8"}
        return self.server.env(base)

    def state(self) -> dict[str, Any]:
        return get_json(self.url + "/_sim/state")  # type: ignore[no-any-return]

    def windows(self, pattern: str) -> list[str]:
        return self.x("xdotool", "search", "--onlyvisible", "--name", pattern).split()

    def window(self, title: str, timeout: float = DEADLINE) -> str:
        pattern = "^" + re.escape(title) + "$"
        return wait_for(f"a window titled {title!r}", lambda: self.windows(pattern), timeout)[0]

    def untitled(self) -> str:
        """The visible window whose WM_NAME and _NET_WM_NAME are both set and empty."""

        def probe() -> str | None:
            for wid in self.windows("^$"):
                props = self.x("xprop", "-id", wid, "WM_NAME", "_NET_WM_NAME")
                # xprop prints an empty UTF8_STRING as nothing at all after the "="
                lines = [line.rstrip().removesuffix('""').rstrip() for line in props.splitlines()]
                if lines == ["WM_NAME(UTF8_STRING) =", "_NET_WM_NAME(UTF8_STRING) ="]:
                    return wid
            return None

        return wait_for("the untitled password dialog", probe)

    def gone(self, wid: str) -> None:
        wait_for(
            f"window {wid} closed",
            lambda: wid not in self.x("xdotool", "search", "--onlyvisible", "--name", ".*").split(),
        )

    def focus(self, wid: str) -> None:
        verb = "windowactivate" if self.server.wm else "windowfocus"
        self.x("xdotool", verb, "--sync", wid)

    def keys(self, *keys: str) -> None:
        self.x("xdotool", "key", "--clearmodifiers", *keys)

    def type(self, text: str) -> None:
        self.x("xdotool", "type", "--delay", "10", text)

    def clipboard(self) -> str:
        return self.x("xclip", "-o", "-selection", "clipboard")

    def focused(self) -> str:
        return self.x("xdotool", "getwindowfocus").strip()


@contextmanager
def desktop(server: XServer, home: Path, *args: str) -> Iterator[Sim]:
    """The simulator on ``server``, READY read with a deadline, always stopped by PID."""
    env = server.env()
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [sys.executable, "-m", "sims.desktop", "--state-port", "0", "--latency-ms", "0,0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=20)
        line = process.stdout.readline().decode() if ready else ""
        match = re.fullmatch(r"READY (http://127\.0\.0\.1:\d+) desktop\n", line)
        assert match, f"no READY line within 20 s: {line!r}"
        yield Sim(process, match.group(1), server, home)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def log_in(sim: Sim, password: str = "clerk-demo") -> None:
    tip = sim.window("每日提示")
    sim.focus(tip)
    sim.keys("Return")
    sim.gone(tip)
    login = sim.window("用户登录")
    sim.focus(login)
    sim.type("clerk")
    sim.keys("Return")
    prompt = sim.untitled()
    sim.focus(prompt)
    sim.type(password)
    sim.keys("Return")


def query_all(sim: Sim) -> str:
    """On 全部报表: the whole of 2025 (every start-up report)."""
    main = sim.window("财务管理系统")
    sim.focus(main)
    sim.keys("alt+a", "ctrl+f")
    sim.type("2025-01-01")
    sim.keys("Tab", "ctrl+a")
    sim.type("2025-12-31")
    sim.keys("Return")
    return main


def save_as(sim: Sim, path: Path) -> None:
    """Type ``path`` in 另存为; the quick Enter is swallowed, a later one saves."""
    dialog = sim.window("另存为")
    sim.focus(dialog)
    sim.type(str(path))
    sim.keys("Return")  # at once: only closes the autocompletion
    sim.keys("ctrl+a", "ctrl+c")  # handled after the Enter: proves it was seen
    wait_for("the typed path in the clipboard", lambda: sim.clipboard() == str(path))
    assert sim.windows("^另存为$"), "an Enter right after typing must not save"
    assert not path.exists()
    time.sleep(SWALLOW_PAUSE)  # the clerk's pause: the behaviour under test
    sim.keys("Return")
    sim.gone(dialog)


def test_titles_are_exact_and_a_wrong_password_says_so(xserver: XServer, tmp_path: Path) -> None:
    with desktop(xserver, tmp_path) as sim:
        for title in ("每日提示", "用户登录"):  # both mapped before READY
            wid = sim.windows(f"^{title}$")
            assert wid, f"{title} not on screen at READY"
            props = sim.x("xprop", "-id", wid[0], "WM_NAME", "_NET_WM_NAME")
            assert f'WM_NAME(UTF8_STRING) = "{title}"' in props
            assert f'_NET_WM_NAME(UTF8_STRING) = "{title}"' in props
        log_in(sim, password="wrong")
        failed = sim.window("登录失败")
        assert sim.state()["session"] == {"logged_in": False, "user": None}
        sim.focus(failed)
        sim.keys("Escape")
        sim.gone(failed)
        assert sim.windows("^用户登录$")
        assert not sim.windows("^财务管理系统$")


def test_list_export_is_the_grid_in_gbk_held_open_until_the_message_goes(
    xserver: XServer, tmp_path: Path
) -> None:
    target = tmp_path / "list.csv"
    with desktop(xserver, tmp_path) as sim:
        log_in(sim)
        main = query_all(sim)
        sim.keys("ctrl+l")
        options = sim.window("导出选项")
        sim.focus(options)
        sim.keys("alt+a", "Return")  # 全部记录, not the default 选中行
        save_as(sim, target)
        message = sim.window("提示")
        half = sim.state()["exports"]
        assert [(e["path"], e["complete"]) for e in half] == [(str(target), False)]
        assert target.stat().st_size == half[0]["size"]
        sim.focus(message)
        sim.keys("Return")
        done = wait_for(
            "the export complete", lambda: [e for e in sim.state()["exports"] if e["complete"]]
        )
        assert target.stat().st_size == done[0]["size"] > half[0]["size"]
        viewer = sim.window("查看 - list.csv")  # 导出后打开文件 was left on
        wait_for("the viewer holding the focus", lambda: sim.focused() == viewer)
        rows = list(csv.reader(io.StringIO(target.read_bytes().decode("gbk"), newline="")))
        assert rows[0] == ["报表编号", "报表名称", "类别", "部门", "报表日期", "大小(字节)"]
        expected = [
            [r["id"], r["title"], r["kind"], r["department"], r["date"], str(r["size"])]
            for r in sorted(sim.state()["reports"], key=lambda r: (r["date"], r["id"]))
        ]
        assert rows[1:] == expected
        assert main in sim.windows("^财务管理系统$")


def test_report_export_has_the_catalogue_digest_under_openbox(
    xserver_wm: XServer, tmp_path: Path
) -> None:
    target = tmp_path / "report.xlsx"
    with desktop(xserver_wm, tmp_path) as sim:
        log_in(sim)
        query_all(sim)
        sim.keys("ctrl+g")
        locate = sim.window("定位报表")
        sim.focus(locate)
        sim.type("R000003")
        sim.keys("Return")
        sim.gone(locate)
        main = sim.window("财务管理系统")
        sim.focus(main)
        sim.keys("ctrl+c")  # the located row is selected and focused
        copied = wait_for("the row on the clipboard", lambda: sim.clipboard().splitlines())
        assert copied[0].split("\t")[0] == "报表编号"
        assert [line.split("\t")[0] for line in copied[1:]] == ["R000003"]
        sim.keys("ctrl+e")
        options = sim.window("导出选项")
        sim.focus(options)
        sim.keys("alt+o", "Return")  # 导出后打开文件 off
        save_as(sim, target)
        message = sim.window("提示")
        sim.focus(message)
        sim.keys("Return")
        export = wait_for(
            "the export complete", lambda: [e for e in sim.state()["exports"] if e["complete"]]
        )[0]
        truth = next(r for r in sim.state()["reports"] if r["id"] == "R000003")
        assert export["id"] == "R000003"
        assert hashlib.sha256(target.read_bytes()).hexdigest() == truth["sha256"]


def test_faults_round_trip_and_the_error_fault_replaces_the_login(
    xserver: XServer, tmp_path: Path
) -> None:
    with desktop(xserver, tmp_path, "--faults", '{"error_rate": 1, "seed": 3}') as sim:
        assert get_json(sim.url + "/_sim/faults")["config"] == {"error_rate": 1, "seed": 3}
        log_in(sim)
        sim.window("错误")
        injected = get_json(sim.url + "/_sim/faults")["injected"]
        assert injected["error"] == 1 and set(injected) == {
            "error",
            "session_expiry",
            "latency_spike",
            "truncate",
            "focus_steal",
        }
        assert post_json(sim.url + "/_sim/faults", {"focus_steal_rate": 0.5})["config"] == {
            "focus_steal_rate": 0.5
        }
        with pytest.raises(urllib.error.HTTPError) as refused:
            post_json(sim.url + "/_sim/faults", {"html_instead_rate": 1})
        assert refused.value.code == 400
        assert not sim.state()["session"]["logged_in"]
        sim.process.send_signal(signal.SIGTERM)
        assert sim.process.wait(timeout=5) == 0


def test_idle_client_logs_out_to_the_login(xserver: XServer, tmp_path: Path) -> None:
    with desktop(xserver, tmp_path, "--idle-timeout", "1.5") as sim:
        log_in(sim)
        main = sim.window("财务管理系统")
        assert sim.state()["session"] == {"logged_in": True, "user": "clerk"}
        sim.gone(main)
        assert sim.windows("^用户登录$")
        assert sim.state()["session"]["logged_in"] is False
