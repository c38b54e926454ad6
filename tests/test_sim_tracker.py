"""Tracker simulator (sims/tracker): login, languages, listings, detail pages, gzip
downloads, faults and ground truth, through Flask's test client (no browser)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sims.tracker.app import COOKIE, DEFAULT_PASSWORD, PAGE_SIZE, USER, create_app

REPO_ROOT = Path(__file__).resolve().parents[1]
EN = {"Accept-Language": "en-US,en;q=0.9"}
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 6, 1, 9, 0))


@pytest.fixture
def app(clock: FakeClock) -> Flask:
    return create_app(latency_ms=(0, 0), clock=clock, idle_timeout=600)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def login(client: FlaskClient, password: str = DEFAULT_PASSWORD) -> TestResponse:
    return client.post("/login", data={"username": USER, "password": password}, headers=EN)


@pytest.fixture
def tracker(client: FlaskClient) -> FlaskClient:
    assert login(client).status_code == 303
    return client


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def state(client: FlaskClient) -> list[dict[str, object]]:
    return client.get("/_sim/state").json["reports"]  # type: ignore[index]


# --------------------------------------------------------------------------- login


def test_login_form_then_dashboard(client: FlaskClient) -> None:
    page = client.get("/login", headers=EN)
    assert page.status_code == 200
    assert 'id="login-form"' in text(page)
    response = login(client)
    assert response.status_code == 303 and response.location == "/dashboard"
    assert COOKIE in response.headers["Set-Cookie"]
    assert "Welcome back, reporter-bot." in text(client.get("/dashboard", headers=EN))


def test_login_redirects_when_a_session_exists(tracker: FlaskClient) -> None:
    # A recipe's login must be able to skip itself: there is no form to find.
    response = tracker.get("/login", headers=EN)
    assert response.status_code == 302 and response.location == "/dashboard"
    again = tracker.get("/login?next=/incidents/3", headers=EN)
    assert again.location == "/incidents/3"
    assert tracker.get("/login?next=//evil.example/", headers=EN).location == "/dashboard"


def test_wrong_password_is_refused_in_english(client: FlaskClient) -> None:
    response = login(client, "nope")
    assert response.status_code == 200
    assert "Invalid username or password." in text(response)
    assert "Set-Cookie" not in response.headers


def test_pages_need_a_session_and_return_after_login(client: FlaskClient) -> None:
    response = client.get("/incidents/4", headers=EN)
    assert response.status_code == 302
    assert response.location == "/login?next=/incidents/4"
    form = client.get(response.location, headers=EN)
    assert "Please sign in to continue." in text(form)
    back = client.post(
        "/login?next=/incidents/4", data={"username": USER, "password": DEFAULT_PASSWORD}
    )
    assert back.location == "/incidents/4"


def test_idle_session_expires(tracker: FlaskClient, clock: FakeClock) -> None:
    assert tracker.get("/incidents", headers=EN).status_code == 200
    clock.advance(601)
    assert tracker.get("/incidents", headers=EN).status_code == 302


def test_logout_ends_the_session(tracker: FlaskClient) -> None:
    page = text(tracker.get("/dashboard", headers=EN))
    # The sign-out link lives inside a collapsed <details> menu: present, not shown.
    assert re.search(r'<details class="user-menu">.*class="logout"', page, re.S)
    assert tracker.get("/logout").location == "/login?signed_out=1"
    assert tracker.get("/dashboard").status_code == 302


# --------------------------------------------------------------------------- languages


def test_answers_in_the_browsers_language(tracker: FlaskClient) -> None:
    english = tracker.get("/incidents", headers=EN)
    chinese = tracker.get("/incidents", headers=ZH)
    assert english.headers["Content-Language"] == "en"
    assert chinese.headers["Content-Language"] == "zh-CN"
    assert "<h1>Incidents</h1>" in text(english) and "Next ›" in text(english)
    assert "<h1>事件</h1>" in text(chinese) and "下一页" in text(chinese)
    assert "Next" not in text(chinese)
    detail = text(tracker.get("/incidents/1", headers=ZH))
    assert "报告人" in detail and "SHA-256 校验值:" in detail and "SHA-256: " not in detail


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en-GB,zh;q=0.5", "en"),  # the more wanted language wins, regional or not
        ("fr-FR,fr;q=0.9", "en"),
        ("", "en"),
    ],
)
def test_language_negotiation(tracker: FlaskClient, header: str, language: str) -> None:
    response = tracker.get("/dashboard", headers={"Accept-Language": header})
    assert response.headers["Content-Language"] == language
    assert "Accept-Language" in response.headers["Vary"]


# --------------------------------------------------------------------------- listings


def test_incidents_are_paginated_newest_first_without_download_links(
    tracker: FlaskClient,
) -> None:
    numbers: list[int] = []
    url: str | None = "/incidents"
    while url:
        page = text(tracker.get(url, headers=EN))
        assert "/files/download" not in page  # only the detail page has the file
        numbers += [int(n) for n in re.findall(r'<td class="number">#(\d+)</td>', page)]
        found = re.search(r'<a rel="next" href="([^"]+)">Next', page)
        url = found.group(1) if found else None
    assert numbers == list(range(23, 0, -1))
    first = text(tracker.get("/incidents", headers=EN))
    assert len(re.findall(r'<tr class="incident">', first)) == PAGE_SIZE
    assert '<a href="/incidents/23">' in first
    assert '<time datetime="' in first


def test_minutes_rows_hold_only_floated_cells(tracker: FlaskClient) -> None:
    # No clearfix: each row's own box is 0 px high (not "visible" to Playwright) while
    # its cells, floated, show as a table.
    page = text(tracker.get("/wiki/minutes", headers=EN))
    assert ".page-list .cell { float: left;" in page
    rows = re.findall(r'<div class="row page">\s*<span class="cell title">', page)
    assert len(rows) == 6
    assert '<a href="/wiki/minutes/6">' in page
    assert "MIN-0006" not in page and "/files/download" not in page


def test_incident_detail_shows_what_the_list_does_not(tracker: FlaskClient) -> None:
    truth = {r["id"]: r for r in state(tracker)}["INC-0007"]
    page = text(tracker.get("/incidents/7", headers=EN))
    assert f'<dd class="reporter">{truth["reporter"]}</dd>' in page
    assert f'sev-{truth["severity"]}">{str(truth["severity"]).capitalize()}<' in page
    found = re.search(r"SHA-256:\s*<code[^>]*>([0-9a-f]{64})</code>", page)
    assert found and found.group(1) == truth["sha256"]
    # The report id is only inside the download link's href.
    assert 'href="/files/download?id=INC-0007&amp;fmt=pdf"' in page
    assert page.count("INC-0007") == 1


def test_minutes_detail_has_a_recorder_and_no_severity(tracker: FlaskClient) -> None:
    truth = {r["id"]: r for r in state(tracker)}["MIN-0002"]
    page = text(tracker.get("/wiki/minutes/2", headers=EN))
    assert f'<dd class="reporter">{truth["reporter"]}</dd>' in page
    assert 'class="severity"' not in page and truth["severity"] == ""
    assert "/files/download?id=MIN-0002&amp;fmt=csv" in page


def test_unknown_pages_are_404(tracker: FlaskClient) -> None:
    assert tracker.get("/incidents/999", headers=EN).status_code == 404
    assert tracker.get("/wiki/minutes/0", headers=EN).status_code == 404
    assert tracker.get("/files/download?id=INC-0999&fmt=pdf").status_code == 404
    assert tracker.get("/files/download?id=INC-0001&fmt=csv").status_code == 404


# --------------------------------------------------------------------------- downloads


def test_download_is_gzip_encoded_for_gzip_clients(tracker: FlaskClient) -> None:
    truth = {r["id"]: r for r in state(tracker)}["INC-0003"]
    response = tracker.get(
        "/files/download?id=INC-0003&fmt=pdf", headers={"Accept-Encoding": "gzip, deflate, br"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Content-Type"] == "application/pdf"
    wire = response.get_data()
    assert int(response.headers["Content-Length"]) == len(wire) == truth["gzip_size"]
    body = gzip.decompress(wire)
    assert len(body) == truth["size"] and len(wire) < len(body)
    assert hashlib.sha256(body).hexdigest() == truth["sha256"]
    assert body.startswith(b"%PDF-")
    assert response.headers["Content-Disposition"] == 'attachment; filename="INC-0003.pdf"'


def test_download_is_plain_without_gzip(tracker: FlaskClient) -> None:
    truth = {r["id"]: r for r in state(tracker)}["MIN-0001"]
    for accept in (None, "identity", "gzip;q=0"):
        headers = {"Accept-Encoding": accept} if accept else {}
        response = tracker.get("/files/download?id=MIN-0001&fmt=csv", headers=headers)
        assert "Content-Encoding" not in response.headers
        body = response.get_data()
        assert int(response.headers["Content-Length"]) == len(body) == truth["size"]
        assert hashlib.sha256(body).hexdigest() == truth["sha256"]
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert rows[0] == ["Meeting", truth["title"]]
    assert rows[2] == ["Recorded by", truth["reporter"]]


def test_download_without_session_redirects_to_login(client: FlaskClient) -> None:
    response = client.get("/files/download?id=INC-0001&fmt=pdf")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=/files/download")


# --------------------------------------------------------------------------- faults


def test_forced_html_instead_and_truncate(tracker: FlaskClient) -> None:
    config = {"html_instead": ["INC-0002"], "truncate": ["INC-0004"]}
    assert tracker.post("/_sim/faults", json=config).status_code == 200
    busy = tracker.get("/files/download?id=INC-0002&fmt=pdf", headers=EN)
    assert busy.status_code == 200 and busy.mimetype == "text/html"
    assert "being processed" in text(busy)
    cut = tracker.get("/files/download?id=INC-0004&fmt=pdf", headers={"Accept-Encoding": "gzip"})
    declared = int(cut.headers["Content-Length"])
    assert len(cut.get_data()) == declared // 2
    injected = tracker.get("/_sim/faults").json["injected"]  # type: ignore[index]
    assert injected["html_instead"] == 1 and injected["truncate"] == 1
    whole = tracker.get("/files/download?id=INC-0005&fmt=pdf")
    assert len(whole.get_data()) == int(whole.headers["Content-Length"])


def test_error_rate_and_session_expiry(tracker: FlaskClient) -> None:
    tracker.post("/_sim/faults", json={"error_rate": 1})
    failed = tracker.get("/incidents", headers=EN)
    assert failed.status_code == 500 and "Something went wrong" in text(failed)
    tracker.post("/_sim/faults", json={"session_expiry_every": 1})
    assert tracker.get("/incidents", headers=EN).status_code == 302  # expired under it
    assert tracker.get("/_sim/faults").json["injected"]["session_expiry"] == 1  # type: ignore[index]


def test_faults_of_the_archive_side_are_unknown_here(tracker: FlaskClient) -> None:
    response = tracker.post("/_sim/faults", json={"lost_response_rate": 0.5})
    assert response.status_code == 400 and response.json["key"] == "lost_response_rate"  # type: ignore[index]


# --------------------------------------------------------------------------- ground truth


def test_ground_truth_describes_every_report(tracker: FlaskClient) -> None:
    reports = state(tracker)
    assert [r["id"] for r in reports] == [f"INC-{n:04d}" for n in range(1, 24)] + [
        f"MIN-{n:04d}" for n in range(1, 7)
    ]
    for report in reports:
        assert {"id", "kind", "title", "reporter", "severity", "date", "sha256", "size"} <= set(
            report
        )
        assert (report["severity"] != "") == (report["kind"] == "incident")
        body = tracker.get(f"/files/download?id={report['id']}&fmt={report['format']}").get_data()
        assert hashlib.sha256(body).hexdigest() == report["sha256"]
        assert len(body) == report["size"]


def test_same_seed_same_reports() -> None:
    first = create_app(latency_ms=(0, 0), seed=5).test_client().get("/_sim/state").json
    second = create_app(latency_ms=(0, 0), seed=5).test_client().get("/_sim/state").json
    other = create_app(latency_ms=(0, 0), seed=6).test_client().get("/_sim/state").json
    assert first == second
    assert first != other


def test_publish_adds_reports_dated_today(tracker: FlaskClient) -> None:
    response = tracker.post("/_sim/publish", json={"kind": "minutes", "count": 2})
    assert response.json == {"published": ["MIN-0007", "MIN-0008"]}
    added = {r["id"]: r for r in state(tracker)}["MIN-0008"]
    assert added["date"] == "2026-06-01"
    assert '<a href="/wiki/minutes/8">' in text(tracker.get("/wiki/minutes", headers=EN))
    assert tracker.post("/_sim/publish", json={"kind": "bug"}).status_code == 400
    assert tracker.post("/_sim/publish", json={"count": 0}).status_code == 400
    assert tracker.post("/_sim/publish", json={"size": 1}).status_code == 400


# --------------------------------------------------------------------------- command line


def test_command_line_serves_and_announces_its_port() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sims.tracker", "--port", "0", "--latency-ms", "0,0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.match(r"^READY http://127\.0\.0\.1:\d+ tracker$", line.strip()), line
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
