"""Serve a WSGI simulator on loopback and announce the bound port; the command line
that every simulator shares.

A launcher (the demo, the tests) may pass ``--port 0`` and read the ``READY <url>``
line from standard output, so that no port is guessed and no race on "free" ports occurs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import types
from collections.abc import Callable
from typing import Any

from werkzeug.serving import make_server

from sims import seats
from sims.faults import parse_cli

HOST = "127.0.0.1"  # never anything else: these systems exist only for this machine


def serve(app: Any, port: int, name: str) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, printing ``READY http://127.0.0.1:PORT``."""
    server = make_server(HOST, port, app, threaded=True)

    def _stop(signum: int, frame: types.FrameType | None) -> None:
        # shutdown() must not run on the serving thread; raising out of serve_forever does.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        # Inside the try: a launcher may send SIGTERM the moment it reads this line.
        print(f"READY http://{HOST}:{server.server_port} {name}", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


def parse_latency(text: str) -> tuple[float, float]:
    """Parse ``--latency-ms MIN,MAX`` (milliseconds) for argparse."""
    try:
        low_text, high_text = text.split(",")
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN,MAX in milliseconds, e.g. 30,120; got {text!r}"
        ) from None
    if low < 0 or high < low:
        raise argparse.ArgumentTypeError(f"need 0 <= MIN <= MAX, got {text!r}")
    return low, high


def simulator_parser(
    prog: str,
    description: str | None,
    *,
    port: int,
    password: str,
    user: str,
    seed: int,
    seed_help: str,
    latency_ms: tuple[float, float],
    data: str | None = None,
    max_sessions: bool = False,
) -> argparse.ArgumentParser:
    """The options every simulator takes: ``--port``, ``--password``, ``--seed``,
    ``--latency-ms``, ``--faults``; where ``data`` names what it holds, ``--data``; and
    with ``max_sessions``, ``--max-sessions`` (a simulator that counts its sessions).

    ``data`` is the ``--data`` help's subject (e.g. "the catalogue and stored files"); None
    means the simulator keeps nothing on disk and has no such option. A simulator adds its
    own options to the parser returned, then hands the parsed arguments to :func:`run`.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--port", type=int, default=port, help="0 picks a free port")
    parser.add_argument("--password", default=password, help=f"password of user {user}")
    if data is not None:
        parser.add_argument(
            "--data",
            default=None,
            help=f"directory for {data}; persists across restarts "
            "(default: a fresh temporary directory removed at exit)",
        )
    parser.add_argument("--seed", type=int, default=seed, help=seed_help)
    parser.add_argument(
        "--latency-ms",
        type=parse_latency,
        default=latency_ms,
        metavar="MIN,MAX",
        help="random delay added to every request",
    )
    parser.add_argument(
        "--faults",
        type=parse_cli,
        default=None,
        metavar="JSON",
        help="initial fault configuration, a JSON object as POST /_sim/faults takes it",
    )
    if max_sessions:
        parser.add_argument(
            "--max-sessions",
            type=seats.parse_cli,
            default=None,
            metavar="N",
            help="refuse a login while N sessions are logged in (default: no cap; "
            "POST /_sim/config changes it)",
        )
    return parser


def run(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    name: str,
    create_app: Callable[..., Any],
    *,
    data_dir: Callable[[Any], object] | None = None,
) -> None:
    """Build the app from the parsed options and serve it on ``args.port``.

    Every option but ``--port`` is the ``create_app`` keyword of the same name (``--idle-
    timeout`` is ``idle_timeout``), the shared ones of :func:`simulator_parser` and those a
    simulator adds. A ValueError from ``create_app`` (a bad ``--faults`` key or value, or a
    value the simulator itself rejects) becomes ``parser.error``: a usage message and exit
    status 2. ``data_dir(app)``, if given, names where the app keeps its data; it is printed
    on stderr so that stdout stays the single READY line launchers wait for.
    """
    options = {key: value for key, value in vars(args).items() if key != "port"}
    try:
        app = create_app(**options)
    except ValueError as error:
        parser.error(str(error))
    if data_dir is not None:
        print(f"{name} data directory: {data_dir(app)}", file=sys.stderr, flush=True)
    serve(app, args.port, name)
