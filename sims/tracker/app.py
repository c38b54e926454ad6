"""Flask application imitating a self-hosted issue tracker with a wiki (Northwind Tracker).

What a robot meets here, on purpose:

- a login form that, when a session already exists, is not shown at all: ``/login``
  redirects to the dashboard (so a recipe must not insist on the form being there);
- incidents in a paginated table (newest first), each row linking to a detail page;
- meeting minutes in a wiki list whose rows hold only floated cells (a theme without a
  clearfix): each row's box is 0 px high, so no row is "visible" to Playwright, while
  every cell is (a row screenshot waits for visibility until it times out);
- reporter, severity and the attachment's ``SHA-256: <hex>`` only on the detail page, and
  the report id (``INC-0007``) only inside the download link's href;
- labels in the browser's language (English, or Chinese for ``Accept-Language: zh*``);
- attachments (real PDF and CSV files) sent ``Content-Encoding: gzip`` with the
  compressed length when the client accepts gzip;
- an expired session answered with a redirect to the login page, even on a download;
- a little latency on every request.

On demand (``/_sim/faults``, :mod:`sims.faults`, the source-side kinds of
``ERP_KINDS``): 500 pages, early session expiry, latency spikes, attachments cut off
halfway (``truncate``) and a "being processed" HTML page in place of a file
(``html_instead``). ``GET /_sim/state`` is the ground truth; ``POST /_sim/publish``
adds reports.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from sims import faults as fault_kinds
from sims.faults import Faults, is_sim_path, register_routes, seeded_latency, truncated
from sims.tracker.catalogue import INCIDENT, KINDS, MINUTES, Catalogue
from sims.tracker.i18n import LABELS, human_size, long_date, negotiate

USER = "reporter-bot"
DEFAULT_PASSWORD = "tracker-demo"
COOKIE = "nw_session"
PAGE_SIZE = 10
MAX_PUBLISH = 500

View = TypeVar("View", bound=Callable[..., Any])


@dataclass
class _Session:
    username: str
    last_seen: float


class Sessions:
    """Cookie token -> session, expiring after ``idle_timeout`` seconds without a request."""

    def __init__(self, idle_timeout: float, clock: Callable[[], float]) -> None:
        self._idle = idle_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}

    def create(self, username: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[token] = _Session(username, self._clock())
        return token

    def touch(self, token: str | None) -> str | None:
        """The session's user, its idle time restarted; None when absent or expired."""
        if not token:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if now - session.last_seen > self._idle:
                del self._sessions[token]
                return None
            session.last_seen = now
            return session.username

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(token, None)


def create_app(
    *,
    password: str = DEFAULT_PASSWORD,
    seed: int = 11,
    incidents: int = 23,
    minutes: int = 6,
    idle_timeout: float = 900.0,
    latency_ms: tuple[float, float] = (20, 80),
    clock: Callable[[], float] = time.time,
    faults: Mapping[str, Any] | None = None,
) -> Flask:
    """Build the tracker. ``latency_ms=(0, 0)`` for fast tests; ``clock`` drives session
    idling and the date of published reports; ``faults`` as ``POST /_sim/faults`` takes it
    (a bad one raises ValueError)."""
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    catalogue = Catalogue(seed, incidents, minutes)
    sessions = Sessions(idle_timeout, clock)
    injector = Faults(fault_kinds.ERP_KINDS, seeded_latency("tracker", seed, latency_ms), faults)
    register_routes(app, injector)

    def today() -> dt.date:
        return dt.datetime.fromtimestamp(clock()).date()

    def language() -> str:
        return negotiate(request.accept_languages)

    def html(template: str, status: int = 200, **context: Any) -> Response:
        lang = language()
        body = render_template(
            template,
            t=LABELS[lang],
            lang=lang,
            user=g.get("user"),
            long_date=lambda day: long_date(day, lang),
            human_size=lambda size: human_size(size, lang),
            **context,
        )
        response = Response(body, status=status, content_type="text/html; charset=utf-8")
        response.headers["Content-Language"] = "zh-CN" if lang == "zh" else "en"
        response.headers["Vary"] = "Accept-Language, Cookie"
        response.headers["Cache-Control"] = "private, no-cache"
        return response

    def to_login() -> Response:
        target = request.full_path if request.query_string else request.path
        return _redirect(f"/login?next={quote(target, safe='/')}", code=302)

    def protected(view: View) -> View:
        """Serve ``view`` only inside a live session; otherwise redirect to the login."""

        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = sessions.touch(request.cookies.get(COOKIE))
            if user is None:
                return to_login()
            g.user = user
            return view(*args, **kwargs)

        wrapper.requires_session = True  # type: ignore[attr-defined]  # read by the fault hook
        return wrapper  # type: ignore[return-value]

    @app.before_request
    def latency_and_faults() -> Response | None:
        if is_sim_path(request.path):
            return None
        roll = injector.begin()  # sleeps the latency
        g.fault_roll = roll
        if roll.error:
            return html("notice.html", status=500, message_key="server_error")
        view = app.view_functions.get(request.endpoint or "")
        token = request.cookies.get(COOKIE)
        if (
            getattr(view, "requires_session", False)
            and sessions.touch(token) is not None
            and injector.expire_session(roll)
        ):
            sessions.end(token)  # the view now finds no session: off to the login page
        return None

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        key = "not_found" if error.code == 404 else "server_error"
        return html("notice.html", status=error.code or 500, message_key=key)

    @app.get("/")
    def root() -> Response:
        if sessions.touch(request.cookies.get(COOKIE)) is not None:
            return _redirect("/dashboard", code=302)
        return _redirect("/login", code=302)

    @app.get("/login")
    def login_form() -> Response:
        # Already signed in: there is no form to fill, straight on to the dashboard.
        if sessions.touch(request.cookies.get(COOKIE)) is not None:
            return _redirect(_safe_next(request.args.get("next")), code=302)
        notice = "signed_out" if request.args.get("signed_out") else None
        if notice is None and request.args.get("next"):
            notice = "please_sign_in"
        return html("login.html", error=None, notice=notice, username="")

    @app.post("/login")
    def login() -> Response:
        username = request.form.get("username", "")
        given = request.form.get("password", "")
        ok = hmac.compare_digest(username.encode(), USER.encode()) & hmac.compare_digest(
            given.encode(), password.encode()
        )
        if not ok:
            return html("login.html", status=200, error="bad_login", notice=None, username=username)
        sessions.end(request.cookies.get(COOKIE))
        response = _redirect(_safe_next(request.args.get("next")), code=303)
        response.set_cookie(COOKIE, sessions.create(USER), httponly=True, samesite="Lax")
        return response

    @app.route("/logout", methods=["GET", "POST"])
    def logout() -> Response:
        sessions.end(request.cookies.get(COOKIE))
        response = _redirect("/login?signed_out=1", code=303)
        response.delete_cookie(COOKIE, httponly=True, samesite="Lax")
        return response

    @app.get("/dashboard")
    @protected
    def dashboard() -> Response:
        return html(
            "dashboard.html",
            incidents=len(catalogue.of_kind(INCIDENT)),
            minutes=len(catalogue.of_kind(MINUTES)),
            latest=list(reversed(catalogue.of_kind(INCIDENT)))[:5],
        )

    @app.get("/incidents")
    @protected
    def incident_list() -> Response:
        reports = list(reversed(catalogue.of_kind(INCIDENT)))  # newest first
        pages = max(1, math.ceil(len(reports) / PAGE_SIZE))
        arg = request.args.get("page", "1")
        page = min(max(int(arg), 1), pages) if arg.isascii() and arg.isdigit() else 1
        rows = reports[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return html("incidents.html", rows=rows, page=page, pages=pages, total=len(reports))

    @app.get("/incidents/<int:number>")
    @protected
    def incident(number: int) -> Response:
        report = catalogue.by_number(INCIDENT, number)
        if report is None:
            return html("notice.html", status=404, message_key="not_found")
        return html("incident.html", report=report)

    @app.get("/wiki")
    @protected
    def wiki() -> Response:
        return _redirect("/wiki/minutes", code=302)

    @app.get("/wiki/minutes")
    @protected
    def minutes_list() -> Response:
        return html("minutes.html", rows=list(reversed(catalogue.of_kind(MINUTES))))

    @app.get("/wiki/minutes/<int:number>")
    @protected
    def minutes_page(number: int) -> Response:
        report = catalogue.by_number(MINUTES, number)
        if report is None:
            return html("notice.html", status=404, message_key="not_found")
        return html("minutes_page.html", report=report)

    @app.get("/files/download")
    @protected
    def download() -> Response:
        report = catalogue.get(request.args.get("id", ""))
        if report is None or request.args.get("fmt", report.fmt) != report.fmt:
            return html("notice.html", status=404, message_key="not_found")
        roll = g.get("fault_roll")
        if injector.hit(roll, fault_kinds.HTML_INSTEAD, report.id):
            return html("notice.html", message_key="processing")  # 200, a page, not a file
        body = report.content
        gzipped = _accepts_gzip()
        if gzipped:
            body = report.gzipped
        if injector.hit(roll, fault_kinds.TRUNCATE, report.id):
            # The full length is declared, half is sent, then the connection closes.
            chunks = truncated(iter([body]), len(body) // 2, request.environ)
            response = Response(chunks, content_type=report.content_type)
            if "werkzeug.socket" not in request.environ:
                response.headers["Connection"] = "close"
        else:
            response = Response(body, content_type=report.content_type)
        response.headers["Content-Length"] = str(len(body))  # the bytes on the wire
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
        response.headers["Content-Disposition"] = f'attachment; filename="{report.filename}"'
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @app.get("/_sim/state")
    def sim_state() -> Response:
        return jsonify({"reports": [r.state() for r in catalogue.all()]})

    @app.post("/_sim/publish")
    def sim_publish() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        if body is None:
            body = {}
        problem = _publish_problem(body)
        if problem:
            return jsonify({"error": problem}), 400
        added = catalogue.publish(body.get("kind", INCIDENT), body.get("count", 1), today())
        return jsonify({"published": [r.id for r in added]})

    return app


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host): an open redirect is a classic bug."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/dashboard"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/dashboard"


def _publish_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    unknown = sorted(set(body) - {"kind", "count"})
    if unknown:
        return f"unknown key {unknown[0]!r}; keys: kind, count"
    if body.get("kind", INCIDENT) not in KINDS:
        return f"kind must be one of {', '.join(KINDS)}"
    count = body.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_PUBLISH:
        return f"count must be 1..{MAX_PUBLISH}"
    return None


def _redirect(location: str, code: int = 302) -> Response:
    """A redirect typed as Flask's own Response (``flask.redirect`` returns Werkzeug's)."""
    return Response(status=code, headers={"Location": location})
