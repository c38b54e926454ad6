"""Run the simulated tracker: ``python -m sims.tracker [--port 8303] [--seed 11] ...``.

Prints ``READY http://127.0.0.1:PORT tracker`` once listening (``--port 0``: a free port).
"""

from __future__ import annotations

import argparse

from sims._server import parse_latency, serve
from sims.faults import parse_cli
from sims.tracker.app import DEFAULT_PASSWORD, USER, create_app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sims.tracker", description=__doc__)
    parser.add_argument("--port", type=int, default=8303, help="0 picks a free port")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help=f"password of user {USER}")
    parser.add_argument("--seed", type=int, default=11, help="seeds the reports and their files")
    parser.add_argument("--incidents", type=int, default=23, help="incidents at start-up")
    parser.add_argument("--minutes", type=int, default=6, help="meeting minutes at start-up")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=900.0,
        help="seconds of idleness after which a session expires",
    )
    parser.add_argument(
        "--latency-ms",
        type=parse_latency,
        default=(20, 80),
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
    if args.incidents < 0 or args.minutes < 0:
        parser.error("--incidents and --minutes must be >= 0")
    try:
        app = create_app(
            password=args.password,
            seed=args.seed,
            incidents=args.incidents,
            minutes=args.minutes,
            idle_timeout=args.idle_timeout,
            latency_ms=args.latency_ms,
            faults=args.faults,
        )
    except ValueError as error:  # a bad --faults key or value
        parser.error(str(error))
    serve(app, args.port, "tracker")


if __name__ == "__main__":
    main()
