"""The ERP's web front: Flask routes that reproduce a 2005 intranet report centre.

The HTML contract (form names, input names, ids, link texts) is what the robots' recipes
are written against; keep it exact. Three deliberate legacy behaviours matter most:
every HTML page is GBK; an expired session is answered ``200 OK`` with the login page,
even on the download URL where a file was expected; and CSV reports are sent
``Content-Disposition: inline``, so a browser opens them in the tab instead of saving them.

It counts logged-in sessions (:mod:`sims.seats`) and, when given a cap (``--max-sessions``,
``/_sim/config``), refuses a login beyond it as such systems did: the login page again,
200, with 当前在线用户已达上限 in its ``font.msg``.

On demand (``/_sim/faults``, :mod:`sims.faults`) it is ruder still: 500 pages, sessions
that expire early, latency spikes, downloads cut off halfway, an HTML "busy" page in place
of a file. ``/_sim/publish`` can add reports of any size, with hostile or raw-GBK names,
or whose file is the EICAR anti-virus test string (``"infected": true``).
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import re
import time
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from flask import Flask, Response, g, render_template, request
from werkzeug.exceptions import HTTPException

from sims import faults as fault_kinds
from sims import seats
from sims.erp.content import render
from sims.erp.reports import Catalogue, Report
from sims.erp.state import Clock, JobBoard, JobStatus, SessionStatus, SessionStore
from sims.erp.truth import publish_options, report_truth
from sims.faults import Faults, is_sim_path, register_routes, seeded_latency, truncated

USER = "clerk"
COOKIE = "JSESSIONID"
PAGE_SIZE = 20

MSG_BAD_TOKEN = "非法请求，请重新登录"
MSG_BAD_LOGIN = "用户名或密码错误"
MSG_TIMEOUT = "会话已超时，请重新登录"
MSG_LOGGED_OUT = "您已安全退出系统"
MSG_BAD_DATE = "日期格式错误"
MSG_NOT_GENERATED = "报表尚未生成"
MSG_NO_REPORT = "报表不存在"
MSG_SERVER_ERROR = "系统内部错误"
MSG_BUSY = "系统繁忙，请稍后再试"
MSG_FULL = "当前在线用户已达上限，请稍后再试"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

View = TypeVar("View", bound=Callable[..., Any])


def create_app(
    *,
    password: str = "clerk-demo",
    seed: int = 2005,
    reports: int = 45,
    idle_timeout: float = 300.0,
    gen_seconds: float = 3.0,
    latency_ms: tuple[float, float] = (30, 120),
    clock: Clock = time.time,
    faults: Mapping[str, Any] | None = None,
    max_sessions: int | None = None,
) -> Flask:
    """Build the ERP application.

    ``clock`` returns POSIX seconds; it drives session idling, job completion and
    "today" (the local date of ``clock()``), which sets the list's default month and the
    date of published reports. Pass ``latency_ms=(0, 0)`` for fast tests. ``faults`` is
    an initial fault configuration, as ``POST /_sim/faults`` takes it (bad: ValueError).
    ``max_sessions`` caps concurrently logged-in sessions (None: counted, never refused).
    """
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # readable Chinese in /_sim
    catalogue = Catalogue(seed, reports, render)
    sessions = SessionStore(idle_timeout, clock, seats.check_max_sessions(max_sessions))
    jobs = JobBoard(gen_seconds, clock)
    injector = Faults(fault_kinds.ERP_KINDS, seeded_latency("erp", seed, latency_ms), faults)
    register_routes(app, injector)
    seats.register_routes(app, sessions)

    def today() -> dt.date:
        return dt.datetime.fromtimestamp(clock()).date()

    def html(template: str, http_status: int = 200, **context: Any) -> Response:
        # Strict GBK: a character the old system could not store is a simulator bug.
        body = render_template(template, **context).encode("gbk")
        response = Response(body, status=http_status, content_type="text/html; charset=GBK")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Pragma"] = "no-cache"
        return response

    def login_page(message: str | None = None, tone: str = "red") -> Response:
        return html("login.html", token=sessions.issue_token(), message=message, tone=tone)

    def protected(view: View) -> View:
        """Serve ``view`` only inside a live session; otherwise the login page, 200."""

        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            status = sessions.touch(request.cookies.get(COOKIE))
            if status is SessionStatus.VALID:
                return view(*args, **kwargs)
            return login_page(MSG_TIMEOUT if status is SessionStatus.EXPIRED else None)

        wrapper.requires_session = True  # type: ignore[attr-defined]  # read by the fault hook
        return wrapper  # type: ignore[return-value]

    def job_status(report: Report) -> JobStatus:
        if not report.kind.needs_generate:
            return JobStatus.DONE
        return jobs.status(report.id)

    @app.before_request
    def latency_and_faults() -> Response | None:
        if is_sim_path(request.path):
            return None  # ground truth and controls: never delayed, failed or counted
        roll = injector.begin()  # sleeps the latency
        g.fault_roll = roll
        if roll.error:  # before the view: nothing it would do happens
            return html("notice.html", http_status=500, message=MSG_SERVER_ERROR, back=False)
        view = app.view_functions.get(request.endpoint or "")
        sid = request.cookies.get(COOKIE)
        if (
            getattr(view, "requires_session", False)
            and sessions.is_valid(sid)
            and injector.expire_session(roll)
        ):
            sessions.end(sid)  # the view now finds it expired: login page, 200
        return None

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return html(
            "notice.html",
            http_status=error.code or 500,
            message=f"{error.code} {error.name}",
            back=False,
        )

    @app.get("/")
    def root() -> Response:
        return _redirect("/login.do")

    # The login form's action is relative ("login.do"); when the login page is shown in
    # place of a page under /report/, the browser posts to /report/login.do.
    @app.route("/login.do", methods=["GET", "POST"])
    @app.route("/report/login.do", methods=["GET", "POST"])
    def login() -> Response:
        if request.method == "GET":
            return login_page()
        if not sessions.consume_token(request.form.get("token")):
            return login_page(MSG_BAD_TOKEN)
        username = request.form.get("username", "")
        given = request.form.get("password", "").encode()
        if username != USER or not hmac.compare_digest(given, password.encode()):
            return login_page(MSG_BAD_LOGIN)
        # Credentials first, then the licence: only a user who may log in takes a seat.
        sid = sessions.create(USER, replacing=request.cookies.get(COOKIE))
        if sid is None:
            return login_page(MSG_FULL)
        response = _redirect("/main.do")
        response.set_cookie(COOKIE, sid, httponly=True, path="/")
        return response

    @app.get("/logout.do")
    def logout() -> Response:
        sessions.end(request.cookies.get(COOKIE))
        response = login_page(MSG_LOGGED_OUT, tone="blue")
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/main.do")
    @protected
    def main() -> Response:
        return html("main.html")

    @app.get("/top.do")
    @protected
    def top() -> Response:
        return html("top.html", user=USER, today=today())

    @app.get("/menu.do")
    @protected
    def menu() -> Response:
        return html("menu.html")

    @app.get("/welcome.do")
    @protected
    def welcome() -> Response:
        return html("welcome.html", user=USER, today=today())

    @app.get("/report/list.do")
    @protected
    def report_list() -> Response:
        return html("list.html", **_list_context(catalogue, job_status, today()))

    @app.get("/report/download.do")
    @protected
    def download() -> Response:
        report = catalogue.get(request.args.get("id", "").strip())
        if report is None:
            return html("notice.html", http_status=404, message=MSG_NO_REPORT, back=True)
        if job_status(report) is not JobStatus.DONE:
            return html("notice.html", message=MSG_NOT_GENERATED, back=True)
        roll = g.get("fault_roll")
        if injector.hit(roll, fault_kinds.HTML_INSTEAD, report.id):
            return html("notice.html", message=MSG_BUSY, back=True)  # 200, as it was then
        size = catalogue.size(report)
        if size > 0 and injector.hit(roll, fault_kinds.TRUNCATE, report.id):
            # The full length is declared, half is sent, then the connection closes.
            body = truncated(catalogue.chunks(report), size // 2, request.environ)
            response = Response(body, content_type=report.content_type)
            response.headers["Content-Length"] = str(size)
            if "werkzeug.socket" not in request.environ:
                # Werkzeug's server sends "Connection: close" on every response itself;
                # behind any other server, say it here so the client reads no further.
                response.headers["Connection"] = "close"
        elif report.bulk_size is not None:
            response = Response(catalogue.chunks(report), content_type=report.content_type)
            response.headers["Content-Length"] = str(size)
        else:
            response = Response(catalogue.content(report), content_type=report.content_type)
        response.headers["Content-Disposition"] = _content_disposition(report)
        return response

    @app.post("/report/generate.do")
    @protected
    def generate() -> Response:
        report = catalogue.get(request.form.get("id", "").strip())
        if report is None:
            return html("notice.html", http_status=404, message=MSG_NO_REPORT, back=True)
        if report.kind.needs_generate:
            jobs.start(report.id)  # a second press joins the running or finished job
        return _redirect(f"/report/job.do?id={report.id}")

    @app.get("/report/job.do")
    @protected
    def job() -> Response:
        report = catalogue.get(request.args.get("id", "").strip())
        if report is None:
            return html("notice.html", http_status=404, message=MSG_NO_REPORT, back=True)
        return html("job.html", report=report, job=job_status(report).value)

    @app.get("/_sim/state")
    def sim_state() -> Response:
        return app.json.response(
            {
                "reports": [
                    report_truth(catalogue, r, job_status(r) is JobStatus.DONE)
                    for r in catalogue.all()
                ],
                "sessions": sessions.seats_report(),
            }
        )

    @app.post("/_sim/publish")
    def sim_publish() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        try:
            options = publish_options(body)
        except ValueError as error:
            return app.json.response({"error": str(error)}), 400
        added = catalogue.publish(today=today(), **options)
        return app.json.response({"published": [r.id for r in added]})

    return app


def _content_disposition(report: Report) -> str:
    """``inline`` for CSV (the legacy quirk), ``attachment`` otherwise; both file names.

    The ASCII fallback is ``R000001.pdf``, or a name a test gave, verbatim (as raw UTF-8
    bytes when it is not ASCII). ``raw_gbk_filename`` reports send only ``filename=`` with
    the name's GBK bytes, as old IIS and Java servers did.
    """
    # Legacy quirk: CSV exports are served ``inline``, so a browser shows them in the tab
    # instead of saving them; PDF and XLSX are attachments.
    disposition = "inline" if report.kind.ext == "csv" else "attachment"
    if report.raw_gbk_filename:
        # Werkzeug writes header strings as latin-1: this puts the GBK bytes on the wire.
        raw = report.filename.encode("gbk").decode("latin-1")
        return f'{disposition}; filename="{raw}"'
    if report.given_filename is not None:
        fallback = report.given_filename.encode("utf-8").decode("latin-1")
    else:
        fallback = report.ascii_filename
    return (
        f'{disposition}; filename="{fallback}"; '
        f"filename*=UTF-8''{quote(report.filename, safe='')}"
    )


def _redirect(location: str) -> Response:
    """302 with an empty GBK body (Flask's helper would add a UTF-8 HTML one)."""
    return Response(
        b"", status=302, headers={"Location": location}, content_type="text/html; charset=GBK"
    )


def _parse_date(raw: str) -> dt.date | None:
    """``YYYY-MM-DD`` exactly (the ERP's date picker format), else None."""
    if not _DATE.match(raw):
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


def _list_context(
    catalogue: Catalogue, job_status: Callable[[Report], JobStatus], today: dt.date
) -> dict[str, Any]:
    """Everything list.html needs: the filtered, paged rows and the pager links.

    With neither ``start`` nor ``end`` the window is the current month (and the inputs
    show it); with only one of them the other side is open.
    """
    args = request.args
    start_raw, end_raw = args.get("start", "").strip(), args.get("end", "").strip()
    report_no = args.get("report_no", "").strip()
    if not start_raw and not end_raw:
        first = today.replace(day=1)
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        start_raw, end_raw = first.isoformat(), last.isoformat()
    start = _parse_date(start_raw) if start_raw else dt.date.min
    end = _parse_date(end_raw) if end_raw else dt.date.max
    error = None
    matches: list[Report] = []
    if start is None or end is None:
        error = MSG_BAD_DATE
    else:
        matches = sorted(
            (
                r
                for r in catalogue.all()
                if start <= r.date <= end and (not report_no or r.id == report_no)
            ),
            key=lambda r: (r.date, r.id),
        )
    pages = max(1, math.ceil(len(matches) / PAGE_SIZE))
    page_raw = args.get("page", "1").strip()
    page = min(max(int(page_raw) if page_raw.isdigit() else 1, 1), pages)

    def link(n: int) -> str:
        query = {"start": start_raw, "end": end_raw, "report_no": report_no, "page": n}
        return "list.do?" + urlencode(query)

    rows = [
        {
            "id": r.id,
            "title": r.title,
            "kind": r.kind.name,
            "department": r.kind.department,
            "date": r.date.isoformat(),
            # exact bytes even before generation, so a robot can check what it downloads
            "size": f"{catalogue.size(r):,}",
            "status": job_status(r).value,
        }
        for r in matches[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    ]
    return {
        "start": start_raw,
        "end": end_raw,
        "report_no": report_no,
        "error": error,
        "rows": rows,
        "total": len(matches),
        "page": page,
        "pages": pages,
        "first_link": link(1),
        "prev_link": link(page - 1) if page > 1 else None,
        "next_link": link(page + 1) if page < pages else None,
        "last_link": link(pages),
    }
