"""Run the simulated DMS: ``python -m sims.dms [--port 8304] [--password P] [--data DIR]``.

Prints ``READY http://127.0.0.1:PORT dms`` once listening (``--port 0``: a free port).
"""

from __future__ import annotations

import argparse
import sys

from sims._server import parse_latency, serve
from sims.dms.app import DEFAULT_PASSWORD, USER, create_app
from sims.faults import parse_cli


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sims.dms", description=__doc__)
    parser.add_argument("--port", type=int, default=8304, help="0 picks a free port")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help=f"password of user {USER}")
    parser.add_argument(
        "--data",
        default=None,
        help="directory for the catalogue and stored files; persists across restarts "
        "(default: a fresh temporary directory removed at exit)",
    )
    parser.add_argument("--latency-ms", type=parse_latency, default=(10.0, 50.0), metavar="MIN,MAX")
    parser.add_argument("--seed", type=int, default=3, help="seed of the simulated latency")
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
    print(f"dms data directory: {app.extensions['dms_sim'].data_dir}", file=sys.stderr, flush=True)
    serve(app, args.port, "dms")


if __name__ == "__main__":
    main()
