"""Flask application imitating a mid-2010s archive management system (档案管理系统).

What a robot meets here, on purpose: a login box in a sidebar, an announcement overlay
that intercepts clicks until dismissed, an ingest form split into a two-step wizard (the
file input and the submit button are out of reach until 下一步 is pressed), a drag-and-drop
zone hiding the real file input, a remarks field that counts only when its checkbox is
ticked, server-side validation with messages in Chinese, a hash-routed item viewer at
``/app#/items/<id>`` that renders from a JSON API after the page has loaded, and a little
latency on every request.

Two more ways in, for robots that must archive exactly once whatever the widget:

- ``/upload``: the same fields, but no form is ever submitted. A drag-and-drop zone (or
  its hidden, nameless ``#file-input``) picks the file; 开始上传 (``#start-upload``) posts
  the fields and the file by ``XMLHttpRequest`` (``FormData``) to ``POST /api/ingest``,
  which answers JSON (201 ``{"archive_id", "reference_code"}``, 422 ``{"errors"}``, 401
  without a session) and the script shows the result in ``#result``: ``#archive-id`` and
  ``#reference-code`` as the item page shows them, or ``ul.errors``,
  ``p.login-required``, ``p.server-error``, ``p.upload-failed`` (no answer).
- ``/register``: a plain multipart form with two submit buttons, ``name=op``
  ``value=draft`` (暂存, the first) and ``value=archive`` (提交归档). The server reads the
  pressed button: only ``op=archive`` archives (then as ``/ingest`` does); ``draft``
  shows ``#not-archived``, and no ``op`` at all an error; neither archives anything.

Both ingest endpoints meet the same faults as ``/ingest``: ``reject`` before the commit,
``lost_response`` after it (stored, then the connection dropped).

On demand (``/_sim/faults``, :mod:`sims.faults`) it also fails: 500 pages, sessions that
expire early, latency spikes, uploads refused for no stated reason, and uploads that are
stored but whose answer never arrives (the connection drops after the commit).

It counts logged-in sessions (:mod:`sims.seats`) and, given a cap (``--max-sessions``,
``/_sim/config``), refuses a login beyond it with ``.alert-warning`` (当前在线用户数已达上限),
not the ``.alert-error`` of a wrong password: the one is worth another try later, the other
is not.

And it loses or damages what it holds when told to (``POST /_sim/tamper``): an item
deleted outright (its numbers stay taken, see :mod:`sims.archive.store`), or its stored
file corrupted in place while the catalogue keeps the old size and sha256, as bit rot
would. ``GET /_sim/state`` is the catalogue's ground truth. Like all ``/_sim/*``
endpoints these need no login and are never delayed or failed.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hmac
import math
import mimetypes
import os
import random
import shutil
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import quote

from flask import (
    Flask,
    Request,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from .. import faults as fault_kinds
from .. import seats
from ..faults import Faults, is_sim_path, no_response, register_routes
from .sessions import COOKIE_NAME, SessionStore, UserSession
from .store import ARCHIVE_TZ, ArchiveStore, IncomingFile
from .validation import (
    CATEGORIES,
    CLASSIFICATIONS,
    FIELD_LABELS,
    RETENTIONS,
    validate_file,
    validate_metadata,
)

USERNAME = "archivist"
DEFAULT_PASSWORD = "archivist-demo"
PAGE_SIZE = 20
_EXTENSION_KEY = "archive_sim"
MSG_REJECTED = "系统校验未通过：文件与著录信息不一致（模拟拒收）"
MSG_NO_OP = "未选择操作（暂存或提交归档）：未归档"
MSG_BAD_LOGIN = "用户名或密码错误"
MSG_FULL = "当前在线用户数已达上限，请稍后再试"
TAMPER_ACTIONS = ("delete", "corrupt")


class Latency:
    """Seeded random per-request delay, so a run's timing is repeatable for a given seed."""

    def __init__(self, min_ms: float, max_ms: float, seed: int) -> None:
        if min_ms < 0 or max_ms < min_ms:
            raise ValueError(f"latency range must satisfy 0 <= MIN <= MAX, got {min_ms},{max_ms}")
        self.min_ms = min_ms
        self.max_ms = max_ms
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # random.Random is shared by the server's threads

    def draw_ms(self) -> float:
        with self._lock:
            return self._rng.uniform(self.min_ms, self.max_ms)

    def sleep(self) -> None:
        delay_ms = self.draw_ms()
        if delay_ms > 0:
            time.sleep(delay_ms / 1000)


@dataclass
class ArchiveSim:
    """Everything one app instance holds; kept in ``app.extensions``."""

    store: ArchiveStore
    sessions: SessionStore
    password: str
    latency: Latency
    faults: Faults


def _sim() -> ArchiveSim:
    return cast(ArchiveSim, current_app.extensions[_EXTENSION_KEY])


class ArchiveRequest(Request):
    """Streams uploaded files straight into the store's temporary directory.

    Werkzeug's default keeps uploads under 500 KB in memory; an archive must not, so
    every file part goes to disk as it is received, hashed on the way.
    """

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        incoming = _sim().store.open_incoming()
        self.incoming_files.append(incoming)
        return cast(IO[bytes], incoming)

    @property
    def incoming_files(self) -> list[IncomingFile]:
        return cast(list[IncomingFile], self.__dict__.setdefault("_incoming_files", []))


def _is_public(path: str) -> bool:
    return path in ("/", "/login") or path.startswith("/_sim/")


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def _api_error(message: str, status: int) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _tamper_problem(body: Any) -> str | None:
    """What is wrong with a ``POST /_sim/tamper`` body, or None if it is well formed."""
    usage = 'expected {"delete": "<archive_id>"} or {"corrupt": "<archive_id>"}'
    if not isinstance(body, dict):
        return f"body is not a JSON object: {usage}"
    unknown = sorted(k for k in body if k not in TAMPER_ACTIONS)
    if unknown:
        return f"unknown key(s) {', '.join(map(repr, unknown))}: {usage}"
    if len(body) != 1:
        return f"give exactly one of 'delete' or 'corrupt', got {len(body)}: {usage}"
    [(action, archive_id)] = body.items()
    if not isinstance(archive_id, str):
        return f"{action!r} must be an archive id string, got {type(archive_id).__name__}"
    return None


def content_disposition(filename: str, archive_id: str) -> str:
    """``attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>``.

    Old clients read only ``filename``, so it gets a safe ASCII stand-in: the name itself
    when it is plain printable ASCII, else the archive id with the name's extension.
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1] or archive_id
    printable_ascii = all(" " <= ch <= "~" for ch in name) and '"' not in name
    if printable_ascii:
        fallback = name
    else:
        stem, dot, ext = name.rpartition(".")
        ext_ascii = unicodedata.normalize("NFKD", ext).encode("ascii", "ignore").decode()
        clean_ext = "".join(ch for ch in ext_ascii if ch.isalnum())
        fallback = f"{archive_id}.{clean_ext}" if stem and dot and clean_ext else archive_id
    encoded = quote(name, safe="!#$&+-.^_`|~")  # RFC 8187 attr-char
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _today() -> dt.date:
    return dt.datetime.now(ARCHIVE_TZ).date()


def create_app(
    *,
    data: str | os.PathLike[str] | None = None,
    password: str = DEFAULT_PASSWORD,
    latency_ms: tuple[float, float] = (10, 60),
    seed: int = 1,
    faults: Mapping[str, Any] | None = None,
    max_sessions: int | None = None,
    idle_timeout: float | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """Build the simulator. ``data`` persists holdings; None means a temp dir removed at exit.

    ``faults`` is an initial fault configuration, as ``POST /_sim/faults`` takes it; a bad
    one raises ValueError before anything is created. ``max_sessions`` caps concurrently
    logged-in sessions (None: counted, never refused); ``idle_timeout`` (seconds on
    ``clock``) ends a session left idle that long (None: never).
    """
    latency = Latency(latency_ms[0], latency_ms[1], seed)
    injector = Faults(fault_kinds.ARCHIVE_KINDS, latency.draw_ms, faults)
    cap = seats.check_max_sessions(max_sessions)
    if idle_timeout is not None and not idle_timeout > 0:
        raise ValueError(f"idle_timeout must be > 0 seconds, got {idle_timeout}")
    if data is None:
        temp_dir = tempfile.mkdtemp(prefix="archive-sim-")
        atexit.register(shutil.rmtree, temp_dir, ignore_errors=True)
        data_dir = Path(temp_dir)
    else:
        data_dir = Path(data)

    app = Flask(__name__)
    app.request_class = ArchiveRequest
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # readable Chinese in /_sim/state
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented key order
    sim = ArchiveSim(
        store=ArchiveStore(data_dir),
        sessions=SessionStore(max_sessions=cap, idle_timeout=idle_timeout, clock=clock),
        password=password,
        latency=latency,
        faults=injector,
    )
    app.extensions[_EXTENSION_KEY] = sim
    register_routes(app, injector)
    seats.register_routes(app, sim.sessions)

    @app.before_request
    def _latency_faults_and_login() -> Response | tuple[str, int] | None:
        if not is_sim_path(request.path):  # /_sim/*: never delayed, failed or counted
            roll = injector.begin()  # sleeps the latency
            g.fault_roll = roll
            if roll.error:  # before the view: nothing is parsed, stored or changed
                return render_template("server_error.html"), 500
        token = request.cookies.get(COOKIE_NAME)
        g.user_session = sim.sessions.get(token)
        if (
            g.user_session is not None
            and not _is_public(request.path)
            and injector.expire_session(g.get("fault_roll"))
        ):
            sim.sessions.end(token)  # expired under it: treated as any lost session below
            g.user_session = None
        if g.user_session is None and not _is_public(request.path):
            if _is_api(request.path):  # a script asked: answer it, do not redirect it
                return _api_error("login required", 401)
            return redirect("/", code=302)
        return None

    @app.teardown_request
    def _discard_uncommitted_uploads(exc: BaseException | None) -> None:
        # Rejected or failed uploads leave nothing behind in the data directory.
        req = request._get_current_object()  # type: ignore[attr-defined]
        if isinstance(req, ArchiveRequest):
            for incoming in req.incoming_files:
                incoming.discard()

    @app.context_processor
    def _layout_context() -> dict[str, Any]:
        session: UserSession | None = g.get("user_session")
        return {
            "user": session,
            "show_notice": session is not None and not session.notice_dismissed,
        }

    @app.get("/")
    def index() -> str:
        return render_template("index.html", error=None, username="")

    @app.get("/login")
    def login_page() -> Response:
        return redirect("/", code=302)

    @app.post("/login")
    def login() -> Response | str:
        username = request.form.get("username", "")
        given = request.form.get("password", "")
        ok = hmac.compare_digest(username.encode(), USERNAME.encode()) & hmac.compare_digest(
            given.encode(), sim.password.encode()
        )
        if not ok:
            return render_template("index.html", error=MSG_BAD_LOGIN, username=username)
        # The browser's earlier session, if any, ends: one browser holds one seat.
        session = sim.sessions.create(username, replacing=request.cookies.get(COOKIE_NAME))
        if session is None:  # the licence is full: a refusal worth retrying, not an error
            return render_template("index.html", error=None, busy=MSG_FULL, username=username)
        response = redirect("/dashboard", code=303)
        response.set_cookie(COOKIE_NAME, session.token, httponly=True, samesite="Lax", path="/")
        return response

    @app.route("/logout", methods=["GET", "POST"])
    def logout() -> Response:
        sim.sessions.end(request.cookies.get(COOKIE_NAME))
        response = redirect("/", code=303)
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Lax")
        return response

    @app.post("/notice/dismiss")
    def dismiss_notice() -> tuple[str, int]:
        sim.sessions.dismiss_notice(g.user_session.token)
        return "", 204

    @app.get("/dashboard")
    def dashboard() -> str:
        _, total = sim.store.search("", offset=0, limit=0)
        return render_template("dashboard.html", total=total)

    def render_ingest(values: dict[str, str], errors: list[str], has_remarks: bool) -> str:
        return render_template(
            "ingest.html",
            values=values,
            errors=errors,
            has_remarks=has_remarks,
            categories=CATEGORIES,
            retentions=RETENTIONS,
            classifications=CLASSIFICATIONS,
        )

    def take_upload() -> tuple[Any, list[str]]:
        """Validate the request's fields and file and store them: (the item, []) or
        (None, what is wrong). The ``reject`` fault refuses it like invalid input."""
        form = request.form  # parses the body; file parts stream to disk meanwhile
        meta, errors = validate_metadata(form, has_remarks="has_remarks" in form, today=_today())
        upload = request.files.get("file")
        incoming = upload.stream if upload is not None else None
        filename = upload.filename if upload is not None else None
        size = incoming.size if isinstance(incoming, IncomingFile) else None
        errors += validate_file(filename, size)
        if errors or meta is None:
            return None, errors
        assert isinstance(incoming, IncomingFile) and filename  # validate_file checked both
        if injector.hit(g.get("fault_roll"), fault_kinds.REJECT):  # nothing kept
            return None, [MSG_REJECTED]
        return sim.store.ingest(meta, incoming, filename), []

    def answer_lost() -> bool:
        """After a commit: does the ``lost_response`` fault drop this answer?"""
        return injector.hit(g.get("fault_roll"), fault_kinds.LOST_RESPONSE)

    @app.get("/ingest")
    def ingest_form() -> str:
        return render_ingest({}, [], False)

    @app.post("/ingest")
    def ingest() -> Response | str:
        item, errors = take_upload()
        if item is None:
            return render_ingest(request.form.to_dict(), errors, "has_remarks" in request.form)
        if answer_lost():
            # Stored and numbered, but the client never hears so: the connection drops.
            return no_response(request.environ)
        return redirect(url_for("item_page", archive_id=item.archive_id, created=1), code=303)

    @app.get("/upload")
    def upload_page() -> str:
        return render_template(
            "upload.html",
            values={},
            has_remarks=False,
            categories=CATEGORIES,
            retentions=RETENTIONS,
            classifications=CLASSIFICATIONS,
        )

    @app.post("/api/ingest")
    def api_ingest() -> Response | tuple[Response, int]:
        # The upload page's script posts here (FormData) and shows the JSON it gets.
        item, errors = take_upload()
        if item is None:
            return jsonify({"errors": errors}), 422
        if answer_lost():
            return no_response(request.environ)
        response = jsonify({"archive_id": item.archive_id, "reference_code": item.reference_code})
        response.headers["Cache-Control"] = "no-store"
        return response, 201

    def render_register(draft: bool, errors: list[str]) -> str:
        form = request.form
        return render_template(
            "register.html",
            values=form.to_dict() if request.method == "POST" else {},
            has_remarks="has_remarks" in form,
            draft=draft,
            errors=errors,
            categories=CATEGORIES,
            retentions=RETENTIONS,
            classifications=CLASSIFICATIONS,
        )

    @app.get("/register")
    def register_form() -> str:
        return render_register(False, [])

    @app.post("/register")
    def register() -> Response | str:
        op = request.form.get("op")
        if op == "draft":  # kept as a draft: nothing is archived
            return render_register(True, [])
        if op != "archive":
            return render_register(False, [MSG_NO_OP])
        item, errors = take_upload()
        if item is None:
            return render_register(False, errors)
        if answer_lost():
            return no_response(request.environ)
        return redirect(url_for("item_page", archive_id=item.archive_id, created=1), code=303)

    @app.get("/items")
    def items() -> str:
        query = request.args.get("q", "")
        page_arg = request.args.get("page", "1")
        page = int(page_arg) if page_arg.isascii() and page_arg.isdigit() else 1
        page = max(page, 1)
        rows, total = sim.store.search(query, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        if page > pages:  # past the end: show the last page rather than an empty one
            page = pages
            rows, total = sim.store.search(query, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        q = query or None  # url_for drops None, so an empty search adds no "q=" to links
        return render_template(
            "items.html",
            rows=rows,
            total=total,
            page=page,
            pages=pages,
            query=query,
            prev_url=url_for("items", q=q, page=page - 1) if page > 1 else None,
            next_url=url_for("items", q=q, page=page + 1) if page < pages else None,
        )

    @app.get("/items/<archive_id>")
    def item_page(archive_id: str) -> str:
        item = sim.store.get(archive_id)
        if item is None:
            abort(404)
        return render_template(
            "item.html",
            item=item,
            created=request.args.get("created") == "1",
            labels=FIELD_LABELS,
            categories=CATEGORIES,
            retentions=RETENTIONS,
        )

    @app.get("/items/<archive_id>/file")
    def item_file(archive_id: str) -> Response:
        item = sim.store.get(archive_id)
        if item is None:
            abort(404)
        path = sim.store.file_path(item.archive_id)
        mimetype = mimetypes.guess_type(item.filename)[0] or "application/octet-stream"
        # send_file streams from disk in blocks and sets Content-Length from the file.
        response = send_file(path, mimetype=mimetype, as_attachment=True, download_name="x")
        response.headers["Content-Disposition"] = content_disposition(
            item.filename, item.archive_id
        )
        return response

    @app.get("/app")
    def viewer() -> str:
        # A static shell: the item is fetched and rendered by script from location.hash.
        return render_template("app.html", labels=FIELD_LABELS)

    @app.get("/api/items/<archive_id>")
    def api_item(archive_id: str) -> Response:
        item = sim.store.get(archive_id)
        if item is None:
            return _api_error("not found", 404)
        response = jsonify(item.to_state())
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/_sim/state")
    def sim_state() -> Response:
        return jsonify(
            {
                "items": [item.to_state() for item in sim.store.all_items()],
                "sessions": sim.sessions.seats_report(),
            }
        )

    @app.post("/_sim/tamper")
    def sim_tamper() -> Response:
        body = request.get_json(silent=True)
        problem = _tamper_problem(body)
        if problem is not None:
            return _api_error(problem, 400)
        assert isinstance(body, dict)
        [(action, archive_id)] = body.items()
        if action == "delete":
            if sim.store.delete(archive_id) is None:
                return _api_error(f"no item {archive_id}", 404)
            return jsonify({"deleted": archive_id})
        try:
            digests = sim.store.corrupt(archive_id)
        except ValueError as error:  # an empty file: nothing to flip
            return _api_error(str(error), 409)
        if digests is None:
            return _api_error(f"no item {archive_id}", 404)
        before, after = digests
        return jsonify({"corrupted": archive_id, "sha256_before": before, "sha256_after": after})

    @app.errorhandler(404)
    def not_found(error: Exception) -> Response | tuple[str, int]:
        if _is_api(request.path):
            return _api_error("not found", 404)
        return render_template("not_found.html"), 404

    return app
