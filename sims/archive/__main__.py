"""Command line: ``python -m sims.archive [--port N] [--password P] [--data DIR] ...``."""

from __future__ import annotations

from .._server import run, simulator_parser
from .app import DEFAULT_PASSWORD, USERNAME, create_app


def main(argv: list[str] | None = None) -> None:
    parser = simulator_parser(
        "python -m sims.archive",
        "Archive system simulator (档案管理系统).",
        port=8302,
        password=DEFAULT_PASSWORD,
        user=USERNAME,
        seed=1,
        seed_help="seed of the simulated latency",
        latency_ms=(10.0, 60.0),
        data="the database and stored files",
        max_sessions=True,
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        help="seconds of idleness after which a session expires (default: never)",
    )
    args = parser.parse_args(argv)
    run(
        parser,
        args,
        "archive",
        create_app,
        data_dir=lambda app: app.extensions["archive_sim"].store.data_dir,
    )


if __name__ == "__main__":
    main()
