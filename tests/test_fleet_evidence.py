"""Evidence across machines for real (issue 15): two workers, each with a logs folder of
its own (a machine of its own), capture a recipe's reports over one PostgreSQL; then
export-bag and `logs verify --fleet` from one of the machines.

Needs PostgreSQL: FLEET_TEST_DATABASE_URL (scripts/test.sh provides one).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import bagit

from tests.e2e import World, command
from tests.test_fleet import Fleet, events_in, fleet, fleet_url  # noqa: F401 (a fixture)


def on(f: Fleet, logs: Path) -> World:
    """The world's commands as run on the machine whose logs folder is ``logs``."""
    w = f.world
    return World(w.erp_url, w.archive_url, {**f.env, "FLEET_LOGS_DIR": str(logs)}, logs)


def test_export_bag_and_logs_verify_from_one_machine_of_two(
    tmp_path: Path,
    fleet_url: str,  # noqa: F811
) -> None:
    with fleet(tmp_path, fleet_url, reports=10, sessions=2) as f:
        f.start_worker(lanes=1)
        f.start_worker(lanes=1)
        assert f.defer().code == 0
        f.wait_archived()
        codes = f.stop()
        assert codes == [0, 0], f.outputs()
        captured = Counter({n: len(events_in(f.logs(n), "document_start")) for n in range(2)})
        # Export from the machine that captured fewer: some (maybe all) files are elsewhere.
        here = min(range(2), key=lambda n: captured[n])
        there = 1 - here
        machine = on(f, f.logs(here))
        bag = tmp_path / "bag"
        args = ("export-bag", "--out", str(bag), "--since", "2000-01-01", "--organization", "O")
        refused = command(machine, *args)
        assert refused.code == 3, refused.output
        assert "not on this machine; downloaded on" in refused.stderr
        assert str(f.logs(there) / "staging") in refused.stderr
        assert not bag.exists()
        done = command(machine, *args, "--staging", str(f.logs(there) / "staging"))
        assert done.code == 0, done.output
        assert "10 items" in done.stdout
        bagit.Bag(str(bag)).validate(fast=False)

        # The logs: this machine alone leaves the other's runs "not here"; with a copy of
        # the other machine's logs folder, every run of the fleet is verified.
        alone = command(machine, "logs", "verify", "--fleet")
        assert alone.code == 0, alone.output
        assert " 0 not here" not in alone.stdout
        both = command(machine, "logs", "verify", "--fleet", str(f.logs(there)))
        assert both.code == 0, both.output
        assert ", 0 open (killed, or still going), 0 not here, 0 NOT intact" in both.stdout
