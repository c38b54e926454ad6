"""End-to-end support for the second simulated system: the tracker and the DMS.

Beside :mod:`tests.e2e` (the ERP and the archive): a ``SecondWorld`` is ``sims.tracker``
and ``sims.dms`` on free loopback ports (each started as ``python -m sims.<name> --port
0 ...`` by :func:`bots.demo.simulator`, which waits for its ``READY <url>`` line), an
encrypted keyring holding their credentials (``demo-tracker``, ``demo-dms``), and a
private logs folder. ``TRACKER_URL`` and ``DMS_URL`` in the world's environment point
the recipe ``recipes/examples/tracker-to-dms.yaml`` at them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sims.control import get_json, post_json
from tests.e2e import ROOT, Result, run_recipe, set_faults, start_simulators, world_env

RECIPE = ROOT / "recipes" / "examples" / "tracker-to-dms.yaml"
TRACKER_USER = "reporter-bot"
DMS_USER = "archivist"
# Not the simulators' defaults: a leak of these cannot hide behind a coincidence.
TRACKER_PASSWORD = "trk-Pw-5e80a2"
DMS_PASSWORD = "dms-Pw-93c7f1"


@dataclass
class SecondWorld:
    tracker_url: str
    dms_url: str
    env: dict[str, str]
    logs_dir: Path
    results: list[Result] = field(default_factory=list)

    def run(self, recipe: Path | str = RECIPE, *args: str) -> Result:
        return run_recipe(self.env, self.results, recipe, *args)

    def tracker_state(self) -> list[dict[str, Any]]:
        return get_json(f"{self.tracker_url}/_sim/state")["reports"]

    def dms_state(self) -> list[dict[str, Any]]:
        return get_json(f"{self.dms_url}/_sim/state")["documents"]

    def publish(self, kind: str, count: int) -> list[str]:
        body = {"kind": kind, "count": count}
        return post_json(f"{self.tracker_url}/_sim/publish", body)["published"]

    set_faults = staticmethod(set_faults)


@contextmanager
def second_world(
    tmp: Path,
    *,
    incidents: int = 13,
    minutes: int = 4,
    tracker_faults: dict[str, Any] | None = None,
    dms_faults: dict[str, Any] | None = None,
) -> Iterator[SecondWorld]:
    """The tracker and the DMS, and a configured keyring; everything stops on exit.

    13 incidents make two pages of the tracker's incident table (10 a page).
    """
    env = world_env(
        tmp,
        "e2e-second-key-2b94",
        {"demo-tracker": (TRACKER_USER, TRACKER_PASSWORD), "demo-dms": (DMS_USER, DMS_PASSWORD)},
    )
    tracker_args = [
        "--password",
        TRACKER_PASSWORD,
        "--incidents",
        str(incidents),
        "--minutes",
        str(minutes),
        "--latency-ms",
        "5,30",
    ]
    if tracker_faults is not None:
        tracker_args += ["--faults", json.dumps(tracker_faults)]
    dms_args = ["--password", DMS_PASSWORD, "--data", str(tmp / "dms-data"), "--latency-ms", "5,20"]
    if dms_faults is not None:
        dms_args += ["--faults", json.dumps(dms_faults)]
    with ExitStack() as stack:
        tracker_url, dms_url = start_simulators(stack, tmp, env, tracker=tracker_args, dms=dms_args)
        yield SecondWorld(tracker_url, dms_url, env, tmp / "logs")
