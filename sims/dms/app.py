"""Flask application imitating a self-hosted document-management system (Docketry DMS).

An archive with its own metadata, not DA/T 46: a report id (``INC-0001``/``MIN-0001``),
the source system, a retention period in years (1, 3, 10 or 30), tags from a fixed
vocabulary, a document date, an author and a description. What a robot meets here:

- a Django-style login with a CSRF token (cookie and hidden field must agree) that
  redirects to the document list when a session already exists;
- a "Log out" link inside a collapsed user menu: present, never visible until opened;
- an upload form in two tabs, the second ("Classification") hidden until its tab is
  clicked; its tags are a ``<select multiple>``;
- two submit buttons, ``op=save`` and ``op=draft``: a post without ``op=save`` files
  nothing, and the page says so;
- server-side validation with English messages in ``ul.errorlist``;
- a document page with the stored file's SHA-256 and a download link, an inventory list
  that shows no sizes, and a search by report id.

On demand (``/_sim/faults``, the archive-side kinds of ``ARCHIVE_KINDS``): 500 pages,
early session expiry, latency spikes, uploads refused (``reject``, nothing filed) and
uploads filed whose answer never arrives (``lost_response``). ``GET /_sim/state`` lists
every filed document with all its fields, size and SHA-256.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hmac
import math
import mimetypes
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from flask import Flask, Response, g, jsonify, render_template, request, send_file
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from sims import faults as fault_kinds
from sims.dms.store import DocumentStore, Fields, tags_of
from sims.faults import Faults, is_sim_path, no_response, register_routes, seeded_latency

USER = "archivist"
DEFAULT_PASSWORD = "dms-demo"
SESSION_COOKIE = "sessionid"
CSRF_COOKIE = "csrftoken"
CSRF_FIELD = "csrfmiddlewaretoken"
PAGE_SIZE = 20

REPORT_ID = re.compile(r"^(INC|MIN)-\d{4}$")
RETENTION_YEARS = (1, 3, 10, 30)
TAGS = {
    "incident": "Incident",
    "minutes": "Meeting minutes",
    "tracker": "From the tracker",
    "critical": "Critical",
    "major": "Major",
    "minor": "Minor",
    "trivial": "Trivial",
    "finance": "Finance",
    "legal": "Legal",
    "operations": "Operations",
}
MAX_TEXT = 200
MAX_DESCRIPTION = 4000

MSG_NOT_SAVED = "Nothing was saved: the form was sent without pressing Save."
MSG_DRAFT = (
    "Draft checked. Nothing was filed: drafts stay in this form. Press Save to file the document."
)
MSG_REJECTED = "The document store is busy and did not accept the file. Nothing was filed."

View = TypeVar("View", bound=Callable[..., Any])


class Sessions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, str] = {}

    def create(self, username: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._users[token] = username
        return token

    def user(self, token: str | None) -> str | None:
        if not token:
            return None
        with self._lock:
            return self._users.get(token)

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._users.pop(token, None)


def validate(
    form: MultiDict[str, str], filename: str | None, size: int | None
) -> tuple[Fields | None, dict[str, list[str]]]:
    """The upload form's fields, or the errors to show beside each (``__all__``: the form's)."""
    errors: dict[str, list[str]] = {}

    def err(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    def text(name: str, label: str, required: bool, limit: int = MAX_TEXT) -> str:
        value = form.get(name, "").strip()
        if required and not value:
            err(name, f"{label}: this field is required.")
        elif len(value) > limit:
            err(name, f"{label}: at most {limit} characters (it has {len(value)}).")
        return value

    title = text("title", "Title", True)
    report_id = text("report_id", "Report ID", True)
    if report_id and not REPORT_ID.match(report_id):
        err("report_id", "Report ID: enter an id such as INC-0001 or MIN-0001.")
    source_system = text("source_system", "Source system", True)
    retention_text = form.get("retention_years", "").strip()
    retention = 0
    if not retention_text:
        err("retention_years", "Retention (years): this field is required.")
    elif not retention_text.isdigit() or int(retention_text) not in RETENTION_YEARS:
        choices = ", ".join(map(str, RETENTION_YEARS))
        err(
            "retention_years",
            f"Retention (years): select a valid choice; {retention_text} is not one of {choices}.",
        )
    else:
        retention = int(retention_text)
    tags = tags_of(t.strip() for t in form.getlist("tags") if t.strip())
    for tag in tags:
        if tag not in TAGS:
            err("tags", f"Tags: select a valid choice; {tag} is not one of the available tags.")
    document_date = form.get("document_date", "").strip()
    if document_date:
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", document_date):
                raise ValueError(document_date)
            dt.date.fromisoformat(document_date)
        except ValueError:
            err("document_date", "Document date: enter a valid date (YYYY-MM-DD).")
    author = text("author", "Author", False)
    description = text("description", "Description", False, MAX_DESCRIPTION)
    if not filename:
        err("file", "File: no file was submitted.")
    elif not size:
        err("file", "File: the submitted file is empty.")
    if errors:
        return None, errors
    fields = Fields(
        title=title,
        report_id=report_id,
        source_system=source_system,
        retention_years=retention,
        tags=tags,
        document_date=document_date,
        author=author,
        description=description,
    )
    return fields, errors


def create_app(
    *,
    data: str | os.PathLike[str] | None = None,
    password: str = DEFAULT_PASSWORD,
    latency_ms: tuple[float, float] = (10, 50),
    seed: int = 3,
    faults: Mapping[str, Any] | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Flask:
    """Build the DMS. ``data`` persists holdings; None: a temp dir removed at exit.
    ``latency_ms=(0, 0)`` for fast tests; ``faults`` as ``POST /_sim/faults`` takes it."""
    if latency_ms[0] < 0 or latency_ms[1] < latency_ms[0]:
        raise ValueError(f"latency range must satisfy 0 <= MIN <= MAX, got {latency_ms}")
    injector = Faults(fault_kinds.ARCHIVE_KINDS, seeded_latency("dms", seed, latency_ms), faults)
    if data is None:
        temp_dir = tempfile.mkdtemp(prefix="dms-sim-")
        atexit.register(shutil.rmtree, temp_dir, ignore_errors=True)
        data_dir = Path(temp_dir)
    else:
        data_dir = Path(data)
    store = DocumentStore(data_dir)
    sessions = Sessions()

    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["dms_sim"] = store
    register_routes(app, injector)

    def csrf_token() -> str:
        token = request.cookies.get(CSRF_COOKIE)
        if not token or len(token) != 32 or not token.isalnum():
            token = g.get("new_csrf") or secrets.token_hex(16)
            g.new_csrf = token
        return token

    def page(template: str, status: int = 200, **context: Any) -> Response:
        body = render_template(template, user=g.get("user"), csrf_token=csrf_token, **context)
        response = Response(body, status=status, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "private, no-cache"
        return response

    @app.after_request
    def set_csrf_cookie(response: Response) -> Response:
        if g.get("new_csrf"):
            response.set_cookie(CSRF_COOKIE, g.new_csrf, samesite="Lax", max_age=31449600)
        return response

    def csrf_ok() -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        given = request.form.get(CSRF_FIELD, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), given.encode())

    def csrf_failure() -> Response:
        return page(
            "notice.html",
            status=403,
            heading="Forbidden (403)",
            message="CSRF verification failed. Request aborted.",
        )

    def login_required(view: View) -> View:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if g.get("user") is None:
                target = request.full_path if request.query_string else request.path
                return _redirect(f"/accounts/login?next={quote(target, safe='/')}", code=302)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    @app.before_request
    def latency_faults_and_session() -> Response | None:
        if is_sim_path(request.path):
            return None
        roll = injector.begin()  # sleeps the latency
        g.fault_roll = roll
        if roll.error:
            return page(
                "notice.html",
                status=500,
                heading="Server Error (500)",
                message="A server error occurred. Please contact the administrator.",
            )
        token = request.cookies.get(SESSION_COOKIE)
        g.user = sessions.user(token)
        if (
            g.user is not None
            and not request.path.startswith("/accounts/")
            and injector.expire_session(roll)
        ):
            sessions.end(token)  # the view now finds no session: off to the login page
            g.user = None
        return None

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return page(
            "notice.html",
            status=error.code or 500,
            heading=f"{error.name} ({error.code})",
            message=error.description,
        )

    @app.get("/")
    def root() -> Response:
        return _redirect("/documents" if g.user else "/accounts/login", code=302)

    @app.get("/accounts/login")
    def login_form() -> Response:
        if g.user is not None:  # already signed in: no form, on to the documents
            return _redirect(_safe_next(request.args.get("next")), code=302)
        return page(
            "login.html", errors=[], username="", logged_out=request.args.get("logged_out") == "1"
        )

    @app.post("/accounts/login")
    def login() -> Response:
        if not csrf_ok():
            return csrf_failure()
        username = request.form.get("username", "")
        given = request.form.get("password", "")
        ok = hmac.compare_digest(username.encode(), USER.encode()) & hmac.compare_digest(
            given.encode(), password.encode()
        )
        if not ok:
            message = (
                "Please enter a correct username and password. Note that both fields may be "
                "case-sensitive."
            )
            return page("login.html", errors=[message], username=username, logged_out=False)
        sessions.end(request.cookies.get(SESSION_COOKIE))
        response = _redirect(_safe_next(request.args.get("next")), code=302)
        response.set_cookie(SESSION_COOKIE, sessions.create(USER), httponly=True, samesite="Lax")
        return response

    @app.route("/accounts/logout", methods=["GET", "POST"])
    def logout() -> Response:
        sessions.end(request.cookies.get(SESSION_COOKIE))
        response = _redirect("/accounts/login?logged_out=1", code=302)
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="Lax")
        return response

    def upload_page(
        values: MultiDict[str, str],
        errors: dict[str, list[str]],
        message: str | None = None,
        status: int = 200,
    ) -> Response:
        return page(
            "upload.html",
            status=status,
            values=values,
            selected_tags=set(values.getlist("tags")),
            errors=errors,
            message=message,
            tags=TAGS,
            retentions=RETENTION_YEARS,
        )

    @app.get("/documents/new")
    @login_required
    def upload_form() -> Response:
        return upload_page(MultiDict(), {})

    @app.post("/documents/new")
    @login_required
    def upload() -> Response:
        if not csrf_ok():
            return csrf_failure()
        form = request.form
        values = MultiDict([(k, v) for k, v in form.items(multi=True) if k != CSRF_FIELD])
        upload = request.files.get("file")
        filename = upload.filename if upload is not None else None
        size = None
        if upload is not None:
            upload.stream.seek(0, os.SEEK_END)
            size = upload.stream.tell()
            upload.stream.seek(0)
        fields, errors = validate(form, filename, size)
        op = form.get("op")
        if op not in ("save", "draft"):
            # A form library that dispatches on the pressed button: no button, no action.
            return upload_page(values, errors, MSG_NOT_SAVED)
        if errors or fields is None:
            return upload_page(values, errors)
        if op == "draft":
            return upload_page(values, {}, MSG_DRAFT)
        roll = g.get("fault_roll")
        if injector.hit(roll, fault_kinds.REJECT):
            return upload_page(values, {"__all__": [MSG_REJECTED]})
        assert upload is not None and filename  # validate() checked both
        name = filename.replace("\\", "/").rsplit("/", 1)[-1]
        document = store.file(fields, upload.stream, name, clock())
        if injector.hit(roll, fault_kinds.LOST_RESPONSE):
            return no_response(request.environ)  # filed, but the answer never arrives
        return _redirect(f"/documents/{document.id}?created=1", code=303)

    @app.get("/documents")
    @login_required
    def documents() -> Response:
        report_id = request.args.get("report_id", "").strip()
        rows = store.with_report_id(report_id) if report_id else store.all()
        pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
        arg = request.args.get("page", "1")
        number = min(max(int(arg), 1), pages) if arg.isascii() and arg.isdigit() else 1
        query = f"report_id={quote(report_id)}&" if report_id else ""
        return page(
            "documents.html",
            rows=rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE],
            total=len(rows),
            page=number,
            pages=pages,
            report_id=report_id,
            prev_url=f"/documents?{query}page={number - 1}" if number > 1 else None,
            next_url=f"/documents?{query}page={number + 1}" if number < pages else None,
        )

    @app.get("/documents/<doc_id>")
    @login_required
    def document(doc_id: str) -> Response:
        found = store.get(doc_id)
        if found is None:
            return page(
                "notice.html",
                status=404,
                heading="Not Found (404)",
                message=f"No document {doc_id}.",
            )
        return page(
            "document.html", doc=found, created=request.args.get("created") == "1", tags=TAGS
        )

    @app.get("/documents/<doc_id>/download")
    @login_required
    def download(doc_id: str) -> Response:
        found = store.get(doc_id)
        if found is None:
            return page(
                "notice.html",
                status=404,
                heading="Not Found (404)",
                message=f"No document {doc_id}.",
            )
        mimetype = mimetypes.guess_type(found.filename)[0] or "application/octet-stream"
        return send_file(
            store.path(found.id),
            mimetype=mimetype,
            as_attachment=True,
            download_name=found.filename,
        )

    @app.get("/_sim/state")
    def sim_state() -> Response:
        return jsonify({"documents": [d.state() for d in store.all()]})

    return app


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/documents"
    return target


def _redirect(location: str, code: int = 302) -> Response:
    """A redirect typed as Flask's own Response (``flask.redirect`` returns Werkzeug's)."""
    return Response(status=code, headers={"Location": location})
