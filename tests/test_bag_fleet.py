"""export-bag whichever machine captured a document (issue 15): two machines (two logs
folders) share one ledger; each staged the documents its worker downloaded. On SQLite
and, when FLEET_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import bagit
import pytest
from click.testing import CliRunner, Result

from bots.cli import main
from bots.ledger import Ledger
from bots.settings import Settings
from tests.conftest import FrozenClock
from tests.test_bag import CSV, PDF, capture


def captured_on(ledger: Ledger, logs: Path, host: str, run_id: str, docs: dict[str, bytes]) -> None:
    """A run on ``host`` (logs folder ``logs``) that captured ``docs`` (key -> bytes)."""
    ledger.start_run(
        run_id=run_id,
        recipe="worker",
        recipe_digest="0" * 64,
        host=host,
        user="rpa",
        bot_version="test",
        log_path=str(logs / "runs" / f"{run_id}.jsonl"),
        action="worker",
    )
    for key, content in docs.items():
        capture(ledger, logs, key, content, ".pdf" if content is PDF else ".csv", run_id=run_id)
        ledger.record_event(
            event_id=str(uuid.uuid4()),
            recipe="demo",
            source_key=key,
            run_id=run_id,
            event_type="capture",
            event_time=ledger.now(),
            outcome="success",
            detail="{}",
            agent=f"rpa-fleet test on {host}",
        )


@pytest.fixture
def machines(tmp_path: Path, ledger_url: str, clock: FrozenClock) -> tuple[Path, Path, str]:
    a, b = tmp_path / "a" / "logs", tmp_path / "b" / "logs"
    for logs, host, run_id, docs in (
        (a, "bot-a.invalid", "worker-a", {"R1": PDF}),
        (b, "bot-b.invalid", "worker-b", {"R2": CSV}),
    ):
        # Each machine's ledger object stages under its own root, as its worker does.
        ledger = Ledger.open(ledger_url, clock, staging_root=logs / "staging")
        try:
            captured_on(ledger, logs, host, run_id, docs)
        finally:
            ledger.close()
    return a, b, ledger_url


def export(logs: Path, url: str, out: Path, *args: str | Path) -> Result:
    env = {"FLEET_LEDGER_URL": url, "FLEET_LOGS_DIR": str(logs), "FLEET_STAGING_DIR": None}
    command = ["export-bag", "--out", str(out), "--since", "2000-01-01", "--organization", "Org"]
    return CliRunner().invoke(main, [*command, *map(str, args)], env=env)


def test_a_file_on_another_machine_is_named_with_its_host_and_what_to_do(
    machines: tuple[Path, Path, str], tmp_path: Path
) -> None:
    a, b, url = machines
    result = export(a, url, tmp_path / "bag")
    assert result.exit_code == 3, result.output
    assert "demo/R2" in result.output and "demo/R1" not in result.output
    said = "the staged file is not on this machine; downloaded on bot-b.invalid by run worker-b"
    assert said in result.output
    assert f"whose staging folder is {b / 'staging'}" in result.output
    assert "--staging DIR" in result.output and "FLEET_STAGING_DIR" in result.output
    assert not (tmp_path / "bag").exists()


def test_another_machines_staging_folder_completes_the_bag(
    machines: tuple[Path, Path, str], tmp_path: Path
) -> None:
    a, b, url = machines
    result = export(a, url, tmp_path / "bag", "--staging", b / "staging")
    assert result.exit_code == 0, result.output
    assert "2 items" in result.output
    bag = bagit.Bag(str(tmp_path / "bag"))
    bag.validate(fast=False)
    assert sorted(Path(p).name for p in bag.payload_files()) == ["R1.pdf", "R2.csv"]


def test_a_copy_that_is_not_what_was_captured_is_never_taken(
    machines: tuple[Path, Path, str], tmp_path: Path
) -> None:
    a, b, url = machines
    staged = next((b / "staging").rglob("*.csv"))
    staged.write_bytes(CSV + b"2025-02-01,x,1\n")
    result = export(a, url, tmp_path / "bag", "--staging", b / "staging")
    assert result.exit_code == 3 and "demo/R2" in result.output
    assert not (tmp_path / "bag").exists()


def test_shared_staging_storage_is_a_setting(tmp_path: Path) -> None:
    shared = tmp_path / "nfs" / "staging"
    settings = Settings.from_env({"FLEET_STAGING_DIR": str(shared)}, logs_dir=tmp_path / "logs")
    assert settings.staging_root == shared and settings.staging_dir("demo") == shared / "demo"
    assert Settings.from_env({}, logs_dir=tmp_path / "logs").staging_root == (
        tmp_path / "logs" / "staging"
    )
