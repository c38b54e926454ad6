"""Run the simulated ERP: ``python -m sims.erp [--port 8301] [--seed 2005] ...``.

Prints ``READY http://127.0.0.1:PORT erp`` once listening (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse

from sims._server import parse_latency, serve
from sims.erp.app import create_app
from sims.faults import parse_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sims.erp", description=__doc__)
    parser.add_argument("--port", type=int, default=8301, help="0 picks a free port")
    parser.add_argument("--password", default="clerk-demo", help="password of user clerk")
    parser.add_argument("--seed", type=int, default=2005, help="seeds catalogue and files")
    parser.add_argument("--reports", type=int, default=45, help="reports at start-up")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=300.0,
        help="seconds of idleness after which a session expires",
    )
    parser.add_argument(
        "--gen-seconds", type=float, default=3.0, help="how long a report generation job runs"
    )
    parser.add_argument(
        "--latency-ms",
        type=parse_latency,
        default=(30, 120),
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
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.reports < 0:
        parser.error("--reports must be >= 0")
    try:
        app = create_app(
            password=args.password,
            seed=args.seed,
            reports=args.reports,
            idle_timeout=args.idle_timeout,
            gen_seconds=args.gen_seconds,
            latency_ms=args.latency_ms,
            faults=args.faults,
        )
    except ValueError as error:  # e.g. more reports than one year holds; a bad --faults key
        parser.error(str(error))
    serve(app, args.port, "erp")


if __name__ == "__main__":
    main()
