"""A client for the simulators' control endpoints (/_sim/state, /_sim/publish,
/_sim/faults, /_sim/config), shared by the tests, the benchmarks and anyone checking a run.
The bots never use it: what they know of a system comes through its pages."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

TIMEOUT = 120.0  # seconds: publishing a gigabyte report hashes it first


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return json.load(response)


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return json.load(response)
