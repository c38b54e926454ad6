"""`runner.py doctor`: one line per check, a fix for each failure, non-zero when a run
would fail. Real parts: Chromium, the encrypted keyring file, a SQLite ledger, the ERP and
archive simulators for --login."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from bots import doctor
from bots.settings import Settings
from tests.conftest import ROOT
from tests.e2e import ARCHIVE_PASSWORD, ERP_PASSWORD, Result, world

DEMO = str(ROOT / "recipes" / "demo.yaml")
DESKTOP = str(ROOT / "recipes" / "demo-desktop.yaml")


def runner(env: dict[str, str], *args: str) -> Result:
    proc = subprocess.run(
        [sys.executable, "runner.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def lines(result: Result, status: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(status)]


def test_good_set_up_passes_and_logs_in_without_writing_a_run(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.logs_dir.mkdir(parents=True)  # `ledger upgrade` makes no folder
        upgraded = runner(w.env, "ledger", "upgrade")  # a fresh ledger at the current schema
        assert upgraded.code == 0, upgraded.output
        before = sorted(p.relative_to(w.logs_dir) for p in w.logs_dir.rglob("*"))
        result = runner(w.env, "doctor", DEMO, "--login")
        assert result.code == 0, result.output
        assert not lines(result, "FAIL"), result.output
        for said in (
            "browser /",
            "launches (Chromium",
            "credential 'demo-erp' (demo source) is stored",
            "credential 'demo-archive' (demo archive) is stored",
            "login demo source",
            "logged in as 'clerk'",
            "logged in as 'archivist'",
            "is reachable, writable and at version",
            "GiB free, writable",
            "CryptFileKeyring at",
        ):
            assert said in result.stdout, (said, result.output)
        # --login kept no run: no run log, no new ledger file, no lock, no evidence.
        assert sorted(p.relative_to(w.logs_dir) for p in w.logs_dir.rglob("*")) == before
        assert not (w.logs_dir / "runs").exists()
        assert w.archive_state() == []
        for secret in (ERP_PASSWORD, ARCHIVE_PASSWORD, w.env["FLEET_KEYRING_KEY"]):
            assert secret not in result.output


def test_wrong_password_fails_the_login_with_the_login_error(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        proc = subprocess.run(
            [
                sys.executable,
                "runner.py",
                "credentials",
                "set",
                "demo-erp",
                "--username",
                "clerk",
                "--password-stdin",
            ],
            cwd=ROOT,
            env=w.env,
            input="wrong-Pw-1234\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        result = runner(w.env, "doctor", DEMO, "--login")
        assert result.code == 3, result.output
        (failed,) = lines(result, "FAIL")
        assert "login demo source" in failed and "cannot log in" in failed, result.output
        assert "用户名或密码错误" in failed  # the system's own refusal, as the login met it
        assert "credentials set demo-erp" in failed  # the fix
        assert "logged in as 'archivist'" in result.stdout  # the other system still checked
        assert "wrong-Pw-1234" not in result.output


def _keyring_only_env(tmp_path: Path) -> dict[str, str]:
    """A machine with a master key and both demo credentials, and no simulators."""
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "FLEET_LOGS_DIR": str(tmp_path / "logs"),
        "FLEET_KEYRING_KEY": "doctor-master-key-8e21",
        "FLEET_KEYRING_FILE": str(tmp_path / "keyring" / "credentials.cfg"),
    }
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    from bots.redaction import Redactor
    from credentials import open_store

    store = open_store(env, Redactor())
    store.set("demo-erp", "clerk", "pw-erp-1234")
    store.set("demo-archive", "archivist", "pw-arc-1234")
    return env


def test_no_browser_fails_naming_it_and_the_fix(tmp_path: Path) -> None:
    env = {**_keyring_only_env(tmp_path), "FLEET_CHROMIUM": str(tmp_path / "no-chromium")}
    result = runner(env, "doctor", DEMO)
    assert result.code == 3, result.output
    (failed,) = lines(result, "FAIL")
    assert f"FLEET_CHROMIUM={tmp_path / 'no-chromium'} does not exist" in failed
    assert "apt-get install chromium" in failed


def test_no_keyring_key_fails_saying_to_create_one(tmp_path: Path) -> None:
    env = {**_keyring_only_env(tmp_path)}
    del env["FLEET_KEYRING_KEY"]
    result = runner(env, "doctor", DEMO)
    assert result.code == 2, result.output
    (failed,) = lines(result, "FAIL")
    assert "no keyring master key" in failed and "credentials init" in failed
    assert "browser /" in result.stdout  # the other checks still ran


def test_missing_credential_fails_naming_it(tmp_path: Path) -> None:
    env = _keyring_only_env(tmp_path)
    assert runner(env, "credentials", "delete", "demo-archive").code == 0
    result = runner(env, "doctor", DEMO)
    assert result.code == 2, result.output
    (failed,) = lines(result, "FAIL")
    assert "credential 'demo-archive' (demo archive) is not in" in failed
    assert "`python runner.py credentials set demo-archive`" in failed
    assert "credential 'demo-erp' (demo source) is stored" in result.stdout


def test_broken_recipe_and_old_ledger_are_configuration_problems(tmp_path: Path) -> None:
    env = _keyring_only_env(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text(Path(DEMO).read_text().replace("credential: demo-erp", "credential: [x]"))
    ledger = tmp_path / "logs" / "ledger.sqlite3"
    ledger.parent.mkdir(parents=True)
    with sqlite3.connect(ledger) as conn:  # a ledger from before versions
        conn.execute("CREATE TABLE documents (id INTEGER)")
    result = runner(env, "doctor", str(broken))
    assert result.code == 2, result.output
    assert f"recipe {broken} does not validate" in result.stdout
    assert f"{broken}:12" in result.stdout  # file:line
    assert "ledger upgrade" in result.stdout
    with sqlite3.connect(ledger) as conn:  # doctor did not upgrade it
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"documents"}


def test_desktop_recipe_needs_a_display_or_xvfb_run_and_xclip(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    checks = doctor.display({"PATH": str(empty)})
    assert [c.status for c in checks] == ["FAIL", "FAIL"]
    assert "xvfb-run" in checks[0].line() and "apt-get install xvfb" in checks[0].fix
    assert "apt-get install xclip" in checks[1].fix
    assert all(c.code == 3 for c in checks)
    found = doctor.display({"PATH": os.environ["PATH"]})
    assert [c.status for c in found] == ["ok", "ok"], [c.line() for c in found]


def test_free_space_thresholds(tmp_path: Path) -> None:
    settings = Settings.from_env({}, logs_dir=tmp_path / "logs")
    assert doctor.logs(settings).status == "ok"
    low = doctor.logs(settings, warn_free=1 << 60)
    assert low.status == "warn" and "GiB free" in low.what
    full = doctor.logs(settings, warn_free=1 << 60, fail_free=1 << 59)
    assert full.status == "FAIL" and full.code == 3 and "free space" in full.fix
    assert not (tmp_path / "logs").exists()  # doctor creates nothing
