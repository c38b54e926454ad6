"""What the encrypted keyring costs a run and `credentials set`, side by side.

    python bench/keyring_cost.py [--rounds 3]

In a fresh keyrings.cryptfile file holding two credentials, times, interleaved round by
round (so that a noisy moment hits every case alike), each case's wall time and counts
its Argon2 derivations (the KDF wrapped):

- a run's part: open the store and read two credentials, written as a user of plain
  keyrings.cryptfile would write it, then the fleet's way before this change (key checked
  at open, as `doctor` still does), then the fleet's run path (the key proven by the
  first decryption);
- `credentials set`: plain keyrings.cryptfile (open, set_password), the fleet's store,
  and the command itself as a fresh process (interpreter start-up included).

The figures go here, not into a timed test: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import argon2.low_level

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.redaction import Redactor  # noqa: E402
from credentials import SERVICE, open_store  # noqa: E402

DERIVATIONS = [0]
_REAL_KDF = argon2.low_level.hash_secret_raw


def _counted_kdf(**kwargs: Any) -> bytes:
    DERIVATIONS[0] += 1
    return _REAL_KDF(**kwargs)


def plain_keyring(env: dict[str, str]) -> Any:
    from keyrings.cryptfile.cryptfile import CryptFileKeyring

    backend = CryptFileKeyring()
    backend.file_path = env["FLEET_KEYRING_FILE"]
    backend.keyring_key = env["FLEET_KEYRING_KEY"]  # unlocks: decrypts the reference
    return backend


def cases(env: dict[str, str]) -> dict[str, Callable[[], object]]:
    def plain_read() -> object:
        backend = plain_keyring(env)
        return backend.get_password(SERVICE, "erp"), backend.get_password(SERVICE, "archive")

    def fleet_read(check_key: bool) -> Callable[[], object]:
        def read() -> object:
            store = open_store(env, Redactor(), check_key=check_key)
            return store.get("erp"), store.get("archive")

        return read

    def plain_set() -> object:
        blob = '{"username": "clerk", "password": "pw-erp-5521", "name": "erp"}'
        plain_keyring(env).set_password(SERVICE, "erp", blob)
        return None

    def fleet_set() -> object:
        open_store(env, Redactor(), check_key=False).set("erp", "clerk", "pw-erp-5521")
        return None

    def command_set() -> object:
        return subprocess.run(
            [sys.executable, "runner.py", "credentials", "set", "erp"]
            + ["--username", "clerk", "--password-stdin"],
            cwd=ROOT,
            env={**os.environ, **env},
            input="pw-erp-5521\n",
            capture_output=True,
            text=True,
            check=True,
        )

    return {
        "run: open + read 2, plain keyrings.cryptfile": plain_read,
        "run: open + read 2, fleet before (key checked at open)": fleet_read(True),
        "run: open + read 2, fleet now (first read proves the key)": fleet_read(False),
        "credentials set: plain keyrings.cryptfile": plain_set,
        "credentials set: fleet store": fleet_set,
        "credentials set: the command (a fresh process)": command_set,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    argon2.low_level.hash_secret_raw = _counted_kdf  # type: ignore[assignment]  # looked up here
    with tempfile.TemporaryDirectory(prefix="keyring-cost-") as tmp:
        env = {
            "HOME": tmp,
            "FLEET_KEYRING_BACKEND": "cryptfile",
            "FLEET_KEYRING_KEY": secrets.token_urlsafe(32),
            "FLEET_KEYRING_FILE": str(Path(tmp) / "credentials.cfg"),
        }
        store = open_store(env, Redactor())
        store.set("erp", "clerk", "pw-erp-5521")
        store.set("archive", "archivist", "pw-arc-7710")
        named = cases(env)
        seconds: dict[str, list[float]] = {name: [] for name in named}
        derived: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, case in named.items():
                DERIVATIONS[0] = 0
                started = time.perf_counter()
                case()
                seconds[name].append(time.perf_counter() - started)
                derived[name] = DERIVATIONS[0]
    print(f"keyring cost, {args.rounds} interleaved rounds, {os.cpu_count()} CPUs:")
    for name, times in seconds.items():
        # A fresh process's derivations are not seen from here.
        count = "?" if name.endswith("(a fresh process)") else str(derived[name])
        print(
            f"  {name:<58} median {statistics.median(times):6.2f} s  "
            f"min {min(times):6.2f} s  derivations {count}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
