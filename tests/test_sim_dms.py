"""DMS simulator (sims/dms): login with CSRF, the two-tab upload form and its pressed
button, validation, documents, inventory, search, faults and ground truth, through
Flask's test client (no browser)."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sims.dms.app import CSRF_COOKIE, CSRF_FIELD, DEFAULT_PASSWORD, PAGE_SIZE, USER, create_app
from sims.faults import ConnectionDropped

REPO_ROOT = Path(__file__).resolve().parents[1]
PDF = b"%PDF-1.4\n% a small test file\n%%EOF\n"


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app(data=tmp_path / "data", latency_ms=(0, 0))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def csrf(client: FlaskClient, path: str = "/accounts/login") -> str:
    page = text(client.get(path))
    found = re.search(rf'name="{CSRF_FIELD}" value="(\w+)"', page)
    assert found, page
    return found.group(1)


def login(client: FlaskClient, password: str = DEFAULT_PASSWORD) -> TestResponse:
    token = csrf(client)
    return client.post(
        "/accounts/login", data={"username": USER, "password": password, CSRF_FIELD: token}
    )


@pytest.fixture
def dms(client: FlaskClient) -> FlaskClient:
    assert login(client).status_code == 302
    return client


def form(client: FlaskClient, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        CSRF_FIELD: client.get_cookie(CSRF_COOKIE).value,  # type: ignore[union-attr]
        "title": "Checkout API returns 502 under load",
        "report_id": "INC-0007",
        "author": "Mei Lin",
        "description": "Captured from the tracker",
        "source_system": "Northwind Tracker",
        "document_date": "2026-01-27",
        "retention_years": "10",
        "tags": ["tracker", "incident", "minor"],
        "op": "save",
        "file": (io.BytesIO(PDF), "INC-0007.pdf"),
    }
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def upload(client: FlaskClient, **overrides: Any) -> TestResponse:
    return client.post(
        "/documents/new", data=form(client, **overrides), content_type="multipart/form-data"
    )


def documents(client: FlaskClient) -> list[dict[str, Any]]:
    return client.get("/_sim/state").json["documents"]  # type: ignore[index]


# --------------------------------------------------------------------------- login


def test_login_with_csrf_then_documents(client: FlaskClient) -> None:
    response = login(client)
    assert response.status_code == 302 and response.location == "/documents"
    assert client.get("/documents").status_code == 200


def test_login_without_csrf_token_is_forbidden(client: FlaskClient) -> None:
    client.get("/accounts/login")
    response = client.post("/accounts/login", data={"username": USER, "password": "x"})
    assert response.status_code == 403
    assert "CSRF verification failed" in text(response)


def test_wrong_password_is_refused(client: FlaskClient) -> None:
    response = login(client, "wrong")
    assert response.status_code == 200
    assert '<ul class="errorlist nonfield">' in text(response)
    assert "Please enter a correct username and password" in text(response)


def test_login_page_redirects_when_logged_in(dms: FlaskClient) -> None:
    assert dms.get("/accounts/login").location == "/documents"
    assert dms.get("/accounts/login?next=/documents/new").location == "/documents/new"


def test_pages_need_a_session(client: FlaskClient) -> None:
    response = client.get("/documents/new")
    assert response.status_code == 302
    assert response.location == "/accounts/login?next=/documents/new"


def test_logout_link_is_in_a_collapsed_menu(dms: FlaskClient) -> None:
    page = text(dms.get("/documents"))
    menu = re.search(r'<details class="user-menu">(.*?)</details>', page, re.S)
    assert menu and 'class="logout" href="/accounts/logout"' in menu.group(1)
    assert '<details class="user-menu" open' not in page
    assert dms.get("/accounts/logout").location == "/accounts/login?logged_out=1"
    assert dms.get("/documents").status_code == 302


# --------------------------------------------------------------------------- upload form


def test_upload_form_has_a_hidden_tab_a_tag_picker_and_two_buttons(dms: FlaskClient) -> None:
    page = text(dms.get("/documents/new"))
    hidden = re.search(
        r'<section id="tab-classification"[^>]*\bhidden\b[^>]*>(.*?)</section>', page, re.S
    )
    assert hidden, "the classification tab must be hidden until clicked"
    for name in ("source_system", "document_date", "retention_years", "tags"):
        assert f'name="{name}"' in hidden.group(1)
    assert '<select id="id_tags" name="tags" multiple' in page
    buttons = re.findall(r'<button type="submit" name="op" value="(\w+)"', page)
    assert buttons == ["save", "draft"]  # Save is the form's default button


def test_save_files_the_document(dms: FlaskClient) -> None:
    response = upload(dms)
    assert response.status_code == 303
    assert response.location == "/documents/DOC-000001?created=1"
    page = text(dms.get(response.location))
    assert '<span id="document-id">DOC-000001</span>' in page
    assert "Document <strong>DOC-000001</strong> was filed." in page
    assert f'<code id="sha256">{hashlib.sha256(PDF).hexdigest()}</code>' in page
    [document] = documents(dms)
    assert document == {
        "id": "DOC-000001",
        "title": "Checkout API returns 502 under load",
        "report_id": "INC-0007",
        "source_system": "Northwind Tracker",
        "retention_years": 10,
        "tags": ["tracker", "incident", "minor"],
        "document_date": "2026-01-27",
        "author": "Mei Lin",
        "description": "Captured from the tracker",
        "filename": "INC-0007.pdf",
        "size": len(PDF),
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "created": document["created"],
    }
    download = dms.get("/documents/DOC-000001/download")
    assert download.get_data() == PDF
    assert download.headers["Content-Disposition"] == "attachment; filename=INC-0007.pdf"


def test_without_the_pressed_button_nothing_is_saved(dms: FlaskClient) -> None:
    response = upload(dms, op=None)
    assert response.status_code == 200
    assert "Nothing was saved: the form was sent without pressing Save." in text(response)
    assert documents(dms) == []


def test_a_draft_is_not_filed(dms: FlaskClient) -> None:
    response = upload(dms, op="draft")
    assert response.status_code == 200
    assert "Nothing was filed" in text(response)
    assert documents(dms) == []


def test_upload_without_csrf_is_forbidden(dms: FlaskClient) -> None:
    assert upload(dms, **{CSRF_FIELD: "0" * 32}).status_code == 403
    assert documents(dms) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"title": ""}, "Title: this field is required."),
        ({"report_id": ""}, "Report ID: this field is required."),
        ({"report_id": "INC-7"}, "Report ID: enter an id such as INC-0001 or MIN-0001."),
        ({"report_id": "BUG-0001"}, "Report ID: enter an id such as INC-0001 or MIN-0001."),
        ({"source_system": " "}, "Source system: this field is required."),
        ({"retention_years": ""}, "Retention (years): this field is required."),
        ({"retention_years": "5"}, "5 is not one of 1, 3, 10, 30."),
        ({"tags": ["tracker", "secret"]}, "Tags: select a valid choice; secret is not one"),
        ({"document_date": "20260127"}, "Document date: enter a valid date (YYYY-MM-DD)."),
        ({"document_date": "2026-02-30"}, "Document date: enter a valid date (YYYY-MM-DD)."),
        ({"file": None}, "File: no file was submitted."),
        ({"file": (io.BytesIO(b""), "empty.pdf")}, "File: the submitted file is empty."),
    ],
)
def test_validation_in_english(dms: FlaskClient, overrides: dict[str, Any], message: str) -> None:
    response = upload(dms, **overrides)
    assert response.status_code == 200
    page = text(response)
    assert '<ul class="errorlist">' in page
    assert message in page
    assert documents(dms) == []


def test_optional_fields_may_be_empty(dms: FlaskClient) -> None:
    response = upload(dms, tags=None, document_date="", author="", description="")
    assert response.status_code == 303
    [document] = documents(dms)
    assert document["tags"] == [] and document["document_date"] == ""


def test_the_form_keeps_what_was_typed_after_an_error(dms: FlaskClient) -> None:
    page = text(upload(dms, report_id="nope"))
    assert 'value="Northwind Tracker"' in page
    assert '<option value="minor" selected>' in page
    assert '<option value="10" selected>' in page


# --------------------------------------------------------------------------- lists


def test_inventory_shows_no_sizes_and_pages(dms: FlaskClient) -> None:
    for n in range(PAGE_SIZE + 2):
        upload(dms, report_id=f"INC-{n + 1:04d}")
    first = text(dms.get("/documents"))
    assert "<th>Document</th><th>Report ID</th><th>Title</th><th>Created</th>" in first
    table = first.split("<table", 1)[1].split("</table>", 1)[0]
    assert "size" not in table.lower()
    assert len(re.findall(r'<td class="doc-id">', first)) == PAGE_SIZE
    assert '<a class="next" rel="next" href="/documents?page=2">Next</a>' in first
    second = text(dms.get("/documents?page=2"))
    assert len(re.findall(r'<td class="doc-id">', second)) == 2
    assert 'class="next"' not in second


def test_search_by_report_id(dms: FlaskClient) -> None:
    upload(dms, report_id="INC-0001")
    upload(dms, report_id="MIN-0001")
    page = text(dms.get("/documents?report_id=MIN-0001"))
    assert re.findall(r'<td class="doc-id"><a href="/documents/(DOC-\d+)">', page) == ["DOC-000002"]
    miss = text(dms.get("/documents?report_id=INC-0099"))
    assert '<td class="doc-id">' not in miss and "0 documents" in miss


def test_the_same_report_filed_twice_shows_twice(dms: FlaskClient) -> None:
    # A DMS does not deduplicate: a robot that uploads twice leaves two documents.
    upload(dms)
    upload(dms)
    assert [d["report_id"] for d in documents(dms)] == ["INC-0007", "INC-0007"]


def test_unknown_document_is_404(dms: FlaskClient) -> None:
    assert dms.get("/documents/DOC-999999").status_code == 404
    assert dms.get("/documents/DOC-999999/download").status_code == 404


# --------------------------------------------------------------------------- faults


def test_reject_files_nothing_and_says_so(dms: FlaskClient) -> None:
    dms.post("/_sim/faults", json={"reject_rate": 1})
    response = upload(dms)
    assert response.status_code == 200
    assert "did not accept the file. Nothing was filed." in text(response)
    assert documents(dms) == []


def test_lost_response_files_the_document_but_drops_the_answer(dms: FlaskClient) -> None:
    dms.post("/_sim/faults", json={"lost_response_rate": 1})
    with pytest.raises(ConnectionDropped):
        upload(dms)
    assert [d["report_id"] for d in documents(dms)] == ["INC-0007"]
    assert dms.get("/_sim/faults").json["injected"]["lost_response"] == 1  # type: ignore[index]


def test_error_rate_and_session_expiry(dms: FlaskClient) -> None:
    dms.post("/_sim/faults", json={"error_rate": 1})
    assert dms.get("/documents").status_code == 500
    dms.post("/_sim/faults", json={"session_expiry_every": 1})
    assert dms.get("/documents").status_code == 302


def test_faults_of_the_source_side_are_unknown_here(dms: FlaskClient) -> None:
    response = dms.post("/_sim/faults", json={"truncate_rate": 0.5})
    assert response.status_code == 400


# --------------------------------------------------------------------------- persistence


def test_holdings_survive_a_restart_and_numbers_continue(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = create_app(data=data, latency_ms=(0, 0)).test_client()
    login(first)
    upload(first)
    before = documents(first)
    second = create_app(data=data, latency_ms=(0, 0)).test_client()
    assert documents(second) == before
    login(second)
    assert upload(second).location == "/documents/DOC-000002?created=1"
    assert second.get("/documents/DOC-000001/download").get_data() == PDF


def test_command_line_serves_and_announces_its_port(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sims.dms", "--port", "0", "--data", str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.match(r"^READY http://127\.0\.0\.1:\d+ dms$", line.strip()), line
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
