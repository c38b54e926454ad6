"""Run the simulated desktop client: ``python -m sims.desktop [--state-port 0] ...``.

Prints ``READY http://127.0.0.1:PORT desktop`` (the state port) once 用户登录 and 每日提示
are on screen. SIGTERM, SIGINT, 退出 and closing the main window end it, state port too.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tkinter as tk
import types

from sims._server import parse_latency
from sims.desktop.app import DesktopClient, Settings, style
from sims.desktop.keys import on_any_input
from sims.desktop.state import ClientState, StateServer, create_state_app
from sims.erp.content import render
from sims.erp.reports import Catalogue
from sims.faults import DESKTOP_KINDS, FaultConfigError, Faults, parse_cli, seeded_latency


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sims.desktop", description=__doc__)
    parser.add_argument("--state-port", type=int, default=8305, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=2005, help="seeds catalogue and files")
    parser.add_argument("--reports", type=int, default=45, help="reports at start-up")
    parser.add_argument("--user", default="clerk", help="the one user name accepted")
    parser.add_argument("--password", default="clerk-demo", help="its password")
    parser.add_argument(
        "--idle-timeout", type=float, default=300.0, help="seconds without input before logout"
    )
    parser.add_argument(
        "--gen-seconds", type=float, default=3.0, help="how long generating a 凭证汇总表 takes"
    )
    parser.add_argument(
        "--latency-ms",
        type=parse_latency,
        default=(30, 120),
        metavar="MIN,MAX",
        help="random delay of every action (the UI is frozen meanwhile)",
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
        catalogue = Catalogue(args.seed, args.reports, render)
        faults = Faults(
            DESKTOP_KINDS, seeded_latency("desktop", args.seed, args.latency_ms), args.faults
        )
    except (ValueError, FaultConfigError) as error:
        parser.error(str(error))
    state = ClientState(catalogue, args.gen_seconds)
    server = StateServer(create_state_app(state, faults), args.state_port)
    server.start()
    try:
        root = tk.Tk(className="Finance")
        style(root)
        settings = Settings(args.user, args.password, args.idle_timeout)
        client = DesktopClient(root, state, faults, settings)
        on_any_input(root, client.touch)

        def stop(signum: int, frame: types.FrameType | None) -> None:
            client.quit()  # runs on the main thread, between two Tk events

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        tip = client.show_tip()
        root.wait_visibility(root)
        tip.wait_visibility(tip)
        root.after(0, client.poll)
        print(f"READY {server.url} desktop", flush=True)
        root.mainloop()
        client.close()
        root.destroy()
    finally:
        server.stop()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
