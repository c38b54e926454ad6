"""Run the simulated DMS: ``python -m sims.dms [--port 8304] [--password P] [--data DIR]``.

Prints ``READY http://127.0.0.1:PORT dms`` once listening (``--port 0``: a free port).
"""

from __future__ import annotations

from sims._server import run, simulator_parser
from sims.dms.app import DEFAULT_PASSWORD, USER, create_app


def main(argv: list[str] | None = None) -> None:
    parser = simulator_parser(
        "python -m sims.dms",
        __doc__,
        port=8304,
        password=DEFAULT_PASSWORD,
        user=USER,
        seed=3,
        seed_help="seed of the simulated latency",
        latency_ms=(10.0, 50.0),
        data="the catalogue and stored files",
    )
    args = parser.parse_args(argv)
    run(parser, args, "dms", create_app, data_dir=lambda app: app.extensions["dms_sim"].data_dir)


if __name__ == "__main__":
    main()
