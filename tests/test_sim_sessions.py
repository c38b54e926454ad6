"""The ERP and archive simulators count logged-in sessions and enforce a licence cap.

The fleet must stay under a legacy system's cap on concurrent logins; the simulators'
``/_sim/state`` ``sessions`` counts are the ground truth a fleet test judges that by, so
they are proven here against real concurrent logins: each simulator served by Werkzeug's
threaded server (as ``python -m sims.*`` serves it), one HTTP client per "browser", the
logins released together by a barrier. Time is an injected fake clock, so idle expiry is
tested without sleeping.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from werkzeug.serving import make_server

from sims.archive.app import MSG_FULL as ARCHIVE_FULL
from sims.archive.app import create_app as create_archive
from sims.erp.app import MSG_BAD_LOGIN as ERP_BAD_LOGIN
from sims.erp.app import MSG_FULL as ERP_FULL
from sims.erp.app import create_app as create_erp

ROOT = Path(__file__).resolve().parents[1]
IDLE = 300.0
TIMEOUT = 20.0


class FakeClock:
    def __init__(self) -> None:
        self.now = dt.datetime(2025, 3, 15, 10, 0).timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Sim:
    """How to drive one simulator's login, as a browser would, and read its verdict."""

    name: str
    create: Callable[..., Flask]

    def prepare(self, browser: httpx.Client) -> dict[str, str]:
        """What must happen before the login is sent (the ERP's one-time token)."""
        if self.name == "erp":
            page = browser.get("/login.do").content.decode("gbk")
            match = re.search(r'name="token" value="([0-9a-f]+)"', page)
            assert match, page
            return {"username": "clerk", "password": "clerk-demo", "token": match.group(1)}
        return {"username": "archivist", "password": "archivist-demo"}

    def submit(self, browser: httpx.Client, form: dict[str, str]) -> httpx.Response:
        return browser.post("/login.do" if self.name == "erp" else "/login", data=form)

    def login(self, browser: httpx.Client, password: str | None = None) -> httpx.Response:
        form = self.prepare(browser)
        if password is not None:
            form["password"] = password
        return self.submit(browser, form)

    def logged_in(self, response: httpx.Response) -> bool:
        target = "/main.do" if self.name == "erp" else "/dashboard"
        return response.is_redirect and response.headers["Location"] == target

    def refused_for_cap(self, response: httpx.Response) -> bool:
        """The system's own "too many users" answer, and nothing a recipe would take
        for a wrong password: the login page again, 200, with the cap message."""
        if response.status_code != 200:
            return False
        if self.name == "erp":
            page = response.content.decode("gbk")  # strict: the ERP's pages are GBK
            return (
                f'class="msg">{ERP_FULL}</font>' in page
                and ERP_BAD_LOGIN not in page
                and '<form name="loginForm"' in page
            )
        page = response.text
        return (
            f'<div class="alert alert-warning">{ARCHIVE_FULL}</div>' in page
            and 'class="alert alert-error"' not in page
            and 'id="login-form"' in page
        )

    def logout(self, browser: httpx.Client) -> None:
        browser.get("/logout.do" if self.name == "erp" else "/logout")

    def protected(self) -> str:
        return "/welcome.do" if self.name == "erp" else "/dashboard"

    def has_session(self, browser: httpx.Client) -> bool:
        """Does a page that needs a session open? (The ERP answers the login page, 200.)"""
        page = browser.get(self.protected())
        if self.name == "erp":
            return page.status_code == 200 and "loginForm" not in page.content.decode("gbk")
        return page.status_code == 200

    def build(self, clock: FakeClock, **options: Any) -> Flask:
        if self.name == "erp":
            return self.create(latency_ms=(0, 0), clock=clock, idle_timeout=IDLE, **options)
        return self.create(latency_ms=(0, 0), clock=clock, **options)


ERP = Sim("erp", create_erp)
ARCHIVE = Sim("archive", create_archive)


@pytest.fixture(params=[ERP, ARCHIVE], ids=lambda sim: sim.name)
def sim(request: pytest.FixtureRequest) -> Sim:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """``app`` on Werkzeug's threaded server, as the simulators' command line serves it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@contextmanager
def browsers(url: str, count: int) -> Iterator[list[httpx.Client]]:
    """``count`` independent browsers: each its own cookie jar."""
    clients = [httpx.Client(base_url=url, timeout=TIMEOUT) for _ in range(count)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def login_together(sim: Sim, clients: list[httpx.Client]) -> list[httpx.Response]:
    """Every client logs in at the same moment (each from its own thread)."""
    forms = [sim.prepare(client) for client in clients]
    barrier = threading.Barrier(len(clients))

    def one(index: int) -> httpx.Response:
        barrier.wait(timeout=TIMEOUT)
        return sim.submit(clients[index], forms[index])

    with ThreadPoolExecutor(len(clients)) as pool:
        return list(pool.map(one, range(len(clients))))


def seats(url: str) -> dict[str, Any]:
    counts = httpx.get(f"{url}/_sim/state", timeout=TIMEOUT).json()["sessions"]
    assert isinstance(counts, dict)
    return counts


def test_without_a_cap_every_concurrent_login_is_counted_and_none_refused(
    sim: Sim, clock: FakeClock
) -> None:
    with serving(sim.build(clock)) as url, browsers(url, 4) as clients:
        answers = login_together(sim, clients)
        assert all(sim.logged_in(a) for a in answers), [a.status_code for a in answers]
        assert seats(url) == {"active": 4, "peak": 4, "refused": 0, "max": None}
        sim.logout(clients[0])
        assert seats(url) == {"active": 3, "peak": 4, "refused": 0, "max": None}


def test_a_cap_of_2_admits_exactly_2_of_6_simultaneous_logins(sim: Sim, clock: FakeClock) -> None:
    with serving(sim.build(clock, max_sessions=2)) as url, browsers(url, 6) as clients:
        answers = login_together(sim, clients)
        admitted = [a for a in answers if sim.logged_in(a)]
        refused = [a for a in answers if sim.refused_for_cap(a)]
        assert (len(admitted), len(refused)) == (2, 4), [a.status_code for a in answers]
        assert seats(url) == {"active": 2, "peak": 2, "refused": 4, "max": 2}
        # the refused browsers hold no session; the admitted ones do
        for client, answer in zip(clients, answers, strict=True):
            assert sim.has_session(client) == sim.logged_in(answer)


def test_logging_out_frees_a_seat(sim: Sim, clock: FakeClock) -> None:
    with serving(sim.build(clock, max_sessions=1)) as url, browsers(url, 2) as (first, second):
        assert sim.logged_in(sim.login(first))
        assert sim.refused_for_cap(sim.login(second))
        sim.logout(first)
        assert seats(url)["active"] == 0
        assert sim.logged_in(sim.login(second))
        assert seats(url) == {"active": 1, "peak": 1, "refused": 1, "max": 1}


def test_idle_expiry_frees_a_seat(clock: FakeClock) -> None:
    # The archive idles out only when told to (--idle-timeout); the ERP always does.
    for sim, options in ((ERP, {}), (ARCHIVE, {"idle_timeout": IDLE})):
        app = sim.build(clock, max_sessions=1, **options)
        with serving(app) as url, browsers(url, 2) as (first, second):
            assert sim.logged_in(sim.login(first))
            clock.advance(IDLE - 1)
            assert sim.has_session(first), sim.name  # a page restarts the idle timer
            clock.advance(IDLE - 1)
            assert seats(url)["active"] == 1, sim.name
            assert sim.refused_for_cap(sim.login(second)), sim.name
            clock.advance(IDLE)  # nobody asked: the seat is free all the same
            assert seats(url) == {"active": 0, "peak": 1, "refused": 1, "max": 1}, sim.name
            assert sim.logged_in(sim.login(second)), sim.name


def test_an_archive_session_never_idles_out_without_an_idle_timeout(clock: FakeClock) -> None:
    with serving(ARCHIVE.build(clock)) as url, browsers(url, 1) as (browser,):
        assert ARCHIVE.logged_in(ARCHIVE.login(browser))
        clock.advance(10 * 365 * 86400)
        assert seats(url)["active"] == 1
        assert ARCHIVE.has_session(browser)


def test_an_injected_expiry_frees_a_seat(sim: Sim, clock: FakeClock) -> None:
    faults = {"session_expiry_every": 1}  # the next page needing a session ends it
    with (
        serving(sim.build(clock, max_sessions=1, faults=faults)) as url,
        browsers(url, 2) as (first, second),
    ):
        assert sim.logged_in(sim.login(first))
        assert seats(url)["active"] == 1
        assert not sim.has_session(first)  # expired under it
        assert seats(url)["active"] == 0
        assert sim.logged_in(sim.login(second))


def test_logging_in_again_from_the_same_browser_holds_one_seat(sim: Sim, clock: FakeClock) -> None:
    with serving(sim.build(clock, max_sessions=1)) as url, browsers(url, 1) as (browser,):
        assert sim.logged_in(sim.login(browser))
        assert sim.logged_in(sim.login(browser))  # at the cap, but it replaces its own
        assert seats(url) == {"active": 1, "peak": 1, "refused": 0, "max": 1}
        assert sim.has_session(browser)


def test_a_wrong_password_is_not_a_refusal_for_the_cap(sim: Sim, clock: FakeClock) -> None:
    with serving(sim.build(clock, max_sessions=0)) as url, browsers(url, 1) as (browser,):
        answer = sim.login(browser, password="wrong")
        assert not sim.refused_for_cap(answer) and not sim.logged_in(answer)
        assert seats(url) == {"active": 0, "peak": 0, "refused": 0, "max": 0}
        assert sim.refused_for_cap(sim.login(browser))
        assert seats(url)["refused"] == 1


def test_the_cap_is_set_at_run_time_through_sim_config(sim: Sim, clock: FakeClock) -> None:
    with serving(sim.build(clock)) as url, browsers(url, 3) as clients:
        config = httpx.get(f"{url}/_sim/config").json()
        assert config == {
            "config": {"max_sessions": None},
            "sessions": {"active": 0, "peak": 0, "refused": 0, "max": None},
        }
        assert all(sim.logged_in(sim.login(c)) for c in clients[:2])
        sim.logout(clients[1])
        # a new cap starts a new measurement: the peak from the sessions live now
        answer = httpx.post(f"{url}/_sim/config", json={"max_sessions": 1})
        assert answer.status_code == 200
        assert answer.json()["sessions"] == {"active": 1, "peak": 1, "refused": 0, "max": 1}
        assert sim.refused_for_cap(sim.login(clients[2]))
        # faults are another configuration: setting them leaves the cap alone
        assert httpx.post(f"{url}/_sim/faults", json={}).status_code == 200
        assert sim.refused_for_cap(sim.login(clients[2]))
        assert seats(url) == {"active": 1, "peak": 1, "refused": 2, "max": 1}
        # {} (or null) is no cap
        assert httpx.post(f"{url}/_sim/config", json={}).json()["config"] == {"max_sessions": None}
        assert sim.logged_in(sim.login(clients[2]))
        assert seats(url) == {"active": 2, "peak": 2, "refused": 0, "max": None}


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"max_sessions": -1}, "max_sessions"),
        ({"max_sessions": 1.5}, "max_sessions"),
        ({"max_sessions": True}, "max_sessions"),
        ({"max_session": 2}, "max_session"),
        ([2], None),
    ],
)
def test_a_bad_config_is_400_naming_the_key_and_changes_nothing(
    sim: Sim, clock: FakeClock, body: Any, key: str | None
) -> None:
    client = sim.build(clock, max_sessions=3).test_client()
    answer = client.post("/_sim/config", json=body)
    assert answer.status_code == 400
    assert answer.get_json()["key"] == key
    assert client.get("/_sim/config").get_json()["config"] == {"max_sessions": 3}


def test_create_app_refuses_a_bad_cap(sim: Sim, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="max_sessions"):
        sim.build(clock, max_sessions=-1)


def test_command_line_max_sessions_sets_the_cap(sim: Sim) -> None:
    command = [sys.executable, "-m", f"sims.{sim.name}", "--port", "0", "--latency-ms", "0,0"]
    bad = subprocess.run(
        [*command, "--max-sessions", "-1"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "--max-sessions" in bad.stderr
    with subprocess.Popen(
        [*command, "--max-sessions", "2"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            ready = process.stdout.readline()
            match = re.match(r"READY (http://\S+)", ready)
            assert match, ready
            assert seats(match.group(1)) == {"active": 0, "peak": 0, "refused": 0, "max": 2}
        finally:
            process.terminate()
            process.wait(timeout=TIMEOUT)
