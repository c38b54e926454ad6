"""Serve a WSGI simulator on loopback and announce the bound port.

A launcher (the demo, the tests) may pass ``--port 0`` and read the ``READY <url>``
line from standard output, so that no port is guessed and no race on "free" ports occurs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import types
from typing import Any

from werkzeug.serving import make_server

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
