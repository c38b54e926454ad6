"""Run the simulated ERP: ``python -m sims.erp [--port 8301] [--seed 2005] ...``.

Prints ``READY http://127.0.0.1:PORT erp`` once listening (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse

from sims._server import run, simulator_parser
from sims.erp.app import USER, create_app


def _parser() -> argparse.ArgumentParser:
    parser = simulator_parser(
        "python -m sims.erp",
        __doc__,
        port=8301,
        password="clerk-demo",
        user=USER,
        seed=2005,
        seed_help="seeds catalogue and files",
        latency_ms=(30, 120),
        max_sessions=True,
    )
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
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.reports < 0:
        parser.error("--reports must be >= 0")
    run(parser, args, "erp", create_app)  # more reports than a year holds: a usage error


if __name__ == "__main__":
    main()
