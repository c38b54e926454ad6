"""The desktop client's ground truth and its state port: plain data under a lock, served
by Flask on a daemon thread that never touches a Tk object.

The Tk thread writes (login, logout, files written, generation jobs); the HTTP thread
reads, and may publish reports into the shared catalogue (which is thread safe itself).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from sims.erp.reports import Catalogue, Report
from sims.erp.state import JobBoard, JobStatus
from sims.erp.truth import publish_options, report_truth
from sims.faults import Faults, register_routes

HOST = "127.0.0.1"


@dataclass
class ExportRecord:
    """One file the client wrote: ``report_id`` None for a list export."""

    report_id: str | None
    path: str
    complete: bool = False
    size: int = 0


class ClientState:
    """What the client knows and did, shared between the Tk thread and the state port."""

    def __init__(self, catalogue: Catalogue, gen_seconds: float) -> None:
        self.catalogue = catalogue
        self.jobs = JobBoard(gen_seconds, time.time)
        self._lock = threading.Lock()
        self._user: str | None = None
        self._exports: list[ExportRecord] = []

    def generated(self, report: Report) -> bool:
        return not report.kind.needs_generate or self.jobs.status(report.id) is JobStatus.DONE

    def log_in(self, user: str) -> None:
        with self._lock:
            self._user = user

    def log_out(self) -> None:
        with self._lock:
            self._user = None

    def add_export(self, record: ExportRecord) -> None:
        with self._lock:
            self._exports.append(record)

    def update_export(self, record: ExportRecord, *, size: int, complete: bool) -> None:
        with self._lock:
            record.size = size
            record.complete = complete

    def snapshot(self) -> dict[str, Any]:
        """``GET /_sim/state``: the ERP's report list, the session, the files written."""
        reports = [report_truth(self.catalogue, r, self.generated(r)) for r in self.catalogue.all()]
        with self._lock:
            session = {"logged_in": self._user is not None, "user": self._user}
            exports = [
                {"id": e.report_id, "path": e.path, "complete": e.complete, "size": e.size}
                for e in self._exports
            ]
        return {"reports": reports, "session": session, "exports": exports}


def create_state_app(state: ClientState, faults: Faults) -> Flask:
    """The state port: ``/_sim/state``, ``/_sim/publish``, ``/_sim/faults``."""
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # readable Chinese
    register_routes(app, faults)

    @app.get("/_sim/state")
    def sim_state() -> Response:
        return jsonify(state.snapshot())

    @app.post("/_sim/publish")
    def sim_publish() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True) or {}
        try:
            options = publish_options(body)
        except ValueError as error:
            return jsonify({"error": str(error)}), 400
        added = state.catalogue.publish(today=dt.date.today(), **options)
        return jsonify({"published": [r.id for r in added]})

    return app


class StateServer:
    """The state port on 127.0.0.1, served from a daemon thread until :meth:`stop`."""

    def __init__(self, app: Flask, port: int) -> None:
        self._server: BaseWSGIServer = make_server(HOST, port, app, threaded=True)
        # stderr is the client's console; one line per state poll would drown it
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="desktop-state", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port; bounded, safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
