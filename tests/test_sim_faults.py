"""Both simulators inject faults on demand, reproducibly from a seed, and count them.

Flask's test client where it can show the behaviour; the real servers
(``python -m sims.erp|sims.archive --port 0``) where only a socket can: a download cut
off halfway, an upload whose answer never comes, a file name sent as raw GBK bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import queue
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

import sims.faults
from sims.archive.app import create_app as create_archive
from sims.erp.app import create_app as create_erp
from sims.faults import ConnectionDropped
from tests.test_sim_archive import Page, post_ingest, state_items, valid_fields
from tests.test_sim_archive import login as archive_login
from tests.test_sim_erp import FakeClock, is_login_page, text, token_of
from tests.test_sim_erp import login as erp_login

ROOT = Path(__file__).resolve().parents[1]
ERP_KINDS = {"error", "session_expiry", "latency_spike", "truncate", "html_instead"}
ARCHIVE_KINDS = {"error", "session_expiry", "latency_spike", "lost_response", "reject"}
REJECTED = "系统校验未通过：文件与著录信息不一致（模拟拒收）"


# --------------------------------------------------------------------------- helpers


def new_erp(**kwargs: Any) -> Flask:
    clock = FakeClock(dt.datetime(2025, 3, 15, 10, 0))
    return create_erp(latency_ms=(0, 0), clock=clock, **kwargs)


def new_archive(tmp_path: Path, name: str = "data", **kwargs: Any) -> Flask:
    return create_archive(data=tmp_path / name, latency_ms=(0, 0), **kwargs)


def erp_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert erp_login(client).status_code == 302
    return client


def archive_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert archive_login(client).status_code == 303
    return client


def set_faults(client: FlaskClient, config: Any) -> dict[str, Any]:
    response = client.post("/_sim/faults", json=config)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def injected(client: FlaskClient) -> dict[str, int]:
    return client.get("/_sim/faults").get_json()["injected"]


def stored_files(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*") if p.is_file() and p.parent.name in ("files", "tmp"))


@contextmanager
def serve(module: str, *args: str) -> Iterator[str]:
    """Run ``python -m <module> --port 0 ...``; yield its URL; stop it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", "--latency-ms", "0,0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=30)
        match = re.match(r"READY (http://127\.0\.0\.1:\d+) ", line)
        assert match, line
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def raw_get(url: str, path: str, cookie: str) -> tuple[bytes, bytes, bool]:
    """GET over a bare socket: (head, body, closed by the server before the timeout)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n".encode("ascii")
        )
        data = b""
        closed = False
        try:
            while chunk := sock.recv(65536):
                data += chunk
            closed = True
        except TimeoutError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body, closed


def erp_http_login(http: httpx.Client) -> None:
    token = token_of(http.get("/login.do").content.decode("gbk"))
    response = http.post(
        "/login.do", data={"username": "clerk", "password": "clerk-demo", "token": token}
    )
    assert response.status_code == 302


# --------------------------------------------------------------------------- configuration


def test_each_simulator_reports_its_own_fault_kinds_all_zero_at_start(tmp_path: Path) -> None:
    erp = new_erp().test_client()
    archive = new_archive(tmp_path).test_client()
    assert erp.get("/_sim/faults").get_json() == {
        "config": {},
        "injected": dict.fromkeys(ERP_KINDS, 0),
    }
    assert archive.get("/_sim/faults").get_json() == {
        "config": {},
        "injected": dict.fromkeys(ARCHIVE_KINDS, 0),
    }


def test_post_faults_answers_the_resulting_config_and_get_shows_it() -> None:
    client = new_erp().test_client()
    config = {
        "seed": 42,
        "latency_ms": [0, 0],
        "spike_rate": 0.1,
        "spike_ms": 500,
        "error_rate": 0.2,
        "session_expiry_every": 5,
        "session_expiry_rate": 0.05,
        "truncate_rate": 0.1,
        "html_instead_rate": 0.1,
        "html_instead": ["R000003"],
        "truncate": ["R000004", "R000005"],
    }
    answer = set_faults(client, config)
    assert answer["config"] == config
    assert client.get("/_sim/faults").get_json()["config"] == config


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"eror_rate": 0.1}, "eror_rate"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": -0.1}, "error_rate"),
        ({"error_rate": "0.1"}, "error_rate"),
        ({"error_rate": True}, "error_rate"),
        ({"seed": 1.5}, "seed"),
        ({"latency_ms": [50]}, "latency_ms"),
        ({"latency_ms": [80, 20]}, "latency_ms"),
        ({"latency_ms": [-1, 5]}, "latency_ms"),
        ({"spike_ms": -5}, "spike_ms"),
        ({"session_expiry_every": 0}, "session_expiry_every"),
        ({"session_expiry_every": 2.5}, "session_expiry_every"),
        ({"truncate": "R000001"}, "truncate"),
        ({"html_instead": [1, 2]}, "html_instead"),
        ({"lost_response_rate": 0.5}, "lost_response_rate"),  # the archive's, not the ERP's
        ({"reject_rate": 0.5}, "reject_rate"),
    ],
)
def test_erp_refuses_an_unknown_key_or_bad_value_naming_the_key(body: Any, key: str) -> None:
    client = new_erp().test_client()
    set_faults(client, {"error_rate": 0.5})
    response = client.post("/_sim/faults", json=body)
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["key"] == key and key in answer["error"]
    assert client.get("/_sim/faults").get_json()["config"] == {"error_rate": 0.5}  # unchanged


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"truncate_rate": 0.5}, "truncate_rate"),  # the ERP's, not the archive's
        ({"html_instead": ["R000001"]}, "html_instead"),
        ({"reject_rate": 2}, "reject_rate"),
        ({"lost_response_rate": None}, "lost_response_rate"),
    ],
)
def test_archive_refuses_an_unknown_key_or_bad_value_naming_the_key(
    tmp_path: Path, body: Any, key: str
) -> None:
    response = new_archive(tmp_path).test_client().post("/_sim/faults", json=body)
    assert response.status_code == 400
    assert response.get_json()["key"] == key


def test_a_body_that_is_not_a_json_object_is_refused() -> None:
    client = new_erp().test_client()
    assert client.post("/_sim/faults", json=[1]).status_code == 400
    assert client.post("/_sim/faults", data="error_rate=1").status_code == 400


def test_bad_start_up_config_is_refused_by_create_app(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="eror_rate"):
        new_erp(faults={"eror_rate": 0.1})
    with pytest.raises(ValueError, match="truncate_rate"):
        new_archive(tmp_path, faults={"truncate_rate": 0.1})


@pytest.mark.parametrize("module", ["sims.erp", "sims.archive"])
def test_cli_refuses_a_bad_faults_flag_with_exit_2(module: str) -> None:
    for flag, expected in (('{"error_rate": 7}', "error_rate"), ("not json", "not JSON")):
        proc = subprocess.run(
            [sys.executable, "-m", module, "--port", "0", "--faults", flag],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr


# --------------------------------------------------------------------------- schedule, counters


def failed_indices(client: FlaskClient, paths: list[str]) -> set[int]:
    return {i for i, path in enumerate(paths) if client.get(path).status_code == 500}


ERP_PATHS = ["/login.do", "/main.do", "/report/list.do", "/top.do", "/nowhere"] * 12


def test_same_seed_same_request_sequence_fails_the_same_requests() -> None:
    def run(seed: int) -> set[int]:
        client = erp_client(new_erp())
        set_faults(client, {"seed": seed, "error_rate": 0.3})
        return failed_indices(client, ERP_PATHS)

    first = run(7)
    assert 0 < len(first) < len(ERP_PATHS)
    assert run(7) == first
    assert run(8) != first


def test_archive_same_seed_same_schedule_and_setting_faults_again_reseeds(
    tmp_path: Path,
) -> None:
    paths = ["/", "/dashboard", "/items", "/api/items/A000001", "/ingest"] * 12
    config = {"seed": 3, "error_rate": 0.25}

    def run(app: Flask) -> set[int]:
        client = app.test_client()  # the login is request 0, and may fail too
        codes = [archive_login(client).status_code] + [client.get(p).status_code for p in paths]
        return {i for i, code in enumerate(codes) if code == 500}

    app = new_archive(tmp_path, "a", faults=config)  # as --faults gives it at start-up
    first = run(app)
    assert 0 < len(first) < len(paths)
    assert run(new_archive(tmp_path, "b", faults=config)) == first
    set_faults(app.test_client(), config)  # the same app starts over
    assert run(app) == first


def test_schedule_does_not_depend_on_other_faults_being_switched_on() -> None:
    def run(extra: dict[str, Any]) -> set[int]:
        client = erp_client(new_erp())
        set_faults(client, {"seed": 5, "error_rate": 0.3, **extra})
        return failed_indices(client, ERP_PATHS)

    assert run({}) == run({"latency_ms": [0, 0], "spike_rate": 0.5, "html_instead_rate": 1})


def test_counters_count_exactly_the_faults_injected() -> None:
    client = erp_client(new_erp())
    set_faults(client, {"seed": 1, "error_rate": 0.5})
    failed = failed_indices(client, ERP_PATHS)
    assert injected(client) == {**dict.fromkeys(ERP_KINDS, 0), "error": len(failed)}


def test_setting_faults_resets_the_counters() -> None:
    client = erp_client(new_erp())
    set_faults(client, {"error_rate": 1})
    client.get("/main.do")
    assert injected(client)["error"] == 1
    assert set_faults(client, {"error_rate": 1})["injected"]["error"] == 0


def test_empty_config_turns_every_fault_off() -> None:
    client = erp_client(new_erp())
    set_faults(client, {"error_rate": 1, "html_instead_rate": 1, "session_expiry_every": 1})
    assert client.get("/main.do").status_code == 500
    assert set_faults(client, {}) == {"config": {}, "injected": dict.fromkeys(ERP_KINDS, 0)}
    for _ in range(5):
        response = client.get("/report/download.do?id=R000001")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/pdf"
    assert injected(client) == dict.fromkeys(ERP_KINDS, 0)


def test_sim_paths_are_never_failed_delayed_or_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(sims.faults.time, "sleep", slept.append)
    config = {"error_rate": 1, "latency_ms": [50, 50], "spike_rate": 1, "spike_ms": 10}
    for client in (new_erp().test_client(), new_archive(tmp_path).test_client()):
        set_faults(client, config)
        assert client.get("/_sim/state").status_code == 200
        assert client.get("/_sim/faults").status_code == 200
        assert set(injected(client).values()) == {0}
    assert slept == []


def test_counters_stay_exact_under_concurrent_requests() -> None:
    # Threads take draws in some order, but take exactly the first N of the seeded
    # sequence between them: as many errors as the same N requests one by one.
    def sequential() -> int:
        client = new_erp().test_client()
        set_faults(client, {"seed": 9, "error_rate": 0.4})
        return len(failed_indices(client, ["/login.do"] * 160))

    app = new_erp()
    control = app.test_client()
    set_faults(control, {"seed": 9, "error_rate": 0.4})
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        client = app.test_client()
        for _ in range(20):
            code = client.get("/login.do").status_code
            with lock:
                statuses.append(code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert len(statuses) == 160
    assert injected(control)["error"] == statuses.count(500) == sequential()


# --------------------------------------------------------------------------- latency


def test_configured_latency_replaces_the_base_latency_until_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(sims.faults.time, "sleep", slept.append)
    client = create_erp(latency_ms=(30, 30)).test_client()
    client.get("/login.do")
    set_faults(client, {"latency_ms": [5, 5]})
    client.get("/login.do")
    set_faults(client, {})
    client.get("/login.do")
    assert slept == pytest.approx([0.030, 0.005, 0.030])


def test_latency_range_and_spikes_are_drawn_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(sims.faults.time, "sleep", slept.append)
    client = new_archive(tmp_path).test_client()
    set_faults(client, {"seed": 2, "latency_ms": [10, 20], "spike_rate": 0.5, "spike_ms": 1000})
    for _ in range(40):
        client.get("/")
    spikes = [s for s in slept if s >= 1]
    assert len(slept) == 40
    assert all(0.010 <= s <= 0.020 or 1.010 <= s <= 1.020 for s in slept)
    assert 0 < len(spikes) < 40
    assert injected(client)["latency_spike"] == len(spikes)


# --------------------------------------------------------------------------- errors


def test_erp_error_is_a_gbk_500_page_and_the_login_it_hit_never_happened() -> None:
    client = new_erp().test_client()
    token = token_of(text(client.get("/login.do")))
    set_faults(client, {"error_rate": 1.0})
    data = {"username": "clerk", "password": "clerk-demo", "token": token}
    response = client.post("/login.do", data=data)
    assert response.status_code == 500
    assert "系统内部错误" in text(response)
    assert "Set-Cookie" not in response.headers
    set_faults(client, {})
    assert client.post("/login.do", data=data).status_code == 302  # token still unused


def test_archive_error_is_a_500_page_and_the_upload_is_not_stored(tmp_path: Path) -> None:
    app = new_archive(tmp_path)
    client = archive_client(app)
    set_faults(client, {"error_rate": 1.0})
    response = post_ingest(client)
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "服务器内部错误" in response.get_data(as_text=True)
    assert state_items(client) == []
    assert stored_files(tmp_path / "data") == []
    assert injected(client)["error"] == 1


# --------------------------------------------------------------------------- session expiry


def test_erp_every_third_sessioned_request_finds_its_session_expired() -> None:
    client = erp_client(new_erp(faults={"session_expiry_every": 3}))
    assert client.get("/main.do").status_code == 200  # 1
    assert is_login_page(text(client.get("/login.do")))  # needs no session: not counted
    assert "欢迎您" in text(client.get("/top.do"))  # 2
    third = client.get("/report/list.do")  # 3
    assert third.status_code == 200
    page = text(third)
    assert is_login_page(page) and "会话已超时，请重新登录" in page
    assert injected(client)["session_expiry"] == 1
    assert is_login_page(text(client.get("/main.do")))  # it stays expired
    assert erp_login(client).status_code == 302
    assert "欢迎您" in text(client.get("/top.do"))  # 4
    assert "欢迎您" in text(client.get("/top.do"))  # 5
    assert is_login_page(text(client.get("/report/download.do?id=R000001")))  # 6
    assert injected(client)["session_expiry"] == 2


def test_archive_expired_session_redirects_pages_and_answers_api_401(tmp_path: Path) -> None:
    client = archive_client(new_archive(tmp_path))
    set_faults(client, {"session_expiry_every": 2})
    assert client.get("/dashboard").status_code == 200  # 1
    assert client.get("/").status_code == 200  # public: not counted
    response = client.get("/items")  # 2
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert archive_login(client).status_code == 303
    assert client.get("/dashboard").status_code == 200  # 3
    api = client.get("/api/items/A000001")  # 4
    assert api.status_code == 401 and api.get_json() == {"error": "login required"}
    assert injected(client)["session_expiry"] == 2


def test_session_expiry_rate_one_expires_the_first_sessioned_request(tmp_path: Path) -> None:
    erp = erp_client(new_erp())
    set_faults(erp, {"session_expiry_rate": 1.0})
    assert "会话已超时，请重新登录" in text(erp.get("/main.do"))
    archive = archive_client(new_archive(tmp_path))
    set_faults(archive, {"session_expiry_rate": 1.0})
    assert archive.get("/dashboard").status_code == 302
    assert injected(erp)["session_expiry"] == injected(archive)["session_expiry"] == 1


# --------------------------------------------------------------------------- ERP downloads


def test_html_instead_rate_one_answers_200_gbk_busy_page_for_a_download() -> None:
    client = erp_client(new_erp())
    set_faults(client, {"html_instead_rate": 1.0})
    response = client.get("/report/download.do?id=R000001")
    assert response.status_code == 200
    assert "Content-Disposition" not in response.headers
    assert "系统繁忙，请稍后再试" in text(response)
    assert injected(client)["html_instead"] == 1
    client.get("/report/list.do")  # not a download: no html_instead
    assert injected(client)["html_instead"] == 1


def test_html_instead_by_id_hits_only_the_named_reports() -> None:
    client = erp_client(new_erp())
    set_faults(client, {"html_instead": ["R000002"]})
    assert "系统繁忙，请稍后再试" in text(client.get("/report/download.do?id=R000002"))
    other = client.get("/report/download.do?id=R000001")
    assert other.headers["Content-Type"] == "application/pdf"
    assert injected(client)["html_instead"] == 1


def test_truncate_declares_full_length_but_sends_about_half() -> None:
    client = erp_client(new_erp())
    set_faults(client, {"truncate_rate": 1.0})
    truth = {r["id"]: r for r in client.get("/_sim/state").get_json()["reports"]}
    response = client.get("/report/download.do?id=R000001")
    declared = int(response.headers["Content-Length"])
    assert declared == truth["R000001"]["size"]
    assert len(response.data) == declared // 2
    assert response.headers["Connection"] == "close"
    assert injected(client)["truncate"] == 1


def test_truncated_download_is_closed_early_on_the_wire() -> None:
    with (
        serve("sims.erp", "--faults", '{"truncate": ["R000001"]}') as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        erp_http_login(http)
        size = http.get("/_sim/state").json()["reports"][0]["size"]
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete|without sending"):
            http.get("/report/download.do?id=R000001")
        cookie = f"JSESSIONID={http.cookies['JSESSIONID']}"
        head, body, closed = raw_get(url, "/report/download.do?id=R000001", cookie)
        assert closed, "the server kept the connection open: a client would hang"
        assert f"Content-Length: {size}".encode() in head
        assert b"Connection: close" in head
        assert 0 < len(body) < size
        whole = http.get("/report/download.do?id=R000003")  # not named: complete
        assert len(whole.content) == int(whole.headers["Content-Length"])
        assert http.get("/_sim/faults").json()["injected"]["truncate"] == 2


def test_raw_gbk_filename_bytes_are_on_the_wire() -> None:
    name = "2025年3月销售明细（原始）.csv"
    with serve("sims.erp") as url, httpx.Client(base_url=url, timeout=10) as http:
        published = http.post(
            "/_sim/publish", json={"kind": "销售明细", "filename": name, "raw_gbk_filename": True}
        ).json()["published"]
        erp_http_login(http)
        cookie = f"JSESSIONID={http.cookies['JSESSIONID']}"
        head, _, _ = raw_get(url, f"/report/download.do?id={published[0]}", cookie)
    [disposition] = [h for h in head.split(b"\r\n") if h.startswith(b"Content-Disposition:")]
    assert disposition == b'Content-Disposition: inline; filename="' + name.encode("gbk") + b'"'


# --------------------------------------------------------------------------- archive ingest


def test_reject_refuses_a_valid_upload_like_a_validation_error_and_stores_nothing(
    tmp_path: Path,
) -> None:
    client = archive_client(new_archive(tmp_path))
    set_faults(client, {"reject_rate": 1.0})
    response = post_ingest(client, title="被拒收的报表")
    assert response.status_code == 200
    page = Page(response.get_data(as_text=True))
    [errors] = page.find_all("ul", class_="errors")
    assert [li.text for li in errors.children] == [REJECTED]
    assert page.by_id("title").attrs["value"] == "被拒收的报表"
    assert state_items(client) == []
    assert stored_files(tmp_path / "data") == []
    assert injected(client)["reject"] == 1


def test_reject_is_not_injected_into_an_upload_that_is_invalid_anyway(tmp_path: Path) -> None:
    client = archive_client(new_archive(tmp_path))
    set_faults(client, {"reject_rate": 1.0})
    page = Page(post_ingest(client, year="19").get_data(as_text=True))
    messages = [li.text for li in page.one("ul", class_="errors").children]
    assert REJECTED not in messages and messages
    assert injected(client)["reject"] == 0


def test_lost_response_commits_the_upload_then_gives_no_answer(tmp_path: Path) -> None:
    client = archive_client(new_archive(tmp_path))
    set_faults(client, {"lost_response_rate": 1.0})
    with pytest.raises(ConnectionDropped):  # in-process there is no socket to drop
        post_ingest(client, content=b"lost answer").get_data()
    [item] = state_items(client)
    assert item["sha256"] == hashlib.sha256(b"lost answer").hexdigest()
    assert injected(client)["lost_response"] == 1


def test_lost_response_on_the_wire_is_a_closed_connection_yet_the_item_is_stored() -> None:
    content = b"%PDF-1.4 " + bytes(range(256)) * 4000  # about 1 MB: more than one read
    with (
        serve("sims.archive", "--faults", '{"lost_response_rate": 1.0}') as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        response = http.post("/login", data={"username": "archivist", "password": "archivist-demo"})
        assert response.status_code == 303
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            http.post("/ingest", data=valid_fields(), files={"file": ("r.pdf", content)})
        [item] = http.get("/_sim/state").json()["items"]
        assert item["sha256"] == hashlib.sha256(content).hexdigest()
        assert item["archive_id"] == "A000001"
        assert http.get("/_sim/faults").json()["injected"]["lost_response"] == 1
        # the session is fine: the next request gets an answer
        assert http.get("/dashboard").status_code == 200


def test_ingest_faults_are_drawn_per_request_so_a_rate_hits_some_uploads(
    tmp_path: Path,
) -> None:
    def run(name: str) -> list[int]:
        client = archive_client(new_archive(tmp_path, name, faults={"seed": 4, "reject_rate": 0.5}))
        codes = [post_ingest(client, content=f"r{n}".encode()).status_code for n in range(20)]
        assert len(state_items(client)) == codes.count(303)
        assert injected(client)["reject"] == codes.count(200)
        return codes

    first = run("a")
    assert set(first) == {200, 303}
    assert run("b") == first
