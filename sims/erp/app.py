"""The ERP's web front: Flask routes that reproduce a 2005 intranet report centre.

The HTML contract (form names, input names, ids, link texts) is what the robots' recipes
are written against; keep it exact. Three deliberate legacy behaviours matter most:
every HTML page is GBK; an expired session is answered ``200 OK`` with the login page,
even on the download URL where a file was expected; and CSV reports are sent
``Content-Disposition: inline``, so a browser opens them in the tab instead of saving them.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import random
import re
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from sims.erp.content import render
from sims.erp.reports import Catalogue, Report
from sims.erp.state import Clock, JobBoard, JobStatus, SessionStatus, SessionStore

USER = "clerk"
COOKIE = "JSESSIONID"
PAGE_SIZE = 20
MAX_PUBLISH = 1000

MSG_BAD_TOKEN = "非法请求，请重新登录"
MSG_BAD_LOGIN = "用户名或密码错误"
MSG_TIMEOUT = "会话已超时，请重新登录"
MSG_LOGGED_OUT = "您已安全退出系统"
MSG_BAD_DATE = "日期格式错误"
MSG_NOT_GENERATED = "报表尚未生成"
MSG_NO_REPORT = "报表不存在"

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
) -> Flask:
    """Build the ERP application.

    ``clock`` returns POSIX seconds; it drives session idling, job completion and
    "today" (the local date of ``clock()``), which sets the list's default month and the
    date of published reports. Pass ``latency_ms=(0, 0)`` for fast tests.
    """
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # readable Chinese in /_sim
    catalogue = Catalogue(seed, reports, render)
    sessions = SessionStore(idle_timeout, clock)
    jobs = JobBoard(gen_seconds, clock)
    latency_rng = random.Random(f"erp/latency/{seed}")
    latency_lock = threading.Lock()

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

        return wrapper  # type: ignore[return-value]

    def job_status(report: Report) -> JobStatus:
        if not report.kind.needs_generate:
            return JobStatus.DONE
        return jobs.status(report.id)

    @app.before_request
    def slow_down() -> None:
        low, high = latency_ms
        if high <= 0:
            return
        with latency_lock:
            delay = latency_rng.uniform(low, high) / 1000.0
        time.sleep(delay)

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
        response = _redirect("/main.do")
        response.set_cookie(COOKIE, sessions.create(USER), httponly=True, path="/")
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
        response = Response(catalogue.content(report), content_type=report.content_type)
        # Legacy quirk: CSV exports are served ``inline``, so a browser shows them in the
        # tab instead of saving them; PDF and XLSX are attachments.
        disposition = "inline" if report.kind.ext == "csv" else "attachment"
        response.headers["Content-Disposition"] = (
            f'{disposition}; filename="{report.ascii_filename}"; '
            f"filename*=UTF-8''{quote(report.filename, safe='')}"
        )
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
                    {
                        "id": r.id,
                        "title": r.title,
                        "kind": r.kind.name,
                        "department": r.kind.department,
                        "date": r.date.isoformat(),
                        "filename": r.filename,
                        "size": len(catalogue.content(r)),
                        "sha256": catalogue.sha256(r),
                        "needs_generate": r.kind.needs_generate,
                        "generated": job_status(r) is JobStatus.DONE,
                    }
                    for r in catalogue.all()
                ]
            }
        )

    @app.post("/_sim/publish")
    def sim_publish() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        count = body.get("count", 1) if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_PUBLISH:
            return app.json.response({"error": f"count must be 1..{MAX_PUBLISH}"}), 400
        added = catalogue.publish(count, today())
        return app.json.response({"published": [r.id for r in added]})

    return app


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
            "size": f"{len(catalogue.content(r)):,}",
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
