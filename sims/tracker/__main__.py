"""Run the simulated tracker: ``python -m sims.tracker [--port 8303] [--seed 11] ...``.

Prints ``READY http://127.0.0.1:PORT tracker`` once listening (``--port 0``: a free port).
"""

from __future__ import annotations

import argparse

from sims._server import run, simulator_parser
from sims.tracker.app import DEFAULT_PASSWORD, USER, create_app


def _parser() -> argparse.ArgumentParser:
    parser = simulator_parser(
        "python -m sims.tracker",
        __doc__,
        port=8303,
        password=DEFAULT_PASSWORD,
        user=USER,
        seed=11,
        seed_help="seeds the reports and their files",
        latency_ms=(20, 80),
    )
    parser.add_argument("--incidents", type=int, default=23, help="incidents at start-up")
    parser.add_argument("--minutes", type=int, default=6, help="meeting minutes at start-up")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=900.0,
        help="seconds of idleness after which a session expires",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.incidents < 0 or args.minutes < 0:
        parser.error("--incidents and --minutes must be >= 0")
    run(parser, args, "tracker", create_app)


if __name__ == "__main__":
    main()
