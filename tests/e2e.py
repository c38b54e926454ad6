"""End-to-end support: real simulators, real Chromium, the real command line.

A ``World`` is both simulators on free loopback ports, an encrypted keyring holding
their credentials, and a private logs folder. Tests run ``runner.py`` as a subprocess,
the way cron does, and judge the result by the simulators' own ``/_sim/state``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bots.demo import simulator
from bots.redaction import Redactor
from credentials import open_store

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 540  # seconds: a bound, not an expectation

# Not the demo's defaults: a leak of these cannot hide behind a coincidence.
ERP_PASSWORD = "erp-Pw-7c41e9"
ARCHIVE_PASSWORD = "arc-Pw-0b5d23"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class World:
    erp_url: str
    archive_url: str
    env: dict[str, str]
    logs_dir: Path
    results: list[Result] = field(default_factory=list)

    def run(self, recipe: Path | str = ROOT / "recipes" / "demo.yaml", *args: str) -> Result:
        proc = subprocess.run(
            [sys.executable, "runner.py", "run", str(recipe), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        self.results.append(result)
        return result

    def erp_state(self) -> list[dict[str, Any]]:
        return get_json(f"{self.erp_url}/_sim/state")["reports"]

    def archive_state(self) -> list[dict[str, Any]]:
        return get_json(f"{self.archive_url}/_sim/state")["items"]

    def publish(self, count: int) -> list[str]:
        request = urllib.request.Request(
            f"{self.erp_url}/_sim/publish",
            data=json.dumps({"count": count}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["published"]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@contextmanager
def world(tmp: Path, *, reports: int = 25) -> Iterator[World]:
    """Both simulators and a configured keyring; everything stops on exit."""
    logs_dir = tmp / "logs"
    env = {
        **os.environ,
        "HOME": str(tmp / "home"),
        "FLEET_LOGS_DIR": str(logs_dir),
        "FLEET_KEYRING_KEY": "e2e-master-key-51f0",
        "FLEET_KEYRING_FILE": str(tmp / "keyring" / "credentials.cfg"),
    }
    store = open_store(env, Redactor())
    store.set("demo-erp", "clerk", ERP_PASSWORD)
    store.set("demo-archive", "archivist", ARCHIVE_PASSWORD)
    with ExitStack() as stack:
        erp_url = stack.enter_context(
            simulator(
                "sims.erp",
                [
                    "--password",
                    ERP_PASSWORD,
                    "--reports",
                    str(reports),
                    "--gen-seconds",
                    "1",
                    "--latency-ms",
                    "5,30",
                ],
                tmp / "sims" / "erp.log",
            )
        )
        archive_url = stack.enter_context(
            simulator(
                "sims.archive",
                [
                    "--password",
                    ARCHIVE_PASSWORD,
                    "--data",
                    str(tmp / "archive-data"),
                    "--latency-ms",
                    "5,20",
                ],
                tmp / "sims" / "archive.log",
            )
        )
        env["ERP_URL"], env["ARCHIVE_URL"] = erp_url, archive_url
        yield World(erp_url, archive_url, env, logs_dir)


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``needle`` (UTF-8 or GBK)."""
    forms = {needle.encode("utf-8"), needle.encode("gbk")}
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and any(form in path.read_bytes() for form in forms)
    ]
