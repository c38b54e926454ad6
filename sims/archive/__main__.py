"""Command line: ``python -m sims.archive [--port N] [--password P] [--data DIR] ...``."""

from __future__ import annotations

import argparse
import sys

from .._server import parse_latency, serve
from ..faults import parse_cli
from .app import DEFAULT_PASSWORD, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sims.archive", description="Archive system simulator (档案管理系统)."
    )
    parser.add_argument("--port", type=int, default=8302, help="0 picks a free port")
    parser.add_argument(
        "--password", default=DEFAULT_PASSWORD, help="password of the user 'archivist'"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="directory for the database and stored files; persists across restarts "
        "(default: a fresh temporary directory removed at exit)",
    )
    parser.add_argument("--latency-ms", type=parse_latency, default=(10.0, 60.0), metavar="MIN,MAX")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated latency")
    parser.add_argument(
        "--faults",
        type=parse_cli,
        default=None,
        metavar="JSON",
        help="initial fault configuration, a JSON object as POST /_sim/faults takes it",
    )
    args = parser.parse_args(argv)

    try:
        app = create_app(
            data=args.data,
            password=args.password,
            latency_ms=args.latency_ms,
            seed=args.seed,
            faults=args.faults,
        )
    except ValueError as error:  # a bad --faults key or value
        parser.error(str(error))
    # On stderr so that stdout stays the single READY line launchers wait for.
    data_dir = app.extensions["archive_sim"].store.data_dir
    print(f"archive data directory: {data_dir}", file=sys.stderr, flush=True)
    serve(app, args.port, "archive")


if __name__ == "__main__":
    main()
